// While a checkpoint is being written the invocation stays open (API.md: "checkpoint() does not end
// the invocation"): a framework's next step runs meanwhile and stages, emits and reads. What it stages
// goes to the next commit, whole and in order, also when the checkpoint fails, and when its outcome is
// not known (the store errored, then the head could not be read back) and a retry finds it applied.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SessionStore, StorageError } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { assertError, deferred, plain, rejection } from "./_helpers.mjs";
import { headFaultKv } from "./_head-faults.mjs";

const messagesByVersion = (history) => history.filter((e) => e.type === "message").map((e) => `${e.version}:${e.data}`);

/**
 * `inv.checkpoint()`, its writes held while `during()` runs (a framework's next step), then let go.
 * Returns `{ checkpoint }`, its promise (not awaited: a test may expect it to fail).
 */
async function checkpointAround(inv, hooks, during) {
  const gate = deferred();
  hooks.gate = gate.promise;
  const checkpoint = inv.checkpoint();
  await new Promise((resolve) => setTimeout(resolve, 5));
  try {
    await during();
  } finally {
    hooks.gate = undefined;
    gate.resolve();
  }
  return { checkpoint };
}

test("while a checkpoint is written the invocation stages, emits and reads; what it stages goes to the next commit", async () => {
  const { kv, hooks } = headFaultKv();
  const store = await SessionStore.kv(kv);
  const session = await store.open("during");
  await session.invoke((inv) => inv.setState("k", 0));
  // A follower in another store, from before the turn.
  const reader = await (await SessionStore.kv(kv)).open("during", { create: false });
  const followed = (async () => {
    const parts = [];
    for await (const event of reader.follow({ signal: AbortSignal.timeout(5000) })) {
      if (event.type === "part") parts.push(event.data);
      if (event.type === "end") return { parts, outcome: event.outcome };
    }
    return { parts, outcome: "none" };
  })();
  const inv = await session.begin();
  inv.appendMessage("step1");
  inv.setState("k", 1);
  const { checkpoint } = await checkpointAround(inv, hooks, () => {
    // The next step runs while the checkpoint writes.
    inv.appendMessage("step2");
    inv.setState("k", 2);
    inv.setState("gone", true);
    inv.deleteState("gone");
    assert.equal(inv.emit({ part: "during" }), 0, "emit while the checkpoint is written");
    assert.deepEqual(plain(inv.messages()), ["step1", "step2"], "reads see the checkpoint's events and the later ones");
    assert.equal(inv.stateValue("k"), 2);
  });
  assert.equal(await checkpoint, 2);
  await reader.refresh();
  assert.deepEqual(plain(reader.messages()), ["step1"], "the checkpoint wrote what was staged before it");
  assert.deepEqual(plain(reader.state()), { k: 1 });
  assert.deepEqual(plain(inv.messages()), ["step1", "step2"], "the later ones are still staged");
  assert.equal(await inv.commit(), 3);
  await reader.refresh();
  assert.deepEqual(messagesByVersion(plain(await reader.history())), ["2:step1", "3:step2"]);
  assert.deepEqual(plain(reader.state()), { k: 2 });
  // The part emitted during the checkpoint reached the live log: the follower saw it, then the end.
  assert.deepEqual(plain(await followed), { parts: [{ part: "during" }], outcome: "committed" });
});

test("a checkpoint that fails keeps its events staged before those staged while it wrote; the retry writes them all in order", async () => {
  const { kv, hooks } = headFaultKv();
  const store = await SessionStore.kv(kv);
  const session = await store.open("failed");
  const inv = await session.begin();
  inv.appendMessage("a");
  hooks.headPut = "before";
  const { checkpoint } = await checkpointAround(inv, hooks, () => inv.appendMessage("b"));
  assertError(await rejection(checkpoint), StorageError, "STORAGE");
  assert.deepEqual(plain(inv.messages()), ["a", "b"], "both still staged, in order");
  inv.appendMessage("c");
  assert.equal(await inv.commit(), 1);
  const reader = await (await SessionStore.kv(kv)).open("failed", { create: false });
  assert.deepEqual(messagesByVersion(plain(await reader.history())), ["1:a", "1:b", "1:c"]);
});

