// Live turns (../../shared/API.md "Live turns"): a running turn's parts reach every follower exactly
// once and in order (started before the turn, mid-turn, or resumed after a reload with `after`), each
// turn ends with one `end`, a checkpoint shows as `commit`; `stop()` reaches the holder through
// `inv.signal` and ends the turn as `stopped` (the holder ended it) or `fenced` (the grace ran out:
// the holder's later commit is refused and nothing it staged is visible); misuse and bad input change
// nothing stored.
//
// Every scenario runs on a memory store, on a KV store, and on two KV stores (two owners: a holder and
// a follower/stopper) over one shared memoryKv(), which is how separate processes share a session.
// Waits are for liveness only (a generous deadline); no assertion depends on how long anything took.
import assert from "node:assert/strict";
import { after, afterEach, describe } from "node:test";
import {
  ConcurrencyError,
  Invocation,
  InvalidTransitionError,
  LeaseLostError,
  LimitExceededError,
  SessionStore,
  StopRequestedError,
  StoreClosedError,
  ValidationError,
} from "agent-session";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openKv } from "@deno/kv";
import { denoKv, memoryKv } from "agent-session/adapters";
import { callAsync, deferred, kvWithPut, manualClock, plain, rejection, sleep, test, thrown, within } from "./_helpers.mjs";

// ---------------------------------------------------------------------------------------------
// Setups: `holder` runs the turns, `other` follows and stops (the same store when there is one).

const SETUPS = [
  {
    name: "memory",
    shared: false,
    async stores(options = {}) {
      const store = await SessionStore.memory({ owner: "solo", ...options });
      return { holder: store, other: store, holderOwner: "solo", otherOwner: "solo" };
    },
  },
  {
    name: "kv(memoryKv)",
    shared: false,
    async stores(options = {}) {
      const store = await SessionStore.kv(memoryKv(), { owner: "solo", ...options });
      return { holder: store, other: store, holderOwner: "solo", otherOwner: "solo" };
    },
  },
  {
    name: "two kv stores over one memoryKv",
    shared: true,
    async stores(options = {}) {
      const kv = memoryKv();
      const holder = await SessionStore.kv(kv, { owner: "holder-proc", stopPollMs: 20, ...options });
      const other = await SessionStore.kv(kv, { owner: "other-proc", stopPollMs: 20, ...options });
      return { holder, other, holderOwner: "holder-proc", otherOwner: "other-proc" };
    },
  },
  {
    // Two connections to one Deno KV file (@deno/kv's SQLite backend, what Deno uses locally), as two
    // processes would have.
    name: "two kv stores over one Deno KV file",
    shared: true,
    async stores(options = {}) {
      const file = join(denoDir, `live-${++denoFiles}.sqlite`);
      const [a, b] = [await openKv(file), await openKv(file)];
      denoDbs.push(a, b);
      const holder = await SessionStore.kv(denoKv(a), { owner: "holder-proc", stopPollMs: 20, ...options });
      const other = await SessionStore.kv(denoKv(b), { owner: "other-proc", stopPollMs: 20, ...options });
      return { holder, other, holderOwner: "holder-proc", otherOwner: "other-proc" };
    },
  },
];

