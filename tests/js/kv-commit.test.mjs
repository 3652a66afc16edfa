// A commit on a KV store (the Store trait's default commit: records, then the head's compare-and-set)
// writes its records at once and the head only after every one of them is in: checked on the recorded
// history of a HostKv whose calls take a few milliseconds, for a commit of a batch and a live flush and
// for a commit that writes a snapshot (batch, segment, snapshot). The live log of a turn is deleted by
// the next turn beside its first write (commit or abort), not in a round trip of its own at begin.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SessionStore } from "../../js/entry/node.js";
import { memoryKv } from "../../js/adapters/index.js";
import { sleep } from "./_helpers.mjs";

/**
 * memoryKv whose puts and deletes take 5 ms, recorded as [start, end, key] in `puts` and `deletes`
 * (start and end on one counter of call events).
 */
function recordingKv() {
  const kv = memoryKv();
  const puts = [];
  const deletes = [];
  let clock = 0;
  const recorded = (calls, fn) => async (key, ...rest) => {
    const call = [clock++, undefined, key];
    calls.push(call);
    await sleep(5);
    try {
      return await fn(key, ...rest);
    } finally {
      call[1] = clock++;
    }
  };
  return {
    puts,
    deletes,
    now: () => clock,
    raw: kv,
    capabilities: kv.capabilities,
    get: (key) => kv.get(key),
    list: (prefix, options) => kv.list(prefix, options),
    put: recorded(puts, (key, value, options) => kv.put(key, value, options)),
    delete: recorded(deletes, (key, options) => kv.delete(key, options)),
  };
}

const liveKeys = async (kv) => (await kv.raw.list("t/")).keys;

/** The puts of the last commit: from the last head write before it (the lease) to the head it wrote. */
function lastCommit(puts) {
  const heads = puts.map((put, i) => [put, i]).filter(([put]) => put[2].startsWith("h/"));
  const [, from] = heads.at(-2);
  const [, to] = heads.at(-1);
  return { records: puts.slice(from + 1, to), head: puts[to] };
}

function assertAtOnceThenHead({ records, head }, kinds) {
  assert.deepEqual(records.map((put) => put[2][0]).sort(), [...kinds].sort(), `the commit's records: ${records.map((p) => p[2])}`);
  const lastStart = Math.max(...records.map((put) => put[0]));
  const firstEnd = Math.min(...records.map((put) => put[1]));
  assert.ok(lastStart < firstEnd, `the records were written one after the other: ${JSON.stringify(records)}`);
  const lastEnd = Math.max(...records.map((put) => put[1]));
  assert.ok(head[0] > lastEnd, `the head was written before every record was in: ${JSON.stringify({ records, head })}`);
}

test("a KV commit with live parts writes its batch and its last flush at once, then the head", async () => {
  const kv = recordingKv();
  const store = await SessionStore.kv(kv);
  const session = await store.open("s");
  const inv = await session.begin();
  inv.emit({ text: "part" });
  inv.appendMessage({ role: "assistant", content: "done" });
  await inv.commit();
  assertAtOnceThenHead(lastCommit(kv.puts), ["e", "t"]);
  const reader = await (await SessionStore.kv(kv)).open("s", { create: false });
  assert.deepEqual(reader.messages(), [{ role: "assistant", content: "done" }]);
  await store.close();
});

test("a KV commit that writes a snapshot writes its batch, segment and snapshot at once, then the head", async () => {
  const kv = recordingKv();
  const store = await SessionStore.kv(kv, { snapshotEvery: 2 });
  const session = await store.open("s");
  for (let i = 0; i < 2; i++) await session.invoke((inv) => inv.appendMessage({ i }));
  assertAtOnceThenHead(lastCommit(kv.puts), ["e", "g", "s"]);
  const reader = await (await SessionStore.kv(kv)).open("s", { create: false });
  assert.deepEqual(reader.messages(), [{ i: 0 }, { i: 1 }]);
  await store.close();
});

for (const end of ["commit", "abort"]) {
  test(`the turn after a live turn deletes its live log beside its ${end}, with no round trip of its own at begin`, async () => {
    const kv = recordingKv();
    const store = await SessionStore.kv(kv);
    const session = await store.open("s");
    await session.invoke((inv) => {
      inv.emit({ text: "part" });
      inv.appendMessage({ role: "assistant", content: "one" });
    });
    assert.equal((await liveKeys(kv)).length, 1, "the live turn's flush");
    const next = await session.begin();
    assert.deepEqual(kv.deletes, [], "no delete at begin");
    assert.equal((await liveKeys(kv)).length, 1, "readable until the next turn writes");
    const before = kv.now();
    if (end === "commit") {
      next.appendMessage({ role: "assistant", content: "two" });
      await next.commit();
    } else {
      await next.abort();
    }
    assert.deepEqual(await liveKeys(kv), [], "deleted with the next turn's write");
    const head = kv.puts.filter((put) => put[2].startsWith("h/")).at(-1);
    assert.equal(kv.deletes.length, 1);
    const [deleted] = kv.deletes;
    assert.ok(deleted[0] >= before && deleted[0] < head[1], `the delete ran beside the ${end}'s write: ${JSON.stringify({ deleted, head })}`);
    await store.close();
  });
}

test("a stop that fences the turn after a live turn deletes that live log with the fence", async () => {
  const kv = recordingKv();
  const holder = await SessionStore.kv(kv);
  const session = await holder.open("s");
  await session.invoke((inv) => {
    inv.emit({ text: "part" });
    inv.appendMessage({ role: "assistant", content: "one" });
  });
  const silent = await session.begin(); // never writes: the stop fences it
  assert.equal((await liveKeys(kv)).length, 1);
  const stopper = await SessionStore.kv(kv, { owner: "stopper" });
  const result = await (await stopper.open("s", { create: false })).stop({ reason: "test", graceMs: 20 });
  assert.equal(result.outcome, "fenced");
  assert.deepEqual(await liveKeys(kv), [], "deleted with the fence");
  await silent.abort().catch(() => {});
  await holder.close();
  await stopper.close();
});

test("a prune after a live turn deletes that live log beside its own commit", async () => {
  const kv = recordingKv();
  const store = await SessionStore.kv(kv);
  const session = await store.open("s");
  for (let i = 0; i < 3; i++) {
    await session.invoke((inv) => {
      inv.emit({ text: `part ${i}` });
      inv.appendMessage({ i });
    });
  }
  assert.equal((await liveKeys(kv)).length, 1, "the last live turn's flush (the earlier ones went with each next turn)");
  await session.prune({ before: session.version });
  assert.deepEqual(await liveKeys(kv), [], "deleted with the prune");
  assert.deepEqual(session.messages(), [{ i: 0 }, { i: 1 }, { i: 2 }]);
  await store.close();
});
