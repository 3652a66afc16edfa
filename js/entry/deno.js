import { initSync } from "../wasm/agent_session.js";

initSync({ module: await Deno.readFile(new URL("../wasm/agent_session_bg.wasm", import.meta.url)) });
export * from "../api.js";
