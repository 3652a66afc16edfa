// Writes bench/RESULTS.md and its charts (bench/charts/*.svg, drawn by bench/chart.mjs) from the JSON
// files the benchmarks wrote with --json (scripts/bench puts them in bench/results/, with runs.tsv: one
// line per benchmark run, "name<TAB>exit code<TAB>seconds<TAB>command"). A benchmark without its JSON is
// listed as not reported. Usage: node bench/report.mjs [--results=bench/results]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { gzipSync } from "node:zlib";
import { lineChart } from "./chart.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const bench = new URL("./", import.meta.url);
const results = args.results ? new URL(`${args.results.replace(/\/?$/, "/")}`, `file://${process.cwd()}/`) : new URL("results/", bench);

// In the order scripts/bench runs them, which is the order of RESULTS.md.
const NAMES = ["idb", "idb-alloc", "open-by-id", "open-by-id-idb", "turn-node", "kv-latency", "kv-latency-redis", "langgraph", "langgraph-threads", "openai-agents", "strands", "strands-tools", "strands-per-request", "contention",
  "live-node", "live-redis", "live-chromium", "compaction-chromium", "compact-cut", "state-growth", "long-session", "encryption-chromium"];
const LIVE = ["live-node", "live-redis", "live-chromium"];
const LONG = ["compaction-chromium", "compact-cut", "state-growth", "long-session"];
const SAFETY = ["encryption-chromium"];
const reports = Object.fromEntries(NAMES.map((name) => {
  const file = new URL(`${name}.json`, results);
  return [name, existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined];
}));
const runsFile = new URL("runs.tsv", results);
const runs = existsSync(runsFile)
  ? readFileSync(runsFile, "utf8").trim().split("\n").filter(Boolean).map((line) => {
      const [name, code, seconds, command] = line.split("\t");
      return { name, code: Number(code), seconds: Number(seconds), command };
    })
  : NAMES.filter((name) => reports[name]).map((name) => ({ name, code: 0, seconds: reports[name].seconds, command: reports[name].command }));

// ---- charts
mkdirSync(new URL("charts/", bench), { recursive: true });
const charts = [];
function chart(file, alt, options) {
  writeFileSync(new URL(`charts/${file}`, bench), lineChart(options));
  charts.push(`![${alt}](charts/${file})`);
}

const IDB_SYSTEMS = [["agent-session", "agent-session (SessionStore.indexedDb)"], ["idb", "(b) hand-written idb lease + append"], ["idb-keyval", "(a) idb-keyval, whole session per turn"],
  ["dexie", "(c) Dexie, the same protocol as (b)"]];
if (reports.idb) {
  const sizes = reports.idb.data.sizes;
  // An idb.json from before Dexie was measured has no (c): no line for it.
  const idbSeries = (what) => IDB_SYSTEMS.filter(([key]) => sizes.some((s) => s.impls[key]))
    .map(([key, name]) => ({ name, points: sizes.map((s) => [s.size, s.impls[key]?.[what]?.median]) }));
  chart("idb-turn.svg", "IndexedDB turn (median ms) against session length", {
    title: "IndexedDB: one turn (begin + 2 messages + commit), headless Chromium",
    xLabel: "messages in the session", yLabel: "median turn, ms", series: idbSeries("turn"),
  });
  chart("idb-load.svg", "IndexedDB cold load (median ms) against session length", {
    title: "IndexedDB: cold load (new store/connection, read every message)",
    xLabel: "messages in the session", yLabel: "median cold load, ms", series: idbSeries("load"),
  });
}
if (reports["turn-node"]) {
  const rows = reports["turn-node"].data.rows;
  chart("node-turn.svg", "Node server turn (median µs) against session length", {
    title: "Node: one server turn (open by id, read, 2 messages + 1 state key, commit)",
    xLabel: "messages in the session", yLabel: "median turn, µs",
    series: [
      { name: "agent-session, SessionStore.memory()", points: rows.map((r) => [r.size, r.memoryUs]) },
      { name: "agent-session, SessionStore.kv(memoryKv())", points: rows.map((r) => [r.size, r.kvUs]) },
      { name: "@openai/agents MemorySession (getItems + addItems)", points: rows.map((r) => [r.size, r.memorySessionUs]) },
    ],
  });
}
if (reports.contention) {
  const { rows, contenders } = reports.contention.data;
  const backends = [...new Set(rows.map((r) => r.backend))];
  chart("contention.svg", "Latency of a committed turn against the number of contenders", {
    title: "Contention on one session: latency of a committed turn (wait included)",
    xLabel: "contenders", yLabel: "turn latency, ms", xTicks: contenders,
    series: backends.flatMap((backend, i) => {
      const of = rows.filter((r) => r.backend === backend);
      const color = ["#1f77b4", "#d62728", "#2ca02c"][i % 3];
      return [
        { name: `${backend}: median`, color, points: of.map((r) => [r.contenders, r.medianMs]) },
        { name: `${backend}: p95`, color, dashed: true, points: of.map((r) => [r.contenders, r.p95Ms]) },
      ];
    }),
  });
}

