// No trap from objects JavaScript dropped: each Session and Invocation object holds some WebAssembly
// memory until the garbage collector finalizes it, which a loop that never lets the event loop run
// does not allow. Past the heap limit, opens and begins reject with a typed error instead of the
// memory growing until an allocation fails and the instance traps (measured before the limit: 2 million
// begin/abort turns in such a loop held 1.4 GiB). (Its own file: node --test runs each file in its own
// process, and the heap limit is the instance's.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { LimitExceededError, SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";

test("heapBytes follows what is allocated and freed", async () => {
  const store = await SessionStore.memory({ limits: { maxMessageBytes: 8 << 20, maxCommitBytes: 8 << 20 } });
  const session = await store.open("big");
  const before = SessionStore.memoryUsage().heapBytes;
  await session.invoke((inv) => inv.appendMessage("b".repeat(4 << 20)));
  const holding = SessionStore.memoryUsage().heapBytes;
  // The message is held twice at least: the stored record and the cached view.
  assert.ok(holding - before >= 8 << 20, JSON.stringify({ before, holding }));
  await store.delete("big");
  session.dispose();
  await store.close();
  const after = SessionStore.memoryUsage().heapBytes;
  assert.ok(after - before < 1 << 20, `${after - before} bytes still counted after the delete`);
});

test("a loop that never yields is refused at the heap limit with LimitExceededError; after finalization it goes on", { timeout: 120_000 }, async () => {
  const store = await SessionStore.kv(memoryKv());
  const session = await store.open("loop");
  await session.invoke((inv) => inv.appendMessage("first"));
  const start = SessionStore.memoryUsage();
  assert.equal(start.heapLimitBytes, 1.5 * 2 ** 30, "the default heap limit");
  assert.ok(start.heapBytes > 0 && start.heapBytes <= start.wasmBytes, JSON.stringify(start));

  // A limit 4 MiB above what is live now: reached after a few thousand turns whose objects are dropped.
  SessionStore.__setHeapLimit(start.heapBytes + 4 * 2 ** 20);
  try {
    const history = [];
    let refused;
    for (let i = 0; i < 200_000 && !refused; i++) {
      try {
        await session.invoke((inv) => inv.appendMessage(i));
        history.push(i);
      } catch (error) {
        refused = error;
      }
    }
    assert.ok(refused instanceof LimitExceededError, `refused with ${refused}`);
    assert.equal(refused.code, "LIMIT_EXCEEDED");
    assert.match(refused.message, /garbage collector has not finalized/);
    assert.match(refused.message, /let the event loop run/);
    assert.ok(refused.actual > refused.limit, JSON.stringify({ limit: refused.limit, actual: refused.actual }));
    assert.ok(history.length > 100, `${history.length} turns ran before the limit`);
    // Nothing of the refused turn ran or was written; every turn before it committed, in order.
    assert.equal(session.status, "idle");
    assert.deepEqual(session.messages(), ["first", ...history]);
    assert.equal(session.version, 1 + history.length);
    // Opens and begins are refused too while the heap is past the limit (set just under it here: the
    // refused turn's own objects went as it was refused).
    const limit = start.heapBytes + 4 * 2 ** 20;
    SessionStore.__setHeapLimit(SessionStore.memoryUsage().heapBytes - 1);
    await assert.rejects(store.open("another"), LimitExceededError);
    await assert.rejects(session.begin(), LimitExceededError);
    // So is every other call that makes an object JS holds: a view of a past version, a fork, an
    // import, a follower, a store exporter. Nothing of them was written.
    const exported = await session.export();
    const versionBefore = session.version;
    await assert.rejects(session.at(1), LimitExceededError);
    await assert.rejects(session.fork({ id: "forked" }), LimitExceededError);
    await assert.rejects(store.import(exported, { id: "imported" }), LimitExceededError);
    assert.throws(() => session.follow(), LimitExceededError);
    assert.throws(() => store.export(), LimitExceededError);
    assert.equal(session.version, versionBefore);
    SessionStore.__setHeapLimit(limit);

    // Once the event loop runs, the dropped objects are finalized and the same calls work again.
    let resumed = false;
    for (let round = 0; round < 50 && !resumed; round++) {
      globalThis.gc?.();
      await new Promise((resolve) => setTimeout(resolve, 20));
      resumed = SessionStore.memoryUsage().heapBytes <= SessionStore.memoryUsage().heapLimitBytes;
    }
    assert.ok(resumed, `finalization gave the heap back: ${JSON.stringify(SessionStore.memoryUsage())}`);
    await session.invoke((inv) => inv.appendMessage("after"));
    assert.deepEqual(session.messages().slice(-1), ["after"]);
    assert.deepEqual((await store.open("another")).messages(), []);
    assert.deepEqual((await session.at(1)).messages(), ["first"]);
    assert.deepEqual(
      (await store.list()).sessions.map((entry) => entry.id).sort(),
      ["another", "loop"],
      "the refused fork and import wrote no session",
    );
  } finally {
    SessionStore.__setHeapLimit(undefined);
  }
  assert.equal(SessionStore.memoryUsage().heapLimitBytes, 1.5 * 2 ** 30);
});
