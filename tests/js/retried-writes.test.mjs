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
 * and answers with the second; "lost" runs it and then throws; "lost-twice" also fails the next get;
 * "late" throws at once and leaves the put to run when the test calls `fault.land()` (a write that
 * timed out and is still on its way). */
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
      if (mode === "late") {
        fault.log.push(mode);
        fault.land = () => inner.put(key, value, options);
        throw new Error("injected: the put timed out, and is still on its way");
      }
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

test("a begin whose lease write was applied, answered by an error, and whose read back failed too: a StorageError; the same store's next begin takes the lease over, and other stores wait for it to run out", async () => {
  const { kv, fault } = flakyKv();
  let t = 1_800_000_000_000;
  const options = { now: () => t, leaseMs: 1000, heartbeat: false };
  const store = await SessionStore.kv(kv, { owner: "server", ...options });
  const other = await SessionStore.kv(kv, { owner: "other", ...options });
  const session = await store.open("x");
  fault.next = "lost-twice";
  await assert.rejects(session.begin(), { code: "STORAGE" });
  await assert.rejects((await other.open("x")).begin(), { code: "CONCURRENT_INVOCATION", holder: "server" });
  await session.invoke((inv) => inv.appendMessage("taken over by its own store"));
  t += 1001;
  await (await other.open("x")).invoke((inv) => inv.appendMessage("other"));
  assert.deepEqual(await messagesOf(kv, "x"), ["taken over by its own store", "other"]);
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

test("a begin whose lease write timed out and landed after the read back: the same store's next begin takes that lease over (nobody holds it); other stores wait for it to run out", async () => {
  const { kv, fault } = flakyKv();
  let t = 1_800_000_000_000;
  const options = { now: () => t, leaseMs: 1000, heartbeat: false };
  const store = await SessionStore.kv(kv, { owner: "server", ...options });
  const other = await SessionStore.kv(kv, { owner: "other", ...options });
  const session = await store.open("late-begin");
  fault.next = "late";
  await assert.rejects(session.begin(), { code: "STORAGE" });
  assert.ok(await fault.land(), "the late lease landed");
  t += 10;
  await assert.rejects((await other.open("late-begin")).begin(), { code: "CONCURRENT_INVOCATION", holder: "server" });
  const inv = await session.begin();
  inv.appendMessage("after the orphaned lease");
  assert.equal(await inv.commit(), 1);
  assert.deepEqual(await messagesOf(kv, "late-begin"), ["after the orphaned lease"]);
  await (await other.open("late-begin")).invoke((next) => next.appendMessage("other"));
  assert.deepEqual(await messagesOf(kv, "late-begin"), ["after the orphaned lease", "other"]);
});

test("a commit whose head write timed out and landed after the read back: a retried commit() resolves, also once the lease ran out, and the turn is there once", async () => {
  for (const wait of [10, 5000]) {
    const { kv, fault } = flakyKv();
    let t = 1_800_000_000_000;
    const store = await SessionStore.kv(kv, { now: () => t, leaseMs: 1000, heartbeat: false });
    const inv = await (await store.open("late-commit")).begin();
    inv.appendMessage("turn");
    fault.next = "late";
    await assert.rejects(inv.commit(), { code: "STORAGE" });
    assert.ok(await fault.land(), "the late commit landed");
    t += wait;
    assert.equal(await inv.commit(), 1, `retried ${wait} ms later`);
    assert.deepEqual(await messagesOf(kv, "late-commit"), ["turn"]);
  }
});

test("a commit whose head write timed out and lands after the retry wrote it: the late write is refused, and the turn is there once", async () => {
  const { kv, fault } = flakyKv();
  const store = await SessionStore.kv(kv);
  const inv = await (await store.open("later")).begin();
  inv.appendMessage("turn");
  fault.next = "late";
  await assert.rejects(inv.commit(), { code: "STORAGE" });
  assert.equal(await inv.commit(), 1);
  assert.equal(await fault.land(), null, "the late write is refused by the head the retry wrote");
  assert.deepEqual(await messagesOf(kv, "later"), ["turn"]);
  await (await store.open("later")).invoke((next) => next.appendMessage("next"));
  assert.deepEqual(await messagesOf(kv, "later"), ["turn", "next"]);
});

test("a store remembers the orphaned begins of its 64 latest sessions at most: the oldest is forgotten (its lease then runs out as any other)", async () => {
  const { kv, fault } = flakyKv();
  let t = 1_800_000_000_000;
  const store = await SessionStore.kv(kv, { owner: "server", now: () => t, leaseMs: 1000, heartbeat: false });
  const sessions = [];
  for (let i = 0; i < 65; i++) {
    const session = await store.open(`o-${i}`);
    fault.next = "lost-twice";
    await assert.rejects(session.begin(), { code: "STORAGE" });
    sessions.push(session);
  }
  // The first one's orphan was forgotten: its lease keeps even its own store out until it runs out.
  await assert.rejects(sessions[0].begin(), { code: "CONCURRENT_INVOCATION", holder: "server" });
  // The latest is remembered: taken over at once.
  await sessions[64].invoke((inv) => inv.appendMessage("taken over"));
  t += 1001;
  await sessions[0].invoke((inv) => inv.appendMessage("after it ran out"));
  assert.deepEqual(await messagesOf(kv, "o-0"), ["after it ran out"]);
});
