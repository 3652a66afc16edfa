// SessionStore.kv over redisKv on a real redis-server: four Node processes (two on node-redis, two
// on ioredis) contending on one session, their merged logs checked against the guard's invariants;
// a holder killed with SIGKILL mid-invocation loses its lease by expiry; a stale invocation's late
// commit is refused and writes nothing visible.
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createClient } from "redis";
import { SessionStore, ConcurrencyError, LeaseLostError } from "agent-session";
import { redisKv } from "agent-session/adapters";
import { checkHistory } from "./_history.mjs";
import { startRedis } from "./_redis-server.mjs";

const WORKER = fileURLToPath(new URL("./_redis-worker.mjs", import.meta.url));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let server;
let client;
const children = new Set();

before(async () => {
  server = await startRedis();
  client = await createClient({ url: server.url }).connect();
});

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await client?.quit();
  await server?.stop();
});

/**
 * Forks a worker; resolves once it logged "ready". `events` collects its JSON lines; `exited`
 * resolves to [code, signal]; `next(type)` resolves with its next event of that type.
 */
async function spawnWorker(config) {
  const child = fork(WORKER, [JSON.stringify({ url: server.url, ...config })], { stdio: ["ignore", "pipe", "pipe", "ipc"] });
  children.add(child);
  const events = [];
  const waiting = [];
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  createInterface({ input: child.stdout }).on("line", (line) => {
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      stderr += `(stdout) ${line}\n`;
      return;
    }
    events.push(event);
    for (const w of waiting.filter((w) => w.type === event.type)) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve(event);
    }
  });
  const exited = once(child, "exit");
  const next = (type) =>
    new Promise((resolve, reject) => {
      waiting.push({ type, resolve });
      exited.then(([code, signal]) => reject(new Error(`${config.worker} exited (${code ?? signal}) before "${type}": ${stderr}`)));
    });
  await next("ready");
  return { child, events, exited, next, stderr: () => stderr };
}

test("4 processes (node-redis and ioredis) contend on one session: the merged history keeps the invariants", { timeout: 180_000 }, async () => {
  const id = "contended";
  const kinds = ["node-redis", "ioredis", "node-redis", "ioredis"];
  const workers = await Promise.all(
    kinds.map((kind, i) => spawnWorker({ id, worker: `p${i}-${kind}`, client: kind, commits: 8 })),
  );
  for (const w of workers) w.child.send("go");
  const exits = await Promise.all(workers.map((w) => w.exited));
  exits.forEach(([code, signal], i) => assert.equal(code, 0, `worker ${i} exited ${code ?? signal}: ${workers[i].stderr()}`));
  const events = workers.flatMap((w) => w.events).filter((e) => e.type !== "ready" && e.type !== "done");
  const reader = await SessionStore.kv(redisKv(client), { owner: "reader" });
  const session = await reader.open(id);
  const { commits, denials } = checkHistory(
    events,
    { version: session.version, messages: session.messages() },
    { owners: workers.map((_, i) => `p${i}-${kinds[i]}`) },
  );
  assert.equal(commits, 32);
  assert.ok(denials > 0, "the processes really contended");
  for (const [i, w] of workers.entries()) {
    assert.equal(w.events.filter((e) => e.type === "commit").length, 8, `worker ${i}`);
    // A process is never told that it holds the session itself.
    for (const denial of w.events.filter((e) => e.type === "denied")) assert.notEqual(denial.holder, `p${i}-${kinds[i]}`);
  }
  await reader.close();
});

test("a holder killed with SIGKILL mid-invocation: its lease expires, the session is taken over, its work never appears", { timeout: 60_000 }, async () => {
  const id = "killed";
  const leaseMs = 1500;
  const holder = await spawnWorker({ id, worker: "doomed", client: "ioredis", mode: "hold", leaseMs, heartbeat: false });
  holder.child.send("go");
  const acquired = await holder.next("acquire");
  holder.child.kill("SIGKILL");
  const [, signal] = await holder.exited;
  assert.equal(signal, "SIGKILL");

  const taker = await SessionStore.kv(redisKv(client), { owner: "taker" });
  const session = await taker.open(id);
  const denied = await session.begin().then(
    () => assert.fail("begin succeeded while the dead holder's lease was live"),
    (error) => error,
  );
  assert.ok(denied instanceof ConcurrencyError, `got ${denied}`);
  assert.equal(denied.holder, "doomed");
  assert.ok(denied.retryAfterMs > 0 && denied.retryAfterMs <= leaseMs, `retryAfterMs ${denied.retryAfterMs}`);
  await sleep(denied.retryAfterMs + 100);
  const inv = await session.begin();
  assert.ok(inv.token > acquired.token, `token ${inv.token} after the dead holder's ${acquired.token}`);
  assert.equal(inv.session.version, 0);
  assert.deepEqual(inv.messages(), [], "the killed holder's staged message never became visible");
  inv.appendMessage({ worker: "taker" });
  assert.equal(await inv.commit(), 1);
  const view = await (await SessionStore.kv(redisKv(client), { owner: "r" })).open(id);
  assert.deepEqual(view.messages(), [{ worker: "taker" }]);
  await taker.close();
});

/** Every key of the database with its hash fields, as raw bytes. */
async function dump() {
  const out = new Map();
  const opts = { typeMapping: { 36: Buffer } };
  let cursor = "0";
  do {
    const [next, keys] = await client.sendCommand(["SCAN", cursor, "COUNT", "1000"], opts);
    cursor = next.toString();
    for (const key of keys) {
      const fields = await client.sendCommand(["HGETALL", key], opts);
      out.set(key.toString(), Buffer.concat(fields.flatMap((f) => [Buffer.from(`${f.length}:`), f])).toString("base64"));
    }
  } while (cursor !== "0");
  return out;
}

