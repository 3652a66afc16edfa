// Live turns across Node processes over SessionStore.kv(redisKv(client)) on a real redis-server
// (API.md "Live turns"): a turn emitting 300 parts in one process is followed from two others
// (from before it began, joining halfway, resuming with `after`); a stop from another process
// reaches the holder's inv.signal within stopPollMs and ends in one `stopped` event; a holder that
// ignores the stop is fenced after graceMs, and its late commit is refused and writes nothing visible.
//
// The processes (tests/js/adapters/_live-redis-worker.mjs) are driven over IPC and log JSON lines;
// every process is on one machine, so their Date.now() values are compared directly.
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createClient } from "redis";
import { SessionStore } from "agent-session";
import { redisKv } from "agent-session/adapters";
import { startRedis } from "./_redis-server.mjs";

const WORKER = fileURLToPath(new URL("./_live-redis-worker.mjs", import.meta.url));
/** P1's stopPollMs, and the margin the stop test allows over it. */
const STOP_POLL_MS = 200;
const STOP_MARGIN_MS = 800;

let server;
let client;
let p1; // the holder: runs the turns (stopPollMs 200)
let p2; // follows from the start; stops
let p3; // joins mid-turn
const children = new Set();
const stores = [];

/**
 * Forks a worker; resolves once it logged "ready". `events` collects its JSON lines;
 * `waitFor(type, tag, pred)` resolves with the first line (already logged or to come) of that type
 * and tag that satisfies `pred`, and rejects if the worker logs an error for that tag or exits.
 */
async function spawnWorker(worker, storeOptions = {}) {
  const child = fork(WORKER, [JSON.stringify({ url: server.url, worker, storeOptions })], { stdio: ["ignore", "pipe", "pipe", "ipc"] });
  children.add(child);
  const events = [];
  const waiting = new Set();
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const settle = () => {
    for (const w of waiting) {
      const found = events.find((e) => e.type === w.type && e.tag === w.tag && w.pred(e));
      const failed = events.find((e) => e.type === "error" && e.tag === w.tag && w.tag !== undefined);
      if (found) {
        waiting.delete(w);
        w.resolve(found);
      } else if (failed) {
        waiting.delete(w);
        w.reject(new Error(`${worker}: ${failed.cmd} "${failed.tag}" failed: ${JSON.stringify(failed.error)}\n${failed.stack}`));
      }
    }
  };
  createInterface({ input: child.stdout }).on("line", (line) => {
    try {
      events.push(JSON.parse(line));
    } catch {
      stderr += `(stdout) ${line}\n`;
      return;
    }
    settle();
  });
  const exited = once(child, "exit");
  exited.then(([code, signal]) => {
    for (const w of waiting) w.reject(new Error(`${worker} exited (${code ?? signal}) before "${w.type}" of "${w.tag}": ${stderr}`));
    waiting.clear();
  });
  const waitFor = (type, tag, pred = () => true) =>
    new Promise((resolve, reject) => {
      waiting.add({ type, tag, pred, resolve, reject });
      settle();
    });
  const ready = waitFor("ready", undefined);
  await ready;
  return {
    child,
    events,
    exited,
    waitFor,
    send: (command) => child.send(command),
    /** Every LiveEvent a follow command of `tag` logged, in order. */
    live: (tag) => events.filter((e) => e.type === "live" && e.tag === tag),
    stderr: () => stderr,
  };
}

async function observer(owner) {
  const store = await SessionStore.kv(redisKv(client), { owner });
  stores.push(store);
  return store;
}

/** Collects `session.follow()` in this process until the first `end`. */
async function followUntilEnd(session) {
  const events = [];
  for await (const event of session.follow()) {
    events.push({ event, sessionVersion: session.version });
    if (event.type === "end") break;
  }
  return events;
}

before(async () => {
  server = await startRedis();
  client = await createClient({ url: server.url }).connect();
  [p1, p2, p3] = await Promise.all([
    spawnWorker("p1", { stopPollMs: STOP_POLL_MS }),
    spawnWorker("p2"),
    spawnWorker("p3"),
  ]);
});

after(async () => {
  for (const w of [p1, p2, p3]) {
    if (w && w.child.exitCode === null && w.child.signalCode === null && w.child.connected) w.send({ cmd: "exit" });
  }
  await Promise.race([Promise.all([p1, p2, p3].filter(Boolean).map((w) => w.exited)), new Promise((r) => setTimeout(r, 5000).unref())]);
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const store of stores) await store.close().catch(() => {});
  await client?.quit();
  await server?.stop();
});

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