// ---- Live turns: the headline figures of bench/live-*.mjs, each with its baseline and goal
const fx = (x) => (x === undefined || x === null || Number.isNaN(x) ? "-" : x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(1));
const rx = (a, b) => (a && b ? (a / b >= 100 ? (a / b).toFixed(0) : (a / b).toFixed(2)) : "-");
const ms2 = (median, p99) => `median ${fx(median)} ms, p99 ${fx(p99)} ms`;
function liveSummary() {
  const rows = [];
  const add = (figure, where, measured, baseline, ratio, goal) => rows.push([figure, where, measured, baseline, ratio, goal]);
  const node = reports["live-node"]?.data;
  if (node) {
    for (const r of node.emit.filter((r) => r.variant.startsWith("yield"))) {
      add("emit() per part, amortized (flushes and commit included)", `Node, ${r.backend}, ${r.parts} parts`, `${fx(r.usPerPart)} µs`,
        `JSON.stringify into an array: ${fx(r.bufferUsPerPart)} µs`, rx(r.usPerPart, r.bufferUsPerPart), "≤ 2 µs/part (the issue)");
    }
    for (const r of node.emit.filter((r) => r.bytesPerPart !== undefined && r.variant.startsWith("yield"))) {
      add("bytes written per part", `Node, ${r.backend}, ${r.parts} parts`, `${fx(r.bytesPerPart)} B`, `the part's JSON: ${r.partJsonBytes} B`,
        rx(r.bytesPerPart, r.partJsonBytes), "-");
    }
    for (const r of node.latency.filter((r) => r.bytesPerPart !== undefined)) {
      add("bytes written per part", `Node, ${r.backend}, a part every ${r.everyMs} ms, liveFlushMs ${r.liveFlushMs}`, `${fx(r.bytesPerPart)} B`,
        `the part's JSON: ${fx(r.partJsonBytes)} B`, rx(r.bytesPerPart, r.partJsonBytes), "-");
    }
    for (const r of node.latency) {
      add("part-to-follower", `Node, one process, ${r.backend}, liveFlushMs ${r.liveFlushMs}`, ms2(r.medianMs, r.p99Ms),
        `same flush rule, in-process relay: median ${fx(r.relayMedianMs)} ms`, rx(r.medianMs, r.relayMedianMs), `flushed within liveFlushMs (API.md)`);
    }
    for (const r of node.stop) {
      add("stop-to-signal", `Node, one process, ${r.backend}, holder ${r.holder}`, ms2(r.signalMedianMs, r.signalP99Ms),
        `AbortController.abort(): median ${fx(r.abortMedianMs)} ms`, rx(r.signalMedianMs, r.abortMedianMs), "at once (API.md)");
    }
  }
  const redis = reports["live-redis"]?.data;
  if (redis) {
    for (const r of redis.stop) {
      const poll = r.pollMedianMs !== undefined && r.pollMedianMs !== null;
      add("stop-to-signal", `Redis, two processes, stopPollMs ${r.stopPollMs}, holder ${r.holder}`, ms2(r.signalMedianMs, r.signalP99Ms),
        poll ? `GET every stopPollMs: median ${fx(r.pollMedianMs)} ms` : `PUBLISH/SUBSCRIBE: median ${fx(r.pubsubMedianMs)} ms`,
        rx(r.signalMedianMs, poll ? r.pollMedianMs : r.pubsubMedianMs),
        poll ? `within stopPollMs (${r.stopPollMs} ms, API.md)` : "at the holder's next flush (API.md)");
    }
    for (const r of redis.latency) {
      add("part-to-follower", `Redis, two processes, liveFlushMs ${r.liveFlushMs}`, ms2(r.medianMs, r.p99Ms),
        `same flush rule, PUBLISH/SUBSCRIBE relay: median ${fx(r.relayMedianMs)} ms`, rx(r.medianMs, r.relayMedianMs), "-");
    }
  }
  const chromium = reports["live-chromium"]?.data;
  if (chromium) {
    for (const r of chromium.latency) {
      add("part-to-follower", `IndexedDB, two tabs, liveFlushMs ${r.liveFlushMs}`, ms2(r.medianMs, r.p99Ms),
        `same flush rule, BroadcastChannel relay: median ${fx(r.relayMedianMs)} ms`, rx(r.medianMs, r.relayMedianMs), "median ≤ 20 ms (the issue)");
    }
    for (const r of chromium.stop) {
      add("stop-to-signal", `IndexedDB, two tabs, holder ${r.holder}`, ms2(r.signalMedianMs, r.signalP99Ms),
        `BroadcastChannel: p99 ${fx(r.bcP99Ms)} ms`, rx(r.signalP99Ms, r.bcP99Ms), "p99 ≤ 100 ms (API.md, the issue)");
    }
  }
  return `## Live turns

The headline figures of the three live-turn benchmarks below (bench/live-node.mjs, bench/live-redis.mjs,
bench/live-chromium.mjs), each beside its baseline of the same run and the goal stated for it in API.md
("Live turns") or the issue; the goals are listed, not checked. Ratios are of medians, except for
stop-to-signal across tabs (p99 ÷ p99, the goal's statistic) and for bytes.

${line(["figure", "where", "measured", "baseline (same run)", "÷ baseline", "goal"])}
${line(["---", "---", "---:", "---", "---:", "---"])}
${rows.map(line).join("\n")}`;
}