test("a stale invocation's late commit after a takeover is LeaseLostError and writes nothing visible", { timeout: 60_000 }, async () => {
  const id = "late";
  const stale = await SessionStore.kv(redisKv(client), { owner: "stale", leaseMs: 300, heartbeat: false });
  const fresh = await SessionStore.kv(redisKv(client), { owner: "fresh" });
  const first = await (await fresh.open(id)).begin();
  first.appendMessage("v1");
  await first.commit();

  const old = await (await stale.open(id)).begin();
  old.appendMessage("late");
  await sleep(400);
  const inv = await (await fresh.open(id)).begin();
  assert.ok(inv.token > old.token);
  inv.appendMessage("v2");
  assert.equal(await inv.commit(), 2);

  const before = await dump();
  const error = await old.commit().then(
    () => assert.fail("the stale commit succeeded"),
    (e) => e,
  );
  assert.ok(error instanceof LeaseLostError, `got ${error}`);
  const afterDump = await dump();
  for (const [key, bytes] of before) assert.equal(afterDump.get(key), bytes, `${key} changed`);
  // What may be left behind is a batch under the stale token that no head names.
  const staleToken = old.token.toString(16).padStart(16, "0");
  for (const key of afterDump.keys()) {
    if (!before.has(key)) assert.ok(key.includes(staleToken), `new key ${key} is not under the stale token ${staleToken}`);
  }
  const view = await (await SessionStore.kv(redisKv(client), { owner: "r" })).open(id);
  assert.deepEqual(view.messages(), ["v1", "v2"]);
  assert.equal(view.version, 2);
  assert.deepEqual((await view.history()).filter((e) => e.type === "message").map((e) => e.data), ["v1", "v2"]);
  // The next commit succeeds.
  const next = await view.begin();
  next.appendMessage("v3");
  assert.equal(await next.commit(), 3);
});

test("closing the store does not close the caller's client", async () => {
  const own = await createClient({ url: server.url }).connect();
  const store = await SessionStore.kv(redisKv(own), { owner: "owner" });
  const inv = await (await store.open("owned")).begin();
  inv.appendMessage("hi");
  await inv.commit();
  await store.close();
  assert.equal(own.isOpen, true);
  assert.equal(await own.sendCommand(["PING"]), "PONG");
  await own.quit();
});

test("a session with idleTtlMs: its head gets a Redis TTL (PEXPIRE), its records none, expiresAt is in the record; closed, none", async () => {
  const store = await SessionStore.kv(redisKv(client), { owner: "ttl", idleTtlMs: 60_000, prefix: "ttl:" });
  const session = await store.open("expiring");
  const inv = await session.begin();
  inv.appendMessage("hello");
  await inv.commit();
  const keys = (await client.keys("*ttl:*")).sort();
  const head = keys.find((key) => key.includes("ttl:h/"));
  assert.ok(head, `keys: ${keys}`);
  const pttl = await client.pTTL(head);
  assert.ok(pttl > 60_000, `head PTTL ${pttl}`);
  for (const key of keys.filter((key) => key !== head)) assert.equal(await client.pTTL(key), -1, `${key} has a TTL`);
  assert.ok(session.expiresAt !== null && session.expiresAt >= session.updatedAt + 59_000);
  const { sessions } = await (await SessionStore.kv(redisKv(client), { prefix: "ttl:" })).list();
  assert.deepEqual(sessions.map((s) => [s.id, s.expiresAt]), [["expiring", session.expiresAt]]);
  // A closed session never expires (terminal): its head loses the TTL, or Redis would delete it and
  // leave its other records behind.
  await session.close();
  assert.equal(session.expiresAt, null);
  assert.equal(await client.pTTL(head), -1, "a closed session's head has no TTL");
  await store.close();
});

test("a head another program rewrote (a Redis string, a hash without its version): open gives CorruptRecordError naming the key; list() and sweepExpired() leave it out and go on", async () => {
  const { redisKeyOf } = await import("../../../js/adapters/redis.js");
  const { CorruptRecordError } = await import("agent-session");
  const prefix = `foreign-${Date.now()}/`;
  const corrupt = [];
  const store = await SessionStore.kv(redisKv(client), { prefix, onEvent: (event) => event.type === "corrupt" && corrupt.push(event.key) });
  for (const id of ["string", "no-version", "fine"]) await (await store.open(id)).invoke((inv) => inv.appendMessage(id));
  await client.del(redisKeyOf(`${prefix}h/string~`));
  await client.set(redisKeyOf(`${prefix}h/string~`), "hello");
  await client.hDel(redisKeyOf(`${prefix}h/no-version~`), "version");
  const reader = await SessionStore.kv(redisKv(client), { prefix, onEvent: (event) => event.type === "corrupt" && corrupt.push(event.key) });
  for (const id of ["string", "no-version"]) {
    await assert.rejects(reader.open(id), (error) => {
      assert.ok(error instanceof CorruptRecordError, `${id}: got ${error}`);
      assert.equal(error.key, `h/${id}~`);
      assert.match(error.message, /something else wrote|WRONGTYPE/);
      return true;
    });
  }
  const { sessions } = await reader.list();
  assert.deepEqual(sessions.map((session) => session.id), ["fine"]);
  assert.deepEqual(corrupt.sort(), ["h/no-version~", "h/string~"]);
  assert.equal(await reader.sweepExpired(), 0);
  assert.equal(await client.get(redisKeyOf(`${prefix}h/string~`)), "hello", "nothing of the other program's was changed");
});
