// Live turns (API.md "Live turns") in Cloudflare workerd through miniflare: a Durable Object over
// durableObjectKv(ctx.storage) runs a turn that emits parts (POST /turn) while other requests to the
// same object follow the session and relay it to their clients as Server-Sent Events (GET /follow),
// and a third request stops a running turn (POST /stop). The test Worker,
// tests/runtimes/workerd/live-worker.js, is bundled by esbuild with the conditions wrangler uses, and
// runs on the KV-backed and on the SQLite-backed Durable Object storage.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { Miniflare } from "miniflare";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WORKER = join(root, "tests/runtimes/workerd/live-worker.js");
const COMPATIBILITY_DATE = "2025-06-01";
/** The owner of the store in the Durable Object (live-worker.js). */
const OWNER = "live-object";

/** Bundles `entry` as wrangler does: workerd conditions, ESM, `.wasm` files kept as modules. */
async function bundle(entry, outdir) {
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "neutral",
    mainFields: ["browser", "module", "main"],
    conditions: ["workerd", "worker", "browser"],
    loader: { ".wasm": "copy" },
    outdir,
    logLevel: "error",
  });
  return join(outdir, basename(entry));
}

/** `{ status, body }` of a request to `mf` (body: the JSON, or the text when it is not JSON). */
async function call(mf, method, path) {
  const response = await mf.dispatchFetch(`http://worker${path}`, { method });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

/**
 * GET `path` as an SSE client: resolves once the response headers are in. `events` fills with the
 * parsed events ({ event, data, lines, at }) as they arrive; `waitFor(pred)` resolves with the first
 * event satisfying `pred`; `done` resolves once the server closed the stream.
 */
async function openSse(mf, path) {
  const response = await mf.dispatchFetch(`http://worker${path}`);
  const headers = { status: response.status, contentType: response.headers.get("content-type") };
  if (response.status !== 200) return { headers, events: [], done: response.text().then((text) => ({ rest: text })), waitFor: () => Promise.reject(new Error(`status ${response.status}`)) };
  const events = [];
  const waiting = new Set();
  const settle = (closed) => {
    for (const w of waiting) {
      const found = events.find(w.pred);
      if (found) w.resolve(found);
      else if (closed) w.reject(new Error(`the stream closed before the awaited event: ${JSON.stringify(events.map((e) => e.lines))}`));
      else continue;
      waiting.delete(w);
    }
  };
  const done = (async () => {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { value, done: finished } = await reader.read();
        if (finished) break;
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const lines = buffer.slice(0, end).split("\n");
          buffer = buffer.slice(end + 2);
          const field = (name) => lines.filter((line) => line.startsWith(`${name}:`)).map((line) => line.slice(name.length + 1).trimStart());
          const data = field("data");
          events.push({ event: field("event")[0] ?? "message", data: data.length === 1 ? JSON.parse(data[0]) : data, lines, at: performance.now() });
          settle(false);
        }
      }
      return { rest: buffer + decoder.decode() };
    } finally {
      settle(true);
    }
  })();
  const waitFor = (pred) =>
    new Promise((resolve, reject) => {
      waiting.add({ pred, resolve, reject });
      settle(false);
    });
  return { headers, events, done, waitFor };
}

/** Asserts an SSE stream of one followed turn: one `data:` line per event, the parts of seq 0..count-1
 * once and in order, then `end` (nothing else, and the stream closed after it). */
async function assertTurnStream(sse, { invocation, count, end, label }) {
  assert.deepEqual(sse.headers, { status: 200, contentType: "text/event-stream" }, label);
  const { rest } = await sse.done;
  assert.equal(rest, "", `${label}: nothing after the last event`);
  for (const event of sse.events) {
    assert.equal(event.event, "message", `${label}: ${JSON.stringify(event.lines)}`);
    assert.equal(event.lines.length, 1, `${label}: one data: line per LiveEvent: ${JSON.stringify(event.lines)}`);
  }
  const live = sse.events.map((e) => e.data);
  const parts = live.filter((e) => e.type === "part");
  assert.deepEqual(
    parts.map((e) => e.seq),
    Array.from({ length: count }, (_, i) => i),
    `${label}: every part once, in order`,
  );
  for (const part of parts) {
    assert.equal(part.invocation, invocation, `${label}: part ${part.seq} names the turn`);
    assert.deepEqual(part.data, { i: part.seq, text: `token ${part.seq} ` }, `${label}: part ${part.seq} is what was emitted`);
  }
  assert.deepEqual(live.at(-1), { type: "end", invocation, ...end }, `${label}: the stream ends with end`);
  assert.equal(live.length, count + 1, `${label}: nothing but the parts and the end: ${JSON.stringify(live.filter((e) => e.type !== "part"))}`);
}

const temporary = [];
let mf;

before(async () => {
  const outdir = await mkdtemp(join(tmpdir(), "agent-session-live-bundle-"));
  temporary.push(outdir);
  const main = await bundle(WORKER, outdir);
  mf = new Miniflare({
    modules: true,
    scriptPath: main,
    modulesRoot: dirname(main),
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: COMPATIBILITY_DATE,
    durableObjects: { LIVE: "LiveSessions", LIVE_SQL: { className: "LiveSqlSessions", useSQLite: true } },
  });
  await mf.ready;
});

