import { initSync } from "../wasm/agent_session.js";
import wasm from "../wasm/agent_session_bg.wasm";

initSync({ module: wasm });
export * from "../api.js";
