// The cost of one Strands agent turn (a scripted `agent.invoke()`, no network) with agent-session's
// AgentSessionManager on the memory store, against Strands' own SessionManager over its InMemoryStorage,
// in the same run. Also: SessionManager over AgentSessionStorage (the Storage drop-in), and no session
// persistence at all (the framework's own cost of a turn), and agent-session alone: a plugin that only opens
// the session by id, begins, appends the turn's messages and commits (what the guard and the durable
// log cost, without anything the manager adds). Turns are interleaved round-robin, so drift
// and GC fall on every implementation alike. Prints a markdown table, the command and the date.
//
// With --tools, the model calls a tool once a turn before it answers (4 messages a turn: the sliding
// window trims whole tool calls and their results).
//
// Run: node bench/frameworks/strands.mjs [--turns=500] [--warmup=30] [--tools] [--json=path]
import { performance } from "node:perf_hooks";
import { AfterInvocationEvent, BeforeInvocationEvent, MessageAddedEvent, SessionManager } from "@strands-agents/sdk";
import { InMemoryStorage } from "@strands-agents/sdk/storage";
import { SessionStore } from "agent-session";
import { AgentSessionManager, AgentSessionStorage } from "agent-session/strands";
import { jsonPath, writeJson } from "../json.mjs";
import { agentMakerFromArgs, prompt } from "./strands-agent.mjs";

const arg = (name, fallback) => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : Number(hit.slice(name.length + 3));
};
const TURNS = arg("turns", 500);
const WARMUP = arg("warmup", 30);
const TOOLS = process.argv.includes("--tools");
const agentWith = agentMakerFromArgs();


/** agent-session alone: one invocation per agent invocation holding the messages it added, nothing
 * else (no reload, no diff of the context, no state, no live parts, no compaction, no stop link). */
class GuardAndLogOnly {
  #store;
  #id;
  constructor(store, id) {
    this.#store = store;
    this.#id = id;
  }
  get name() {
    return "guard-and-log-only";
  }
  initAgent(agent) {
    let invocation = null;
    let added = [];
    agent.addHook(BeforeInvocationEvent, async () => {
      invocation = await (await this.#store.open(this.#id)).begin();
    });
    agent.addHook(MessageAddedEvent, (event) => added.push(event.message));
    agent.addHook(AfterInvocationEvent, async () => {
      for (const message of added) invocation.appendMessage(message);
      added = [];
      await invocation.commit();
    });
  }
}

const counts = { invocations: 0 };
const asStore = await SessionStore.memory({
  onEvent: (e) => {
    if (e.type === "commit" && e.session === "bench") counts.invocations++;
  },
});
const impls = [
  { name: "AgentSessionManager (memory store)", agent: agentWith({ plugins: [new AgentSessionManager({ store: asStore, sessionId: "bench" })] }) },
  {
    name: "Strands SessionManager + InMemoryStorage",
    agent: agentWith({ sessionManager: new SessionManager({ storage: new InMemoryStorage(), sessionId: "bench" }) }),
  },
  {
    name: "Strands SessionManager + AgentSessionStorage (memory store)",
    agent: agentWith({
      sessionManager: new SessionManager({ storage: new AgentSessionStorage(await SessionStore.memory()), sessionId: "bench" }),
    }),
  },
  { name: "no session persistence", agent: agentWith({}) },
  { name: "agent-session alone: open by id, begin, append the turn's messages, commit", agent: agentWith({ plugins: [new GuardAndLogOnly(asStore, "bench-alone")] }) },
  // What two of the manager's defaults cost: forwarding the stream to the live log, compacting every turn.
  {
    name: "AgentSessionManager (memory store), emit: false",
    agent: agentWith({ plugins: [new AgentSessionManager({ store: asStore, sessionId: "bench-no-emit", emit: false })] }),
  },
  {
    name: "AgentSessionManager (memory store), compact: false",
    agent: agentWith({ plugins: [new AgentSessionManager({ store: asStore, sessionId: "bench-no-compact", compact: false })] }),
  },
];
for (const impl of impls) impl.times = [];

for (let i = 0; i < WARMUP + TURNS; i++) {
  for (const impl of impls) {
    const t0 = performance.now();
    await impl.agent.invoke(prompt(i));
    const dt = performance.now() - t0;
    if (i >= WARMUP) impl.times.push(dt);
  }
}

const sorted = (xs) => [...xs].sort((a, b) => a - b);
const quantile = (xs, q) => sorted(xs)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const median = (xs) => {
  const s = sorted(xs);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ms = (x) => (x < 1 ? x.toFixed(3) : x.toFixed(2));
const baseline = median(impls[1].times);
const floor = median(impls[3].times);

const rows = impls.map((impl) => {
  const m = median(impl.times);
  return `| ${impl.name} | ${ms(m)} | ${ms(quantile(impl.times, 0.9))} | ${ms(impl.times.reduce((a, b) => a + b, 0) / impl.times.length)} | ${(m / baseline).toFixed(2)} | ${ms(m - floor)} |`;
});
const messages = impls[0].agent.messages.length;
const session = await asStore.open("bench");

const raw = impls.map((impl) => {
  const m = median(impl.times);
  return { name: impl.name, medianMs: m, p90Ms: quantile(impl.times, 0.9), meanMs: impl.times.reduce((a, b) => a + b, 0) / impl.times.length, vsSessionManager: m / baseline, minusNoPersistenceMs: m - floor };
});
const printed = `Strands turn cost: ${TURNS} scripted agent.invoke() turns per implementation (after ${WARMUP} warm-up turns),
interleaved; ~200-byte prompt and answer${TOOLS ? ", a tool call (~150-byte input) and its ~150-byte result before the answer" : ""}; the default SlidingWindowConversationManager (40 messages:
context ${messages} messages at the end, agent-session log ${session.messages({ agent: "agent" }).length} messages).
@strands-agents/sdk 1.19.0, Node ${process.version}, ${process.platform}/${process.arch}.

| implementation | median turn (ms) | p90 (ms) | mean (ms) | median / Strands SessionManager | median minus no persistence (ms) |
| --- | ---: | ---: | ---: | ---: | ---: |
${rows.join("\n")}

agent-session invocations (begin + commit) per AgentSessionManager turn: ${(counts.invocations / (WARMUP + TURNS)).toFixed(2)}

Command: \`node bench/frameworks/strands.mjs${process.argv.slice(2).map((a) => ` ${a}`).join("")}\`
Date: ${new Date().toISOString()}`;
console.log(printed);
writeJson(jsonPath(), import.meta.url, {
  name: TOOLS ? "strands-tools" : "strands",
  title: `Strands: one agent.invoke() turn${TOOLS ? " with a tool call" : ""}, AgentSessionManager vs SessionManager + InMemoryStorage`,
  markdown: printed,
  data: { turns: TURNS, warmup: WARMUP, invocationsPerTurn: counts.invocations / (WARMUP + TURNS), rows: raw },
});

await asStore.close();
