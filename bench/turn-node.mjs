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
  const prefill = await store.open("s");
  for (let i = 0; i < size; i += 100) {
    await prefill.invoke((inv) => {
      for (let j = i; j < Math.min(size, i + 100); j++) inv.appendMessage(item(j));
    });
  }
  let n = size;
  return async () => {
    const session = await store.open("s");
    const inv = await session.begin();
    if (inv.messages().length < n) throw new Error("lost messages");
    inv.appendMessage(item(n++));
    inv.appendMessage(item(n++));
    inv.setState("turn", n);
    await inv.commit();
  };
}

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

const out = printer();
const rows = [];
out.log(`## One server turn in Node (${process.version})

Open by id, begin, read the messages, 2 messages + 1 state key, commit; MemorySession: getItems + addItems
of 2. Medians in µs of ${turns} turns each, interleaved; the session starts at the size given and grows by 2
per turn, and every 50 turns all three start again from that size (untimed), so the size stays near it.

| messages | MemorySession | memory store | ÷ MemorySession | kv(memoryKv) | ÷ MemorySession |
|---:|---:|---:|---:|---:|---:|`);
for (const size of sizes) {
  const fresh = async () => [
    ["mem", await memorySession(size)],
    ["memory", await agentSession(await SessionStore.memory(), size)],
    ["kv", await agentSession(await SessionStore.kv(memoryKv()), size)],
  ];
  let impls = await fresh();
  const times = Object.fromEntries(impls.map(([name]) => [name, []]));
  for (let t = 0; t < turns; t++) {
    if (t % 50 === 0 && t > 0) impls = await fresh();
    for (const [name, turn] of impls) {
      const start = performance.now();
      await turn();
      times[name].push((performance.now() - start) * 1000);
    }
  }
  const [mem, memory, kv] = ["mem", "memory", "kv"].map((name) => median(times[name].filter((_, t) => t % 50 >= 5)));
  rows.push({ size, memorySessionUs: mem, memoryUs: memory, kvUs: kv });
  out.log(`| ${size} | ${mem.toFixed(1)} | ${memory.toFixed(1)} | ${(memory / mem).toFixed(2)} | ${kv.toFixed(1)} | ${(kv / mem).toFixed(2)} |`);
}
out.log(`
Command: \`${process.env.BENCH_COMMAND ?? `node bench/turn-node.mjs ${process.argv.slice(2).join(" ")}`.trim()}\`
Date: ${new Date().toISOString()}`);
writeJson(jsonPath(), import.meta.url, { name: "turn-node", title: `One server turn in Node (${process.version})`, markdown: out.text(), data: { turns, rows } });