after(async () => {
  await mf?.dispose();
  for (const dir of temporary) await rm(dir, { recursive: true, force: true });
});

for (const backend of ["kv", "sqlite"]) {
  describe(`live turns in a Durable Object (${backend === "kv" ? "KV-backed" : "SQLite-backed"} storage), followed over SSE`, () => {
    const session = `live-${backend}`;
    const q = `session=${session}&backend=${backend}`;
    let first;

    test("POST /turn emits 100 parts over ~1 s and commits; GET /follow (from before the turn, and joining after 30 parts) streams every part once, in order, then end committed", { timeout: 60_000 }, async (t) => {
      const early = await openSse(mf, `/follow?${q}`);
      const started = performance.now();
      const turn = call(mf, "POST", `/turn?${q}&parts=100&overMs=1000`);
      await early.waitFor((e) => e.data?.type === "part" && e.data.seq >= 30);
      const late = await openSse(mf, `/follow?${q}`);
      const { status, body } = await turn;
      const committedAt = performance.now();
      assert.equal(status, 200, JSON.stringify(body));
      first = body;
      assert.equal(body.emitted, 100);
      assert.equal(body.version, 1);
      assert.equal(body.aborted, null);

      const end = { outcome: "committed", version: body.version, status: "idle" };
      await assertTurnStream(early, { invocation: body.invocation, count: 100, end, label: "follower from before the turn" });
      await assertTurnStream(late, { invocation: body.invocation, count: 100, end, label: "follower joining after 30 parts" });

      const parts = early.events.filter((e) => e.data.type === "part");
      const span = parts.at(-1).at - parts[0].at;
      t.diagnostic(`${backend}: SSE client got 100 parts over ${span.toFixed(0)} ms (${((100 * 1000) / span).toFixed(0)} parts/s); turn committed at +${(committedAt - started).toFixed(0)} ms, end read at +${(early.events.at(-1).at - started).toFixed(0)} ms`);

      const read = await call(mf, "GET", `/history?${q}`);
      assert.equal(read.status, 200, JSON.stringify(read.body));
      assert.deepEqual(read.body.messages, [{ role: "assistant", content: "the whole answer" }]);
      assert.deepEqual(
        read.body.history.map((e) => e.type),
        ["created", "message"],
        "parts are not history",
      );
    });

    test('POST /stop during the next turn: stop() resolves "stopped", the turn (watching inv.signal) commits a partial answer, the SSE follower gets end stopped', { timeout: 60_000 }, async (t) => {
      assert.ok(first, "the first turn ran");
      const follower = await openSse(mf, `/follow?${q}`);
      const turn = call(mf, "POST", `/turn?${q}&parts=1000&overMs=20000&watch=1`);
      await follower.waitFor((e) => e.data?.type === "part" && e.data.seq >= 10);
      const reason = "stopped from another request";
      const askedAt = performance.now();
      const stop = await call(mf, "POST", `/stop?${q}&reason=${encodeURIComponent(reason)}`);
      const stopMs = performance.now() - askedAt;
      const { status, body } = await turn;
      assert.equal(status, 200, JSON.stringify(body));
      t.diagnostic(`${backend}: stop() resolved after ${stopMs.toFixed(0)} ms; the turn had emitted ${body.emitted} parts`);

      assert.equal(stop.status, 200, JSON.stringify(stop.body));
      assert.deepEqual(stop.body, { outcome: "stopped", invocation: body.invocation, version: body.version });
      assert.equal(body.version, first.version + 1);
      assert.equal(body.isStop, true, `the turn's signal aborted with StopRequestedError: ${JSON.stringify(body.aborted)}`);
      assert.equal(body.aborted.name, "StopRequestedError");
      assert.equal(body.aborted.reason, reason);
      assert.equal(body.aborted.by, OWNER);
      assert.ok(body.emitted >= 11 && body.emitted < 1000, `the turn stopped early: ${body.emitted} parts`);

      // Only this turn: nothing of the first one (it ended before this follower began).
      await assertTurnStream(follower, {
        invocation: body.invocation,
        count: body.emitted,
        end: { outcome: "stopped", version: body.version, status: "idle" },
        label: "follower of the stopped turn",
      });

      const read = await call(mf, "GET", `/history?${q}`);
      assert.equal(read.status, 200, JSON.stringify(read.body));
      assert.deepEqual(read.body.messages, [
        { role: "assistant", content: "the whole answer" },
        { role: "assistant", content: "a partial answer", parts: body.emitted },
      ]);
      assert.equal(read.body.status, "idle");
      const stops = read.body.history.filter((e) => e.type === "stopped");
      assert.equal(stops.length, 1, JSON.stringify(read.body.history));
      assert.equal(stops[0].version, body.version);
      assert.equal(stops[0].reason, reason);
      assert.deepEqual(stops[0].data, { by: OWNER, outcome: "stopped" });
    });
  });
}
