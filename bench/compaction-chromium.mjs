// Long sessions on IndexedDB (headless Chromium): a session of 10,000 messages (5000 turns of 2
// messages of ~200 bytes of JSON, one commit each, SessionStore.indexedDb with its defaults) is compacted
// to 50 messages (one summary message and the last 49; API.md "Compaction and retention") and then
// pruned (`prune({ before: latest })`). Before, after the compaction and after the prune it reports what
// the session stores (its records in the IndexedDB object store: count and bytes, key + record bytes, in
// all and for snapshots, keys "s/" and "g/") and the cold load (a new store, with its own connection and
// cache, opening the session and reading messages(); median of --loads, after one untimed), each as a
// ratio to the same figure before the compaction, and the compacted-and-pruned session also against a
// new session holding the same number of messages (written in turns of 2). The compact and prune calls
// are timed against an ordinary turn of the same session measured just before.
// The page is bench/compaction-chromium-tab.mjs in tests/browser/blank.html, cross-origin isolated.
// Usage: node bench/compaction-chromium.mjs [--turns=5000] [--per-turn=2] [--keep=50] [--loads=9] [--json=path]
// Figures are ratios to baselines measured in the same run; nothing here is a pass/fail threshold.
import { startBrowser } from "../tests/browser/chromium.mjs";
import { jsonPath, printer, writeJson } from "./json.mjs";
import { crossOriginIsolate } from "./page.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const TURNS = Number(args.turns ?? 5000);
const PER_TURN = Number(args["per-turn"] ?? 2);
const KEEP = Number(args.keep ?? 50);
const LOADS = Number(args.loads ?? 9);
const PAGE = "/tests/browser/blank.html";

const f = (x) => (x === undefined || x === null || Number.isNaN(x) ? "-" : x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(1));
const ratio = (a, b) => {
  if (!b) return "-";
  const r = a / b;
  return r >= 100 ? r.toFixed(0) : r >= 1 ? r.toFixed(2) : r >= 0.01 ? r.toFixed(3) : r.toExponential(1);
};
const int = (x) => x.toLocaleString("en-US");

