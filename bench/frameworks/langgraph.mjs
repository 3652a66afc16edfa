// The cost of one LangGraph.js graph turn (a 2-node StateGraph invoke, @langchain/langgraph 1.4.18)
// with AgentSessionSaver against LangGraph's own MemorySaver, in the same process and run, interleaved
// turn by turn. Usage: node bench/frameworks/langgraph.mjs [--sizes=0,20] [--durability=async,exit] [--turns=60]
// [--warmup=10] [--threads=1] [--json=path] (sizes: turns already in each thread before timing; durability:
// LangGraph's own `durability` option of invoke, "async" its default, "exit" one put when the run ends;
// threads: each checkpointer's turns go round-robin over this many threads, as a server's do, so that
// its store holds them all). Figures are ratios to MemorySaver measured in the same run; nothing here is
// a pass/fail threshold.
import { MemorySaver } from "@langchain/langgraph";
import { SessionStore } from "agent-session";
import { AgentSessionSaver } from "agent-session/langgraph";
import { jsonPath, printer, writeJson } from "../json.mjs";
import { countingKv } from "./counting-kv.mjs";
import { graphWith, message } from "./langgraph-graph.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const sizes = (args.sizes ?? "0,20").split(",").map(Number);
const durabilities = (args.durability ?? "async,exit").split(",");
const turns = Number(args.turns ?? 60);
const warmup = Number(args.warmup ?? 10);
const threads = Number(args.threads ?? 1);

/**
 * The reference row: LangGraph's MemorySaver with agent-session's guard and a log entry per write
 * around it (begin; a message per putWrites; a message and a checkpoint per put, as the saver commits a
 * version per step; commit), on a memory store. What the guard and a durable version per step cost a
 * graph turn, without the saver's layout (the checkpoints themselves stay in MemorySaver's memory).
 */
class GuardedMemorySaver extends MemorySaver {
  #store;
  #sessions = new Map();
  #inv = null;
  constructor(store) {
    super();
    this.#store = store;
  }
  async guard(threadId, fn) {
    let session = this.#sessions.get(threadId);
    if (session === undefined) this.#sessions.set(threadId, (session = await this.#store.open(`reference/${threadId}`)));
    this.#inv = await session.begin();
    try {
      const result = await fn();
      await this.#inv.commit();
      return result;
    } catch (error) {
      await this.#inv.abort();
      throw error;
    } finally {
      this.#inv = null;
    }
  }
  async put(config, checkpoint, metadata, versions) {
    const out = await super.put(config, checkpoint, metadata, versions);
    this.#inv.appendMessage({ checkpoint: checkpoint.id, step: metadata?.step ?? null });
    await this.#inv.checkpoint();
    return out;
  }
  async putWrites(config, writes, taskId) {
    await super.putWrites(config, writes, taskId);
    this.#inv.appendMessage({ task: taskId, writes: writes.length });
  }
}