const denoDir = mkdtempSync(join(tmpdir(), "agent-session-live-denokv-"));
let denoFiles = 0;
const denoDbs = [];
after(() => {
  for (const db of denoDbs) db.close();
  rmSync(denoDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Helpers

/** The data of part number `i` (varied JSON shapes, all recognisable by their "tok-" text). */
const partData = (i) => (i % 3 === 0 ? `tok-${i}` : i % 3 === 1 ? { delta: `tok-${i}`, i } : [`tok-${i}`, null, true]);

/** The part events `from`..`to` (inclusive) of invocation `invocation`. */
const partEvents = (invocation, from, to, data = partData) =>
  Array.from({ length: to - from + 1 }, (_, k) => ({ type: "part", invocation, seq: from + k, data: data(from + k) }));

const endEvent = (invocation, outcome, version, status = "idle") => ({ type: "end", invocation, outcome, version, status });

const endsCount = (n) => (events) => events.filter((e) => e.type === "end").length >= n;

// Every follower a test starts; aborted after each test so that a failing test leaks no loop.
const liveFollowers = new Set();
afterEach(() => {
  for (const controller of liveFollowers) controller.abort();
  liveFollowers.clear();
});

/**
 * Follows `session` in the background: records every event and the followed Session object's
 * version when it was yielded, and breaks out once `until(events)` holds.
 */
function collect(session, { until = () => false, after, signal } = {}) {
  const controller = new AbortController();
  liveFollowers.add(controller);
  signal?.addEventListener("abort", () => controller.abort(), { once: true });
  const events = [];
  const versions = [];
  const options = { signal: controller.signal };
  if (after !== undefined) options.after = after;
  const iterator = session.follow(options);
  const done = (async () => {
    for await (const event of iterator) {
      events.push(event);
      versions.push(session.version);
      if (until(events)) break;
    }
    liveFollowers.delete(controller);
    return events;
  })();
  done.catch(() => {}); // awaited by the test; never an unhandled rejection meanwhile
  return { events, versions, done, controller };
}

/** Waits (for liveness only, with a generous deadline) until `predicate()` holds. */
async function waitFor(predicate, what, describeState = () => "") {
  const deadline = Date.now() + 10_000;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what} ${describeState()}`);
    await sleep(5);
  }
}

/** Resolves with `signal.reason` once `signal` aborts. */
const abortedWith = (signal) =>
  signal.aborted
    ? Promise.resolve(signal.reason)
    : new Promise((resolve) => signal.addEventListener("abort", () => resolve(signal.reason), { once: true }));

/** A promise plus whether it has settled yet. */
function tracked(promise) {
  const state = { settled: false, promise };
  promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  return state;
}

/** What is stored for a session, read fresh (version, status, messages, state, full history). */
async function stored(session) {
  await session.refresh();
  return plain({
    version: session.version,
    status: session.status,
    messages: session.messages(),
    state: session.state(),
    history: await session.history(),
  });
}

const noParts = (history) =>
  assert.ok(!JSON.stringify(history).includes("tok-"), `history() must never contain parts: ${JSON.stringify(history)}`);

// ---------------------------------------------------------------------------------------------

for (const setup of SETUPS) {
  describe(`live turns on ${setup.name}`, () => {
    // Must show 1 (follow): every part exactly once, in order, then end.
    test("200 parts (automatic flushes and flush()) reach a follower started before begin and one started mid-turn exactly once, in order, then end", async () => {
      const { holder, other } = await setup.stores({ liveFlushMs: 10 });
      const id = "stream";
      const hs = await holder.open(id);
      await hs.invoke((inv) => inv.appendMessage({ role: "user", content: "hi" }));
      const early = await other.open(id);
      const late = await other.open(id);
      const earlyFollower = collect(early, { until: endsCount(1) });
      await sleep(30); // lets the early follower make its first read before the turn begins
      const v0 = hs.version;

      const inv = await hs.begin();
      let lateFollower;
      for (let batch = 0; batch < 10; batch++) {
        for (let i = batch * 20; i < batch * 20 + 20; i++) assert.equal(inv.emit(partData(i)), i, "emit returns the seq");
        if (batch % 2 === 0) {
          await inv.flush();
        } else {
          // No flush(): liveFlushMs must bring them to the follower.
          await waitFor(
            () => earlyFollower.events.length >= batch * 20 + 20,
            `the automatic flush of parts ${batch * 20}..${batch * 20 + 19}`,
            () => `(the follower has ${earlyFollower.events.length} events)`,
          );
        }
        if (batch === 4) lateFollower = collect(late, { until: endsCount(1) });
      }
      inv.appendMessage({ role: "assistant", content: "done" });
      const v = await inv.commit();
      assert.equal(v, v0 + 1);

      const expected = [...partEvents(inv.id, 0, 199), endEvent(inv.id, "committed", v)];
      for (const [name, follower, session] of [
        ["started before begin", earlyFollower, early],
        ["started mid-turn", lateFollower, late],
      ]) {
        await follower.done;
        assert.deepEqual(plain(follower.events), expected, `follower ${name}`);
        assert.equal(follower.versions.at(-1), v, `${name}: the followed Session is at the new version when end is yielded`);
        assert.equal(session.version, v);
        assert.deepEqual(plain(session.messages()).at(-1), { role: "assistant", content: "done" });
      }

      const history = plain(await hs.history());
      noParts(history);
      assert.deepEqual(
        history.map((e) => `${e.version}:${e.type}`),
        ["0:created", "1:message", `${v}:message`],
        "history holds only what the turns committed",
      );
    });

    // Must show 1 (resume): a reload resumes with `after`, no gap and no duplicate.
    test("resume after a reload: a follower that stopped at seq k, then a new one with after {invocation, seq: k}, together see every part once", async () => {
      const { holder, other } = await setup.stores({ liveFlushMs: 10 });
      const id = "resume";
      const hs = await holder.open(id);
      const inv = await hs.begin();
      for (let i = 0; i < 60; i++) inv.emit(partData(i));
      await inv.flush();

      const k = 37;
      const page = await other.open(id);
      const first = collect(page, { until: (events) => events.at(-1)?.seq === k });
      await first.done;
      assert.deepEqual(plain(first.events), partEvents(inv.id, 0, k), "the first follower broke out at seq k");

      for (let i = 60; i < 100; i++) inv.emit(partData(i));
      await inv.flush();
      // The reloaded page: a new Session object (a new process on the two-store setup).
      const reloaded = await other.open(id);
      const second = collect(reloaded, { after: { invocation: inv.id, seq: k }, until: endsCount(1) });
      await waitFor(() => second.events.length >= 100 - (k + 1), "the replay after seq k");
      for (let i = 100; i < 120; i++) inv.emit(partData(i));
      await inv.flush();
      inv.appendMessage("answer");
      const v = await inv.commit();
      await second.done;
      assert.deepEqual(plain(second.events), [...partEvents(inv.id, k + 1, 119), endEvent(inv.id, "committed", v)]);
      const seqs = [...first.events, ...second.events].filter((e) => e.type === "part").map((e) => e.seq);
      assert.deepEqual(seqs, Array.from({ length: 120 }, (_, i) => i), "no gap, no duplicate across the reload");
      assert.equal(second.versions.at(-1), v);
    });

    test("resume after a reload when the turn ended meanwhile: the rest of its parts, then its end, every part once; a follow without after starts after it", async () => {
      const { holder, other } = await setup.stores({ liveFlushMs: 10 });
      const id = "resume-ended";
      const hs = await holder.open(id);
      const inv = await hs.begin();
      for (let i = 0; i < 5; i++) inv.emit(partData(i));
      await inv.flush();
      const page = collect(await other.open(id), { until: (events) => events.at(-1)?.seq === 1 });
      await page.done;
      // The page reloads; before it follows again the turn emits more and commits.
      for (let i = 5; i < 8; i++) inv.emit(partData(i));
      inv.appendMessage("answer");
      const v = await inv.commit();
      const reloaded = collect(await other.open(id), { after: { invocation: inv.id, seq: 1 }, until: endsCount(1) });
      await reloaded.done;
      assert.deepEqual(plain(reloaded.events), [...partEvents(inv.id, 2, 7), endEvent(inv.id, "committed", v)]);
      const seqs = [...page.events, ...reloaded.events].filter((e) => e.type === "part").map((e) => e.seq);
      assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 6, 7], "no gap, no duplicate across the reload");
      // A follower that did not follow that turn starts after it: the next turn only.
      const fresh = collect(await other.open(id), { until: endsCount(1) });
      await sleep(30);
      const next = await hs.begin();
      next.emit(partData(0));
      await next.flush();
      const v2 = await next.commit();
      await fresh.done;
      assert.deepEqual(plain(fresh.events), [...partEvents(next.id, 0, 0), endEvent(next.id, "committed", v2)]);
    });

    test("resume at the last flushed seq yields only the rest; after of an older invocation replays the running turn from seq 0", async () => {
      const { holder, other } = await setup.stores({ liveFlushMs: 10 });
      const id = "resume-edges";
      const hs = await holder.open(id);
      const older = await hs.begin();
      older.emit(partData(0));
      await older.flush();
      await older.commit();

      const inv = await hs.begin();
      for (let i = 0; i < 10; i++) inv.emit(partData(i));
      await inv.flush();
      const atLast = collect(await other.open(id), { after: { invocation: inv.id, seq: 9 }, until: endsCount(1) });
      const stale = collect(await other.open(id), { after: { invocation: older.id, seq: 5 }, until: endsCount(1) });
      await waitFor(() => stale.events.length >= 10, "the replay of the running turn");
      inv.emit(partData(10));
      await inv.flush();
      const v = await inv.commit();
      await atLast.done;
      await stale.done;
      assert.deepEqual(plain(atLast.events), [...partEvents(inv.id, 10, 10), endEvent(inv.id, "committed", v)]);
      assert.deepEqual(plain(stale.events), [...partEvents(inv.id, 0, 10), endEvent(inv.id, "committed", v)]);
    });

    // Must show 1 (later turns): one follower, several turns; checkpoint, abort, interrupt.
    test("one follower across 3 turns: checkpoint yields commit (running), then end committed, end aborted, end interrupted", async () => {
      const { holder, other } = await setup.stores({ liveFlushMs: 10 });
      const id = "turns";
      const hs = await holder.open(id);
      const followed = await other.open(id);
      const follower = collect(followed, { until: endsCount(3) });
      await sleep(30);
      const seen = (n) => waitFor(() => follower.events.length >= n, `${n} events`, () => JSON.stringify(follower.events));

      const a = await hs.begin();
      a.emit(partData(0));
      a.emit(partData(1));
      await a.flush();
      await seen(2);
      a.appendMessage("a1");
      const v1 = await a.checkpoint();
      await seen(3);
      assert.equal(follower.versions[2], v1, "the followed Session is at the checkpoint version when commit is yielded");
      a.emit(partData(2));
      await a.flush();
      await seen(4);
      a.appendMessage("a2");
      const v2 = await a.commit();
      await seen(5);

      const b = await hs.begin();
      b.emit(partData(0));
      await b.flush();
      await seen(6);
      b.appendMessage("discarded");
      await b.abort();
      await seen(7);

      const c = await hs.begin();
      c.emit(partData(0));
      await c.flush();
      await seen(8);
      const v3 = await c.interrupt("approval", { tool: "rm" });
      await follower.done;

      assert.equal(v1 + 1, v2);
      assert.equal(v2 + 1, v3);
      assert.deepEqual(plain(follower.events), [
        ...partEvents(a.id, 0, 1),
        { type: "commit", version: v1, status: "running" },
        ...partEvents(a.id, 2, 2),
        endEvent(a.id, "committed", v2),
        ...partEvents(b.id, 0, 0),
        endEvent(b.id, "aborted", v2),
        ...partEvents(c.id, 0, 0),
        endEvent(c.id, "interrupted", v3, "interrupted"),
      ]);
      assert.deepEqual(follower.versions, [v1 - 1, v1 - 1, v1, v1, v2, v2, v2, v2, v3]);
      assert.equal(followed.version, v3);
      assert.equal(followed.status, "interrupted");
      noParts(plain(await hs.history()));
      assert.deepEqual(plain(followed.messages()), ["a1", "a2"]);
    });

    // Must show 6 (stop): the holder ends the turn.
    test("stop(): the holder's signal aborts with StopRequestedError (reason, by); it commits a partial answer; stop resolves stopped; one stopped event", async () => {
      const { holder, other, otherOwner } = await setup.stores({ liveFlushMs: 10 });
      const id = "stop-commit";
      const hs = await holder.open(id);
      await hs.invoke((inv) => inv.appendMessage("question"));
      const stopper = await other.open(id);
      const follower = collect(await other.open(id), { until: endsCount(1) });
      await sleep(30);

      const inv = await hs.begin();
      const signal = inv.signal;
      assert.equal(signal.aborted, false);
      for (let i = 0; i < 5; i++) inv.emit(partData(i));
      await inv.flush();
      await waitFor(() => follower.events.length >= 5, "the parts before the stop");

      const stop = tracked(callAsync(() => stopper.stop({ reason: "user", graceMs: 5000 }), "stop()"));
      const reason = await abortedWith(signal);
      assert.ok(reason instanceof StopRequestedError, `signal.reason: ${reason}`);
      assert.ok(reason instanceof Error);
      assert.equal(reason.code, "STOP_REQUESTED");
      assert.equal(reason.name, "StopRequestedError");
      assert.equal(reason.reason, "user");
      assert.equal(reason.by, otherOwner, "by: the owner of the store that called stop()");
      await sleep(50);
      assert.equal(stop.settled, false, "stop() resolves only once the turn ended");

      inv.emit(partData(5)); // a last part within the grace
      inv.appendMessage("partial answer");
      const v = await inv.commit();
      const result = await stop.promise;
      assert.deepEqual(plain(result), { outcome: "stopped", invocation: inv.id, version: v });
      await follower.done;
      assert.deepEqual(plain(follower.events), [...partEvents(inv.id, 0, 5), endEvent(inv.id, "stopped", v)]);
      assert.equal(follower.versions.at(-1), v);

      const turn = plain(await stopper.history({ from: v, to: v }));
      const stopped = turn.filter((e) => e.type === "stopped");
      assert.equal(stopped.length, 1, `exactly one stopped event: ${JSON.stringify(turn)}`);
      assert.equal(stopped[0].version, v);
      assert.equal(stopped[0].reason, "user");
      assert.deepEqual(stopped[0].data, { by: otherOwner, outcome: "stopped" });
      assert.deepEqual(
        turn.filter((e) => e.type === "message").map((e) => e.data),
        ["partial answer"],
      );
      const after = await stored(stopper);
      assert.equal(after.version, v);
      assert.equal(after.status, "idle");
      assert.deepEqual(after.messages, ["question", "partial answer"]);
      assert.equal(after.history.filter((e) => e.type === "stopped").length, 1);
      noParts(after.history);
    });

    test("stop(): the holder aborts after the request; a version is still written with the stopped event and no message of the turn", async () => {
      const { holder, other, otherOwner } = await setup.stores({ liveFlushMs: 10 });
      const id = "stop-abort";
      const hs = await holder.open(id);
      await hs.invoke((inv) => inv.appendMessage("question"));
      const stopper = await other.open(id);
      const before = await stored(stopper);
      const follower = collect(await other.open(id), { until: endsCount(1) });
      await sleep(30);

      const inv = await hs.begin();
      const signal = inv.signal;
      inv.emit(partData(0));
      await inv.flush();
      inv.appendMessage("never visible");
      inv.setState("draft", 1);
      const stop = callAsync(() => stopper.stop({ reason: "user", graceMs: 5000 }), "stop()");
      const reason = await abortedWith(signal);
      assert.ok(reason instanceof StopRequestedError, `signal.reason: ${reason}`);
      assert.equal(reason.by, otherOwner);
      const busy = await rejection((await other.open(id)).begin(), "begin() while a stop is pending");
      assert.ok(busy instanceof ConcurrencyError, `got ${busy}`);
      assert.equal(busy.code, "CONCURRENT_INVOCATION");
      await inv.abort();
      const result = plain(await stop);
      assert.deepEqual(result, { outcome: "stopped", invocation: inv.id, version: before.version + 1 });
      await follower.done;
      assert.deepEqual(plain(follower.events), [...partEvents(inv.id, 0, 0), endEvent(inv.id, "stopped", before.version + 1)]);

      const after = await stored(stopper);
      assert.equal(after.version, before.version + 1);
      assert.equal(after.status, "idle");
      assert.deepEqual(after.messages, before.messages);
      assert.deepEqual(after.state, before.state);
      assert.deepEqual(after.history.slice(0, before.history.length), before.history);
      const added = after.history.slice(before.history.length);
      assert.deepEqual(
        added.map((e) => `${e.version}:${e.type}`),
        [`${before.version + 1}:stopped`],
        "the version that ended the turn holds only the stopped event",
      );
      assert.equal(added[0].reason, "user");
      assert.deepEqual(added[0].data, { by: otherOwner, outcome: "stopped" });
    });

    // Must show 6 (fence): the holder ignores the stop.
    for (const graceMs of [50, 0]) {
      test(`stop({ graceMs: ${graceMs} }) of a holder that ignores it fences: the late commit is LeaseLostError, nothing staged visible, one stopped event (fenced)`, async () => {
        const { holder, other, otherOwner } = await setup.stores({ liveFlushMs: 10 });
        const id = "fence";
        const hs = await holder.open(id);
        await hs.invoke((inv) => {
          inv.appendMessage("question");
          inv.setState("k", "before");
        });
        const stopper = await other.open(id);
        const before = await stored(stopper);
        const follower = collect(await other.open(id), { until: endsCount(2) });
        await sleep(30);

        const inv = await hs.begin();
        const signal = inv.signal; // read, then ignored
        inv.emit(partData(0));
        inv.emit(partData(1));
        await inv.flush();
        await waitFor(() => follower.events.length >= 2, "the parts before the stop");
        inv.appendMessage("late answer");
        inv.setState("k", "late");

        const result = plain(await callAsync(() => stopper.stop({ reason: "user", graceMs }), "stop()"));
        assert.deepEqual(result, { outcome: "fenced", invocation: inv.id, version: before.version + 1 });
        await waitFor(() => signal.aborted, "the holder's signal to abort");
        if (graceMs > 0 && !setup.shared) {
          // In the same realm the request reaches the holder at once, before the grace runs out.
          assert.ok(signal.reason instanceof StopRequestedError, `signal.reason: ${signal.reason}`);
        } else {
          assert.ok(
            signal.reason instanceof StopRequestedError || signal.reason instanceof LeaseLostError,
            `signal.reason: ${signal.reason}`,
          );
        }

        const error = await rejection(inv.commit(), "the fenced holder's commit");
        assert.ok(error instanceof LeaseLostError, `expected LeaseLostError, got ${error}`);
        assert.equal(error.code, "LEASE_LOST");
        // A stale holder's parts never reach followers of the next turn.
        try {
          inv.emit("tok-stale");
        } catch {}
        await inv.flush().catch(() => {});

        for (const session of [stopper, hs]) {
          const after = await stored(session);
          assert.equal(after.version, before.version + 1);
          assert.equal(after.status, "idle");
          assert.deepEqual(after.messages, before.messages, "nothing the fenced holder staged is visible");
          assert.deepEqual(after.state, before.state);
          assert.deepEqual(after.history.slice(0, before.history.length), before.history);
          const added = after.history.slice(before.history.length);
          assert.deepEqual(added.map((e) => `${e.version}:${e.type}`), [`${before.version + 1}:stopped`]);
          assert.equal(added[0].reason, "user");
          assert.deepEqual(added[0].data, { by: otherOwner, outcome: "fenced" });
        }

        // The session is free: a new turn begins and commits.
        const next = await hs.begin();
        next.emit("tok-fresh");
        await next.flush();
        await waitFor(() => follower.events.length >= 4, "the next turn's part");
        next.appendMessage("next turn");
        const v = await next.commit();
        assert.equal(v, before.version + 2);
        await follower.done;
        assert.deepEqual(plain(follower.events), [
          ...partEvents(inv.id, 0, 1),
          endEvent(inv.id, "stopped", before.version + 1),
          { type: "part", invocation: next.id, seq: 0, data: "tok-fresh" },
          endEvent(next.id, "committed", v),
        ]);
        assert.deepEqual(plain((await stopper.refresh()).messages()), [...before.messages, "next turn"]);
      });
    }

    // A follower that waits for news (its first read done) when a turn begins must see that turn,
    // even when the holder runs it from begin() to its end without waiting for the follower: the
    // parts were flushed ("durable and visible to followers") and the live log stays readable until
    // the next turn begins.
    for (const ending of ["commit", "abort"]) {
      test(`a turn that runs from begin to ${ending} while a follower waits reaches that follower whole: its parts, then end`, async () => {
        const { holder, other } = await setup.stores({ liveFlushMs: 10 });
        const id = `fast-${ending}`;
        const hs = await holder.open(id);
        await hs.invoke((inv) => inv.appendMessage("question"));
        const follower = collect(await other.open(id), { until: endsCount(1) });
        await sleep(30); // the follower has made its first read and waits for news

        const inv = await hs.begin();
        inv.emit("tok-0");
        inv.emit("tok-1");
        await inv.flush();
        inv.appendMessage("answer");
        const v = ending === "commit" ? await inv.commit() : (await inv.abort(), hs.version);
        await waitFor(
          () => follower.events.some((e) => e.type === "end" || e.type === "commit"),
          `the end of the turn (${ending})`,
          () => JSON.stringify(follower.events),
        );
        assert.deepEqual(plain(follower.events), [
          { type: "part", invocation: inv.id, seq: 0, data: "tok-0" },
          { type: "part", invocation: inv.id, seq: 1, data: "tok-1" },
          endEvent(inv.id, ending === "commit" ? "committed" : "aborted", v),
        ]);
      });
    }

    for (const graceMs of [0, 50]) {
      test(`a fenced holder that never ends (graceMs ${graceMs}) does not block the next turn: begin() through the holder's store works`, async (t) => {
        const { holder, other } = await setup.stores({ liveFlushMs: 10 });
        const id = "fence-hung";
        const hs = await holder.open(id);
        await hs.invoke((inv) => inv.appendMessage("question"));
        const stopper = await other.open(id);
        const hung = await hs.begin();
        t.after(() => hung.abort().catch(() => {})); // never left open, whatever fails
        void hung.signal; // read, then ignored: the holder is stuck in a tool call
        hung.appendMessage("never visible");
        const result = plain(await stopper.stop({ reason: "user", graceMs }));
        assert.deepEqual(result, { outcome: "fenced", invocation: hung.id, version: 2 });
        await stopper.refresh();
        assert.equal(stopper.status, "idle");

        // The hung holder has not called commit() or abort(): the session is free all the same.
        const next = await (await holder.open(id)).begin();
        assert.ok(next.token > hung.token, "the next turn's lease has a later fencing token");
        next.appendMessage("next turn");
        assert.equal(await next.commit(), 3);
        const error = await rejection(hung.commit(), "the hung holder's late commit");
        assert.ok(error instanceof LeaseLostError, `got ${error}`);
        const after = await stored(stopper);
        assert.equal(after.version, 3);
        assert.deepEqual(after.messages, ["question", "next turn"]);
      });
    }

    test("stop() with nothing running resolves { outcome: 'idle', version } and writes nothing", async () => {
      const { holder, other } = await setup.stores();
      const id = "stop-idle";
      const fresh = await other.open(id);
      assert.deepEqual(plain(await callAsync(() => fresh.stop(), "stop()")), { outcome: "idle", version: 0 });
      const hs = await holder.open(id);
      await hs.invoke((inv) => inv.appendMessage("one"));
      const stopper = await other.open(id);
      await stopper.refresh();
      const before = await stored(stopper);
      assert.deepEqual(plain(await stopper.stop({ reason: "user", graceMs: 0 })), { outcome: "idle", version: before.version });
      assert.deepEqual(await stored(stopper), before);
      assert.deepEqual(await stored(hs), before);
      // The next turn is not affected by the idle stop.
      const inv = await hs.begin();
      assert.equal(inv.signal.aborted, false);
      inv.appendMessage("two");
      assert.equal(await inv.commit(), before.version + 1);
    });

    // Must show 1/6 (bad input and misuse), each with nothing stored changed.
    test("emit() after commit or abort is InvalidTransitionError and changes nothing", async () => {
      const { holder, other } = await setup.stores();
      const id = "emit-ended";
      const hs = await holder.open(id);
      const committed = await hs.begin();
      committed.emit("tok-0");
      committed.appendMessage("m");
      await committed.commit();
      const before = await stored(await other.open(id));
      const error = thrown(() => committed.emit("tok-late"), "emit() after commit");
      assert.ok(error instanceof InvalidTransitionError, `got ${error}`);
      assert.equal(error.code, "INVALID_TRANSITION");
      assert.equal(error.from, "committed");
      assert.equal(error.action, "emit");

      const aborted = await hs.begin();
      await aborted.abort();
      const error2 = thrown(() => aborted.emit("tok-late"), "emit() after abort");
      assert.ok(error2 instanceof InvalidTransitionError, `got ${error2}`);
      assert.equal(error2.from, "aborted");
      assert.deepEqual(await stored(await other.open(id)), before);
      noParts(before.history);
    });

    test("emit() of a non-JSON part is ValidationError with a path at the part; a part over maxMessageBytes is LimitExceededError; refused emits take no seq", async () => {
      const { holder, other } = await setup.stores({ limits: { maxMessageBytes: 1024 }, liveFlushMs: 10 });
      const id = "emit-bad";
      const hs = await holder.open(id);
      await hs.invoke((inv) => inv.appendMessage("m"));
      const before = await stored(await other.open(id));
      const follower = collect(await other.open(id), { until: endsCount(1) });
      await sleep(30);

      const inv = await hs.begin();
      assert.equal(inv.emit("tok-0"), 0);
      await inv.flush();
      await waitFor(() => follower.events.length >= 1, "the first part");
      for (const [what, bad] of [
        ["a function", () => 1],
        ["a BigInt inside", { a: 1n }],
      ]) {
        const error = thrown(() => inv.emit(bad), `emit(${what})`);
        assert.ok(error instanceof ValidationError, `emit(${what}): got ${error}`);
        assert.equal(error.code, "INVALID_INPUT");
        assert.equal(typeof error.path, "string", `emit(${what}): path`);
        assert.ok(error.path.startsWith("part"), `emit(${what}): path ${JSON.stringify(error.path)} names the part`);
      }
      const big = "tok-" + "x".repeat(2000);
      const error = thrown(() => inv.emit(big), "emit(a part over maxMessageBytes)");
      assert.ok(error instanceof LimitExceededError, `got ${error}`);
      assert.equal(error.code, "LIMIT_EXCEEDED");
      assert.equal(error.limit, 1024);
      assert.ok(error.actual > 1024);
      assert.equal(inv.emit("tok-1"), 1, "a refused emit takes no seq");
      await inv.flush();
      assert.equal(inv.emit("tok-2"), 2);
      await inv.flush();
      await inv.abort();
      await follower.done;
      assert.deepEqual(plain(follower.events), [
        { type: "part", invocation: inv.id, seq: 0, data: "tok-0" },
        { type: "part", invocation: inv.id, seq: 1, data: "tok-1" },
        { type: "part", invocation: inv.id, seq: 2, data: "tok-2" },
        endEvent(inv.id, "aborted", before.version),
      ]);
      assert.deepEqual(await stored(await other.open(id)), before);
    });

    test("stop() with a bad graceMs rejects with ValidationError (never a synchronous throw), and changes nothing", async () => {
      const { holder, other } = await setup.stores();
      const id = "stop-bad";
      const hs = await holder.open(id);
      await hs.invoke((inv) => inv.appendMessage("m"));
      const stopper = await other.open(id);
      const inv = await hs.begin();
      const signal = inv.signal;
      inv.appendMessage("the turn");
      const before = await stored(stopper);
      for (const graceMs of [-1, 1.5, "5", Number.NaN, Infinity]) {
        const error = await rejection(callAsync(() => stopper.stop({ reason: "user", graceMs }), `stop({ graceMs: ${graceMs} })`));
        assert.ok(error instanceof ValidationError, `graceMs ${graceMs}: got ${error}`);
        assert.equal(error.code, "INVALID_INPUT");
      }
      await sleep(60); // a stop request, had one been recorded, would reach the holder meanwhile
      assert.equal(signal.aborted, false, "a refused stop asks nothing of the holder");
      assert.deepEqual(await stored(stopper), before);
      const v = await inv.commit();
      const turn = plain(await stopper.history({ from: v, to: v }));
      assert.deepEqual(turn.map((e) => e.type), ["message"], "no stopped event");
    });

    test("follow() with a bad after throws ValidationError and reads nothing", async () => {
      const { other } = await setup.stores();
      const session = await other.open("follow-bad");
      for (const after of [
        { invocation: 1, seq: 0 },
        { invocation: "x", seq: -1 },
        { invocation: "x", seq: 1.5 },
        { invocation: "x" },
        "x",
      ]) {
        const error = thrown(() => session.follow({ after }), `follow({ after: ${JSON.stringify(after)} })`);
        assert.ok(error instanceof ValidationError, `after ${JSON.stringify(after)}: got ${error}`);
        assert.equal(error.code, "INVALID_INPUT");
      }
      assert.equal(session.version, 0);
      assert.deepEqual(plain(await session.history()).map((e) => e.type), ["created"]);
    });

    test("a follower of a session deleted mid-turn finishes", async () => {
      const { holder, other } = await setup.stores({ liveFlushMs: 10 });
      const id = "deleted";
      const hs = await holder.open(id);
      const follower = collect(await other.open(id));
      await sleep(30);
      const inv = await hs.begin();
      inv.emit("tok-0");
      await inv.flush();
      await waitFor(() => follower.events.length >= 1, "the first part");
      assert.equal(await other.delete(id), true);
      const events = await follower.done; // the loop finishes (does not throw, does not wait for ever)
      assert.deepEqual(plain(events[0]), { type: "part", invocation: inv.id, seq: 0, data: "tok-0" });
      for (const event of events.slice(1)) assert.ok(event.type === "end" || event.type === "commit", JSON.stringify(event));
      await inv.abort().catch(() => {});
    });

    test("a follower ended by its signal finishes with done: true rather than throwing", async () => {
      const { holder, other } = await setup.stores({ liveFlushMs: 10 });
      const id = "follow-signal";
      const hs = await holder.open(id);
      const followed = await other.open(id);

      // Aborted while waiting for news.
      const controller = new AbortController();
      const iterator = followed.follow({ signal: controller.signal });
      const pending = iterator.next();
      await sleep(20);
      controller.abort(new Error("the page went away"));
      assert.deepEqual(await pending, { value: undefined, done: true });
      assert.deepEqual(await iterator.next(), { value: undefined, done: true });

      // Aborted mid-turn, after some parts.
      const inv = await hs.begin();
      inv.emit("tok-0");
      await inv.flush();
      const second = new AbortController();
      const seen = [];
      for await (const event of followed.follow({ signal: second.signal })) {
        seen.push(event);
        second.abort();
      }
      assert.deepEqual(plain(seen), [{ type: "part", invocation: inv.id, seq: 0, data: "tok-0" }]);

      // Aborted before the first next().
      const pre = new AbortController();
      pre.abort();
      assert.deepEqual(await followed.follow({ signal: pre.signal }).next(), { value: undefined, done: true });
      await inv.abort();
    });

    test("follow() ends once the session is closed: a last commit (status closed), and a follower started after close finishes", async () => {
      const { holder, other } = await setup.stores({ liveFlushMs: 10 });
      const id = "closed";
      const hs = await holder.open(id);
      const follower = collect(await other.open(id)); // no `until`: only the close may end it
      await sleep(30);
      const inv = await hs.begin();
      inv.emit("tok-0");
      await inv.flush();
      await waitFor(() => follower.events.length >= 1, "the first part");
      const v1 = await inv.commit();
      await waitFor(() => follower.events.length >= 2, "the first turn's end");
      await hs.close();
      const events = await follower.done;
      assert.deepEqual(plain(events.slice(0, 2)), [
        { type: "part", invocation: inv.id, seq: 0, data: "tok-0" },
        endEvent(inv.id, "committed", v1),
      ]);
      // close() is a guarded change of its own: it ends as a turn (or, not seen, as a commit).
      assert.equal(events.length, 3, JSON.stringify(events));
      const last = plain(events[2]);
      assert.deepEqual([last.version, last.status], [v1 + 1, "closed"]);
      assert.ok(last.type === "commit" || (last.type === "end" && last.outcome === "committed"), JSON.stringify(last));

      const afterClose = [];
      for await (const event of (await other.open(id)).follow()) afterClose.push(event);
      assert.ok(
        afterClose.every((e) => e.type !== "part"),
        `no part after close: ${JSON.stringify(afterClose)}`,
      );
    });

    // Must show 6 (signal): aborts when the invocation ends and when the lease is lost.
    test("inv.signal aborts when the invocation commits, aborts or interrupts", async () => {
      const { holder } = await setup.stores();
      const hs = await holder.open("signal-end");
      for (const end of ["commit", "abort", "interrupt"]) {
        const inv = await hs.begin(end === "commit" && hs.status === "interrupted" ? { resume: "ok" } : {});
        const signal = inv.signal;
        assert.equal(signal.aborted, false, `${end}: not aborted while running`);
        const aborted = abortedWith(signal);
        if (end === "interrupt") await inv.interrupt("ask");
        else await inv[end]();
        await aborted;
        assert.equal(signal.aborted, true, `${end}: aborted once ended`);
        assert.ok(!(signal.reason instanceof StopRequestedError), `${end}: no stop was requested`);
        assert.equal(signal.reason?.name, "AbortError", `${end}: the reason of an ended invocation`);
      }
    });

    test("a stop made before inv.signal is first read aborts it when read, at once in the same realm (stopPollMs 60 s)", async () => {
      const { holder, other, otherOwner } = await setup.stores({ stopPollMs: 60_000 });
      const id = "stop-before-signal";
      const hs = await holder.open(id);
      const inv = await hs.begin();
      const stop = tracked(callAsync(() => (async () => (await other.open(id)).stop({ reason: "early", graceMs: 30_000 }))(), "stop()"));
      // Time for stop() to write its request (in-process stores: a few microtasks; liveness only).
      await sleep(100);
      assert.equal(stop.settled, false, "stop() waits for the turn to end");
      let timer;
      const reason = await Promise.race([
        abortedWith(inv.signal),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("inv.signal did not abort within 10 s (stopPollMs is 60 s)")), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.ok(reason instanceof StopRequestedError, `signal.reason: ${reason}`);
      assert.equal(reason.by, otherOwner);
      const v = await inv.commit();
      assert.deepEqual(plain(await stop.promise), { outcome: "stopped", invocation: inv.id, version: v });
    });

    // The drop-ins' stop link (js/api.js): what inv.signal tells, as a callback, without the end.
    test("invocation[onStop](cb): cb gets the StopRequestedError of a stop once (at once when it came first), never an invocation's end, and inv.signal still aborts", async () => {
      const onStop = Symbol.for("agent-session.onStop");
      assert.equal(Invocation.prototype.onStop, undefined, "not a public method");
      const { holder, other, otherOwner } = await setup.stores({ stopPollMs: 60_000 });
      const id = "on-stop";
      const hs = await holder.open(id);
      // An invocation that ends normally: its callback is never called.
      const ended = [];
      const quiet = await hs.begin();
      quiet[onStop]((reason) => ended.push(reason));
      quiet.appendMessage("m");
      await quiet.commit();
      const aborted = await hs.begin();
      aborted[onStop]((reason) => ended.push(reason));
      await aborted.abort();
      await sleep(20);
      assert.deepEqual(ended, [], "no call at commit or abort");

      const inv = await hs.begin();
      const told = [];
      inv[onStop]((reason) => told.push(reason));
      const stop = callAsync(() => (async () => (await other.open(id)).stop({ reason: "enough", graceMs: 30_000 }))(), "stop()");
      await waitFor(() => told.length > 0, "the stop callback (stopPollMs is 60 s)");
      assert.equal(told.length, 1);
      assert.ok(told[0] instanceof StopRequestedError, `reason: ${told[0]}`);
      assert.equal(told[0].reason, "enough");
      assert.equal(told[0].by, otherOwner);
      const late = [];
      inv[onStop]((reason) => late.push(reason));
      assert.equal(late.length, 1, "registered after the stop: called at once");
      assert.ok(late[0] instanceof StopRequestedError);
      assert.ok((await abortedWith(inv.signal)) instanceof StopRequestedError, "inv.signal read after the stop aborts with it");
      const v = await inv.commit();
      assert.deepEqual(plain(await stop), { outcome: "stopped", invocation: inv.id, version: v });
      await sleep(20);
      assert.equal(told.length, 1, "called once");
      // After the end, a new callback is not called: the invocation ended, nothing stopped it.
      const afterEnd = [];
      quiet[onStop]((reason) => afterEnd.push(reason));
      assert.deepEqual(afterEnd, []);
    });

    test("invocation[onStop](cb): cb gets LeaseLostError when the lease is taken over", async () => {
      const onStop = Symbol.for("agent-session.onStop");
      const now = manualClock();
      const { holder, other } = await setup.stores({ now, leaseMs: 1000, heartbeat: false });
      const id = "on-stop-lost";
      const hs = await holder.open(id);
      const stale = await hs.begin();
      const told = [];
      stale[onStop]((reason) => told.push(reason));
      now.advance(1001);
      const taker = await (await other.open(id)).begin();
      await rejection(stale.renew(), "the stale holder's renew()");
      assert.equal(told.length, 1, "told once the holder learns the lease is lost");
      assert.ok(told[0] instanceof LeaseLostError, `reason: ${told[0]}`);
      await taker.abort();
    });

    test("inv.signal aborts with LeaseLostError when the lease is taken over; followers see end lost", async () => {
      const now = manualClock();
      const { holder, other } = await setup.stores({ now, leaseMs: 1000, heartbeat: false, liveFlushMs: 10 });
      const id = "signal-lost";
      const hs = await holder.open(id);
      await hs.invoke((inv) => inv.appendMessage("m"));
      const v0 = hs.version;
      const follower = collect(await other.open(id), { until: endsCount(1) });
      await sleep(30);
      const stale = await hs.begin();
      const signal = stale.signal;
      stale.emit("tok-0");
      await stale.flush();
      await waitFor(() => follower.events.length >= 1, "the stale holder's part");
      assert.equal(signal.aborted, false);

      now.advance(1001);
      const taker = await (await other.open(id)).begin();
      assert.equal(taker.token, stale.token + 1);
      const error = await rejection(stale.renew(), "the stale holder's renew()");
      assert.ok(error instanceof LeaseLostError, `got ${error}`);
      assert.equal(error.code, "LEASE_LOST");
      assert.equal(signal.aborted, true, "the signal aborts once the holder learns the lease is lost");
      assert.ok(signal.reason instanceof LeaseLostError, `signal.reason: ${signal.reason}`);
      assert.equal(signal.reason.code, "LEASE_LOST");

      await follower.done;
      assert.equal(follower.events.length, 2, JSON.stringify(follower.events));
      assert.deepEqual(plain(follower.events[0]), { type: "part", invocation: stale.id, seq: 0, data: "tok-0" });
      const end = plain(follower.events[1]);
      assert.deepEqual({ ...end, status: undefined }, { ...endEvent(stale.id, "lost", v0), status: undefined });
      assert.ok(["idle", "running"].includes(end.status), `end status ${end.status}`);
      taker.appendMessage("taken over");
      assert.equal(await taker.commit(), v0 + 1);
    });
  });
}

