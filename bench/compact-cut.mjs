// What `inv.compact()` costs a turn, by the length of the cut: the same cut staged with the tool-pair
// rule (the default, which reads the messages below the cut for tool calls) and with `force: true`
// (the rule skipped), on the memory store, for plain text messages and for a log where every fourth
// message is a Strands tool call or its result, and the cut of a sliding window (the first 2 of 40 messages)
// where that log starts with a tool call and its result. Each figure is the median of many cuts staged and
// aborted; the ratio is to the forced cut of the same run. Nothing here is a pass/fail threshold.
// Usage: node bench/compact-cut.mjs [--cuts=2,38,400] [--rounds=300] [--json=path]
import { SessionStore } from "agent-session";
import { jsonPath, printer, writeJson } from "./json.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const cuts = (args.cuts ?? "2,38,400").split(",").map(Number);
const rounds = Number(args.rounds ?? 300);
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const text = (i) => ({ role: i % 2 ? "assistant" : "user", content: [{ text: `turn ${i}: ${"q".repeat(190)}` }], trackingId: `m-${i}` });
/** Every fourth message a tool call, the next one its result (the pair never split by these cuts). */
const withTools = (i) => {
  if (i % 4 === 2) return { role: "assistant", content: [{ toolUse: { toolUseId: `t-${i}`, name: "lookup", input: { q: "x".repeat(150) } } }], trackingId: `m-${i}` };
  if (i % 4 === 3) return { role: "user", content: [{ toolResult: { toolUseId: `t-${i - 1}`, status: "success", content: [{ text: "y".repeat(150) }] } }], trackingId: `m-${i}` };
  return text(i);
};

/** A sliding window's cut: the oldest pair of a 40-message log that starts with a tool call. */
const windowed = (i) => withTools(i + 2);
const cases = [];
for (const [kind, message] of [["plain text", text], ["tool pairs", withTools]]) {
  for (const cut of cuts) cases.push({ kind, message, cut, length: cut + 2 });
}
cases.push({ kind: "tool pairs, a window's first pair cut", message: windowed, cut: 2, length: 40 });

const store = await SessionStore.memory();
const rows = [];
for (const { kind, message, cut, length } of cases) {
  const session = await store.open(`${kind}-${cut}-${length}`, { create: true });
  await session.invoke((inv) => {
    for (let i = 0; i < length; i++) inv.appendMessage(message(i));
  });
  const times = { rule: [], forced: [] };
  for (let r = 0; r < rounds; r++) {
    for (const force of r % 2 ? [false, true] : [true, false]) {
      const inv = await session.begin();
      const start = performance.now();
      inv.compact({ before: cut, summary: [], force });
      times[force ? "forced" : "rule"].push((performance.now() - start) * 1000);
      await inv.abort();
    }
  }
  rows.push({ kind, cut, length, ruleUs: median(times.rule), forcedUs: median(times.forced) });
}

const out = printer();
out.log(`inv.compact({ before, summary: [] }) on the memory store: median µs of ${rounds} cuts each (staged, then aborted)`);
out.log("");
out.log("| messages | cut (messages below it) | messages in all | with the tool-pair rule (µs) | force: true (µs) | rule / forced |");
out.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const row of rows) {
  out.log(`| ${row.kind} | ${row.cut} | ${row.length} | ${row.ruleUs.toFixed(1)} | ${row.forcedUs.toFixed(1)} | ${(row.ruleUs / row.forcedUs).toFixed(2)} |`);
}
out.log("");
out.log(`Command: \`node bench/compact-cut.mjs${process.argv.slice(2).map((a) => ` ${a}`).join("")}\` (Node ${process.version}, ${new Date().toISOString().slice(0, 10)})`);
writeJson(jsonPath(), import.meta.url, { name: "compact-cut", title: "Compaction: the cost of a cut, with and without the tool-pair rule", markdown: out.text(), data: { rounds, rows } });
await store.close();