async function implementations(size, durability) {
  const memStore = await SessionStore.memory();
  const make = async (name, saver, guarded, { kv = null, store = null } = {}) => {
    const graph = graphWith(saver);
    const threadOf = (i) => `bench-${durability}-${name.replace(/\W+/g, "-")}-${i % threads}`;
    const configOf = (i) => ({ configurable: { thread_id: threadOf(i) }, durability });
    const impl = { name, times: [], kvCalls: [], versions: [], kv, inSaver: 0, saverTimes: [] };
    // Time spent inside the saver's methods (own properties shadow the class's methods).
    for (const method of ["getTuple", "put", "putWrites"]) {
      const original = saver[method].bind(saver);
      saver[method] = async (...a) => {
        const start = performance.now();
        try {
          return await original(...a);
        } finally {
          impl.inSaver += performance.now() - start;
        }
      };
    }
    const invoke = (i) => graph.invoke({ messages: [message("user", i)] }, configOf(i));
    impl.turn = guarded
      ? async (i) => {
          // The guard's own cost (begin, commit/release) counts as time in the saver: all of it but fn.
          let inFn = 0;
          const start = performance.now();
          const result = await saver.guard(threadOf(i), async () => {
            const fnStart = performance.now();
            try {
              return await invoke(i);
            } finally {
              inFn = performance.now() - fnStart;
            }
          });
          impl.inSaver += performance.now() - start - inFn;
          return result;
        }
      : invoke;
    const sessions = new Map();
    impl.version = store
      ? async (i) => {
          const id = saver.sessionId(threadOf(i));
          if (!sessions.has(id)) sessions.set(id, await store.open(id));
          return (await sessions.get(id).refresh()).version;
        }
      : null;
    for (let i = 0; i < size * threads; i++) await impl.turn(i); // pre-fill, untimed
    return impl;
  };
  const kvImpl = async (name, guarded) => {
    const kv = countingKv();
    const store = await SessionStore.kv(kv);
    return make(name, new AgentSessionSaver(store), guarded, { kv, store });
  };
  return [
    await make("MemorySaver", new MemorySaver(), false),
    await make("AgentSessionSaver, memory store", new AgentSessionSaver(memStore), false, { store: memStore }),
    await make("AgentSessionSaver, memory store, guard", new AgentSessionSaver(memStore), true, { store: memStore }),
    await kvImpl("AgentSessionSaver, kv(memoryKv())", false),
    await kvImpl("AgentSessionSaver, kv(memoryKv()), guard", true),
    await make("reference: MemorySaver inside a guard, a version per put", new GuardedMemorySaver(await SessionStore.memory()), true),
  ];
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const fmt = (x) => (Number.isNaN(x) ? "-" : x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(1));
const line = (cells) => `| ${cells.join(" | ")} |`;

const rows = [];
const raw = [];
for (const durability of durabilities)
for (const size of sizes) {
  const impls = await implementations(size, durability);
  for (let i = 0; i < warmup + turns; i++) {
    // Interleaved, in a rotating order, so that GC and JIT land on every implementation alike.
    for (let k = 0; k < impls.length; k++) {
      const impl = impls[(i + k) % impls.length];
      const turn = size * threads + i;
      const before = impl.version ? await impl.version(turn) : 0;
      const calls = impl.kv?.calls ?? 0;
      const inSaver = impl.inSaver;
      const start = performance.now();
      await impl.turn(turn);
      const elapsed = performance.now() - start;
      const kvCalls = (impl.kv?.calls ?? 0) - calls;
      if (i >= warmup) {
        impl.times.push(elapsed);
        impl.saverTimes.push(impl.inSaver - inSaver);
        if (impl.kv) impl.kvCalls.push(kvCalls);
        if (impl.version) impl.versions.push((await impl.version(turn)) - before);
      }
    }
  }
  const base = median(impls[0].times);
  for (const impl of impls) {
    const t = median(impl.times);
    raw.push({
      durability, size, name: impl.name, turnMs: t, vsMemorySaver: t / base, meanTurnMs: mean(impl.times), inSaverMs: median(impl.saverTimes),
      versionsPerTurn: impl.versions.length ? median(impl.versions) : null, kvCallsPerTurn: impl.kvCalls.length ? median(impl.kvCalls) : null,
    });
    rows.push([
      durability,
      size,
      impl.name,
      fmt(t),
      (t / base).toFixed(2),
      fmt(mean(impl.times)),
      fmt(median(impl.saverTimes)),
      impl.versions.length ? String(median(impl.versions)) : "-",
      impl.kvCalls.length ? String(median(impl.kvCalls)) : "-",
    ]);
  }
}

const command =
  process.env.BENCH_COMMAND ?? ["node", "bench/frameworks/langgraph.mjs", ...process.argv.slice(2)].join(" ");
const title = `LangGraph.js: one graph turn, AgentSessionSaver vs MemorySaver${threads > 1 ? `, ${threads} threads per store` : ""}`;
const out = printer();
out.log(`## ${title}

A turn is \`graph.invoke\` of a 2-node StateGraph (START -> agent -> tools -> END; each node appends a
~200-byte message, so the \`messages\` channel grows with the thread). "durability" is LangGraph's own
\`durability\` option of invoke: "async" (its default) puts a checkpoint after every step, 4 puts and 3
putWrites a turn, each awaited before the run returns; "exit" puts once, when the run ends. Medians of
${turns} turns after ${warmup} warm-up turns, interleaved; "turns before" = turns already in the thread. "in
saver" = time inside getTuple/put/putWrites (and the guard's begin and release). The mean includes the
turns that write an agent-session snapshot (every 50 commits by default, O(session size)). "versions" =
agent-session commits per turn; "KV calls" = HostKv get/put/delete/list/commit calls per
turn (the round trips a remote KV would pay; the memoryKv is given a one-call commit, as the Redis, Deno KV
and Durable Object adapters have one). The reference row is MemorySaver run inside agent-session's guard
on a memory store, with a logged message per write and a version (checkpoint) per put: what the guard and
the durable versions cost a turn, without the saver's layout of the checkpoints in the session.${threads > 1 ? `

Each checkpointer's turns go round-robin over ${threads} threads ("turns before" is per thread), as a
server's turns go over its users' threads: its store holds all of them, so that a memory store's wasm
memory grows while it is timed (V8 collects garbage at every growth of a wasm memory: src/heap.rs).` : ""}
`);
out.log(
  line([
    "durability",
    "turns before",
    "checkpointer",
    "turn ms",
    "x MemorySaver",
    "mean turn ms",
    "in saver ms",
    "versions/turn",
    "KV calls/turn",
  ]),
);
out.log(line(["---", "---:", "---", "---:", "---:", "---:", "---:", "---:", "---:"]));
for (const row of rows) out.log(line(row));
out.log(`\nCommand: \`${command}\` (Node ${process.version}, ${new Date().toISOString().slice(0, 10)})`);
writeJson(jsonPath(), import.meta.url, {
  name: threads > 1 ? "langgraph-threads" : "langgraph", title, markdown: out.text(), data: { turns, warmup, threads, rows: raw },
});
