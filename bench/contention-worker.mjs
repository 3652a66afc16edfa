// One contender process of bench/contention-redis.mjs: its own node-redis client and
// SessionStore.kv(redisKv(client)) (its own owner), warm-up turns on a session of its own, then, on the
// parent's "go" (IPC, with the common start time), the loop of bench/contention-loop.mjs on the shared
// session. Reports { type: "ready", version } and { type: "done", result } over IPC.
import { createClient } from "redis";
import { SessionStore } from "agent-session";
import { redisKv } from "agent-session/adapters";
import { contend } from "./contention-loop.mjs";

const { url, id, label, turns, warmup, waitMs } = JSON.parse(process.argv[2]);
const client = await createClient({ url }).connect();
const store = await SessionStore.kv(redisKv(client), { owner: label });
const warm = await store.open(`warmup-${id}-${label}`);
for (let i = 0; i < warmup; i++) await warm.invoke((inv) => inv.appendMessage({ role: "user", content: `warmup ${i}` }));
const session = await store.open(id);

process.send({ type: "ready", version: session.version });
const { startAt } = await new Promise((resolve) => process.once("message", resolve));
const result = await contend(session, { label, turns, waitMs, startAt });
await new Promise((resolve) => process.send({ type: "done", result }, resolve));
await store.close();
await client.quit();
process.disconnect();
