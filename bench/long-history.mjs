// Reading a session of many versions whole: history(), export() and a cold load (a new store opening
// it), for a session written by one long invocation with a checkpoint per agent step (N versions, one
// message each), as a LangGraph thread or a long agent run writes it. Each figure is the time per
// version and its ratio to the shortest length of the same run: about 1 when the cost is linear in the
// session's length, growing with N when it is not. Nothing here is a pass/fail threshold.
// Usage: node bench/long-history.mjs [--lengths=2500,5000,10000,20000] [--store=memory|kv] [--json=path]
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { jsonPath, printer, writeJson } from "./json.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const lengths = (args.lengths ?? "2500,5000,10000,20000").split(",").map(Number);
const stores = (args.store ?? "memory,kv").split(",");

async function timed(fn) {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const printed = printer();
const out = printed.log;
const rows = [];
for (const kind of stores) {
  let first;
  for (const n of lengths) {
    const kv = memoryKv();
    const store = kind === "memory" ? await SessionStore.memory() : await SessionStore.kv(kv);
    const session = await store.open("long");
    const inv = await session.begin();
    for (let i = 0; i < n; i++) {
      inv.appendMessage({ step: i });
      await inv.checkpoint();
    }
    await inv.commit();
    const history = await timed(() => session.history());
    const exported = await timed(() => session.export());
    // A cold load needs a second store over the same data: only the KV store has one.
    const load = kind === "kv" ? await timed(async () => (await SessionStore.kv(kv)).open("long")) : undefined;
    const perVersion = { history: (history * 1000) / n, export: (exported * 1000) / n, load: load === undefined ? undefined : (load * 1000) / n };
    first ??= perVersion;
    const ratio = (key) => (perVersion[key] === undefined ? undefined : perVersion[key] / first[key]);
    rows.push({ store: kind, versions: n, ms: { history, export: exported, load }, usPerVersion: perVersion, ratio: { history: ratio("history"), export: ratio("export"), load: ratio("load") } });
    await store.close();
  }
}

const fmt = (x, digits = 2) => (x === undefined ? "-" : x.toFixed(digits));
out("| store | versions | history() ms | export() ms | cold load ms | history µs/version | x shortest | export µs/version | x shortest | load µs/version | x shortest |");
out("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows) {
  out(
    `| ${r.store} | ${r.versions} | ${fmt(r.ms.history, 1)} | ${fmt(r.ms.export, 1)} | ${fmt(r.ms.load, 1)} | ${fmt(r.usPerVersion.history)} | ${fmt(r.ratio.history)} | ${fmt(r.usPerVersion.export)} | ${fmt(r.ratio.export)} | ${fmt(r.usPerVersion.load)} | ${fmt(r.ratio.load)} |`,
  );
}
out("");
out(`Command: \`node bench/long-history.mjs${process.argv.slice(2).length ? " " + process.argv.slice(2).join(" ") : ""}\` (Node ${process.version}, ${new Date().toISOString().slice(0, 10)})`);
writeJson(jsonPath(), import.meta.url, { name: "long-history", title: "Reading a long session whole", markdown: printed.text(), data: rows });
