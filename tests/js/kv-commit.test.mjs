// A commit on a KV store (the Store trait's default commit: records, then the head's compare-and-set)
// writes its records at once and the head only after every one of them is in: checked on the recorded
// history of a HostKv whose calls take a few milliseconds, for a commit of a batch and a live flush and
// for a commit that writes a snapshot (batch, segment, snapshot). The live log of a turn is deleted by
// the next turn beside its first write (commit or abort), not in a round trip of its own at begin.
import { test } from "node:test";
import assert from "node:assert/strict";
import { LeaseLostError, SessionStore, StorageError } from "../../js/entry/node.js";
import { memoryKv } from "../../js/adapters/index.js";
import { oneCallCommit } from "./adapters/_one-call-commit.mjs";
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

test("a begin whose catch-up fails deletes the turn before's live log beside its release", async () => {
  const kv = recordingKv();
  const behind = await (await SessionStore.kv(kv, { owner: "behind" })).open("s"); // cached at version 0
  const writer = await SessionStore.kv(kv, { owner: "writer" });
  await (await writer.open("s", { create: false })).invoke((inv) => {
    inv.emit({ text: "part" });
    inv.appendMessage({ role: "assistant", content: "one" });
  });
  assert.equal((await liveKeys(kv)).length, 1, "the live turn's flush");
  // The batch the begin must catch up on cannot be read: the begin takes the lease, fails, releases it.
  const [batch] = (await kv.raw.list("e/")).keys;
  await kv.raw.put(batch, new Uint8Array([1, 2, 3]));
  const error = await behind.begin().then(() => assert.fail("the begin resolved"), (e) => e);
  assert.equal(error.code, "CORRUPT_RECORD", String(error));
  assert.deepEqual(await liveKeys(kv), [], "deleted beside the release, whose head no longer tells of that turn");
  const head = kv.puts.filter((put) => put[2].startsWith("h/")).at(-1);
  assert.ok(kv.deletes[0][0] < head[1], `beside the release: ${JSON.stringify({ deletes: kv.deletes, head })}`);
  await writer.close();
});

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

// ---- an adapter with commit(records, head, deletes): a session commit is one call ------------------

/** memoryKv given a one-call commit (as redisKv, denoKv and durableObjectKv have), every call counted
 * by method and recorded as [method, key or head key, record keys, deleted keys]; `options.commit`
 * replaces that commit (what a broken adapter would answer). */
function countingKv(options = {}) {
  const kv = memoryKv();
  const commit = oneCallCommit(kv);
  const calls = [];
  const counted = { raw: kv, calls, capabilities: { ...kv.capabilities, ...options.capabilities } };
  for (const name of ["get", "put", "delete", "list"]) {
    counted[name] = (key, ...rest) => {
      calls.push([name, key]);
      return kv[name](key, ...rest);
    };
  }
  counted.commit = (records, head, deletes) => {
    calls.push(["commit", head.key, records.map((record) => record.key), deletes]);
    return options.commit ? options.commit(records, head, deletes) : commit(records, head, deletes);
  };
  counted.rawCommit = commit;
  return counted;
}

const methods = (calls) => calls.map(([method]) => method);

test("with the adapter's commit, a turn is the lease's put and one commit", async () => {
  const kv = countingKv();
  await (await (await SessionStore.kv(kv)).open("s")).invoke((inv) => inv.appendMessage({ turn: 1 }));
  // As a server handles a request: a new store, the session opened by id (reads only), one turn.
  const store = await SessionStore.kv(kv);
  kv.calls.length = 0;
  const session = await store.open("s");
  assert.deepEqual([...new Set(methods(kv.calls))], ["get"], "opening reads");
  kv.calls.length = 0;
  await session.invoke((inv) => {
    inv.appendMessage({ turn: 2 });
    inv.setState("k", 2);
  });
  assert.deepEqual(methods(kv.calls), ["put", "commit"]);
  const [, head, records] = kv.calls[1];
  assert.ok(head.startsWith("h/"), head);
  assert.deepEqual(records.map((key) => key[0]), ["e"], "the turn's batch, in the same call");
  const reader = await (await SessionStore.kv(kv)).open("s", { create: false });
  assert.deepEqual(reader.messages(), [{ turn: 1 }, { turn: 2 }]);
  assert.equal(reader.stateValue("k"), 2);
});

