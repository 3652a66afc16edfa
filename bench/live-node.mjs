// Live turns in Node, in one process, on SessionStore.memory() and SessionStore.kv(memoryKv()):
// (a) what `inv.emit()` costs the holder per part, amortized over a turn of 20,000 small parts (the
//     automatic flushes and the commit included), against JSON.stringify of the same parts pushed to an
//     array (a hand-written buffer);
// (b) bytes written to the HostKv per part (the live log's `t/` records), against the part's JSON;
// (c) part-to-follower latency: a part stamped with performance.now() every 10 ms for 2 s, read by a
//     `session.follow()` of the same process, with liveFlushMs 50 (the default) and 0, against a
//     hand-written relay with the same flush rule (a timer from the first unflushed part) handing the
//     batch to an async iterator, run side by side on the same parts;
// (d) stop-to-signal: `session.stop()` to the holder's `inv.signal` abort, 50 stops, holder idle and
//     holder streaming, against a hand-written stop (the stopper aborts the holder's AbortController).
// Usage: node bench/live-node.mjs [--parts=20000] [--turns=5] [--stream-ms=2000] [--every-ms=10]
//   [--stops=50] [--json=path]
// Figures are ratios to baselines measured in the same run; nothing here is a pass/fail threshold.
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { jsonPath, printer, writeJson } from "./json.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const PARTS = Number(args.parts ?? 20000);
const TURNS = Number(args.turns ?? 5);
const STREAM_MS = Number(args["stream-ms"] ?? 2000);
const EVERY_MS = Number(args["every-ms"] ?? 10);
const STOPS = Number(args.stops ?? 50);
const CHUNK = 100; // a streamed turn yields to the event loop after every CHUNK parts
const LIVE_PREFIX = "t/"; // keys of the live log (src/core/keys.rs), with the store's default prefix ""

const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const tick = () => new Promise((resolve) => setImmediate(resolve));
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const quantile = (xs, q) => (xs.length ? sorted(xs)[Math.max(0, Math.ceil(q * xs.length) - 1)] : NaN);
const median = (xs) => quantile(xs, 0.5);
const f = (x) => (x === undefined || Number.isNaN(x) ? "-" : x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(1));
const ratio = (a, b) => (a && b ? (a / b >= 100 ? (a / b).toFixed(0) : (a / b).toFixed(2)) : "-");

/** A token delta of ~20 bytes of JSON: {"delta":"token 07"}. */
const part = (i) => ({ delta: `token ${String(i % 100).padStart(2, "0")}` });
const utf8 = new TextEncoder();
const jsonBytes = (value) => utf8.encode(JSON.stringify(value)).length;

/** Bytes of a HostKv value: a Uint8Array, or the base64 of the bytes. */
function valueBytes(value) {
  if (typeof value !== "string") return value.byteLength;
  const pad = value.endsWith("==") ? 2 : value.endsWith("=") ? 1 : 0;
  return (value.length / 4) * 3 - pad;
}

/** A memoryKv whose puts to live-log keys are counted: `counter.bytes` and `counter.puts`. */
function countingKv() {
  const kv = memoryKv();
  const counter = { bytes: 0, puts: 0 };
  const counted = {
    capabilities: kv.capabilities,
    get: (key) => kv.get(key),
    put(key, value, options) {
      if (String(key).startsWith(LIVE_PREFIX)) {
        counter.bytes += valueBytes(value);
        counter.puts++;
      }
      return kv.put(key, value, options);
    },
    delete: (key, options) => kv.delete(key, options),
    list: (prefix, options) => kv.list(prefix, options),
  };
  return { kv: counted, counter };
}

/**
 * The stores of one backend: `holder` (with `options`), `other` (a second store on the same backend
 * for the follower and the stopper: the same store for memory, whose stores share nothing; a second
 * SessionStore.kv over the same memoryKv otherwise), and the byte counter (kv only).
 */
async function stores(backend, options = {}) {
  if (backend === "memory") {
    const holder = await SessionStore.memory(options);
    return { holder, other: holder, counter: undefined, close: () => holder.close() };
  }
  const { kv, counter } = countingKv();
  const holder = await SessionStore.kv(kv, { owner: "holder", ...options });
  const other = await SessionStore.kv(kv, { owner: "other" });
  return { holder, other, counter, close: async () => { await holder.close(); await other.close(); } };
}

const BACKENDS = [["memory", "memory"], ["kv", "kv(memoryKv)"]];