// The holder's stop watch reads the head only for news: a wake-up that is not its own, or the poll
// period passing since its last look (core/guard.rs next_stop_check). Its own flushes and checkpoints
// wake the realm for followers, not for itself; a stop still reaches it at once.
test("inv.signal's watch reads no head for the holder's own checkpoints; on a KV store it reads the head once per flush (a stop reaches the holder at its next flush); a stop still aborts it at once", async () => {
  const kv = memoryKv();
  let headReads = 0;
  const counted = {
    ...kv,
    capabilities: kv.capabilities,
    get: (key, ...rest) => {
      if (key.startsWith("h/")) headReads++;
      return kv.get(key, ...rest);
    },
    put: (...a) => kv.put(...a),
    delete: (...a) => kv.delete(...a),
    list: (...a) => kv.list(...a),
  };
  const holder = await SessionStore.kv(counted, { owner: "holder", stopPollMs: 60_000, liveFlushMs: 0 });
  const stopper = await SessionStore.kv(counted, { owner: "stopper", stopPollMs: 60_000 });
  const session = await holder.open("own-wakes");
  const inv = await session.begin();
  const aborted = abortedWith(inv.signal);
  await sleep(20);
  let before = headReads;
  for (let i = 0; i < 5; i++) {
    inv.appendMessage(`m${i}`);
    await inv.checkpoint();
  }
  await sleep(20);
  assert.equal(headReads - before, 0, "no head read for the holder's own checkpoints");
  before = headReads;
  for (let i = 0; i < 5; i++) {
    inv.emit(partData(i));
    await inv.flush();
    await sleep(5);
  }
  await sleep(20);
  const flushReads = headReads - before;
  assert.ok(flushReads >= 1 && flushReads <= 5, `one head read per flush at most, and some: ${flushReads} for 5 flushes`);
  const stop = callAsync(() => stopper.open("own-wakes").then((s) => s.stop({ reason: "now", graceMs: 30_000 })), "stop()");
  let timer;
  const reason = await Promise.race([
    aborted,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("inv.signal did not abort within 10 s (stopPollMs is 60 s)")), 10_000);
    }),
  ]).finally(() => clearTimeout(timer));
  assert.ok(reason instanceof StopRequestedError, `signal.reason: ${reason}`);
  await inv.commit();
  assert.equal((await stop).outcome, "stopped");
  await holder.close();
  await stopper.close();
});

