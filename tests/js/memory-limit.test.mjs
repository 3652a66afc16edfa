// No trap: driving the WebAssembly instance to its memory budget gives a typed error, writes nothing,
// and leaves the instance and its other sessions working. (Its own file: node --test runs each file
// in its own process, and wasm memory, once grown to about a GiB here, never shrinks.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { LimitExceededError, SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";

test("a memory store filled to the instance's budget refuses the next commit; other sessions keep working", { timeout: 120_000 }, async () => {
  const limits = { maxMessageBytes: 8 << 20, maxCommitBytes: 8 << 20 };
  const store = await SessionStore.memory({ limits });
  const other = await SessionStore.kv(memoryKv());
  const small = await store.open("small");
  await small.invoke((inv) => inv.appendMessage("before"));
  const elsewhere = await other.open("elsewhere");

  const big = await store.open("big");
  const chunk = "y".repeat((8 << 20) - 64);
  let refused;
  for (let i = 0; i < 1000 && !refused; i++) {
    try {
      await big.invoke((inv) => inv.appendMessage(chunk));
    } catch (error) {
      refused = error;
    }
  }
  assert.ok(refused instanceof LimitExceededError, `refused with ${refused}`);
  assert.equal(refused.code, "LIMIT_EXCEEDED");
  assert.match(refused.message, /memory budget/);
  assert.ok(refused.actual > refused.limit, JSON.stringify({ limit: refused.limit, actual: refused.actual }));
  const usage = SessionStore.memoryUsage();
  assert.ok(usage.countedBytes <= usage.ceilingBytes, JSON.stringify(usage));
  const version = big.version;
  assert.ok(version > 10, `${version} commits of 8 MiB fitted first`);
  assert.equal((await store.open("big")).version, version, "the refused commit is not visible");
  assert.equal(big.status, "idle", "the refused turn was aborted and released");

  // A value larger than the budget left is refused before it is copied into wasm memory (a UTF-16
  // unit takes at most 3 bytes of UTF-8), and the invocation stays usable.
  const inv = await small.begin();
  const now = SessionStore.memoryUsage();
  const left = now.ceilingBytes - now.countedBytes;
  let tooBig;
  try {
    inv.appendMessage("z".repeat(Math.ceil(left / 3) + 1024));
  } catch (error) {
    tooBig = error;
  }
  assert.ok(tooBig instanceof LimitExceededError, String(tooBig));
  assert.match(tooBig.message, /memory budget/);
  await inv.abort();

  // The instance is alive: every other session reads and commits, on this store and on another.
  assert.deepEqual(small.messages(), ["before"]);
  await small.invoke((inv) => inv.appendMessage("after"));
  assert.deepEqual((await store.open("small")).messages(), ["before", "after"]);
  await elsewhere.invoke((inv) => inv.appendMessage("fine"));
  assert.deepEqual(elsewhere.messages(), ["fine"]);

  // Deleting the big session gives its bytes back: a large commit fits again.
  assert.equal(await store.delete("big"), true);
  assert.ok(SessionStore.memoryUsage().countedBytes < usage.countedBytes / 2, JSON.stringify(SessionStore.memoryUsage()));
  const again = await store.open("again");
  await again.invoke((inv) => inv.appendMessage(chunk));
  assert.equal(again.version, 1);
});
