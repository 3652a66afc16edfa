// A/B of builds of agent-session under LangGraph.js: guarded graph turns (bench/frameworks/langgraph.mjs's
// graph, LangGraph's default "async" durability) with AgentSessionSaver on the memory store of each build,
// and MemorySaver, in one Node process, interleaved turn by turn over 20 threads of 30 turns; prints the
// medians and their ratios to MemorySaver. Each argument names a build: a copy of that build's js/ under
// test-results/js-NAME (ignored by git), or "." for this checkout's js/. Two builds in one process is the
// comparison that separates a 2% change from the noise between runs.
// Usage: node bench/frameworks/langgraph-ab.mjs a .      (test-results/js-a against js/)
import { MemorySaver } from "@langchain/langgraph";
import { buildName, buildsFromArgs, importFromBuild, printMedians } from "../builds.mjs";
import { graphWith, message } from "./langgraph-graph.mjs";

const THREADS = 20;
const TURNS = 30;
const WARMUP_THREADS = 2;

const builds = buildsFromArgs("bench/frameworks/langgraph-ab.mjs");
const impls = [{ name: "MemorySaver", saver: new MemorySaver(), guarded: false }];
for (const build of builds) {
  const { SessionStore } = await importFromBuild(build, "entry/node.js");
  const { AgentSessionSaver } = await importFromBuild(build, "frameworks/langgraph.js");
  impls.push({ name: buildName(build), saver: new AgentSessionSaver(await SessionStore.memory()), guarded: true });
}
for (const impl of impls) {
  impl.graph = graphWith(impl.saver);
  impl.times = [];
}
for (let t = 0; t < THREADS; t++) {
  for (let i = 0; i < TURNS; i++) {
    // A rotating order, so that GC and JIT land on every implementation alike.
    for (let k = 0; k < impls.length; k++) {
      const impl = impls[(i + k + t) % impls.length];
      const thread = `t${t}`;
      const config = { configurable: { thread_id: thread }, durability: "async" };
      const input = { messages: [message("user", i)] };
      const start = performance.now();
      if (impl.guarded) await impl.saver.guard(thread, () => impl.graph.invoke(input, config));
      else await impl.graph.invoke(input, config);
      if (t >= WARMUP_THREADS) impl.times.push(performance.now() - start);
    }
  }
}
printMedians(impls);
