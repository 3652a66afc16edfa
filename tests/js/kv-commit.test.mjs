// A commit on a KV store (the Store trait's default commit: records, then the head's compare-and-set)
// writes its records at once and the head only after every one of them is in: checked on the recorded
// history of a HostKv whose calls take a few milliseconds, for a commit of a batch and a live flush and
// for a commit that writes a snapshot (batch, segment, snapshot).
import { test } from "node:test";
import assert from "node:assert/strict";
import { SessionStore } from "../../js/entry/node.js";
import { memoryKv } from "../../js/adapters/index.js";
import { sleep } from "./_helpers.mjs";

/** memoryKv whose puts take 5 ms and are recorded as [start, end, key] in `puts`. */
function recordingKv() {
  const kv = memoryKv();
  const puts = [];
  let clock = 0;
  return {
    puts,
    capabilities: kv.capabilities,
    get: (key) => kv.get(key),
    delete: (key, options) => kv.delete(key, options),
    list: (prefix, options) => kv.list(prefix, options),
    async put(key, value, options) {
      const call = [clock++, undefined, key];
      puts.push(call);
      await sleep(5);
      try {
        return await kv.put(key, value, options);
      } finally {
        call[1] = clock++;
      }
    },
  };
}

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