test("after store.close() the holder's emit() and flush() are refused: nothing more is written to the live log", async () => {
  const kv = memoryKv();
  const holder = await SessionStore.kv(kv, { owner: "A", liveFlushMs: 20 });
  const inv = await (await holder.open("closed-live")).begin();
  inv.emit("before-close");
  await inv.flush();
  const before = (await kv.list("t/")).keys;
  assert.equal(before.length, 1);
  await holder.close();
  const emitted = thrown(() => inv.emit("after-close"));
  assert.equal(emitted?.code, "STORE_CLOSED", String(emitted));
  assert.equal((await rejection(inv.flush())).code, "STORE_CLOSED");
  await sleep(60); // past liveFlushMs: no flush was scheduled either
  assert.deepEqual((await kv.list("t/")).keys, before);
});

test("store.close() aborts the signal of every invocation still open (reason: a StoreClosedError), read before the close or after", async () => {
  for (const make of [() => SessionStore.memory({ stopPollMs: 60_000 }), () => SessionStore.kv(memoryKv(), { stopPollMs: 60_000 })]) {
    const store = await make();
    const watched = await (await store.open("watched")).begin();
    const unread = await (await store.open("unread")).begin();
    const aborted = new Promise((resolve) => watched.signal.addEventListener("abort", () => resolve(watched.signal.reason), { once: true }));
    assert.equal(watched.signal.aborted, false);
    await store.close();
    // stopPollMs is a minute: only the close itself can abort it in time.
    const reason = await within(aborted, 10_000, "inv.signal did not abort after store.close()");
    assert.ok(reason instanceof StoreClosedError, `signal.reason: ${reason}`);
    assert.equal(unread.signal.aborted, true, "a signal first read after the close");
    assert.ok(unread.signal.reason instanceof StoreClosedError, `signal.reason: ${unread.signal.reason}`);
    assert.equal((await rejection(watched.commit())).code, "STORE_CLOSED");
  }
});