test("a turn of 300 parts in P1 is followed from P2 (from before it began), P3 (joining halfway) and P3 resuming after seq 99: every part once, in order, then end committed", { timeout: 60_000 }, async (t) => {
  const id = "live-stream";
  const PARTS = 300;
  const message = { role: "assistant", content: "the whole answer" };
  await (await observer("creator")).open(id); // the session exists before anyone follows it

  p2.send({ cmd: "follow", tag: "early", id });
  await p2.waitFor("following", "early");
  p1.send({ cmd: "turn", tag: "stream", id, parts: PARTS, overMs: 1500, message });
  const begun = await p1.waitFor("begun", "stream");

  // Halfway through (as P2 sees it), P3 starts two followers: one plain, one resuming after seq 99.
  await p2.waitFor("live", "early", (e) => e.event.type === "part" && e.event.seq >= PARTS / 2);
  p3.send({ cmd: "follow", tag: "late", id });
  p3.send({ cmd: "follow", tag: "resumed", id, after: { invocation: begun.invocation, seq: 99 } });

  const committed = await p1.waitFor("committed", "stream");
  const [late, early] = await Promise.all([p3.waitFor("following", "late"), p2.waitFor("followed", "early")]);
  await Promise.all([p3.waitFor("followed", "late"), p3.waitFor("followed", "resumed")]);
  assert.ok(late.t < committed.t, "P3 began following while the turn was running");
  assert.deepEqual(committed.seqs, Array.from({ length: PARTS }, (_, i) => i), "emit() returned seqs 0, 1, 2, ...");
  assert.equal(committed.version, 1);

  const expectedEnd = { type: "end", invocation: begun.invocation, outcome: "committed", version: committed.version, status: "idle" };
  for (const [worker, tag, from] of [
    [p2, "early", 0],
    [p3, "late", 0],
    [p3, "resumed", 100],
  ]) {
    const lines = worker.live(tag);
    const events = lines.map((l) => l.event);
    const parts = events.filter((e) => e.type === "part");
    const seqs = parts.map((e) => e.seq);
    const expectedSeqs = Array.from({ length: PARTS - from }, (_, i) => from + i);
    assert.deepEqual(seqs, expectedSeqs, `${tag}: every part from seq ${from} once, in order`);
    for (const part of parts) {
      assert.equal(part.invocation, begun.invocation, `${tag}: part ${part.seq} names the turn's invocation`);
      assert.equal(part.data.i, part.seq, `${tag}: part ${part.seq} carries what was emitted as it`);
      assert.equal(part.data.text, `token ${part.seq} `);
    }
    assert.deepEqual(events.at(-1), expectedEnd, `${tag}: ends with end committed`);
    assert.equal(events.length, expectedSeqs.length + 1, `${tag}: nothing but the parts and the end: ${JSON.stringify(events.filter((e) => e.type !== "part"))}`);
    assert.equal(lines.at(-1).sessionVersion, committed.version, `${tag}: the followed Session is at the new version when end is yielded`);
  }
  assert.equal(early.version, committed.version);
  assert.equal(early.status, "idle");

  // Parts are not history.
  const session = await (await observer("reader-stream")).open(id);
  assert.deepEqual(session.messages(), [message]);
  const history = await session.history();
  assert.deepEqual(history.map((e) => e.type), ["created", "message"], JSON.stringify(history));

  // Figures: P1's emission rate, P2's delivery rate, emit-to-receipt latency in P2 (same machine clock).
  const received = p2.live("early").filter((l) => l.event.type === "part");
  const spanMs = received.at(-1).t - received[0].t;
  const latencies = received.map((l) => l.t - l.event.data.at).sort((a, b) => a - b);
  const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length;
  t.diagnostic(`P1 emitted ${PARTS} parts in ${committed.emittedMs} ms (${((PARTS * 1000) / committed.emittedMs).toFixed(0)} parts/s)`);
  t.diagnostic(`P2 received ${received.length} parts over ${spanMs} ms (${((received.length * 1000) / Math.max(spanMs, 1)).toFixed(0)} parts/s)`);
  t.diagnostic(`emit-to-receipt latency in P2: mean ${mean.toFixed(0)} ms, p50 ${quantile(latencies, 0.5)} ms, p95 ${quantile(latencies, 0.95)} ms, max ${latencies.at(-1)} ms`);
  t.diagnostic(`end: P1 committed at +${committed.t - begun.t} ms, P2 got end at +${p2.live("early").at(-1).t - begun.t} ms, P3 (late) at +${p3.live("late").at(-1).t - begun.t} ms`);
});

