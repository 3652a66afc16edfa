// Contention on one session: 1, 2 and 4 contenders, each looping `invoke` with `onBusy: { waitMs }` for
// a fixed number of turns, (i) as tabs of one headless Chromium on SessionStore.indexedDb
// (bench/contention-tabs.mjs) and (ii) as Node processes on SessionStore.kv(redisKv(client)) against a
// real redis-server this script starts and stops (bench/contention-redis.mjs). Per round: turns
// committed, median and p95 latency of a committed turn (the wait for the guard included), each as a
// ratio to 1 contender of the same backend and run; then the invariant on the recorded history
// (bench/contention-loop.mjs), which fails the script loudly when it does not hold.
// Usage: node bench/contention.mjs [--contenders=1,2,4] [--turns=100] [--warmup=10] [--wait-ms=5000]
//   [--backends=tabs,redis] [--json=path]
// Figures are ratios to baselines measured in the same run; nothing here is a pass/fail threshold.
import { startBrowser } from "../tests/browser/chromium.mjs";
import { startRedis } from "../tests/js/adapters/_redis-server.mjs";
import { contendProcesses } from "./contention-redis.mjs";
import { contendTabs } from "./contention-tabs.mjs";
import { MESSAGES_PER_TURN, violations } from "./contention-loop.mjs";
import { jsonPath, printer, writeJson } from "./json.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const contenders = (args.contenders ?? "1,2,4").split(",").map(Number);
const turns = Number(args.turns ?? 100);
const warmup = Number(args.warmup ?? 10);
const waitMs = Number(args["wait-ms"] ?? 5000);
const backends = (args.backends ?? "tabs,redis").split(",");

const sorted = (xs) => [...xs].sort((a, b) => a - b);
const f = (x) => (x === undefined || Number.isNaN(x) ? "-" : x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(1));
const quantile = (xs, q) => sorted(xs)[Math.max(0, Math.ceil(q * xs.length) - 1)];

/** The figures of one round, and its violations of the invariant. */
function summarize(backend, n, round) {
  const committed = round.records.filter((r) => r.version !== undefined);
  const failed = round.records.filter((r) => r.version === undefined);
  const times = committed.map((r) => r.ms);
  return {
    backend, contenders: n, attempted: round.records.length, committed: committed.length,
    failed: failed.length, firstFailure: failed[0]?.error,
    medianMs: quantile(times, 0.5), p95Ms: quantile(times, 0.95), maxMs: Math.max(...times),
    wallMs: round.endedAt - round.startAt, committedPerSecond: committed.length / ((round.endedAt - round.startAt) / 1000),
    violations: violations(round.records, round.final, { startVersion: round.startVersion }),
  };
}

const rows = [];
const pageErrors = [];
let chromium, userAgent, crossOriginIsolated;
if (backends.includes("tabs")) {
  const chrome = await startBrowser();
  chromium = chrome.browser.version();
  try {
    for (const n of contenders) {
      const round = await contendTabs(chrome, { contenders: n, turns, warmup, waitMs });
      ({ userAgent, crossOriginIsolated } = round);
      pageErrors.push(...round.errors);
      rows.push(summarize("IndexedDB, tabs", n, round));
      console.error(`[bench] ${n} tab(s): ${rows.at(-1).committed} turns committed, median ${f(rows.at(-1).medianMs)} ms`);
    }
  } finally {
    await chrome.stop();
  }
}
if (backends.includes("redis")) {
  const server = await startRedis();
  try {
    for (const n of contenders) {
      const round = await contendProcesses(server.url, { id: `contended-${n}-${Date.now().toString(36)}`, contenders: n, turns, warmup, waitMs });
      rows.push(summarize("Redis, processes", n, round));
      console.error(`[bench] ${n} process(es): ${rows.at(-1).committed} turns committed, median ${f(rows.at(-1).medianMs)} ms`);
    }
  } finally {
    await server.stop();
  }
}

const baseOf = (row) => rows.find((r) => r.backend === row.backend && r.contenders === contenders[0]);
const out = printer();
out.log(`## Contention on one session: tabs on IndexedDB, processes on Redis

Every contender loops \`session.invoke(fn, { onBusy: { waitMs: ${waitMs} } })\` ${turns} times on one shared session, fn
appending ${MESSAGES_PER_TURN} messages of ~200 bytes; all start together after ${warmup} warm-up turns on a session of
their own. Latency = from the call to its settling, the wait for the guard included, over every committed turn of
every contender; ratios are to ${contenders[0]} contender${contenders[0] === 1 ? "" : "s"} of the same backend. Tabs: pages of one browser context of
headless Chromium${chromium ? ` ${chromium}` : ""}, each with its own \`SessionStore.indexedDb\` on one fresh database${crossOriginIsolated ? " (cross-origin isolated)" : ""}.
Processes: Node ${process.version} processes, each with its own \`SessionStore.kv(redisKv(client))\` (node-redis) on one
redis-server started for this run. A waiting begin tries again when the holder's lease would end, but at least
every 250 ms (\`retry_pause\` in src/core/guard.rs), and at once on news of the session in its realm (a commit
or release there, a commit notice from another tab). "history" = the invariant checked on the records and
the stored session: versions gapless, tokens rising, messages = committed turns × ${MESSAGES_PER_TURN}, each naming its commit.

| backend | contenders | turns committed | not committed | median ms | p95 ms | max ms | median ÷ ${contenders[0]} | p95 ÷ ${contenders[0]} | committed turns/s | history |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |`);
for (const row of rows) {
  const base = baseOf(row);
  out.log(`| ${row.backend} | ${row.contenders} | ${row.committed} of ${row.attempted} | ${row.failed} | ${f(row.medianMs)} | ${f(row.p95Ms)} | ${f(row.maxMs)} | ` +
    `${base ? (row.medianMs / base.medianMs).toFixed(2) : "-"} | ${base ? (row.p95Ms / base.p95Ms).toFixed(2) : "-"} | ${row.committedPerSecond.toFixed(0)} | ${row.violations.length ? "VIOLATED" : "holds"} |`);
}
out.log(`
Command: \`${["node", "bench/contention.mjs", ...process.argv.slice(2)].join(" ")}\`
Date: ${new Date().toISOString()}`);
writeJson(jsonPath(), import.meta.url, {
  name: "contention", title: "Contention on one session: tabs on IndexedDB, processes on Redis", chromium, userAgent,
  pageErrors: pageErrors.length, markdown: out.text(), data: { turns, warmup, waitMs, contenders, messagesPerTurn: MESSAGES_PER_TURN, rows },
});

for (const row of rows.filter((r) => r.failed)) console.error(`${row.backend}, ${row.contenders}: ${row.failed} turns not committed, first: ${row.firstFailure}`);
for (const error of pageErrors) console.error(`page error: ${error.stack ?? error}`);
const broken = rows.filter((r) => r.violations.length);
if (broken.length) {
  const detail = broken.map((r) => `${r.backend}, ${r.contenders} contenders:\n  ${r.violations.join("\n  ")}`).join("\n");
  throw new Error(`the contention invariant does not hold:\n${detail}`);
}
if (pageErrors.length) process.exitCode = 1;