test("a commit being written when its store closes settles the turn: its signal then says it ended, never that it was lost", async () => {
  const base = memoryKv();
  let hold = null;
  const kv = kvWithPut(base, async (key, value, options) => {
    if (hold && key.startsWith("e/")) await hold;
    return base.put(key, value, options);
  });
  const store = await SessionStore.kv(kv, { stopPollMs: 60_000 });
  const session = await store.open("closing");
  const inv = await session.begin();
  const reasons = [];
  inv.signal.addEventListener("abort", () => reasons.push(inv.signal.reason), { once: true });
  inv.appendMessage("kept");
  let release;
  hold = new Promise((resolve) => (release = resolve));
  const committing = inv.commit();
  await sleep(10);
  await store.close();
  await sleep(10);
  release();
  hold = null;
  const version = await committing;
  assert.equal(version, 1);
  await within(new Promise((resolve) => (reasons.length ? resolve() : inv.signal.addEventListener("abort", resolve))), 10_000);
  assert.equal(reasons.length, 1);
  assert.ok(!(reasons[0] instanceof LeaseLostError) && !(reasons[0] instanceof StoreClosedError), `signal.reason: ${reasons[0]}`);
  assert.equal(reasons[0]?.name, "AbortError");
  const reader = await SessionStore.kv(base);
  assert.deepEqual(plain((await reader.open("closing")).messages()), ["kept"]);
});

