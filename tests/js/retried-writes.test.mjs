// Writes that were applied though their answer was lost: a client that retried the write after a
// dropped connection (Upstash's REST client retries a request whose fetch failed, ioredis resends
// what was in flight when it reconnects) is refused by what it wrote itself, and a write that timed
// out may have landed. A commit that is there must resolve (a LeaseLostError says nothing of it is
// there, and a user who redid the turn had it twice), and a begin whose lease is there must hold it
// (it failed with a ConcurrencyError naming its own store, which then held the session until the
// lease ran out).
import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidTransitionError, SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { manualClock } from "./_helpers.mjs";
import { headFaultKv } from "./_head-faults.mjs";

/** Stores over `kv`, one per owner, on one manual clock (`now.advance`), with 1 s leases and no heartbeat. */
async function storesOnOneClock(kv, ...owners) {
  const now = manualClock(1_800_000_000_000);
  const stores = [];
  for (const owner of owners) stores.push(await SessionStore.kv(kv, { owner, now, leaseMs: 1000, heartbeat: false }));
  return { now, stores };
}

const messagesOf = async (kv, id) => (await (await SessionStore.kv(kv)).open(id, { create: false })).messages();

for (const mode of ["retried", "after"]) {
  test(`a commit whose head write was applied and then ${mode === "retried" ? "retried by the client" : "answered by an error"} resolves, and the turn is there once`, async () => {
    const { kv, hooks } = headFaultKv();
    const store = await SessionStore.kv(kv, { owner: "server" });
    const session = await store.open("s");
    await session.invoke((inv) => inv.appendMessage("first"));
    const inv = await session.begin();
    inv.appendMessage("second");
    hooks.headPut = mode;
    assert.equal(await inv.commit(), 2);
    assert.deepEqual(hooks.fired, [mode]);
    assert.deepEqual(await messagesOf(kv, "s"), ["first", "second"]);
    await (await store.open("s")).invoke((next) => next.appendMessage("third"));
    assert.deepEqual(await messagesOf(kv, "s"), ["first", "second", "third"]);
    assert.equal((await store.open("s")).version, 3);
  });

  test(`a checkpoint whose head write was applied and then ${mode === "retried" ? "retried by the client" : "answered by an error"} resolves, and the turn goes on`, async () => {
    const { kv, hooks } = headFaultKv();
    const store = await SessionStore.kv(kv);
    const inv = await (await store.open("c")).begin();
    inv.appendMessage("step 1");
    hooks.headPut = mode;
    assert.equal(await inv.checkpoint(), 1);
    inv.appendMessage("step 2");
    assert.equal(await inv.commit(), 2);
    assert.deepEqual(await messagesOf(kv, "c"), ["step 1", "step 2"]);
  });

  test(`a begin whose lease write was applied and then ${mode === "retried" ? "retried by the client" : "answered by an error"} holds the lease`, async () => {
    const { kv, hooks } = headFaultKv();
    const store = await SessionStore.kv(kv, { owner: "server" });
    const session = await store.open("b");
    await session.invoke((inv) => inv.appendMessage("before"));
    hooks.headPut = mode;
    const inv = await session.begin();
    assert.deepEqual(hooks.fired, [mode]);
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
  const { kv, hooks } = headFaultKv();
  const { now, stores: [store, other] } = await storesOnOneClock(kv, "server", "other");
  const session = await store.open("x");
  hooks.headPut = "after";
    hooks.headGets = 1; // and the read back fails too
  await assert.rejects(session.begin(), { code: "STORAGE" });
  await assert.rejects((await other.open("x")).begin(), { code: "CONCURRENT_INVOCATION", holder: "server" });
  await session.invoke((inv) => inv.appendMessage("taken over by its own store"));
  now.advance(1001);
  await (await other.open("x")).invoke((inv) => inv.appendMessage("other"));
  assert.deepEqual(await messagesOf(kv, "x"), ["taken over by its own store", "other"]);
});

test("a commit refused because another store took the session over is still a LeaseLostError, and nothing of it is there", async () => {
  const kv = memoryKv();
  const { now, stores: [first, second] } = await storesOnOneClock(kv, "first", "second");
  const inv = await (await first.open("taken")).begin();
  inv.appendMessage("late");
  now.advance(1001);
  await (await second.open("taken")).invoke((other) => other.appendMessage("taken over"));
  await assert.rejects(inv.commit(), { code: "LEASE_LOST" });
  assert.deepEqual(await messagesOf(kv, "taken"), ["taken over"]);
});

test("a begin whose lease write timed out and landed after the read back: the same store's next begin takes that lease over (nobody holds it); other stores wait for it to run out", async () => {
  const { kv, hooks } = headFaultKv();
  const { now, stores: [store, other] } = await storesOnOneClock(kv, "server", "other");
  const session = await store.open("late-begin");
  hooks.headPut = "late";
  await assert.rejects(session.begin(), { code: "STORAGE" });
  assert.ok(await hooks.land(), "the late lease landed");
  now.advance(10);
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
    const { kv, hooks } = headFaultKv();
    const { now, stores: [store] } = await storesOnOneClock(kv, "server");
    const inv = await (await store.open("late-commit")).begin();
    inv.appendMessage("turn");
    hooks.headPut = "late";
    await assert.rejects(inv.commit(), { code: "STORAGE" });
    assert.ok(await hooks.land(), "the late commit landed");
    now.advance(wait);
    assert.equal(await inv.commit(), 1, `retried ${wait} ms later`);
    assert.deepEqual(await messagesOf(kv, "late-commit"), ["turn"]);
  }
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("a commit whose head write was applied, answered by an error, and whose read back failed: the heartbeat that finds the lease gone with it is no loss, and the retried commit() resolves; the turn is there once", async () => {
  const { kv, hooks } = headFaultKv();
  const events = [];
  const store = await SessionStore.kv(kv, { owner: "server", leaseMs: 300, onEvent: (event) => events.push(event.type) });
  const session = await store.open("heartbeat");
  const inv = await session.begin();
  inv.appendMessage("turn");
  hooks.headPut = "after";
  hooks.headGets = 1;
  await assert.rejects(inv.commit(), { code: "STORAGE" });
  await sleep(250); // the heartbeat (every 100 ms) runs, and reads the head our commit released
  assert.equal(inv.signal.aborted, false, "the turn's signal is not aborted: its lease went with its commit");
  assert.equal(await inv.commit(), 1);
  assert.ok(!events.includes("lease.lost"), `no lease.lost for a committed turn: ${events}`);
  assert.deepEqual(await messagesOf(kv, "heartbeat"), ["turn"]);
  assert.deepEqual((await session.refresh()).messages(), ["turn"]);
});

test("a commit whose head write was applied, answered by an error, and whose read back failed: once another store committed after it, the retried commit() resolves at its version; the turn is there once", async () => {
  const { kv, hooks } = headFaultKv();
  const { stores: [store, other] } = await storesOnOneClock(kv, "server", "other");
  const inv = await (await store.open("built-on")).begin();
  inv.appendMessage("turn");
  hooks.headPut = "after";
  hooks.headGets = 1;
  await assert.rejects(inv.commit(), { code: "STORAGE" });
  // The commit released the lease: another store takes the session at once.
  await (await other.open("built-on")).invoke((next) => next.appendMessage("other"));
  assert.equal(await inv.commit(), 1);
  await assert.rejects(inv.commit(), { code: "INVALID_TRANSITION", from: "committed" });
  assert.deepEqual(await messagesOf(kv, "built-on"), ["turn", "other"]);
  assert.equal((await (await store.open("built-on")).refresh()).version, 2);
});

test("a commit whose head write timed out, lost its lease to the heartbeat, then landed: the retried commit() resolves; the turn is there once", async () => {
  const { kv, hooks } = headFaultKv();
  const now = manualClock(1_800_000_000_000);
  const store = await SessionStore.kv(kv, { owner: "server", now, leaseMs: 300 });
  const inv = await (await store.open("lost-then-landed")).begin();
  inv.appendMessage("turn");
  hooks.headPut = "late";
  hooks.headGets = 1;
  await assert.rejects(inv.commit(), { code: "STORAGE" });
  now.advance(1000); // the lease ran out
  await sleep(250); // the heartbeat finds it so: the invocation is lost
  assert.equal(inv.signal.aborted, true);
  assert.ok(await hooks.land(), "the late commit landed (nobody took the session)");
  assert.equal(await inv.commit(), 1);
  assert.deepEqual(await messagesOf(kv, "lost-then-landed"), ["turn"]);
});

test("a commit whose head write timed out and landed after the read back: abort() rejects with InvalidTransitionError from \"committed\", and the turn is there", async () => {
  const { kv, hooks } = headFaultKv();
  const store = await SessionStore.kv(kv, { heartbeat: false });
  const session = await store.open("late-abort");
  await session.invoke((inv) => inv.appendMessage("first"));
  const inv = await session.begin();
  inv.appendMessage("turn");
  hooks.headPut = "late";
  await assert.rejects(inv.commit(), { code: "STORAGE" });
  assert.ok(await hooks.land(), "the late commit landed");
  await assert.rejects(inv.abort(), (error) => {
    assert.ok(error instanceof InvalidTransitionError, `got ${error}`);
    assert.equal(error.from, "committed");
    assert.equal(error.action, "abort");
    assert.match(error.message, /landed after all/);
    return true;
  });
  assert.deepEqual(await messagesOf(kv, "late-abort"), ["first", "turn"]);
  await assert.rejects(inv.commit(), { code: "INVALID_TRANSITION", from: "committed" });
  // The commit released the lease: the session goes on at once, in this store and in another.
  assert.equal((await session.refresh()).version, 2);
  await session.invoke((next) => next.appendMessage("next"));
  await (await (await SessionStore.kv(kv)).open("late-abort")).invoke((next) => next.appendMessage("elsewhere"));
  assert.deepEqual(await messagesOf(kv, "late-abort"), ["first", "turn", "next", "elsewhere"]);
});

test("a commit whose head write timed out and lands after an abort: the late write is refused, and nothing of the turn is there", async () => {
  const { kv, hooks } = headFaultKv();
  const store = await SessionStore.kv(kv, { heartbeat: false });
  const inv = await (await store.open("abort-first")).begin();
  inv.appendMessage("turn");
  hooks.headPut = "late";
  await assert.rejects(inv.commit(), { code: "STORAGE" });
  await inv.abort();
  assert.equal(await hooks.land(), null, "the late write is refused by the head the abort wrote");
  assert.deepEqual(await messagesOf(kv, "abort-first"), []);
});

test("a commit whose head write timed out and lands after the retry wrote it: the late write is refused, and the turn is there once", async () => {
  const { kv, hooks } = headFaultKv();
  const store = await SessionStore.kv(kv);
  const inv = await (await store.open("later")).begin();
  inv.appendMessage("turn");
  hooks.headPut = "late";
  await assert.rejects(inv.commit(), { code: "STORAGE" });
  assert.equal(await inv.commit(), 1);
  assert.equal(await hooks.land(), null, "the late write is refused by the head the retry wrote");
  assert.deepEqual(await messagesOf(kv, "later"), ["turn"]);
  await (await store.open("later")).invoke((next) => next.appendMessage("next"));
  assert.deepEqual(await messagesOf(kv, "later"), ["turn", "next"]);
});

test("a store remembers the orphaned begins of its 64 latest sessions at most: the oldest is forgotten (its lease then runs out as any other)", async () => {
  const { kv, hooks } = headFaultKv();
  const { now, stores: [store] } = await storesOnOneClock(kv, "server");
  const sessions = [];
  for (let i = 0; i < 65; i++) {
    const session = await store.open(`o-${i}`);
    hooks.headPut = "after";
    hooks.headGets = 1; // and the read back fails too
    await assert.rejects(session.begin(), { code: "STORAGE" });
    sessions.push(session);
  }
  // The first one's orphan was forgotten: its lease keeps even its own store out until it runs out.
  await assert.rejects(sessions[0].begin(), { code: "CONCURRENT_INVOCATION", holder: "server" });
  // The latest is remembered: taken over at once.
  await sessions[64].invoke((inv) => inv.appendMessage("taken over"));
  now.advance(1001);
  await sessions[0].invoke((inv) => inv.appendMessage("after it ran out"));
  assert.deepEqual(await messagesOf(kv, "o-0"), ["after it ran out"]);
});
