// A contender in its own Node process, for store-redis.test.mjs: one SessionStore (its own owner)
// over redisKv on a node-redis or ioredis client. Logs each step to stdout as one JSON line:
//   {"type":"ready"} then, after the parent's "go" (IPC):
//   contend mode: acquire / committing / commit / denied events (see _history.mjs), then {"type":"done"}
//   hold mode:    begins, stages a message, logs acquire and holds the lease until killed
import { createClient } from "redis";
import Redis from "ioredis";
import { SessionStore } from "agent-session";
import { redisKv } from "agent-session/adapters";
import { commitTimes } from "./_history.mjs";

const config = JSON.parse(process.argv[2]);
const { url, id, worker, commits = 0, mode = "contend", leaseMs, heartbeat, client: kind } = config;
const log = (event) => process.stdout.write(`${JSON.stringify({ worker, t: Date.now(), ...event })}\n`);

const client = kind === "ioredis" ? new Redis(url) : await createClient({ url }).connect();
if (kind === "ioredis") await client.ping();
const store = await SessionStore.kv(redisKv(client), {
  owner: worker,
  ...(leaseMs === undefined ? {} : { leaseMs }),
  ...(heartbeat === undefined ? {} : { heartbeat }),
});
const session = await store.open(id);

log({ type: "ready" });
await new Promise((resolve) => process.once("message", resolve));

if (mode === "hold") {
  const inv = await session.begin();
  inv.appendMessage({ worker, token: inv.token, note: "never committed" });
  log({ type: "acquire", token: inv.token, base: inv.session.version });
  setInterval(() => {}, 60_000); // hold the lease until SIGKILL
} else {
  await commitTimes(session, worker, commits, log, 20_000);
  await store.close();
  if (kind === "ioredis") client.disconnect();
  else await client.quit();
  log({ type: "done" });
  process.disconnect?.();
}