const chrome = await startBrowser();
const chromium = chrome.browser.version();
const tabs = await chrome.context();
let setup;
const errors = [];
const rows = [];
let written, compacted, pruned, short;
try {
  await crossOriginIsolate(tabs.context, PAGE);
  const page = await tabs.page(PAGE, "bench");
  page.on("console", (message) => message.text().startsWith("[bench]") && console.error(message.text()));
  await page.evaluate(async () => {
    window.bench = await import("/bench/compaction-chromium-tab.mjs");
  });
  const database = `bench-compaction-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  setup = await page.evaluate((o) => window.bench.setup(o), { database });
  const call = (name, arg) => page.evaluate(([name, arg]) => window.bench[name](arg), [name, arg]);
  const measure = async (label, id) => {
    const stored = await call("stored", { id });
    const load = await call("coldLoads", { id, loads: LOADS });
    rows.push({ label, id, messages: load.messages, ...stored, loadMedianMs: load.medianMs, loadTimesMs: load.times });
    console.error(`[bench] ${label}: ${load.messages} messages, ${stored.records} records, ${stored.bytes} bytes, cold load median ${f(load.medianMs)} ms`);
  };

  console.error(`[bench] writing ${TURNS} turns of ${PER_TURN} messages`);
  written = await call("write", { id: "long", turns: TURNS, perTurn: PER_TURN });
  await measure("before: the whole session", "long");

  short = await call("write", { id: "short", turns: Math.ceil(KEEP / 2), perTurn: 2 });
  await measure(`baseline: a new session of ${KEEP} messages`, "short");

  compacted = await call("compact", { id: "long", keep: KEEP });
  await measure(`compacted to ${KEEP} messages, not pruned`, "long");

  pruned = await call("prune", { id: "long" });
  await measure(`compacted and pruned (prune({ before: latest }))`, "long");

  await page.evaluate(() => window.bench.close());
  await new Promise((resolve) => setTimeout(resolve, 200));
  errors.push(...page.errors);
} finally {
  // The context is off the record (IndexedDB in memory): closing it drops the database.
  await tabs.close();
  await chrome.stop();
}

const [before, baseline, afterCompact, afterPrune] = rows;
const out = printer();
const title = "Long sessions: compaction and pruning on IndexedDB (headless Chromium)";
out.log(`## ${title}

One page of headless Chromium ${chromium}${setup.crossOriginIsolated ? " (cross-origin isolated)" : ""}, \`SessionStore.indexedDb\` with its defaults on a fresh
database. The session was written as ${int(TURNS)} turns of ${PER_TURN} messages of ~200 bytes of JSON (one commit each, ${int(written.messages)} messages,
version ${int(written.version)}, ${f(written.writeMs / 1000)} s), then ${21} more turns of 2, then compacted in one turn to ${KEEP} messages (a summary
message and the last ${KEEP - 1}), then pruned with \`prune({ before: latest })\`. Stored: the session's records in the
IndexedDB object store, sized as key length + record bytes; snapshot records are those under "s/" and "g/". Cold load:
a new store (its own connection and cache) opening the session and reading \`messages()\`, median of ${LOADS} after one
untimed. The baseline row is a new session of ${KEEP} messages written in turns of 2, in the same database.

| session | messages | records | stored bytes | snapshot records | snapshot bytes | batch records | cold load median ms |
|---|---:|---:|---:|---:|---:|---:|---:|`);
for (const r of rows) {
  out.log(`| ${r.label} | ${int(r.messages)} | ${int(r.records)} | ${int(r.bytes)} | ${int(r.snapshotRecords)} | ${int(r.snapshotBytes)} | ${int(r.batchRecords)} | ${f(r.loadMedianMs)} |`);
}
const ratioRows = [
  ["compacted, not pruned ÷ before", afterCompact, before],
  ["compacted and pruned ÷ before", afterPrune, before],
  [`compacted and pruned ÷ a new session of ${KEEP} messages`, afterPrune, baseline],
];
out.log(`
| ratio | stored bytes | records | snapshot bytes | cold load |
|---|---:|---:|---:|---:|`);
for (const [label, a, b] of ratioRows) {
  out.log(`| ${label} | ${ratio(a.bytes, b.bytes)} | ${ratio(a.records, b.records)} | ${ratio(a.snapshotBytes, b.snapshotBytes)} | ${ratio(a.loadMedianMs, b.loadMedianMs)} |`);
}
out.log(`
| operation | ms | ordinary 2-message turn of the same session, median of 21 just before, ms | ÷ turn |
|---|---:|---:|---:|
| the compacting turn (begin, compact(), commit) | ${f(compacted.compactMs)} | ${f(compacted.turnMedianMs)} | ${ratio(compacted.compactMs, compacted.turnMedianMs)} |
| prune({ before: latest }), ${int(pruned.removed)} records removed | ${f(pruned.pruneMs)} | ${f(compacted.turnMedianMs)} | ${ratio(pruned.pruneMs, compacted.turnMedianMs)} |

Command: \`${process.env.BENCH_COMMAND ?? `node bench/compaction-chromium.mjs ${process.argv.slice(2).filter((a) => !a.startsWith("--json")).join(" ")}`.trim()}\`
Date: ${new Date().toISOString()}`);
writeJson(jsonPath(), import.meta.url, {
  name: "compaction-chromium", title, chromium, userAgent: setup.userAgent, pageErrors: errors.length, markdown: out.text(),
  data: {
    turns: TURNS, perTurn: PER_TURN, keep: KEEP, loads: LOADS, crossOriginIsolated: setup.crossOriginIsolated,
    written, compacted, pruned, short, rows,
    ratios: Object.fromEntries(ratioRows.map(([label, a, b]) => [label, {
      bytes: a.bytes / b.bytes, records: a.records / b.records, snapshotBytes: a.snapshotBytes / b.snapshotBytes, load: a.loadMedianMs / b.loadMedianMs,
    }])),
  },
});
for (const error of errors) console.error(`page error: ${error.stack ?? error}`);
if (errors.length) process.exitCode = 1;
