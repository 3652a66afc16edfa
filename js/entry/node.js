import { readFile } from "node:fs/promises";
import { initSync } from "../wasm/agent_session.js";

initSync({ module: await readFile(new URL("../wasm/agent_session_bg.wasm", import.meta.url)) });
export * from "../api.js";