// ---- Long sessions: the headline figures of bench/compaction-chromium.mjs, after ÷ before
function longSummary() {
  const data = reports["compaction-chromium"]?.data;
  const rows = [];
  if (data) {
    const [before, , compacted, pruned] = data.rows;
    const int = (x) => (x === undefined ? "-" : x.toLocaleString("en-US"));
    // Ratios far below 1 keep two significant digits.
    const r = (a, b) => (a !== undefined && b ? (a / b >= 1 ? rx(a, b) : a / b >= 0.01 ? (a / b).toFixed(3) : (a / b).toExponential(1)) : "-");
    const add = (figure, get, format) => rows.push([figure, format(get(before)), format(get(compacted)), format(get(pruned)),
      r(get(compacted), get(before)), r(get(pruned), get(before))]);
    add("stored bytes (the session's IndexedDB records, key + record bytes)", (r) => r.bytes, int);
    add("snapshot bytes (records under s/ and g/)", (r) => r.snapshotBytes, int);
    add("records", (r) => r.records, int);
    add("cold load, median ms (a new store opening the session and reading messages())", (r) => r.loadMedianMs, fx);
    rows.push(["messages", int(before.messages), int(compacted.messages), int(pruned.messages), r(compacted.messages, before.messages), r(pruned.messages, before.messages)]);
  }
  const d = data ?? {};
  return `## Long sessions

The headline figures of bench/compaction-chromium.mjs (headless Chromium, IndexedDB): a session of
${(d.turns * d.perTurn || 0).toLocaleString("en-US")} messages (${(d.turns ?? 0).toLocaleString("en-US")} turns of ${d.perTurn ?? "-"}), then compacted to ${d.keep ?? "-"} messages in one turn, then pruned with
\`prune({ before: latest })\` (API.md "Compaction and retention"). The baseline of each ratio is the same figure
before the compaction, in the same run.

${line(["figure", "before", "compacted", "compacted and pruned", "compacted ÷ before", "pruned ÷ before"])}
${line(["---", "---:", "---:", "---:", "---:", "---:"])}
${rows.map(line).join("\n")}`;
}