test(`a stop from P2 reaches P1's inv.signal within stopPollMs (${STOP_POLL_MS}) + ${STOP_MARGIN_MS} ms; P1 commits; stop() resolves "stopped"; one stopped event`, { timeout: 60_000 }, async (t) => {
  const id = "live-stop";
  const reason = "the user pressed stop";
  const watcher = await (await observer("watcher-stop")).open(id);
  p1.send({
    cmd: "hold",
    tag: "stop",
    id,
    parts: 5,
    onStop: "commit",
    message: { role: "user", content: "a long question" },
    partial: { role: "assistant", content: "a partial answer" },
  });
  const begun = await p1.waitFor("begun", "stop");
  assert.equal(begun.signalAborted, false, "the signal is not aborted before any stop");
  const following = followUntilEnd(watcher);

  p2.send({ cmd: "stop", tag: "stop", id, options: { reason } });
  const [aborted, stopped, committed] = await Promise.all([
    p1.waitFor("aborted", "stop"),
    p2.waitFor("stop-result", "stop"),
    p1.waitFor("committed", "stop"),
  ]);

  const delay = aborted.at - stopped.requestedAt;
  t.diagnostic(`stop-to-signal delay over Redis (P2 stop() called -> P1 signal aborted): ${delay} ms (stopPollMs ${STOP_POLL_MS})`);
  t.diagnostic(`stop() resolved ${stopped.resolvedAt - stopped.requestedAt} ms after it was called`);
  assert.ok(delay < STOP_POLL_MS + STOP_MARGIN_MS, `the stop reached P1 after ${delay} ms, more than ${STOP_POLL_MS} + ${STOP_MARGIN_MS}`);

  assert.equal(aborted.isStop, true, `the signal's reason is a StopRequestedError: ${JSON.stringify(aborted.reason)}`);
  assert.equal(aborted.reason.name, "StopRequestedError");
  assert.equal(aborted.reason.code, "STOP_REQUESTED");
  assert.equal(aborted.reason.reason, reason);
  assert.equal(aborted.reason.by, "p2", "by names the stopper store's owner");

  // stop() resolved once the turn had ended: with P1's commit as its version.
  assert.deepEqual(stopped.result, { outcome: "stopped", invocation: begun.invocation, version: committed.version });

  const reader = await (await observer("reader-stop")).open(id);
  assert.deepEqual(reader.messages(), [
    { role: "user", content: "a long question" },
    { role: "assistant", content: "a partial answer" },
  ]);
  assert.equal(reader.status, "idle");
  const history = await reader.history();
  const stops = history.filter((e) => e.type === "stopped");
  assert.equal(stops.length, 1, `one stopped event: ${JSON.stringify(history)}`);
  assert.equal(stops[0].version, committed.version, "in the version that ended the turn");
  assert.equal(stops[0].reason, reason);
  assert.deepEqual(stops[0].data, { by: "p2", outcome: "stopped" });

  // A follower in this (third) process saw the flushed parts, then end stopped.
  const followed = await following;
  const events = followed.map((f) => f.event);
  assert.deepEqual(
    events,
    [
      ...[0, 1, 2, 3, 4].map((i) => ({ type: "part", invocation: begun.invocation, seq: i, data: { i } })),
      { type: "end", invocation: begun.invocation, outcome: "stopped", version: committed.version, status: "idle" },
    ],
  );

  // The session is free again.
  const next = await reader.begin();
  next.appendMessage({ role: "user", content: "next" });
  assert.equal(await next.commit(), committed.version + 1);
});

test("a stop from P2 reaches a streaming holder at its next flush, long before its stopPollMs (60 s) or heartbeat (40 s): P4 flushes every 20 ms", { timeout: 60_000 }, async (t) => {
  const p4 = await spawnWorker("p4", { stopPollMs: 60_000, leaseMs: 120_000, liveFlushMs: 20 });
  try {
    const id = "live-stop-at-flush";
    p4.send({ cmd: "stream", tag: "flush", id, everyMs: 10, partial: { role: "assistant", content: "partial" } });
    await p4.waitFor("begun", "flush");
    await new Promise((resolve) => setTimeout(resolve, 100)); // a few flushes before the stop
    p2.send({ cmd: "stop", tag: "flush", id, options: { reason: "at the next flush" } });
    const [aborted, stopped] = await Promise.all([p4.waitFor("aborted", "flush"), p2.waitFor("stop-result", "flush")]);
    const delay = aborted.at - stopped.requestedAt;
    t.diagnostic(`stop-to-signal over Redis, holder flushing every 20 ms, stopPollMs 60000: ${delay} ms`);
    assert.equal(aborted.isStop, true);
    // Polling would take up to 60 s, the heartbeat's renewal 40 s: a stop seen this soon was seen by a
    // flush's read of the head.
    assert.ok(delay < 5_000, `the stop reached the streaming holder after ${delay} ms`);
    assert.equal(stopped.result.outcome, "stopped");
  } finally {
    p4.send({ cmd: "exit" });
    await p4.exited;
  }
});