// ---------------------------------------------------------------- (a), (b): emit cost and bytes
/** One turn of PARTS parts: µs per part from the first emit to the commit resolved, and of the emit() calls alone. */
async function emitTurn(session, counter, chunk) {
  const inv = await session.begin();
  const before = counter ? { ...counter } : undefined;
  let inEmit = 0;
  const start = now();
  for (let i = 0; i < PARTS; i += chunk) {
    const a = now();
    for (let j = i; j < Math.min(PARTS, i + chunk); j++) inv.emit(part(j));
    inEmit += now() - a;
    if (chunk < PARTS) await tick();
  }
  await inv.commit();
  const total = now() - start;
  return {
    us: (total * 1000) / PARTS,
    emitUs: (inEmit * 1000) / PARTS,
    bytes: counter ? counter.bytes - before.bytes : undefined,
    puts: counter ? counter.puts - before.puts : undefined,
  };
}

/** The baseline: JSON.stringify of the same parts pushed to an array, with the same yields. */
async function bufferTurn(chunk) {
  const buffer = [];
  const start = now();
  for (let i = 0; i < PARTS; i += chunk) {
    for (let j = i; j < Math.min(PARTS, i + chunk); j++) buffer.push(JSON.stringify(part(j)));
    if (chunk < PARTS) await tick();
  }
  const total = now() - start;
  if (buffer.length !== PARTS) throw new Error("lost parts");
  return { us: (total * 1000) / PARTS };
}

const emitRows = [];
for (const [backend, name] of BACKENDS) {
  const { holder, counter, close } = await stores(backend);
  const session = await holder.open("emit");
  for (const [variant, chunk] of [[`yield every ${CHUNK} parts`, CHUNK], ["one synchronous burst", PARTS]]) {
    await emitTurn(session, counter, chunk); // warm-up, untimed
    await bufferTurn(chunk);
    const ours = [];
    const base = [];
    for (let t = 0; t < TURNS; t++) {
      // Interleaved, the order alternating, so that both see the same machine.
      if (t % 2) base.push(await bufferTurn(chunk));
      ours.push(await emitTurn(session, counter, chunk));
      if (!(t % 2)) base.push(await bufferTurn(chunk));
    }
    emitRows.push({
      backend: name, variant, parts: PARTS, partJsonBytes: jsonBytes(part(7)),
      usPerPart: median(ours.map((r) => r.us)), emitUsPerPart: median(ours.map((r) => r.emitUs)),
      bufferUsPerPart: median(base.map((r) => r.us)),
      bytesPerPart: counter ? median(ours.map((r) => r.bytes / PARTS)) : undefined,
      recordsPerTurn: counter ? median(ours.map((r) => r.puts)) : undefined,
    });
    console.error(`[bench] emit ${name}, ${variant}: ${f(emitRows.at(-1).usPerPart)} µs/part`);
  }
  await close();
}

// ---------------------------------------------------------------- (c): part-to-follower latency
/** The hand-written relay: parts buffered, handed over `flushMs` after the first unflushed one (0: in a microtask). */
function handRelay(flushMs) {
  const queue = [];
  let wake;
  let pending = [];
  let scheduled = false;
  let ended = false;
  const hand = () => {
    scheduled = false;
    queue.push(...pending);
    pending = [];
    wake?.();
  };
  return {
    push(p) {
      pending.push(p);
      if (!scheduled) {
        scheduled = true;
        if (flushMs > 0) setTimeout(hand, flushMs);
        else queueMicrotask(hand);
      }
    },
    end() {
      if (pending.length) hand();
      ended = true;
      wake?.();
    },
    async *parts() {
      for (;;) {
        while (queue.length) yield queue.shift();
        if (ended) return;
        await new Promise((resolve) => (wake = resolve));
      }
    },
  };
}

async function followLatency(backend, flushMs) {
  const { holder, other, counter, close } = await stores(backend, { liveFlushMs: flushMs });
  const id = `follow-${flushMs}`;
  const held = await holder.open(id);
  const followed = await other.open(id);
  const count = Math.floor(STREAM_MS / EVERY_MS);
  const ours = [];
  const base = [];
  const events = [];
  const deadline = AbortSignal.timeout(STREAM_MS + 20_000);
  const following = (async () => {
    for await (const event of followed.follow({ signal: deadline })) {
      events.push(event.type);
      if (event.type === "part") {
        ours.push(now() - event.data.t);
        if (event.seq !== ours.length - 1) throw new Error(`${backend}, liveFlushMs ${flushMs}: part ${ours.length - 1} has seq ${event.seq}`);
      }
      if (event.type === "end") break;
    }
  })();
  const relay = handRelay(flushMs);
  const relaying = (async () => {
    for await (const p of relay.parts()) base.push(now() - p.t);
  })();
  await sleep(50); // the follower is waiting before the turn begins
  const inv = await held.begin();
  const before = counter ? { ...counter } : undefined;
  let bytes = 0;
  const start = now();
  for (let k = 0; k < count; k++) {
    const wait = start + k * EVERY_MS - now();
    if (wait > 0) await sleep(wait);
    const p = { t: now() };
    bytes += jsonBytes(p);
    inv.emit(p);
    relay.push(p);
  }
  await sleep(flushMs + 20); // let the last parts reach the follower before the commit forces them
  relay.end();
  await inv.commit();
  await Promise.all([following, relaying]);
  await close();
  if (ours.length !== count) throw new Error(`${backend}, liveFlushMs ${flushMs}: the follower got ${ours.length} of ${count} parts (events: ${events.join(",")})`);
  return {
    backend, liveFlushMs: flushMs, parts: count, everyMs: EVERY_MS,
    medianMs: median(ours), p99Ms: quantile(ours, 0.99), maxMs: Math.max(...ours),
    relayMedianMs: median(base), relayP99Ms: quantile(base, 0.99),
    partJsonBytes: bytes / count,
    bytesPerPart: counter ? (counter.bytes - before.bytes) / count : undefined,
    records: counter ? counter.puts - before.puts : undefined,
  };
}

