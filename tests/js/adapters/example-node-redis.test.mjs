// Runs examples/node-redis/index.mjs as a user would (node index.mjs, REDIS_URL set) against a
// real redis-server, and checks what it prints and what it left in Redis; then runs
// examples/node-redis/server.mjs (node server.mjs) as a child process and sends it requests as its
// clients would.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, test } from "node:test";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createClient } from "redis";
import { SessionStore } from "agent-session";
import { redisKv } from "agent-session/adapters";
import { startRedis } from "./_redis-server.mjs";

const EXAMPLE = fileURLToPath(new URL("../../../examples/node-redis/index.mjs", import.meta.url));
const SERVER = fileURLToPath(new URL("../../../examples/node-redis/server.mjs", import.meta.url));
let server;
// The server.mjs children still running: a test that times out is left running by node:test, so its
// child is stopped here (before redis-server, which it would otherwise try to reconnect to forever).
const running = new Set();

before(async () => {
  server = await startRedis();
});
after(async () => {
  for (const stop of running) await stop();
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

/**
 * examples/node-redis/server.mjs in a child process on a free port (PORT=0), resolved once it prints
 * the line saying where it listens. `stop()` sends SIGTERM (the server closes its store and client
 * and exits) and resolves to its exit code; it SIGKILLs a child that has not exited after 10 s.
 */
async function startServer() {
  const child = spawn(process.execPath, [SERVER], {
    cwd: dirname(SERVER),
    env: { ...process.env, REDIS_URL: server.url, PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = once(child, "exit");
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(stop);
    return child.exitCode ?? child.signalCode;
  };
  running.add(stop);
  try {
    const origin = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server.mjs did not listen within 20 s: ${stdout}${stderr}`)), 20_000);
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
        const listening = stdout.match(/^listening on (http:\/\/127\.0\.0\.1:\d+)\n/);
        if (listening) {
          clearTimeout(timer);
          resolve(listening[1]);
        }
      });
      exited.then(([code]) => {
        clearTimeout(timer);
        reject(new Error(`server.mjs exited with ${code}: ${stdout}${stderr}`));
      }, reject);
    });
    return { origin, pid: child.pid, stop, stderr: () => stderr };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** `{ status, headers, body }` of a JSON request to the server. */
async function call(origin, method, path, json) {
  const init = { method };
  if (json !== undefined) Object.assign(init, { headers: { "content-type": "application/json" }, body: JSON.stringify(json) });
  const response = await fetch(origin + path, init);
  return { status: response.status, headers: response.headers, body: await response.json() };
}

/** The two messages one turn of the server appends for `text`. */
const turnMessages = (text) => [
  { role: "user", content: text },
  { role: "assistant", content: `You said: ${text}` },
];

/** A store of the test's own over the same Redis and prefix: another process's view of the sessions. */
async function withRedisStore(options, body) {
  const client = await createClient({ url: server.url }).connect();
  const store = await SessionStore.kv(redisKv(client), { prefix: "agents:", ...options });
  try {
    return await body(store);
  } finally {
    await store.close();
    await client.quit();
  }
}

// The server pattern: one store in the process, store.open(id) on every request. A long conversation
// must run through it with gapless versions, every message once and in order, and wasm memory that
// does not grow with the number of requests (the store keeps one cached view per session, not one per
// open); a burst of concurrent turns on one session must lose no commit.
test("examples/node-redis/server.mjs: 2000 turns on one session opened per request, a burst of 8 concurrent turns, no lost commit", { timeout: 300_000 }, async (t) => {
  const TURNS = 2000;
  const MIB = 2 ** 20;
  const app = await startServer();
  try {
    const started = performance.now();
    let afterWarmUp;
    for (let i = 1; i <= TURNS; i++) {
      const turn = await call(app.origin, "POST", "/sessions/long/turn", { message: `turn ${i}` });
      // Checked on every turn (not once at the end) so that the first failing request is the one reported.
      assert.equal(turn.status, 200, `turn ${i}: ${JSON.stringify(turn.body)}`);
      assert.deepEqual(turn.body, { id: "long", version: i, reply: `You said: turn ${i}` }, `turn ${i}`);
      if (i === 100) afterWarmUp = (await call(app.origin, "GET", "/stats")).body;
    }
    const seconds = (performance.now() - started) / 1000;
    const stats = (await call(app.origin, "GET", "/stats")).body;
    t.diagnostic(`${TURNS} sequential turns in ${seconds.toFixed(1)} s; wasm memory ${(afterWarmUp.memory.wasmBytes / MIB).toFixed(1)} MiB after 100 turns, ${(stats.memory.wasmBytes / MIB).toFixed(1)} MiB after ${TURNS}; cache ${JSON.stringify(stats.cache)}`);
    assert.ok(stats.memory.wasmBytes - afterWarmUp.memory.wasmBytes <= 16 * MIB,
      `wasm memory grew from ${afterWarmUp.memory.wasmBytes} to ${stats.memory.wasmBytes} bytes over ${TURNS - 100} turns`);
    assert.equal(stats.cache.sessions, 1, "one cached view for the one session, however often it was opened");

    const long = await call(app.origin, "GET", "/sessions/long");
    assert.equal(long.status, 200, JSON.stringify(long.body));
    assert.deepEqual(long.body, { id: "long", version: TURNS, status: "idle", count: 2 * TURNS });

    // A burst: 8 turns of a fresh session sent at once. Each is either committed (200) or refused
    // before it ran (409, the session busy with another of them); every commit is kept.
    const BURST = 8;
    const burst = await Promise.all(
      Array.from({ length: BURST }, (_, k) => call(app.origin, "POST", "/sessions/burst/turn", { message: `burst ${k}` })),
    );
    const committed = burst.filter((r) => r.status === 200);
    const refused = burst.filter((r) => r.status === 409);
    t.diagnostic(`burst of ${BURST}: ${committed.length} committed, ${refused.length} refused`);
    assert.equal(committed.length + refused.length, BURST, `statuses: ${burst.map((r) => r.status)}`);
    assert.ok(committed.length >= 1, "one of the burst commits");
    assert.deepEqual(committed.map((r) => r.body.version).sort((a, b) => a - b), committed.map((_, i) => i + 1), "gapless versions");
    for (const r of refused) {
      assert.equal(r.body.error, "CONCURRENT_INVOCATION");
      assert.equal(r.body.holder, `server-${app.pid}`, "the holder is this server's store");
      assert.ok(r.body.retryAfterMs > 0 && r.body.retryAfterMs <= 30_000, `retryAfterMs ${r.body.retryAfterMs}`);
      assert.equal(r.headers.get("retry-after"), String(Math.ceil(r.body.retryAfterMs / 1000)));
    }
    const afterBurst = await call(app.origin, "GET", "/sessions/burst");
    assert.deepEqual(afterBurst.body, { id: "burst", version: committed.length, status: "idle", count: 2 * committed.length },
      "the version counts every 200, and only those");

    // What another process reads from Redis: the same sessions, whole.
    await withRedisStore({}, async (store) => {
      const session = await store.open("long", { create: false });
      assert.equal(session.version, TURNS);
      assert.equal(session.status, "idle");
      const messages = session.messages();
      assert.equal(messages.length, 2 * TURNS);
      assert.deepEqual(messages.slice(0, 2), turnMessages("turn 1"));
      assert.deepEqual(messages.slice(TURNS, TURNS + 2), turnMessages(`turn ${TURNS / 2 + 1}`));
      assert.deepEqual(messages.slice(-2), turnMessages(`turn ${TURNS}`));
      assert.deepEqual(messages, Array.from({ length: TURNS }, (_, i) => turnMessages(`turn ${i + 1}`)).flat(), "every message once, in order");

      const burstSession = await store.open("burst", { create: false });
      assert.equal(burstSession.version, committed.length);
      // Each committed turn's pair once, in the order of the versions its requests were answered with.
      const byVersion = [...committed].sort((a, b) => a.body.version - b.body.version);
      assert.deepEqual(burstSession.messages(), byVersion.flatMap((r) => turnMessages(r.body.reply.replace("You said: ", ""))));
    });

    assert.equal(await app.stop(), 0, "the server exits cleanly on SIGTERM");
    assert.equal(app.stderr(), "", "the server logged no error");
  } finally {
    await app.stop();
  }
});

// The guard across processes: while another process (a store of the test's own, over the same Redis)
// holds a session, the server answers its turns 409; once that process commits, the server's next
// turn begins from that commit, although its store had the session cached.
test("examples/node-redis/server.mjs: a turn while another process holds the session is a 409; the next one sees its commit", { timeout: 60_000 }, async () => {
  const app = await startServer();
  try {
    const first = await call(app.origin, "POST", "/sessions/shared/turn", { message: "from the server" });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    await withRedisStore({ owner: "other-process" }, async (store) => {
      const inv = await (await store.open("shared")).begin();
      const busy = await call(app.origin, "POST", "/sessions/shared/turn", { message: "while held" });
      assert.equal(busy.status, 409, JSON.stringify(busy.body));
      assert.equal(busy.body.error, "CONCURRENT_INVOCATION");
      assert.equal(busy.body.holder, "other-process");
      assert.ok(busy.body.retryAfterMs > 0 && busy.body.retryAfterMs <= 30_000, `retryAfterMs ${busy.body.retryAfterMs}`);
      inv.appendMessage({ role: "system", content: "from another process" });
      assert.equal(await inv.commit(), 2);
    });
    const next = await call(app.origin, "POST", "/sessions/shared/turn", { message: "after" });
    assert.deepEqual([next.status, next.body.version], [200, 3], JSON.stringify(next.body));
    const read = await call(app.origin, "GET", "/sessions/shared");
    assert.deepEqual(read.body, { id: "shared", version: 3, status: "idle", count: 5 }, "nothing of the refused turn was written");
    assert.equal(await app.stop(), 0, "the server exits cleanly on SIGTERM");
    assert.equal(app.stderr(), "");
  } finally {
    await app.stop();
  }
});
