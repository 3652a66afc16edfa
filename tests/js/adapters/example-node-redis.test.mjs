// Runs examples/node-redis/index.mjs as a user would (node index.mjs, REDIS_URL set) against a
// real redis-server, and checks what it prints and what it left in Redis.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createClient } from "redis";
import { SessionStore } from "agent-session";
import { redisKv } from "agent-session/adapters";
import { startRedis } from "./_redis-server.mjs";

const EXAMPLE = fileURLToPath(new URL("../../../examples/node-redis/index.mjs", import.meta.url));
let server;

before(async () => {
  server = await startRedis();
});
after(async () => {
  await server?.stop();
});

test("examples/node-redis: two turns, a refused concurrent invocation, the messages printed", { timeout: 60_000 }, async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [EXAMPLE, "example-session"], {
    cwd: fileURLToPath(new URL("../../../examples/node-redis/", import.meta.url)),
    env: { ...process.env, REDIS_URL: server.url },
    timeout: 30_000,
  });
  const lines = stdout.trim().split("\n");
  assert.equal(lines[0], "session example-session");
  assert.equal(lines[1], "turn 1 committed: version 1");
  assert.match(lines[2], /^concurrent invocation refused: CONCURRENT_INVOCATION \(held by server-1, retry in \d+ ms\)$/);
  assert.deepEqual(lines.slice(3), [
    "turn 2 committed: version 2",
    "user: What is the capital of France?",
    "assistant: Paris.",
    "user: And of Italy?",
    "assistant: Rome.",
    'state: {"turns":2}',
  ]);

  // The session is in Redis, under the example's prefix, for any other process to load.
  const client = await createClient({ url: server.url }).connect();
  try {
    const store = await SessionStore.kv(redisKv(client), { prefix: "agents:" });
    const session = await store.open("example-session", { create: false });
    assert.equal(session.version, 2);
    assert.equal(session.status, "idle", "the example released the session");
    assert.deepEqual(session.messages().map((m) => m.content), ["What is the capital of France?", "Paris.", "And of Italy?", "Rome."]);
    const keys = await client.keys("*");
    assert.ok(keys.length > 0 && keys.every((key) => key.includes("agents:")), `keys: ${keys}`);
    await store.close();
  } finally {
    await client.quit();
  }
});