for (const [snapshotEvery, checkpoints] of [[undefined, 0], [1, 0], [1, 2]]) {
  test(`a fenced turn ends stopped at its fence for a follower that next reads the head after the next turn ended (snapshotEvery: ${snapshotEvery ?? "default"}, ${checkpoints} checkpoints)`, async () => {
    // Three server processes over one KV (each its own HostKv object: stores over one object in one
    // realm hear each other): the holder, the stopper, and a follower whose head reads wait at a gate
    // while the stopper fences the turn and runs the next one, so the head it next reads ends that one.
    const kv = memoryKv();
    let gate = null;
    const follower = await SessionStore.kv(
      {
        ...kvWithPut(kv, kv.put),
        get: async (key) => {
          if (key.startsWith("h/")) await gate?.promise;
          return kv.get(key);
        },
      },
      { owner: "F", snapshotEvery },
    );
    const holder = await SessionStore.kv(kvWithPut(kv, kv.put), { owner: "A", liveFlushMs: 1, snapshotEvery });
    // With snapshotEvery 1 the next turn's commit writes a snapshot: the head no longer names the fence.
    const stopper = await SessionStore.kv(kvWithPut(kv, kv.put), { owner: "B", snapshotEvery });
    const id = "fence-then-next";
    await (await holder.open(id)).invoke((inv) => inv.appendMessage("first"));
    const inv = await (await holder.open(id)).begin();
    inv.emit("thinking");
    await inv.flush();
    const followed = collect(await follower.open(id), { until: (events) => events.some((e) => e.type === "end") });
    await waitFor(() => followed.events.length > 0, "the follower to see the part");
    gate = deferred();
    // Checkpoints the follower does not see either (with snapshotEvery 1 the head then names none).
    for (let i = 0; i < checkpoints; i++) {
      inv.appendMessage(`draft ${i}`);
      await inv.checkpoint();
    }
    const fenced = plain(await (await stopper.open(id)).stop({ reason: "user", graceMs: 0 }));
    assert.deepEqual([fenced.outcome, fenced.version], ["fenced", 2 + checkpoints]);
    await (await stopper.open(id)).invoke((next) => next.appendMessage("the next question"));
    gate.resolve();
    const events = await within(followed.done, 10_000, "no end within 10 s");
    const end = events.find((event) => event.type === "end");
    assert.deepEqual([end?.invocation, end?.outcome, end?.version, end?.status], [inv.id, "stopped", fenced.version, "idle"], JSON.stringify(events));
    await rejection(inv.commit());
  });
}

for (const snapshotEvery of [50, 1]) test(`a fenced holder whose signal is first read after the stopper's next turn committed gets StopRequestedError, not LeaseLostError (audit56; snapshotEvery ${snapshotEvery}: audit58)`, async () => {
  const kv = memoryKv();
  const holder = await SessionStore.kv(kv, { owner: "A", snapshotEvery });
  const stopper = await SessionStore.kv(kv, { owner: "B", snapshotEvery });
  const id = "fenced-then-next-signal";
  await (await holder.open(id)).invoke((first) => first.appendMessage("first"));
  const inv = await (await holder.open(id)).begin();
  inv.appendMessage("partial");
  const fenced = plain(await (await stopper.open(id)).stop({ reason: "user pressed Stop", graceMs: 0 }));
  assert.equal(fenced.outcome, "fenced");
  // The user sends the next message at once: the head moves past the fence.
  await (await stopper.open(id)).invoke((next) => next.appendMessage("the next question"));
  const signal = inv.signal; // read for the first time now (a holder back from a long model call)
  await within(
    new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", resolve, { once: true }))),
    10_000,
    "the signal did not abort",
  );
  assert.ok(signal.reason instanceof StopRequestedError, `reason: ${signal.reason}`);
  assert.equal(signal.reason.reason, "user pressed Stop");
  assert.equal(signal.reason.by, "B");
  await rejection(inv.commit());
  await holder.close();
  await stopper.close();
});

