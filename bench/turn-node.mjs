// One server turn in Node, the way the issue's outside run measured it: open the session by id, begin,
// read the messages, append 2 messages and set 1 state key, commit; on the memory store and on
// kv(memoryKv), against @openai/agents' MemorySession doing what a turn needs of it (getItems, then
// addItems of 2 items), interleaved turn by turn in one process.
// Usage: node bench/turn-node.mjs [--sizes=10,1000,10000] [--turns=2000] [--json=path]
// Figures are ratios to MemorySession measured in the same run; nothing here is a pass/fail threshold.
import { MemorySession } from "@openai/agents";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { jsonPath, printer, writeJson } from "./json.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const sizes = (args.sizes ?? "10,1000,10000").split(",").map(Number);
const turns = Number(args.turns ?? 2000);

const item = (i) => ({ type: "message", role: i % 2 ? "assistant" : "user", content: `${"x".repeat(150)} ${i}` });
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function agentSession(store, size) {
  stores.push(store);
  const prefill = await store.open("s");
  for (let i = 0; i < size; i += 100) {
    await prefill.invoke((inv) => {
      for (let j = i; j < Math.min(size, i + 100); j++) inv.appendMessage(item(j));
    });
  }
  let n = size;
  const turn = async () => {
    const t0 = performance.now();
    const session = await store.open("s");
    const t1 = performance.now();
    const inv = await session.begin();
    const t2 = performance.now();
    if (inv.messages().length < n) throw new Error("lost messages");
    const t3 = performance.now();
    inv.appendMessage(item(n++));
    inv.appendMessage(item(n++));
    inv.setState("turn", n);
    const t4 = performance.now();
    await inv.commit();
    turn.phases = [t1 - t0, t2 - t1, t3 - t2, t4 - t3, performance.now() - t4];
  };
  return turn;
}

/** Where a turn's time goes: open by id, begin, read messages(), stage (2 appendMessage + setState), commit. */
const PHASES = ["open", "begin", "read", "stage", "commit"];

async function memorySession(size) {
  const session = new MemorySession({ sessionId: "s" });
  await session.addItems(Array.from({ length: size }, (_, i) => item(i)));
  let n = size;
  return async () => {
    const items = await session.getItems();
    if (items.length < n) throw new Error("lost items");
    await session.addItems([item(n++), item(n++)]);
  };
}

// The stores of the current round, closed when the next starts (a memory store holds its sessions in
// wasm memory until closed).
let stores = [];

const out = printer();
const rows = [];
out.log(`## One server turn in Node (${process.version})

Open by id, begin, read the messages, 2 messages + 1 state key, commit; MemorySession: getItems + addItems
of 2. Medians in µs of ${turns} turns each, interleaved by rounds: each round starts all three again from the
size given (untimed) and runs 50 turns of each in turn (the first 5 untimed; the order rotates from round to
round), so the size stays near it and the garbage of one (MemorySession copies every item per call) is
mostly collected in its own turns, not another's.

| messages | MemorySession | memory store | ÷ MemorySession | kv(memoryKv) | ÷ MemorySession |
|---:|---:|---:|---:|---:|---:|`);
for (const size of sizes) {
  const fresh = async () => [
    ["mem", await memorySession(size)],
    ["memory", await agentSession(await SessionStore.memory(), size)],
    ["kv", await agentSession(await SessionStore.kv(memoryKv()), size)],
  ];
  const times = { mem: [], memory: [], kv: [] };
  const phases = { memory: PHASES.map(() => []), kv: PHASES.map(() => []) };
  for (let round = 0; round < turns / 50; round++) {
    for (const store of stores.splice(0)) await store.close();
    const impls = await fresh();
    // Each round in another order, so that no implementation always runs right after the same one.
    for (const [name, turn] of impls.slice(round % 3).concat(impls.slice(0, round % 3))) {
      for (let t = 0; t < 50; t++) {
        const start = performance.now();
        await turn();
        if (t < 5) continue;
        times[name].push((performance.now() - start) * 1000);
        turn.phases?.forEach((ms, i) => phases[name][i].push(ms * 1000));
      }
    }
  }
  const [mem, memory, kv] = ["mem", "memory", "kv"].map((name) => median(times[name]));
  const phaseMedians = Object.fromEntries(Object.entries(phases).map(([name, lists]) => [name, lists.map(median)]));
  rows.push({ size, memorySessionUs: mem, memoryUs: memory, kvUs: kv, phasesUs: phaseMedians });
  out.log(`| ${size} | ${mem.toFixed(1)} | ${memory.toFixed(1)} | ${(memory / mem).toFixed(2)} | ${kv.toFixed(1)} | ${(kv / mem).toFixed(2)} |`);
}
out.log(`
Where a turn's time goes (medians in µs of the same turns): ${PHASES.join(", ")} (stage = 2 appendMessage + 1
setState, each validated and turned into JSON text; commit = the batch encoded, checksummed and written, the
cached view updated).

| messages | store | ${PHASES.join(" | ")} |
|---:|---|${PHASES.map(() => "---:").join("|")}|
${rows.flatMap((row) => ["memory", "kv"].map((name) => `| ${row.size} | ${name === "kv" ? "kv(memoryKv)" : "memory"} | ${row.phasesUs[name].map((us) => us.toFixed(1)).join(" | ")} |`)).join("\n")}`);
out.log(`
Command: \`${process.env.BENCH_COMMAND ?? `node bench/turn-node.mjs ${process.argv.slice(2).join(" ")}`.trim()}\`
Date: ${new Date().toISOString()}`);
writeJson(jsonPath(), import.meta.url, { name: "turn-node", title: `One server turn in Node (${process.version})`, markdown: out.text(), data: { turns, rows } });
