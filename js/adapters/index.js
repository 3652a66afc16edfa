// agent-session/adapters: turn the KV client a host already has into the `HostKv` that
// `SessionStore.kv()` takes. Each adapter is a thin file of its own; none imports its client library
// (the caller passes the client in), so importing this module loads no backend.
export { memoryKv } from "./memory.js";
export { denoKv } from "./deno-kv.js";
export { redisKv } from "./redis.js";
export { durableObjectKv } from "./durable-object.js";
export { cloudflareKv } from "./cloudflare-kv.js";
