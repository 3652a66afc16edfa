// Live turns across two tabs of headless Chromium on IndexedDB: two pages of one browser context
// (sharing IndexedDB, Web Locks and BroadcastChannel), each with its own SessionStore.indexedDb on
// one fresh database (bench/live-chromium-tab.mjs, loaded into tests/browser/blank.html, cross-origin
// isolated like the other bench pages). One tab holds the turns, the other stops and follows them.
// (i) Part-to-follower: the holder emits a part stamped with its clock every 10 ms for 2 s, with
//     liveFlushMs 50 (the default) and 0; `session.follow()` in the other tab measures to the part
//     being yielded, against a hand-written relay run side by side on the same parts: the same flush
//     rule, each batch posted on a BroadcastChannel.
// (ii) Stop-to-signal: `session.stop()` in one tab to the holder's `inv.signal` "abort" in the other,
//     50 stops, holder idle and holder streaming, against a hand-written stop posted on a
//     BroadcastChannel at the same moment.
// The tabs' clocks (performance.timeOrigin + performance.now()) are aligned by BroadcastChannel pings.
// Usage: node bench/live-chromium.mjs [--stops=50] [--stream-ms=2000] [--every-ms=10] [--json=path]
// Figures are ratios to baselines measured in the same run; nothing here is a pass/fail threshold.
import { startBrowser } from "../tests/browser/chromium.mjs";
import { jsonPath, printer, writeJson } from "./json.mjs";
import { crossOriginIsolate } from "./page.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const STOPS = Number(args.stops ?? 50);
const STREAM_MS = Number(args["stream-ms"] ?? 2000);
const EVERY_MS = Number(args["every-ms"] ?? 10);
const PAGE = "/tests/browser/blank.html";

const sorted = (xs) => [...xs].sort((a, b) => a - b);
const quantile = (xs, q) => (xs.length ? sorted(xs)[Math.max(0, Math.ceil(q * xs.length) - 1)] : NaN);
const median = (xs) => quantile(xs, 0.5);
const f = (x) => (x === undefined || Number.isNaN(x) ? "-" : x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(1));
const ratio = (a, b) => (a && b ? (a / b >= 100 ? (a / b).toFixed(0) : (a / b).toFixed(2)) : "-");

const chrome = await startBrowser();
const chromium = chrome.browser.version();
const tabs = await chrome.context();
const errors = [];
let setup, clockMs;
const latencyRows = [];
const stopRows = [];
try {
  await crossOriginIsolate(tabs.context, PAGE);
  const database = `bench-live-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const pages = [];
  for (const owner of ["holder", "other"]) {
    const page = await tabs.page(PAGE, owner);
    page.on("console", (message) => message.text().startsWith("[bench]") && console.error(message.text()));
    await page.evaluate(async () => {
      window.bench = await import("/bench/live-chromium-tab.mjs");
    });
    setup = await page.evaluate((o) => window.bench.setup(o), { database, owner });
    pages.push(page);
  }
  const [holderTab, otherTab] = pages;
  const inHolder = (fn, arg) => holderTab.evaluate(fn, arg);
  const inOther = (fn, arg) => otherTab.evaluate(fn, arg);
  await inHolder(() => window.bench.answerClock());
  clockMs = await inOther(() => window.bench.calibrate());
  console.error(`[bench] clocks aligned within ±${f(clockMs)} ms`);

  // ---------------------------------------------------------------- (i) part-to-follower
  for (const liveFlushMs of [50, 0]) {
    const id = `follow-${liveFlushMs}`;
    const count = Math.floor(STREAM_MS / EVERY_MS);
    await inOther((o) => window.bench.follow(o), { id, count });
    await new Promise((resolve) => setTimeout(resolve, 50)); // the follower is waiting before the turn begins
    await inHolder((o) => window.bench.stream(o), { id, liveFlushMs, count, everyMs: EVERY_MS });
    const { ours, base, events } = await inOther(() => window.bench.followed());
    if (ours.length !== count) throw new Error(`liveFlushMs ${liveFlushMs}: the follower got ${ours.length} of ${count} parts (events: ${events.join(",")})`);
    if (base.length !== count) throw new Error(`liveFlushMs ${liveFlushMs}: the relay delivered ${base.length} of ${count} parts`);
    latencyRows.push({
      liveFlushMs, parts: count, everyMs: EVERY_MS,
      medianMs: median(ours), p99Ms: quantile(ours, 0.99), maxMs: Math.max(...ours),
      relayMedianMs: median(base), relayP99Ms: quantile(base, 0.99),
    });
    console.error(`[bench] follow, liveFlushMs ${liveFlushMs}: median ${f(latencyRows.at(-1).medianMs)} ms`);
  }

  // ---------------------------------------------------------------- (ii) stop-to-signal
  let n = 0;
  for (const streaming of [false, true]) {
    const id = streaming ? "stop-streaming" : "stop-idle";
    const signal = [], resolved = [], bc = [];
    const outcomes = {};
    for (let i = 0; i < STOPS; i++) {
      n++;
      await inHolder((o) => window.bench.hold(o), { id, n, streaming, everyMs: EVERY_MS });
      const stop = await inOther((o) => window.bench.stop(o), { id, n, delayMs: 5 + Math.random() * 20 });
      const seen = await inHolder((k) => window.bench.stopped(k), n);
      if (seen.code !== "STOP_REQUESTED") throw new Error(`stop ${n}: the signal's reason is ${seen.code}, not STOP_REQUESTED`);
      if (seen.error) throw new Error(`stop ${n}: the holder's commit failed: ${seen.error}`);
      outcomes[stop.outcome] = (outcomes[stop.outcome] ?? 0) + 1;
      signal.push(seen.signalAt - stop.start);
      resolved.push(stop.end - stop.start);
      bc.push(seen.bcAt - stop.start);
    }
    stopRows.push({
      holder: streaming ? `emitting a part every ${EVERY_MS} ms` : "idle", stops: STOPS, outcomes,
      signalMedianMs: median(signal), signalP99Ms: quantile(signal, 0.99), signalMaxMs: Math.max(...signal),
      resolvedMedianMs: median(resolved), resolvedP99Ms: quantile(resolved, 0.99),
      bcMedianMs: median(bc), bcP99Ms: quantile(bc, 0.99),
    });
    console.error(`[bench] stop, holder ${stopRows.at(-1).holder}: median ${f(stopRows.at(-1).signalMedianMs)} ms, p99 ${f(stopRows.at(-1).signalP99Ms)} ms`);
  }
  for (const page of pages) await page.evaluate(() => window.bench.close());
  await new Promise((resolve) => setTimeout(resolve, 200)); // let late errors of the teardown arrive
  errors.push(...pages.flatMap((page) => page.errors));
} finally {
  // The context is off the record (IndexedDB in memory): closing it drops the database.
  await tabs.close();
  await chrome.stop();
}