const latencyRows = [];
for (const [backend, name] of BACKENDS) {
  for (const flushMs of [50, 0]) {
    latencyRows.push({ ...(await followLatency(backend, flushMs)), backend: name });
    console.error(`[bench] follow ${name}, liveFlushMs ${flushMs}: median ${f(latencyRows.at(-1).medianMs)} ms`);
  }
}

// ---------------------------------------------------------------- (d): stop-to-signal
async function stops(backend, streaming) {
  const { holder, other, close } = await stores(backend);
  const id = streaming ? "stop-streaming" : "stop-idle";
  const held = await holder.open(id);
  const stopper = await other.open(id);
  const signal = [];
  const resolved = [];
  const base = [];
  const outcomes = {};
  for (let i = 0; i < STOPS; i++) {
    const inv = await held.begin();
    let committed;
    const aborted = new Promise((resolve) => {
      inv.signal.addEventListener("abort", () => {
        const at = now();
        committed = inv.commit(); // the holder ends the turn with what it has
        resolve({ at, code: inv.signal.reason?.code });
      }, { once: true });
    });
    let streamer;
    if (streaming) {
      streamer = (async () => {
        for (let k = 0; !inv.signal.aborted; k++) {
          inv.emit(part(k));
          await sleep(EVERY_MS);
        }
      })();
    }
    await sleep(5 + Math.random() * 20); // a random moment of the turn
    const start = now();
    const stopped = stopper.stop({ reason: "bench" });
    const { at, code } = await aborted;
    const result = await stopped;
    const end = now();
    await committed;
    await streamer;
    if (code !== "STOP_REQUESTED") throw new Error(`${backend}: the signal's reason is ${code}, not STOP_REQUESTED`);
    outcomes[result.outcome] = (outcomes[result.outcome] ?? 0) + 1;
    signal.push(at - start);
    resolved.push(end - start);

    // The hand-written stop of the same moment: a Map of AbortControllers, the stopper aborts one.
    const controller = new AbortController();
    const heard = new Promise((resolve) => controller.signal.addEventListener("abort", () => resolve(now()), { once: true }));
    const from = now();
    controller.abort(new Error("stop"));
    base.push((await heard) - from);
  }
  await close();
  return {
    holder: streaming ? `emitting a part every ${EVERY_MS} ms` : "idle", stops: STOPS, outcomes,
    signalMedianMs: median(signal), signalP99Ms: quantile(signal, 0.99), signalMaxMs: Math.max(...signal),
    resolvedMedianMs: median(resolved), resolvedP99Ms: quantile(resolved, 0.99),
    abortMedianMs: median(base), abortP99Ms: quantile(base, 0.99),
  };
}

const stopRows = [];
for (const [backend, name] of BACKENDS) {
  for (const streaming of [false, true]) {
    stopRows.push({ backend: name, ...(await stops(backend, streaming)) });
    console.error(`[bench] stop ${name}, holder ${stopRows.at(-1).holder}: median ${f(stopRows.at(-1).signalMedianMs)} ms`);
  }
}

