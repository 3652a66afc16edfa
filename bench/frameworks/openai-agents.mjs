// The cost of one OpenAI Agents JS run() turn (@openai/agents 0.20.0, ScriptedModel, no network) with
// AgentSessionItems against the SDK's MemorySession, in the same process and run, interleaved turn by
// turn. Usage: node bench/frameworks/openai-agents.mjs [--sizes=0,100,1000] [--turns=200] [--warmup=30] [--json=path]
// Figures are ratios to MemorySession measured in the same run; nothing here is a pass/fail threshold.
import { Agent, MemorySession, run, setTracingDisabled } from "@openai/agents";
import { ScriptedModel, assistantMessage } from "@openai/agents/testing";
import { SessionStore } from "agent-session";
import { AgentSessionItems } from "agent-session/openai-agents";
import { jsonPath, writeJson } from "../json.mjs";
import { countingKv } from "./counting-kv.mjs";

setTracingDisabled(true);

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const sizes = (args.sizes ?? "0,100,1000").split(",").map(Number);
const turns = Number(args.turns ?? 200);
const warmup = Number(args.warmup ?? 30);


/** ~200 bytes of JSON, like the core bench's messages. */
const filler = (i) => ({ type: "message", role: i % 2 ? "assistant" : "user", content: `${"x".repeat(150)} ${i}` });

async function implementations(size) {
  const memStore = await SessionStore.memory();
  const prefill = Array.from({ length: size }, (_, i) => filler(i));
  const make = async (name, session, turn, kv = null) => {
    if (size) await session.addItems(prefill);
    const impl = { name, session, turn, times: [], kv, kvCalls: [], inSession: 0, sessionTimes: [] };
    // Time spent inside the Session's methods (own properties shadow the class's methods, so the
    // runner calls these; a Proxy would break the private fields).
    for (const method of ["getSessionId", "getItems", "addItems"]) {
      const original = session[method].bind(session);
      session[method] = async (...a) => {
        const start = performance.now();
        try {
          return await original(...a);
        } finally {
          impl.inSession += performance.now() - start;
        }
      };
    }
    return impl;
  };
  const plain = (session) => (agent, input) => run(agent, input, { session });
  // The guard's own cost (begin, commit) counts as time in the session: all of it but `fn`.
  const guarded = (items) => async (agent, input, impl) => {
    let inFn = 0;
    const start = performance.now();
    const result = await items.guard(async () => {
      const fnStart = performance.now();
      try {
        return await run(agent, input, { session: items });
      } finally {
        inFn = performance.now() - fnStart;
      }
    });
    impl.inSession += performance.now() - start - inFn;
    return result;
  };
  const onKv = async (name, turnOf) => {
    const kv = countingKv();
    const items = new AgentSessionItems(await SessionStore.kv(kv), "bench");
    return make(name, items, turnOf(items), kv);
  };
  const memory = new MemorySession({ sessionId: "bench" });
  const unguardedItems = new AgentSessionItems(memStore, "bench-plain");
  const guardedItems = new AgentSessionItems(memStore, "bench-guarded");
  return [
    await make("MemorySession", memory, plain(memory)),
    await make("AgentSessionItems (memory store)", unguardedItems, plain(unguardedItems)),
    await make("AgentSessionItems.guard (memory store)", guardedItems, guarded(guardedItems)),
    await onKv("AgentSessionItems (kv: memoryKv)", plain),
    await onKv("AgentSessionItems.guard (kv: memoryKv)", guarded),
  ];
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ms = (x) => (x < 1 ? x.toFixed(3) : x.toFixed(2));

const rows = [];
const raw = [];
for (const size of sizes) {
  const impls = await implementations(size);
  for (const impl of impls) {
    impl.model = new ScriptedModel(Array.from({ length: turns + warmup }, () => [assistantMessage("ok")]));
    impl.agent = new Agent({ name: "bench", model: impl.model });
  }
  for (let t = 0; t < turns + warmup; t++) {
    // Interleaved, so drift (GC, JIT, the machine) falls on every implementation alike.
    for (const impl of impls) {
      const before = impl.kv?.calls ?? 0;
      impl.inSession = 0;
      const start = performance.now();
      const result = await impl.turn(impl.agent, `turn ${t}`, impl);
      const elapsed = performance.now() - start;
      if (result.finalOutput !== "ok") throw new Error(`${impl.name}: unexpected output ${result.finalOutput}`);
      if (t >= warmup) {
        impl.times.push(elapsed);
        impl.sessionTimes.push(impl.inSession);
        if (impl.kv) impl.kvCalls.push(impl.kv.calls - before);
      }
    }
  }
  const base = median(impls[0].times);
  const baseSession = median(impls[0].sessionTimes);
  for (const impl of impls) {
    const items = (await impl.session.getItems()).length;
    if (items !== size + 2 * (turns + warmup)) throw new Error(`${impl.name}: ${items} items stored`);
    const turn = median(impl.times);
    const inSession = median(impl.sessionTimes);
    raw.push({
      size, name: impl.name, turnMs: turn, vsMemorySession: turn / base, inSessionMs: inSession,
      inSessionVsMemorySession: inSession / baseSession, kvCallsPerTurn: impl.kv ? median(impl.kvCalls) : null,
    });
    rows.push([size, impl.name, ms(turn), (turn / base).toFixed(2), ms(inSession), (inSession / baseSession).toFixed(1),
      impl.kv ? String(median(impl.kvCalls)) : "-"]);
  }
}

const line = (cells) => `| ${cells.join(" | ")} |`;
const command = ["node", "bench/frameworks/openai-agents.mjs", ...process.argv.slice(2)].join(" ");
const printed = `## OpenAI Agents JS: one run() turn, AgentSessionItems vs MemorySession

Median ms of ${turns} turns (after ${warmup} warm-up turns) of \`run(agent, input, { session })\` with a
ScriptedModel answering one assistant message, so each turn reads the whole history and stores a user
and an assistant item. Each session starts with N items of ~200 bytes and grows by 2 per turn (the
median turn sees about N + ${warmup + turns} items); the implementations run interleaved in one process.
"in session" = the part of the turn spent in the Session's methods (getSessionId, getItems, addItems)
plus, under guard, begin and commit; "kv calls" = HostKv calls per turn on \`SessionStore.kv(memoryKv())\`
(the round trips a remote KV pays; the memoryKv is given a one-call commit, as the Redis, Deno KV and
Durable Object adapters have one).

${line(["items before", "session", "turn ms", "turn vs MemorySession", "in session ms", "in session vs MemorySession", "kv calls/turn"])}
${line(["---:", "---", "---:", "---:", "---:", "---:", "---:"])}
${rows.map(line).join("\n")}

Node ${process.version}, @openai/agents 0.20.0. Command: \`${command}\`
Date: ${new Date().toISOString()}`;
console.log(printed);
writeJson(jsonPath(), import.meta.url, {
  name: "openai-agents", title: "OpenAI Agents JS: one run() turn, AgentSessionItems vs MemorySession", markdown: printed, data: { turns, warmup, rows: raw },
});
