// A/B of builds of agent-session under Strands: scripted agent.invoke() turns (bench/frameworks/strands.mjs's
// echo model) with each build's AgentSessionManager on its memory store, and Strands' SessionManager over
// InMemoryStorage, in one Node process, interleaved turn by turn in a rotating order; prints the medians
// and their ratios to SessionManager. Each argument names a build (bench/builds.mjs): a copy of that
// build's js/ under test-results/js-NAME, or "." for this checkout's js/.
// With --tools, the model calls a tool once a turn before it answers (strands-agent.mjs toolAgentWith).
// Usage: node bench/frameworks/strands-ab.mjs a .      (test-results/js-a against js/)
import { SessionManager } from "@strands-agents/sdk";
import { InMemoryStorage } from "@strands-agents/sdk/storage";
import { buildName, buildsFromArgs, importFromBuild, printMedians } from "../builds.mjs";
import { agentMakerFromArgs, prompt } from "./strands-agent.mjs";

const TURNS = 2000;
const WARMUP = 200;
const agentWith = agentMakerFromArgs();

const impls = [
  { name: "SessionManager", agent: agentWith({ sessionManager: new SessionManager({ storage: new InMemoryStorage(), sessionId: "bench" }) }) },
];
for (const build of buildsFromArgs("bench/frameworks/strands-ab.mjs")) {
  const { SessionStore } = await importFromBuild(build, "entry/node.js");
  const { AgentSessionManager } = await importFromBuild(build, "frameworks/strands.js");
  const store = await SessionStore.memory();
  impls.push({ name: buildName(build), agent: agentWith({ plugins: [new AgentSessionManager({ store, sessionId: "bench" })] }) });
}
for (const impl of impls) impl.times = [];
for (let i = 0; i < WARMUP + TURNS; i++) {
  for (let k = 0; k < impls.length; k++) {
    const impl = impls[(i + k) % impls.length];
    const start = performance.now();
    await impl.agent.invoke(prompt(i));
    if (i >= WARMUP) impl.times.push(performance.now() - start);
  }
}
printMedians(impls);