test('a holder that ignores the stop is fenced after graceMs: stop() resolves "fenced", its commit is LEASE_LOST, nothing it staged is visible', { timeout: 60_000 }, async (t) => {
  const id = "live-fence";
  const reason = "fence it";
  const watcher = await (await observer("watcher-fence")).open(id);
  const first = await watcher.begin();
  first.appendMessage("before");
  assert.equal(await first.commit(), 1);

  p1.send({ cmd: "hold", tag: "fence", id, parts: 3, onStop: "ignore", message: { secret: "staged by P1, never committed" } });
  const begun = await p1.waitFor("begun", "fence");
  const following = followUntilEnd(watcher);

  // A grace of several of P1's polls (stopPollMs 200): P1 sees the request before the fence even on a
  // loaded machine (with 300 ms, one late poll made its signal's reason the fence's LeaseLostError).
  p2.send({ cmd: "stop", tag: "fence", id, options: { reason, graceMs: 1500 } });
  const stopped = await p2.waitFor("stop-result", "fence");
  t.diagnostic(`stop({ graceMs: 1500 }) resolved "${stopped.result.outcome}" after ${stopped.resolvedAt - stopped.requestedAt} ms`);
  assert.equal(stopped.result.outcome, "fenced");
  assert.equal(stopped.result.invocation, begun.invocation);
  assert.equal(stopped.result.version, 2, "the stopper's release is the next version");

  const aborted = await p1.waitFor("aborted", "fence");
  assert.equal(aborted.isStop, true, `P1's signal aborted with StopRequestedError: ${JSON.stringify(aborted.reason)}`);
  assert.equal(aborted.reason.code, "STOP_REQUESTED");
  assert.equal(aborted.reason.by, "p2");

  const reader = await (await observer("reader-fence")).open(id);
  const beforeLateCommit = { version: reader.version, messages: reader.messages(), history: await reader.history() };

  p1.send({ cmd: "commit", tag: "fence" });
  const result = await p1.waitFor("commit-result", "fence");
  assert.equal(result.ok, false, `P1's late commit succeeded: ${JSON.stringify(result)}`);
  assert.equal(result.error.code, "LEASE_LOST", JSON.stringify(result.error));
  assert.equal(result.isLeaseLost, true);

  await reader.refresh();
  assert.equal(reader.version, stopped.result.version, "the late commit wrote no version");
  assert.deepEqual(reader.messages(), ["before"], "nothing P1 staged is visible");
  assert.equal(reader.status, "idle");
  const history = await reader.history();
  assert.deepEqual(history, beforeLateCommit.history);
  assert.ok(!JSON.stringify(history).includes("never committed"), "P1's staged message is in no event");
  const stops = history.filter((e) => e.type === "stopped");
  assert.equal(stops.length, 1, JSON.stringify(history));
  assert.equal(stops[0].version, stopped.result.version);
  assert.equal(stops[0].reason, reason);
  assert.deepEqual(stops[0].data, { by: "p2", outcome: "fenced" });

  // A fenced turn ends for followers as stopped, never lost.
  const events = (await following).map((f) => f.event);
  assert.deepEqual(events, [
    ...[0, 1, 2].map((i) => ({ type: "part", invocation: begun.invocation, seq: i, data: { i } })),
    { type: "end", invocation: begun.invocation, outcome: "stopped", version: stopped.result.version, status: "idle" },
  ]);

  // The next turn begins at once, with a higher token.
  const next = await reader.begin();
  assert.ok(next.token > begun.token, `token ${next.token} after P1's ${begun.token}`);
  next.appendMessage("after");
  assert.equal(await next.commit(), stopped.result.version + 1);
  assert.deepEqual(reader.messages(), ["before", "after"]);
});
