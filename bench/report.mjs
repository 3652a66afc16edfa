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
const NAMES = ["idb", "open-by-id", "open-by-id-idb", "turn-node", "langgraph", "openai-agents", "strands", "contention"];
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

const IDB_SYSTEMS = [["agent-session", "agent-session (SessionStore.indexedDb)"], ["idb", "(b) hand-written idb lease + append"], ["idb-keyval", "(a) idb-keyval, whole session per turn"]];
if (reports.idb) {
  const sizes = reports.idb.data.sizes;
  const idbSeries = (what) => IDB_SYSTEMS.map(([key, name]) => ({ name, points: sizes.map((s) => [s.size, s.impls[key]?.[what]?.median]) }));
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
- Shipped .wasm (js/wasm/agent_session_bg.wasm): ${wasm.length.toLocaleString("en-US")} bytes raw, ${gzipSync(wasm, { level: 9 }).length.toLocaleString("en-US")} bytes gzip -9
- Baselines measured: on IndexedDB, a hand-written \`idb\` lease + append protocol and \`idb-keyval\`
  (Dexie is not measured: it is not a dependency of this repository); in Node, @openai/agents'
  MemorySession, LangGraph's MemorySaver and Strands' SessionManager over InMemoryStorage.

${charts.join("\n\n")}

## Runs

${line(["benchmark", "command", "seconds", "status"])}
${line(["---", "---", "---:", "---"])}
${[
  ...runs.map((run) => line([run.name, `\`${run.command}\``, run.seconds.toFixed(0), status(run)])),
  ...NAMES.filter((name) => !runs.some((run) => run.name === name)).map((name) => line([name, "-", "-", "not run"])),
].join("\n")}

${NAMES.filter((name) => reports[name]).map((name) => section(reports[name])).join("\n\n")}
`;
writeFileSync(new URL("RESULTS.md", bench), markdown);
console.log(`wrote bench/RESULTS.md and ${charts.length} charts in bench/charts/`);
