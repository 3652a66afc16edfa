// A session of many turns, the way a server runs it (open by id, begin, one message, commit): whether
// a turn's cost and the head it writes grow with the session's length. On SessionStore.kv over an
// in-process memoryKv whose puts to the session's head (h/) are weighed. For each length: the session
// brought to that many versions by turns (untimed), then 300 timed turns; with one commit per turn
// (each turn takes the next fencing token) and with four (`inv.checkpoint()` three times, then commit,
// as the LangGraph saver's steps do). Figures are ratios to the shortest length of the same run;
// nothing here is a pass/fail threshold.
// Usage: node bench/long-session.mjs [--lengths=100,3000,30000] [--turns=300] [--json=path]
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { jsonPath, printer, writeJson } from "./json.mjs";
import { weighedKv } from "./weighed-kv.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const lengths = (args.lengths ?? "100,3000,30000").split(",").map(Number);
const TURNS = Number(args.turns ?? 300);
const message = (i) => ({ role: i % 2 ? "assistant" : "user", content: `${"x".repeat(150)} ${i}` });

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function turn(store, i, commits) {
  const session = await store.open("long");
  const inv = await session.begin();
  for (let c = 1; c < commits; c++) {
    inv.appendMessage(message(i));
    await inv.checkpoint();
  }
  inv.appendMessage(message(i));
  await inv.commit();
}

const out = printer();
const rows = [];
// Warm-up (not reported): the JIT compiles the turn's code before the first length is timed.
{
  const store = await SessionStore.kv(memoryKv());
  for (let i = 0; i < 2 * TURNS; i++) await turn(store, i, 1 + (i % 4));
  await store.close();
}
for (const commits of [1, 4]) {
  for (const length of lengths) {
    const { kv, written, puts } = weighedKv((key) => (/(?:^|\/)h\/long~$/.test(key) ? "head" : undefined), ["head"]);
    const store = await SessionStore.kv(kv);
    const session = await store.open("long");
    for (let i = 0; session.version < length; i++) await turn(store, i, commits);
    const times = [];
    const before = { bytes: written.head, puts: puts.head };
    for (let i = 0; i < TURNS; i++) {
      const t0 = performance.now();
      await turn(store, i, commits);
      times.push(performance.now() - t0);
    }
    const headBytes = (written.head - before.bytes) / (puts.head - before.puts);
    rows.push({ commits, length: session.version - TURNS * commits, turnMs: median(times), headBytes });
    await store.close();
  }
}

const base = (commits) => rows.find((row) => row.commits === commits);
out.log(`## A long session: turn and head size against length (Node ${process.version})

Open by id, begin, one message, commit (and, with four commits a turn, three \`checkpoint()\`s before it), on
SessionStore.kv(memoryKv()); medians of ${TURNS} turns after the session was brought to each length by turns. "head"
= bytes of each head write (begin and every commit write it). Ratios to the shortest length of the same run.

| commits a turn | versions | turn (ms) | x shortest | head (bytes) | x shortest |
|---:|---:|---:|---:|---:|---:|
${rows
  .map((row) => `| ${row.commits} | ${row.length.toLocaleString("en-US")} | ${row.turnMs.toFixed(3)} | ${(row.turnMs / base(row.commits).turnMs).toFixed(2)} | ${row.headBytes.toFixed(0)} | ${(row.headBytes / base(row.commits).headBytes).toFixed(2)} |`)
  .join("\n")}

Command: \`node bench/long-session.mjs${process.argv.slice(2).filter((a) => !a.startsWith("--json")).map((a) => ` ${a}`).join("")}\`
Date: ${new Date().toISOString()}`);
writeJson(jsonPath(), import.meta.url, {
  name: "long-session",
  title: "A long session: turn and head size against length",
  markdown: out.text(),
  data: { turns: TURNS, rows },
});