for (const retry of ["commit", "checkpoint"]) {
  test(`a checkpoint whose outcome is not known, with events staged while it wrote: a ${retry} that finds it applied writes the later ones after it, once`, async () => {
    const { kv, hooks } = headFaultKv();
    const store = await SessionStore.kv(kv);
    const session = await store.open("unknown");
    const inv = await session.begin();
    inv.appendMessage("a");
    hooks.headPut = "after"; // written, then an error
    hooks.headGets = 2; // the read back fails, and so does the retry's first look
    const { checkpoint } = await checkpointAround(inv, hooks, () => {
      inv.appendMessage("b");
      inv.setState("k", "later");
    });
    assertError(await rejection(checkpoint), StorageError, "STORAGE");
    // Its outcome is not known: nothing more may be staged until a retry learns it.
    assert.throws(() => inv.appendMessage("c"), { code: "INVALID_TRANSITION" });
    // The retry's look at the head fails too: still not known, and it writes nothing.
    assertError(await rejection(inv[retry]()), StorageError, "STORAGE");
    const version = await inv[retry]();
    assert.equal(version, 2, "the attempt is version 1; the later events make version 2");
    const reader = await (await SessionStore.kv(kv)).open("unknown", { create: false });
    const history = plain(await reader.history());
    assert.deepEqual(messagesByVersion(history), ["1:a", "2:b"], "each event once, the later ones after the attempt");
    assert.deepEqual(plain(reader.state()), { k: "later" });
    assert.equal(reader.version, 2);
    if (retry === "commit") {
      assert.equal(reader.status, "idle", "the commit ended the turn");
      assert.throws(() => inv.appendMessage("x"), { code: "INVALID_TRANSITION" });
    } else {
      assert.equal(reader.status, "running");
      inv.appendMessage("c");
      assert.equal(await inv.commit(), 3);
      await reader.refresh();
      assert.deepEqual(messagesByVersion(plain(await reader.history())), ["1:a", "2:b", "3:c"]);
    }
  });
}

test("a checkpoint whose outcome is not known and that was not applied: the retry writes it with the later events as one version", async () => {
  const { kv, hooks } = headFaultKv();
  const store = await SessionStore.kv(kv);
  const session = await store.open("not-applied");
  const inv = await session.begin();
  inv.appendMessage("a");
  hooks.headPut = "before"; // nothing written
  hooks.headGets = 1; // and the read back fails: not known
  const { checkpoint } = await checkpointAround(inv, hooks, () => inv.appendMessage("b"));
  assertError(await rejection(checkpoint), StorageError, "STORAGE");
  assert.equal(await inv.commit(), 1);
  const reader = await (await SessionStore.kv(kv)).open("not-applied", { create: false });
  assert.deepEqual(messagesByVersion(plain(await reader.history())), ["1:a", "1:b"]);
  assert.equal(reader.status, "idle");
});

for (const kind of ["checkpoint", "commit"]) {
  test(`a ${kind} whose outcome is not known stays not known while the retry's look at the head fails: the next retry finds it applied and writes nothing again`, async () => {
    const { kv, hooks } = headFaultKv();
    const store = await SessionStore.kv(kv);
    const session = await store.open("still-unknown");
    const inv = await session.begin();
    inv.appendMessage("a");
    hooks.headPut = "after"; // written, then an error
    hooks.headGets = 2; // the read back fails, and so does the first retry's look
    assertError(await rejection(inv[kind]()), StorageError, "STORAGE");
    assertError(await rejection(inv[kind]()), StorageError, "STORAGE");
    assert.equal(await inv[kind](), 1, "the attempt's version");
    const reader = await (await SessionStore.kv(kv)).open("still-unknown", { create: false });
    assert.deepEqual(messagesByVersion(plain(await reader.history())), ["1:a"], "written once");
    assert.equal(reader.status, kind === "commit" ? "idle" : "running");
    if (kind === "checkpoint") await inv.abort();
  });
}