test("with the adapter's commit, a commit with live parts and a snapshot is still one call", async () => {
  const kv = countingKv();
  const store = await SessionStore.kv(kv, { snapshotEvery: 2 });
  const session = await store.open("s");
  await session.invoke((inv) => inv.appendMessage({ i: 0 }));
  kv.calls.length = 0;
  await session.invoke((inv) => {
    inv.emit({ text: "part" });
    inv.appendMessage({ i: 1 });
  });
  const commits = kv.calls.filter(([method]) => method === "commit");
  assert.equal(commits.length, 1, JSON.stringify(kv.calls));
  assert.deepEqual(commits[0][2].map((key) => key[0]).sort(), ["e", "g", "s", "t"], "batch, segment, snapshot and live flush");
  assert.ok(!kv.calls.some(([method, key]) => method === "put" && !key.startsWith("h/")), "no record written by put");
  const reader = await (await SessionStore.kv(kv)).open("s", { create: false });
  assert.deepEqual(reader.messages(), [{ i: 0 }, { i: 1 }]);
});

test("with the adapter's commit, a live turn after a live turn deletes that turn's live log in its commit call", async () => {
  const kv = countingKv();
  const live = async () => (await kv.raw.list("t/")).keys;
  await (await (await SessionStore.kv(kv)).open("s")).invoke((inv) => {
    inv.emit({ text: "first" });
    inv.appendMessage({ turn: 1 });
  });
  const [before] = await live();
  assert.ok(before !== undefined, "the first turn's flush");
  // As a server handles the next request: a new store, the session opened by id, a live turn.
  const session = await (await SessionStore.kv(kv)).open("s");
  kv.calls.length = 0;
  await session.invoke((inv) => {
    inv.emit({ text: "second" });
    inv.appendMessage({ turn: 2 });
  });
  assert.deepEqual(methods(kv.calls), ["put", "commit"], "no delete call of its own");
  assert.deepEqual(kv.calls[1][3], [before], "the turn before's flush, deleted in the commit");
  const [now] = await live();
  assert.deepEqual(await live(), [now], "only this turn's flush is left");
  assert.notEqual(now, before);
  const follower = await (await SessionStore.kv(kv)).open("s", { create: false });
  assert.deepEqual(follower.messages(), [{ turn: 1 }, { turn: 2 }]);
});

// A stop asked while the turn runs changes the head, so the holder's first commit is refused and
// written again; the adapter's commit call deletes nothing when its head is refused, and the retry
// had no stale log left to send (one log left behind for good per stopped turn, on Redis, Deno KV and
// Durable Objects).
test("with the adapter's commit, the turn after a live turn, stopped and ended by its holder, still deletes that turn's live log", async () => {
  const kv = countingKv();
  const store = await SessionStore.kv(kv, { liveFlushMs: 5, stopPollMs: 20 });
  const live = async () => (await kv.raw.list("t/")).keys;
  const session = await store.open("stopped");
  for (let i = 0; i < 3; i++) {
    const inv = await session.begin();
    inv.emit({ i });
    await inv.flush();
    const stopping = (await store.open("stopped")).stop({ reason: "user", graceMs: 5000 });
    while (!inv.signal.aborted) await sleep(5);
    inv.appendMessage(`partial ${i}`);
    await inv.commit();
    assert.equal((await stopping).outcome, "stopped");
    assert.equal((await live()).length, 1, `after stopped turn ${i}: only its own live log is left`);
  }
  await session.invoke((inv) => inv.appendMessage("plain"));
  assert.deepEqual(await live(), [], "a turn with no live part leaves none, and deleted the one before");
});

test("a commit with a record over maxValueBytes writes its records by put (chunked), then the head", async () => {
  const kv = countingKv({ capabilities: { maxValueBytes: 256 } });
  const store = await SessionStore.kv(kv);
  const session = await store.open("s");
  kv.calls.length = 0;
  const long = "x".repeat(2000);
  await session.invoke((inv) => inv.appendMessage({ long }));
  assert.ok(!kv.calls.some(([method]) => method === "commit"), "not the one-call commit");
  assert.ok(kv.calls.filter(([method, key]) => method === "put" && key.includes("#")).length >= 8, "the batch in chunks");
  await session.invoke((inv) => inv.appendMessage({ short: 1 }));
  assert.equal(kv.calls.filter(([method]) => method === "commit").length, 1, "a small commit is one call again");
  const reader = await (await SessionStore.kv(kv)).open("s", { create: false });
  assert.deepEqual(reader.messages(), [{ long }, { short: 1 }]);
});