// ---------------------------------------------------------------- report
const out = printer();
const title = `Live turns in Node, one process (${process.version})`;
out.log(`## ${title}

(a) A turn emitting ${PARTS} parts of ${emitRows[0].partJsonBytes} bytes of JSON (\`{"delta":"token 07"}\`), timed from the first
\`emit()\` to \`commit()\` resolved (the automatic flushes included, \`begin()\` not), against the hand-written buffer:
\`JSON.stringify\` of the same parts pushed to an array, with the same yields to the event loop. Medians of ${TURNS} turns
each, interleaved. "emit() alone" is the time inside the \`emit()\` calls. Goal (the issue): ≤ 2 µs/part.

| store | turn | µs/part | emit() alone µs/part | buffer µs/part | ÷ buffer | goal |
|---|---|---:|---:|---:|---:|---:|`);
for (const r of emitRows) {
  out.log(`| ${r.backend} | ${r.variant} | ${f(r.usPerPart)} | ${f(r.emitUsPerPart)} | ${f(r.bufferUsPerPart)} | ${ratio(r.usPerPart, r.bufferUsPerPart)} | ≤ 2 |`);
}
out.log(`
(b) Bytes put to the HostKv under the live log's keys (\`${LIVE_PREFIX}…\`, counted by a wrapper around memoryKv) per part
emitted, against the part's own JSON; "records" = live-log puts in the turn (one per flush).

| store | turn | records | part JSON bytes | bytes written/part | ÷ part JSON |
|---|---|---:|---:|---:|---:|`);
for (const r of emitRows.filter((r) => r.bytesPerPart !== undefined)) {
  out.log(`| ${r.backend} | ${r.variant}, ${r.parts} parts | ${r.recordsPerTurn} | ${r.partJsonBytes} | ${f(r.bytesPerPart)} | ${ratio(r.bytesPerPart, r.partJsonBytes)} |`);
}
for (const r of latencyRows.filter((r) => r.bytesPerPart !== undefined)) {
  out.log(`| ${r.backend} | a part every ${r.everyMs} ms, liveFlushMs ${r.liveFlushMs}, ${r.parts} parts | ${r.records} | ${f(r.partJsonBytes)} | ${f(r.bytesPerPart)} | ${ratio(r.bytesPerPart, r.partJsonBytes)} |`);
}
out.log(`
(c) Part-to-follower latency in one process: the holder emits \`{ t: performance.now() }\` every ${EVERY_MS} ms for ${STREAM_MS / 1000} s;
a \`session.follow()\` of the same process (memory: the same store; kv: a second SessionStore.kv on the same memoryKv)
measures from \`t\` to the part being yielded. The relay is the hand-written equivalent, run side by side on the same
parts: a buffer handed over \`liveFlushMs\` after its first unflushed part (0: in a microtask) to an async iterator.

| store | liveFlushMs | parts | median ms | p99 ms | max ms | relay median ms | relay p99 ms | median ÷ relay | p99 ÷ relay |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|`);
for (const r of latencyRows) {
  out.log(`| ${r.backend} | ${r.liveFlushMs} | ${r.parts} | ${f(r.medianMs)} | ${f(r.p99Ms)} | ${f(r.maxMs)} | ${f(r.relayMedianMs)} | ${f(r.relayP99Ms)} | ${ratio(r.medianMs, r.relayMedianMs)} | ${ratio(r.p99Ms, r.relayP99Ms)} |`);
}
out.log(`
(d) Stop-to-signal in one process: \`session.stop()\` called on a session object of the other store (memory: the same
store) at a random moment 5 to 25 ms into the turn, to the holder's \`inv.signal\` "abort" event; the holder then
commits, and "stop() resolved" is from the call to \`stop()\` resolving. ${STOPS} stops per row. The baseline is the
hand-written stop in one process: the stopper calls \`abort()\` on the holder's AbortController. Goal (API.md): at once.

| store | holder | outcomes | signal median ms | signal p99 ms | signal max ms | stop() resolved median ms | p99 ms | abort() median ms | signal median ÷ abort() |
|---|---|---|---:|---:|---:|---:|---:|---:|---:|`);
for (const r of stopRows) {
  out.log(`| ${r.backend} | ${r.holder} | ${Object.entries(r.outcomes).map(([k, v]) => `${v} ${k}`).join(", ")} | ${f(r.signalMedianMs)} | ${f(r.signalP99Ms)} | ${f(r.signalMaxMs)} | ${f(r.resolvedMedianMs)} | ${f(r.resolvedP99Ms)} | ${f(r.abortMedianMs)} | ${ratio(r.signalMedianMs, r.abortMedianMs)} |`);
}
out.log(`
Command: \`${process.env.BENCH_COMMAND ?? `node bench/live-node.mjs ${process.argv.slice(2).filter((a) => !a.startsWith("--json")).join(" ")}`.trim()}\`
Date: ${new Date().toISOString()}`);
writeJson(jsonPath(), import.meta.url, {
  name: "live-node", title, markdown: out.text(),
  data: { parts: PARTS, turns: TURNS, streamMs: STREAM_MS, everyMs: EVERY_MS, stops: STOPS, emit: emitRows, latency: latencyRows, stop: stopRows },
});
