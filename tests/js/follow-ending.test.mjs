// How a follower ends, as a server ends them: a disconnect handler calls `it.return()` while the
// request's `for await` waits for news; many followers share one shutdown signal; each follower
// waits thousands of times. Nothing may go on polling, and nothing may be left behind on the signal.
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { test } from "node:test";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { sleep } from "./_helpers.mjs";

/** memoryKv counting its reads. */
function countingKv() {
  const kv = memoryKv();
  const counted = { gets: 0 };
  return {
    counted,
    kv: { ...kv, capabilities: kv.capabilities, get: (...args) => (counted.gets++, kv.get(...args)) },
  };
}

test("return() ends a follower whose next() is waiting on an idle session: both settle done, and it reads no more", { timeout: 30_000 }, async () => {
  const { kv, counted } = countingKv();
  const store = await SessionStore.kv(kv);
  const session = await store.open("idle");
  await session.invoke((inv) => inv.appendMessage("m"));
  const it = session.follow();
  const pending = it.next(); // waits: nothing happens on this session
  await sleep(50);
  assert.deepEqual(await it.return(), { done: true, value: undefined });
  assert.deepEqual(await pending, { done: true, value: undefined });
  const reads = counted.gets;
  await sleep(600); // longer than the follower's longest poll interval
  assert.equal(counted.gets, reads, "no read after return()");
});

test("followers sharing one signal put one listener on it while they wait (no MaxListenersExceededWarning) and none once they end; one follower keeps at most one across its waits", async () => {
  const warnings = [];
  const onWarning = (warning) => warnings.push(warning.name);
  process.on("warning", onWarning);
  const store = await SessionStore.memory();
  const shutdown = new AbortController();
  const session = await store.open("shared");
  await session.invoke((inv) => inv.appendMessage("m"));
  // 200 followers end by a break after their first event (each waited at least once for it).
  const followers = [];
  for (let i = 0; i < 200; i++) {
    followers.push(
      (async () => {
        for await (const event of session.follow({ signal: shutdown.signal })) {
          if (event.type === "end") break;
        }
      })(),
    );
  }
  await sleep(20);
  assert.equal(getEventListeners(shutdown.signal, "abort").length, 1, "one listener for the 200 waiting followers");
  await session.invoke((inv) => inv.appendMessage("news"));
  await Promise.all(followers);
  assert.equal(getEventListeners(shutdown.signal, "abort").length, 0, "none left once they ended");
  // One follower over many waits (a commit per wait): never more than one listener.
  const one = new AbortController();
  const it = session.follow({ signal: one.signal });
  let most = 0;
  for (let i = 0; i < 50; i++) {
    const next = it.next();
    await sleep(1);
    most = Math.max(most, getEventListeners(one.signal, "abort").length);
    await session.invoke((inv) => inv.appendMessage(i));
    assert.equal((await next).value.type, "end");
  }
  assert.equal(most, 1);
  one.abort();
  assert.deepEqual(await it.next(), { done: true, value: undefined });
  assert.equal(getEventListeners(one.signal, "abort").length, 0);
  // Followers ended by the shared signal itself.
  const stopping = new AbortController();
  const ending = [];
  for (let i = 0; i < 50; i++) {
    ending.push((async () => {
      for await (const event of session.follow({ signal: stopping.signal })) void event;
    })());
  }
  await sleep(20);
  stopping.abort();
  await Promise.all(ending);
  assert.equal(getEventListeners(stopping.signal, "abort").length, 0);
  await new Promise((resolve) => setImmediate(resolve));
  process.off("warning", onWarning);
  assert.deepEqual(warnings.filter((name) => name === "MaxListenersExceededWarning"), []);
});