const out = printer();
const title = "Live turns across two tabs on IndexedDB (headless Chromium)";
out.log(`## ${title}

Two tabs (pages of one browser context) of headless Chromium ${chromium}${setup.crossOriginIsolated ? " (cross-origin isolated)" : ""}, each with its own
\`SessionStore.indexedDb\` on one fresh database: one holds the turns, the other follows and stops them. Times are
between the two tabs' clocks, aligned by BroadcastChannel pings to within ±${f(clockMs)} ms.

(i) Part-to-follower: the holder tab emits \`{ t }\` (its clock) every ${EVERY_MS} ms for ${STREAM_MS / 1000} s; \`session.follow()\` in the
other tab measures from \`t\` to the part being yielded. The relay is the hand-written equivalent, run side by side on
the same parts: a buffer posted on a BroadcastChannel \`liveFlushMs\` after its first unflushed part (0: in a
microtask). Goal (the issue): median ≤ 20 ms.

| liveFlushMs | parts | median ms | p99 ms | max ms | relay median ms | relay p99 ms | median ÷ relay | p99 ÷ relay | goal |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|`);
for (const r of latencyRows) {
  out.log(`| ${r.liveFlushMs} | ${r.parts} | ${f(r.medianMs)} | ${f(r.p99Ms)} | ${f(r.maxMs)} | ${f(r.relayMedianMs)} | ${f(r.relayP99Ms)} | ${ratio(r.medianMs, r.relayMedianMs)} | ${ratio(r.p99Ms, r.relayP99Ms)} | median ≤ 20 ms |`);
}
out.log(`
(ii) Stop-to-signal: from \`session.stop()\` in one tab to the holder's \`inv.signal\` "abort" event in the other, 5 to
25 ms into the turn; the holder then commits, and "stop() resolved" is from the call to \`stop()\` resolving.
${STOPS} stops per row. The baseline is the hand-written stop between the same tabs, posted on a BroadcastChannel at the
same moment. Goal (API.md and the issue): p99 ≤ 100 ms.

| holder | outcomes | signal median ms | signal p99 ms | signal max ms | stop() resolved median ms | p99 ms | BroadcastChannel median ms | BroadcastChannel p99 ms | median ÷ BroadcastChannel | p99 ÷ BroadcastChannel | goal |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|`);
for (const r of stopRows) {
  out.log(`| ${r.holder} | ${Object.entries(r.outcomes).map(([k, v]) => `${v} ${k}`).join(", ")} | ${f(r.signalMedianMs)} | ${f(r.signalP99Ms)} | ${f(r.signalMaxMs)} | ` +
    `${f(r.resolvedMedianMs)} | ${f(r.resolvedP99Ms)} | ${f(r.bcMedianMs)} | ${f(r.bcP99Ms)} | ${ratio(r.signalMedianMs, r.bcMedianMs)} | ${ratio(r.signalP99Ms, r.bcP99Ms)} | p99 ≤ 100 ms |`);
}
out.log(`
Command: \`${process.env.BENCH_COMMAND ?? `node bench/live-chromium.mjs ${process.argv.slice(2).filter((a) => !a.startsWith("--json")).join(" ")}`.trim()}\`
Date: ${new Date().toISOString()}`);
writeJson(jsonPath(), import.meta.url, {
  name: "live-chromium", title, chromium, userAgent: setup.userAgent, pageErrors: errors.length, markdown: out.text(),
  data: { stops: STOPS, streamMs: STREAM_MS, everyMs: EVERY_MS, clockMs, crossOriginIsolated: setup.crossOriginIsolated, latency: latencyRows, stop: stopRows },
});
// An uncaught error in a page does not void the figures, but it must not pass unseen.
for (const error of errors) console.error(`page error: ${error.stack ?? error}`);
if (errors.length) process.exitCode = 1;
