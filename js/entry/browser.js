import init from "../wasm/agent_session.js";

await init({ module_or_path: new URL("../wasm/agent_session_bg.wasm", import.meta.url) });
export * from "../api.js";