// ---- RESULTS.md
const wasm = readFileSync(new URL("../js/wasm/agent_session_bg.wasm", bench));
const chromium = NAMES.map((name) => reports[name]?.chromium).find(Boolean);
const cpus = os.cpus();
const dates = NAMES.map((name) => reports[name]?.date).filter(Boolean).sort();
const line = (cells) => `| ${cells.join(" | ")} |`;
const status = (run) => (run.code === 0 ? (reports[run.name] ? "ok" : "ok, no JSON") : `failed (exit ${run.code})${reports[run.name] ? "" : ", no JSON"}`);
const section = (report) => `## ${report.title}\n\n${report.markdown.replace(/^## .*\n+/, "").trim()}`;

const markdown = `# Benchmark results

Written by \`node bench/report.mjs\` from the JSON of the benchmarks run by \`scripts/bench\` (see README.md
beside this file). Every figure is a time, a size or a ratio to a baseline measured in the same run; nothing
here is a pass/fail threshold.

- Date: ${dates[0] ?? "-"} to ${dates.at(-1) ?? "-"}
- Machine: ${cpus[0]?.model ?? "unknown CPU"}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.type()} ${os.release()} ${os.arch()}
- Node ${process.version}; Chromium ${chromium ?? "not run"} (Debian's, headless, driven by playwright-core)
- Shipped .wasm (js/wasm/agent_session_bg.wasm): ${wasm.length.toLocaleString("en-US")} bytes raw, ${gzipSync(wasm, { level: 9 }).length.toLocaleString("en-US")} bytes gzipped (Node zlib, level 9; \`gzip -9\`, which scripts/build prints, gives about 0.6% less)
- Baselines measured: on IndexedDB, a hand-written \`idb\` lease + append protocol, \`idb-keyval\` and
  the same protocol on Dexie${reports.idb && !reports.idb.data.sizes.some((s) => s.impls.dexie) ? " (not in this run's idb.json)" : ""}; in Node, @openai/agents'
  MemorySession, LangGraph's MemorySaver and Strands' SessionManager over InMemoryStorage; on a KV store with
  latency and on Redis, the same server turn written by hand in the fewest round trips; for live turns,
  hand-written relays and stops with the same flush and poll rules (in-process, Redis PUBLISH/SUBSCRIBE and
  GET polling, BroadcastChannel); for long sessions, the same session before its compaction and a new session
  of as many messages as the compacted view; for encryption at rest, the same sessions in a store without a key.

${charts.join("\n\n")}

## Runs

${line(["benchmark", "command", "seconds", "status"])}
${line(["---", "---", "---:", "---"])}
${[
  ...runs.map((run) => line([run.name, `\`${run.command}\``, run.seconds.toFixed(0), status(run)])),
  ...NAMES.filter((name) => !runs.some((run) => run.name === name)).map((name) => line([name, "-", "-", "not run"])),
].join("\n")}

${[
  ...NAMES.filter((name) => reports[name] && ![...LIVE, ...LONG, ...SAFETY].includes(name)).map((name) => section(reports[name])),
  ...(LIVE.some((name) => reports[name]) ? [liveSummary()] : []),
  ...LIVE.filter((name) => reports[name]).map((name) => section(reports[name])),
  ...(LONG.some((name) => reports[name]) ? [longSummary()] : []),
  ...LONG.filter((name) => reports[name]).map((name) => section(reports[name])),
  ...SAFETY.filter((name) => reports[name]).map((name) => section(reports[name])),
].join("\n\n")}
`;
writeFileSync(new URL("RESULTS.md", bench), markdown);
console.log(`wrote bench/RESULTS.md and ${charts.length} charts in bench/charts/`);