/** What a follower resuming `invocation` after its part 0 (a reloaded page) yields, up to its end. */
async function resumedTurn(session, invocation) {
  const ac = new AbortController();
  const events = [];
  for await (const event of session.follow({ after: { invocation, seq: 0 }, signal: ac.signal })) {
    events.push(event.type === "part" ? `part ${event.data}` : `${event.type} ${event.outcome}`);
    if (event.type === "end") ac.abort();
  }
  return events;
}

test("a part its holder flushes after the fence is never shown: a follower resuming that turn gets the parts before it and the end", async () => {
  const kv = memoryKv();
  const holder = await SessionStore.kv(kv, { owner: "A" });
  const stopper = await SessionStore.kv(kv, { owner: "B" });
  const inv = await (await holder.open("late-part")).begin();
  inv.emit("seen");
  inv.emit("before");
  await inv.flush();
  const stopped = await (await stopper.open("late-part")).stop({ reason: "user", graceMs: 0 });
  assert.equal(stopped.outcome, "fenced");
  try {
    inv.emit("late");
    await inv.flush();
  } catch {
    // refused once the holder has learnt of the fence: nothing to show either way
  }
  const session = await (await SessionStore.kv(kv, { owner: "C" })).open("late-part");
  assert.deepEqual(await resumedTurn(session, inv.id), ["part before", "end stopped"]);
});

test("an abort while an automatic flush is in flight waits for it: the turn's end counts that flush, and a follower gets its parts", async () => {
  const base = memoryKv();
  let release;
  const held = new Promise((resolve) => (release = resolve));
  let holding = true;
  const kv = {
    ...base,
    capabilities: base.capabilities,
    put: async (key, value, options) => {
      if (holding && key.startsWith("t/")) {
        holding = false;
        await held;
      }
      return base.put(key, value, options);
    },
  };
  const store = await SessionStore.kv(kv, { owner: "A", liveFlushMs: 1 });
  const inv = await (await store.open("abort-in-flight")).begin();
  inv.emit("p0");
  inv.emit("p1");
  await sleep(20); // the automatic flush has taken both parts and waits on its put
  const aborting = inv.abort();
  await sleep(5);
  release();
  await aborting;
  const reader = await (await SessionStore.kv(base, { owner: "B" })).open("abort-in-flight");
  assert.deepEqual(await resumedTurn(reader, inv.id), ["part p1", "end aborted"]);
});

test("a follower whose own store is closed finishes (done: true) rather than throwing", async () => {
  const store = await SessionStore.memory();
  const session = await store.open("follower-store-closed");
  const iterator = session.follow();
  const next = iterator.next();
  await sleep(30);
  await store.close();
  const result = await within(next, 3000, "pending");
  assert.notEqual(result, "pending", "the follower ends once its store is closed");
  assert.deepEqual(result, { value: undefined, done: true });
});

for (const [name, make] of [
  ["memory", () => SessionStore.memory()],
  ["kv(memoryKv())", () => SessionStore.kv(memoryKv())],
]) {
  test(`${name}: turns run back to back (no timer between them): a follower of the same store gets every turn's parts, then its end, in order`, async () => {
    const store = await make();
    const session = await store.open("back-to-back");
    const followed = await store.open("back-to-back"); // another Session object of the same store
    for (const watched of [session, followed]) {
      const iterator = watched.follow();
      const expected = [];
      const start = session.version;
      const turns = 5;
      for (let turn = 1; turn <= turns; turn++) {
        const inv = await session.begin();
        inv.emit({ turn, part: 0 });
        inv.emit({ turn, part: 1 });
        inv.appendMessage({ turn });
        const version = await inv.commit();
        expected.push(`${inv.id}:part:0:${turn}.0`, `${inv.id}:part:1:${turn}.1`, `${inv.id}:end:committed@${version}`);
      }
      const seen = [];
      while (seen.length < expected.length) {
        let timer;
        const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve({ done: true, value: "timeout" }), 3000)));
        const { value, done } = await Promise.race([iterator.next(), timeout]);
        clearTimeout(timer);
        if (done) assert.fail(`the follower stopped after ${seen.join(" ")} (${value})`);
        seen.push(
          value.type === "part"
            ? `${value.invocation}:part:${value.seq}:${value.data.turn}.${value.data.part}`
            : value.type === "end"
              ? `${value.invocation}:end:${value.outcome}@${value.version}`
              : `commit@${value.version}`,
        );
      }
      await iterator.return();
      assert.deepEqual(seen, expected);
      assert.equal(session.version, start + turns);
    }
  });
}

test("two stores over one memoryKv (two processes), turns back to back: every end the follower yields is the turn's own outcome and version, never lost for a turn that committed", async () => {
  const kv = memoryKv();
  const holder = await (await SessionStore.kv(kv)).open("two-stores-back-to-back");
  const watched = await (await SessionStore.kv(kv)).open("two-stores-back-to-back");
  const iterator = watched.follow();
  const seen = [];
  const consumed = (async () => {
    for (;;) {
      const { value, done } = await iterator.next();
      if (done) return;
      seen.push(value);
      if (value.type !== "part" && value.version >= 12) return;
    }
  })();
  await sleep(30); // the follower's first read: the session at rest at version 0
  const committed = new Map(); // invocation -> the version its commit wrote
  for (let turn = 1; turn <= 12; turn++) {
    const inv = await holder.begin();
    inv.emit({ turn });
    inv.appendMessage({ turn });
    committed.set(inv.id, await inv.commit());
    // Now and then a pause, so that the follower reads some turns while they run and some after.
    if (turn % 3 === 0) await sleep(40);
  }
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve("timeout"), 3000)));
  const outcome = await Promise.race([consumed, timeout]);
  clearTimeout(timer);
  await iterator.return();
  assert.notEqual(outcome, "timeout", `the follower did not reach version 12: ${JSON.stringify(seen)}`);
  const ends = seen.filter((event) => event.type === "end");
  assert.ok(ends.length > 0, "the follower saw some turns end");
  for (const { invocation, outcome: ended, version } of ends) {
    assert.equal(ended, "committed", `${invocation} at ${version}`);
    assert.equal(version, committed.get(invocation), `${invocation}: its own version`);
  }
  const versions = seen.filter((event) => event.type !== "part").map((event) => event.version);
  assert.deepEqual(versions, [...versions].sort((a, b) => a - b), "in commit order");
});

for (const [name, make] of [
  ["memory", (options) => SessionStore.memory(options)],
  ["kv(memoryKv())", (options) => SessionStore.kv(memoryKv(), options)],
]) {
  test(`${name}: a holder's signal first read after a stop of the same store was asked is aborted when read, with the stop's reason and asker`, async () => {
    const store = await make({ owner: "stopper-here" });
    const session = await store.open("late-signal");
    const inv = await session.begin();
    const stopping = session.stop({ reason: "user", graceMs: 3000 });
    await sleep(20); // the request is on the head
    const signal = inv.signal; // its first read
    assert.equal(signal.aborted, true);
    assert.ok(signal.reason instanceof StopRequestedError, `reason: ${signal.reason}`);
    assert.equal(signal.reason.reason, "user");
    assert.equal(signal.reason.by, "stopper-here");
    await inv.commit();
    assert.equal((await stopping).outcome, "stopped");
  });
}

test("stop({ graceMs: 0 }) fences at once: the holder's signal aborts with a StopRequestedError (reason, by), not a LeaseLostError, in its store and in another", async () => {
  const kv = memoryKv();
  for (const [what, holderStore, stopperStore] of [
    ["same store", await SessionStore.kv(kv, { owner: "one" }), null],
    ["two stores", await SessionStore.kv(kv, { owner: "holder" }), await SessionStore.kv(kv, { owner: "stopper" })],
  ]) {
    const id = `fence-signal-${what}`;
    const holding = await holderStore.open(id);
    const inv = await holding.begin();
    const signal = inv.signal; // read before the stop
    const result = await (await (stopperStore ?? holderStore).open(id)).stop({ reason: "now", graceMs: 0 });
    assert.equal(result.outcome, "fenced", what);
    const reason = await abortedWith(signal);
    assert.ok(reason instanceof StopRequestedError, `${what}: ${reason}`);
    assert.equal(reason.reason, "now", what);
    assert.equal(reason.by, stopperStore ? "stopper" : "one", what);
    const refused = await rejection(inv.commit());
    assert.ok(refused instanceof LeaseLostError, `${what}: the fenced holder's commit: ${refused}`);
  }
});