test("an import of many versions writes its records by put, not in one commit call", async () => {
  const kv = countingKv();
  const store = await SessionStore.kv(kv);
  const source = await SessionStore.memory();
  const session = await source.open("src");
  for (let i = 0; i < 70; i++) await session.invoke((inv) => inv.appendMessage({ i }));
  kv.calls.length = 0;
  await store.import(await session.export(), { id: "copy" });
  assert.ok(!kv.calls.some(([method]) => method === "commit"), "no commit call of 70 records");
  assert.equal(kv.calls.filter(([method, key]) => method === "put" && key.startsWith("e/")).length, 70);
  const reader = await (await SessionStore.kv(kv)).open("copy", { create: false });
  assert.equal(reader.messages().length, 70);
  assert.equal(reader.version, 70);
});

test("a commit the adapter answers with neither a version nor null is a StorageError; the session keeps its last commit", async () => {
  let broken = false;
  const kv = countingKv({ commit: (records, head) => (broken ? { ok: true } : kv.rawCommit(records, head)) });
  const store = await SessionStore.kv(kv);
  const session = await store.open("s");
  await session.invoke((inv) => inv.appendMessage({ kept: true }));
  broken = true;
  const inv = await session.begin();
  inv.appendMessage({ lost: true });
  const error = await inv.commit().then(() => assert.fail("the commit resolved"), (e) => e);
  assert.ok(error instanceof StorageError, `got ${error}`);
  assert.match(error.message, /commit\("h\/s~"\) returned a malformed result/);
  await inv.abort().catch(() => {});
  const reader = await (await SessionStore.kv(kv)).open("s", { create: false });
  assert.deepEqual(reader.messages(), [{ kept: true }]);
});

test("a commit call that throws or never answers is a StorageError, or the commit it made when the head says so", async () => {
  // Throws at once: nothing was written, the session keeps its last commit.
  let mode = "ok";
  const kv = countingKv({
    commit: (records, head) => {
      if (mode === "throw") throw new Error("backend down");
      if (mode === "written, no answer") {
        kv.rawCommit(records, head);
        return new Promise(() => {});
      }
      if (mode === "no answer") return new Promise(() => {});
      return kv.rawCommit(records, head);
    },
  });
  const store = await SessionStore.kv(kv, { timeoutMs: 50 });
  const session = await store.open("s");
  await session.invoke((inv) => inv.appendMessage({ n: 1 }));
  mode = "throw";
  let inv = await session.begin();
  inv.appendMessage({ n: 2 });
  let error = await inv.commit().then(() => assert.fail("the commit resolved"), (e) => e);
  assert.ok(error instanceof StorageError, `got ${error}`);
  assert.match(error.message, /backend down/);
  assert.equal(error.cause?.message, "backend down");
  await inv.abort().catch(() => {});
  // Never answers, and wrote nothing: a timeout, then the head read back says it was not applied.
  mode = "no answer";
  inv = await session.begin();
  inv.appendMessage({ n: 3 });
  error = await inv.commit().then(() => assert.fail("the commit resolved"), (e) => e);
  assert.ok(error instanceof StorageError && /did not answer within 50 ms/.test(error.message), `got ${error}`);
  await inv.abort().catch(() => {});
  // Wrote, then never answered: the head read back names the commit, so it resolves with its version.
  mode = "written, no answer";
  inv = await session.begin();
  inv.appendMessage({ n: 4 });
  const version = await inv.commit();
  mode = "ok";
  const reader = await (await SessionStore.kv(kv)).open("s", { create: false });
  assert.equal(reader.version, version);
  assert.deepEqual(reader.messages(), [{ n: 1 }, { n: 4 }]);
});

test("a fenced holder's commit: the adapter refuses it, LeaseLostError, and none of its records is written", async () => {
  const kv = countingKv();
  const holder = await SessionStore.kv(kv);
  const session = await holder.open("s");
  const inv = await session.begin();
  inv.appendMessage({ late: true });
  const stopper = await SessionStore.kv(kv, { owner: "stopper" });
  const stopped = await (await stopper.open("s", { create: false })).stop({ reason: "test", graceMs: 20 });
  assert.equal(stopped.outcome, "fenced");
  const keysBefore = (await kv.raw.list("")).keys;
  kv.calls.length = 0;
  const error = await inv.commit().then(() => assert.fail("the commit resolved"), (e) => e);
  assert.ok(error instanceof LeaseLostError, `got ${error}`);
  assert.deepEqual(methods(kv.calls).filter((method) => method !== "get"), ["commit"], "refused by the adapter's compare-and-set");
  assert.deepEqual((await kv.raw.list("")).keys, keysBefore, "nothing written");
  await holder.close();
  await stopper.close();
});
