// Writes that were applied though their answer was lost: a client that retried the write after a
// dropped connection (Upstash's REST client retries a request whose fetch failed, ioredis resends
// what was in flight when it reconnects) is refused by what it wrote itself, and a write that timed
// out may have landed. A commit that is there must resolve (a LeaseLostError says nothing of it is
// there, and a user who redid the turn had it twice), and a begin whose lease is there must hold it
// (it failed with a ConcurrencyError naming its own store, which then held the session until the
// lease ran out).
import assert from "node:assert/strict";
import { test } from "node:test";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";

/** memoryKv whose next put of a head (`h/` keys) does what `fault.next` says: "retried" runs it twice
 * and answers with the second; "lost" runs it and then throws; "lost-twice" also fails the next get. */
function flakyKv() {
  const inner = memoryKv();
  const fault = { next: null, log: [] };
  let failGet = false;
  const kv = {
    capabilities: inner.capabilities,
    async get(key) {
      if (failGet) {
        failGet = false;
        throw new Error("injected: the read back failed too");
      }
      return inner.get(key);
    },
    async put(key, value, options) {
      const mode = key.startsWith("h/") ? fault.next : null;
      if (mode === null) return inner.put(key, value, options);
      fault.next = null;
      const first = await inner.put(key, value, options);
      fault.log.push(mode);
      if (mode === "retried") return inner.put(key, value, options);
      if (mode === "lost-twice") failGet = true;
      throw new Error("injected: the answer was lost after the put ran");
    },
    delete: (key, options) => inner.delete(key, options),
    list: (prefix, options) => inner.list(prefix, options),
  };
  return { kv, fault };
}

const messagesOf = async (kv, id) => (await (await SessionStore.kv(kv)).open(id, { create: false })).messages();

for (const mode of ["retried", "lost"]) {
  test(`a commit whose head write was applied and then ${mode === "retried" ? "retried by the client" : "answered by an error"} resolves, and the turn is there once`, async () => {
    const { kv, fault } = flakyKv();
    const store = await SessionStore.kv(kv, { owner: "server" });
    const session = await store.open("s");
    await session.invoke((inv) => inv.appendMessage("first"));
    const inv = await session.begin();
    inv.appendMessage("second");
    fault.next = mode;
    assert.equal(await inv.commit(), 2);
    assert.deepEqual(fault.log, [mode]);
    assert.deepEqual(await messagesOf(kv, "s"), ["first", "second"]);
    await (await store.open("s")).invoke((next) => next.appendMessage("third"));
    assert.deepEqual(await messagesOf(kv, "s"), ["first", "second", "third"]);
    assert.equal((await store.open("s")).version, 3);
  });

  test(`a checkpoint whose head write was applied and then ${mode === "retried" ? "retried by the client" : "answered by an error"} resolves, and the turn goes on`, async () => {
    const { kv, fault } = flakyKv();
    const store = await SessionStore.kv(kv);
    const inv = await (await store.open("c")).begin();
    inv.appendMessage("step 1");
    fault.next = mode;
    assert.equal(await inv.checkpoint(), 1);
    inv.appendMessage("step 2");
    assert.equal(await inv.commit(), 2);
    assert.deepEqual(await messagesOf(kv, "c"), ["step 1", "step 2"]);
  });

  test(`a begin whose lease write was applied and then ${mode === "retried" ? "retried by the client" : "answered by an error"} holds the lease`, async () => {
    const { kv, fault } = flakyKv();
    const store = await SessionStore.kv(kv, { owner: "server" });
    const session = await store.open("b");
    await session.invoke((inv) => inv.appendMessage("before"));
    fault.next = mode;
    const inv = await session.begin();
    assert.deepEqual(fault.log, [mode]);
    inv.appendMessage("held");
    assert.equal(await inv.commit(), 2);
    assert.deepEqual(await messagesOf(kv, "b"), ["before", "held"]);
    // The lease was released with the commit: another store begins at once.
    const other = await SessionStore.kv(kv, { owner: "other" });
    await (await other.open("b")).invoke((next) => next.appendMessage("after"));
    assert.deepEqual(await messagesOf(kv, "b"), ["before", "held", "after"]);
  });
}

test("a begin whose lease write was applied, answered by an error, and whose read back failed too: a StorageError, and the lease it wrote holds until it runs out", async () => {
  const { kv, fault } = flakyKv();
  let t = 1_800_000_000_000;
  const store = await SessionStore.kv(kv, { owner: "server", now: () => t, leaseMs: 1000, heartbeat: false });
  const session = await store.open("x");
  fault.next = "lost-twice";
  await assert.rejects(session.begin(), { code: "STORAGE" });
  await assert.rejects(session.begin(), { code: "CONCURRENT_INVOCATION", holder: "server" });
  t += 1001;
  await session.invoke((inv) => inv.appendMessage("after the lease ran out"));
  assert.deepEqual(await messagesOf(kv, "x"), ["after the lease ran out"]);
});

test("a commit refused because another store took the session over is still a LeaseLostError, and nothing of it is there", async () => {
  const kv = memoryKv();
  let t = 1_800_000_000_000;
  const first = await SessionStore.kv(kv, { owner: "first", now: () => t, leaseMs: 1000, heartbeat: false });
  const second = await SessionStore.kv(kv, { owner: "second", now: () => t, leaseMs: 1000, heartbeat: false });
  const inv = await (await first.open("taken")).begin();
  inv.appendMessage("late");
  t += 1001;
  await (await second.open("taken")).invoke((other) => other.appendMessage("taken over"));
  await assert.rejects(inv.commit(), { code: "LEASE_LOST" });
  assert.deepEqual(await messagesOf(kv, "taken"), ["taken over"]);
});