test("a follower nobody iterates holds at most about 4 MiB of its store's turns' parts: 48 turns of 1 MiB each leave the wasm memory within a few MiB of where it was", async () => {
  const store = await SessionStore.memory({ liveFlushMs: 0 });
  const session = await store.open("unread-follower");
  const iterator = session.follow();
  const part = { text: "x".repeat(64 * 1024) };
  const turn = async () => {
    const inv = await session.begin();
    for (let i = 0; i < 16; i++) inv.emit(part);
    await inv.commit();
  };
  for (let i = 0; i < 8; i++) await turn(); // the memory's own growth first
  const before = SessionStore.memoryUsage().wasmBytes;
  for (let i = 0; i < 48; i++) await turn();
  const grown = SessionStore.memoryUsage().wasmBytes - before;
  assert.ok(grown <= 16 << 20, `the wasm memory grew by ${grown} bytes over 48 MiB of parts`);
  // Iterated now, it yields what it kept, in order, then the store's own read.
  const first = await iterator.next();
  assert.equal(first.done, false);
  await iterator.return();
});

test("a stopPollMs or liveFlushMs past the longest timer (2**31 - 1 ms) waits that long: no timer that runs every millisecond, and the parts still reach a follower at the commit", async () => {
  const warnings = [];
  const onWarning = (warning) => warnings.push(warning.name);
  process.on("warning", onWarning);
  try {
    for (const options of [{ stopPollMs: 2 ** 32 }, { stopPollMs: Number.MAX_SAFE_INTEGER }, { liveFlushMs: 2 ** 32 }]) {
      const kv = memoryKv();
      let gets = 0;
      const counted = { ...kv, get: (...args) => (gets++, kv.get(...args)) };
      const store = await SessionStore.kv(counted, options);
      const session = await store.open("long-timers");
      const inv = await session.begin();
      assert.equal(inv.signal.aborted, false);
      inv.emit({ text: "part" });
      const before = gets;
      await sleep(100);
      assert.ok(gets - before <= 2, `${JSON.stringify(options)}: ${gets - before} head reads in 100 ms`);
      const following = (async () => {
        const seen = [];
        for await (const event of session.follow()) {
          seen.push(event.type);
          if (event.type === "end") break;
        }
        return seen;
      })();
      await sleep(10);
      await inv.commit();
      assert.deepEqual(await following, ["part", "end"], JSON.stringify(options));
      await store.close();
    }
    await sleep(0);
    assert.deepEqual(warnings.filter((name) => name === "TimeoutOverflowWarning"), []);
  } finally {
    process.off("warning", onWarning);
  }
});

test("a turn that a stop() of its own store fenced reads its signal aborted at its first read, with the stop's StopRequestedError (graceMs 0, and a grace that ran out)", async () => {
  const store = await SessionStore.memory({ owner: "solo" });
  const session = await store.open("fenced-here");
  for (const graceMs of [0, 30]) {
    const inv = await session.begin();
    inv.appendMessage("staged");
    assert.equal((await session.stop({ reason: `why ${graceMs}`, graceMs })).outcome, "fenced");
    const signal = inv.signal;
    assert.equal(signal.aborted, true, `graceMs ${graceMs}: aborted at the first read`);
    assert.ok(signal.reason instanceof StopRequestedError, String(signal.reason));
    assert.equal(signal.reason.reason, `why ${graceMs}`);
    assert.equal(signal.reason.by, "solo");
    await assert.rejects(inv.commit(), LeaseLostError);
    // The next turn's signal is its own: not aborted by the stop of the turn before.
    const next = await session.begin();
    assert.equal(next.signal.aborted, false);
    await next.commit();
  }
  assert.deepEqual(session.messages(), []);
  await store.close();
});

test("a fenced holder whose signal is first read after its refused commit reads the stop's StopRequestedError (reason, by), not the LeaseLostError: same store and another, memory and kv", async () => {
  const kv = memoryKv();
  const cases = [
    ["memory, same store", await SessionStore.memory({ owner: "one" }), null],
    ["kv, same store", await SessionStore.kv(kv, { owner: "one" }), null],
    ["kv, two stores", await SessionStore.kv(kv, { owner: "holder" }), await SessionStore.kv(kv, { owner: "stopper" })],
  ];
  for (const [what, holderStore, stopperStore] of cases) {
    const id = `fence-late-read-${what}`;
    const inv = await (await holderStore.open(id)).begin();
    inv.appendMessage("staged");
    const result = await (await (stopperStore ?? holderStore).open(id)).stop({ reason: "enough", graceMs: 0 });
    assert.equal(result.outcome, "fenced", what);
    const refused = await rejection(inv.commit());
    assert.ok(refused instanceof LeaseLostError, `${what}: the fenced holder's commit: ${refused}`);
    const signal = inv.signal; // first read after the refused commit
    assert.equal(signal.aborted, true, what);
    assert.ok(signal.reason instanceof StopRequestedError, `${what}: ${signal.reason}`);
    assert.equal(signal.reason.reason, "enough", what);
    assert.equal(signal.reason.by, stopperStore ? "stopper" : "one", what);
    assert.deepEqual((await holderStore.open(id)).messages(), [], `${what}: nothing of the fenced turn`);
  }
  for (const [, holderStore, stopperStore] of cases) {
    await holderStore.close();
    await stopperStore?.close();
  }
});

// (A session created again in the same millisecond is not told apart from the one it followed: its
// head's creation time is the same, and a lower version or token is what a stale read shows too.)
test("a follower of a session that another store deletes and creates again under its id between two reads ends, and yields nothing of the new session", async () => {
  for (const advance of [1000]) {
    const kv = memoryKv();
    const now = manualClock();
    const a = await SessionStore.kv(kv, { owner: "A", now, heartbeat: false });
    const b = await SessionStore.kv(kv, { owner: "B", now, heartbeat: false });
    const followed = await a.open("recreated");
    await followed.invoke((inv) => inv.appendMessage("a1"));
    await followed.invoke((inv) => inv.appendMessage("a2"));
    const seen = [];
    const following = (async () => {
      for await (const event of followed.follow()) seen.push(`${event.type}:${event.version ?? ""}`);
      return "ended";
    })();
    await sleep(50);
    now.advance(advance);
    await b.delete("recreated");
    const again = await b.open("recreated");
    for (const text of ["r1", "r2", "r3"]) await again.invoke((inv) => inv.appendMessage(text));
    const outcome = await within(following, 3000, "still running");
    assert.equal(outcome, "ended", `advance ${advance}: ${seen.join(" ")}`);
    assert.deepEqual(seen, [], `advance ${advance}: nothing of the new session`);
    await a.close();
    await b.close();
  }
});

test("a holder whose session another store deleted learns it at its renew(): LeaseLostError, and its signal aborted with it at once", async () => {
  const kv = memoryKv();
  const a = await SessionStore.kv(kv, { owner: "A", heartbeat: false });
  const b = await SessionStore.kv(kv, { owner: "B" });
  const session = await a.open("deleted-under");
  await session.invoke((inv) => inv.appendMessage("a1"));
  const inv = await session.begin();
  const signal = inv.signal;
  assert.equal(await b.delete("deleted-under"), true);
  const refused = await rejection(inv.renew());
  assert.ok(refused instanceof LeaseLostError, String(refused));
  assert.equal(signal.aborted, true, "aborted when renew() rejects");
  assert.ok(signal.reason instanceof LeaseLostError, String(signal.reason));
  await a.close();
  await b.close();
});

test("a fenced holder's flush after the fence is deleted with its turn's live log by the next turn, on a KV store without a value limit", async () => {
  const kv = memoryKv();
  const holder = await SessionStore.kv(kv, { owner: "holder", stopPollMs: 20 });
  const other = await SessionStore.kv(kv, { owner: "other", stopPollMs: 20 });
  const inv = await (await holder.open("late")).begin();
  inv.emit({ n: 0 });
  await inv.flush();
  assert.equal((await (await other.open("late")).stop({ graceMs: 0 })).outcome, "fenced");
  // The holder has not heard of the fence yet: its flush lands under its old token, never shown.
  inv.emit({ n: 1 });
  await inv.flush().catch(() => {});
  const fencedLog = (await kv.list("t/")).keys;
  assert.ok(fencedLog.length >= 1, "the fenced turn's live log is stored");
  const session = await other.open("late");
  for (let i = 0; i < 2; i++) await session.invoke((next) => next.appendMessage(i));
  const left = (await kv.list("t/")).keys.filter((key) => fencedLog.includes(key));
  assert.deepEqual(left, [], "nothing of the fenced turn's live log is left");
  await holder.close();
  await other.close();
});
