// One LangGraph thread that grows for a long time: guarded graph turns (bench/frameworks/langgraph.mjs's
// graph, 3 messages of ~200 bytes a turn) on one thread of AgentSessionSaver over a memory store, and the
// same turns on MemorySaver, interleaved; per window of turns, the median turn of each, then what the
// saver stored: the channel values' records (count, JSON bytes, largest) by form (whole, delta, rollup).
// Each argument names a build (bench/builds.mjs): a copy of that build's js/ under test-results/js-NAME,
// or "." for this checkout's js/. A build whose put fails (a limit) is reported at that turn and left out.
// Usage: node bench/frameworks/langgraph-long-thread.mjs [--turns=1500] [--window=500] BUILD...
import { MemorySaver } from "@langchain/langgraph";
import { buildName, importFromBuild } from "../builds.mjs";
import { graphWith, message } from "./langgraph-graph.mjs";

const option = (name, fallback) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const TURNS = option("turns", 1500);
const WINDOW = option("window", 500);
const builds = process.argv.slice(2).filter((a) => !a.startsWith("--"));
if (builds.length === 0) throw new Error("usage: node bench/frameworks/langgraph-long-thread.mjs [--turns=N] [--window=N] BUILD...");

const config = { configurable: { thread_id: "long" } };
const impls = [{ name: "MemorySaver", graph: graphWith(new MemorySaver()), run: (graph, i) => graph.invoke({ messages: [message("user", i)] }, config) }];
for (const build of builds) {
  const { SessionStore } = await importFromBuild(build, "entry/node.js");
  const { AgentSessionSaver } = await importFromBuild(build, "frameworks/langgraph.js");
  const store = await SessionStore.memory();
  const saver = new AgentSessionSaver(store);
  impls.push({
    name: buildName(build),
    store,
    saver,
    graph: graphWith(saver),
    run: (graph, i) => saver.guard("long", () => graph.invoke({ messages: [message("user", i)] }, config)),
  });
}
for (const impl of impls) impl.times = [];

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`| turns | ${impls.map((impl) => `${impl.name} (median ms)`).join(" | ")} |`);
console.log(`| ---: | ${impls.map(() => "---:").join(" | ")} |`);
for (let i = 0; i < TURNS; i++) {
  for (const impl of impls) {
    if (impl.failed) continue;
    const start = performance.now();
    try {
      await impl.run(impl.graph, i);
    } catch (error) {
      impl.failed = `turn ${i + 1}: ${error?.name}: ${String(error?.message).slice(0, 120)}`;
      continue;
    }
    impl.times.push(performance.now() - start);
  }
  if ((i + 1) % WINDOW === 0) {
    console.log(`| ${i + 1} | ${impls.map((impl) => (impl.failed ? "failed" : median(impl.times).toFixed(2))).join(" | ")} |`);
    for (const impl of impls) impl.times = [];
  }
}
console.log();
for (const impl of impls.slice(1)) {
  if (impl.failed) console.log(`${impl.name}: ${impl.failed}`);
  const session = await impl.store.open(impl.saver.sessionId("long"));
  const forms = {};
  for (const [key, value] of Object.entries(session.state({ agent: "ns:" }))) {
    if (!key.startsWith("b/") && !key.startsWith("b#")) continue;
    const form = typeof value.base === "string" ? "delta" : Array.isArray(value.p) ? "rollup" : "whole";
    const bytes = JSON.stringify(value).length;
    const f = (forms[form] ??= { records: 0, bytes: 0, largest: 0 });
    f.records++;
    f.bytes += bytes;
    f.largest = Math.max(f.largest, bytes);
  }
  const all = Object.values(forms);
  const sum = (k) => all.reduce((a, f) => a + f[k], 0);
  const rows = Object.entries(forms).map(([form, f]) => `${form} ${f.records} records, ${f.bytes} bytes, largest ${f.largest}`);
  console.log(`${impl.name}: channel values ${sum("records")} records, ${sum("bytes")} bytes, largest ${Math.max(...all.map((f) => f.largest))} (${rows.join("; ")})`);
}
console.log(`\nCommand: node bench/frameworks/langgraph-long-thread.mjs ${process.argv.slice(2).join(" ")} (Node ${process.version}, ${new Date().toISOString().slice(0, 10)})`);
