// A session whose state grows without bound, as the LangGraph saver's does (every checkpoint is state
// keys): what a commit costs and what a snapshot writes as the state grows. On SessionStore.kv over an
// in-process memoryKv whose puts are weighed by record kind (h/ head, e/ batch, s/ snapshot, g/
// segment), so that the bytes each commit writes are seen. For each size: the state filled to that many
// keys of ~800 bytes, then 300 commits of one more key (setState + checkpoint), about 6 of which write
// a snapshot. Figures are ratios to what the same run measured (the median commit, the state's own
// size); nothing here is a pass/fail threshold.
// Usage: node bench/state-growth.mjs [--sizes=100,1000,5000] [--commits=300] [--json=path]
import { SessionStore } from "agent-session";
import { jsonPath, printer, writeJson } from "./json.mjs";
import { weighedKv } from "./weighed-kv.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const sizes = (args.sizes ?? "100,1000,5000").split(",").map(Number);
const COMMITS = Number(args.commits ?? 300);
const value = (i) => ({ checkpoint: i, channel: "x".repeat(780) });
const key = (i) => `c/${String(i).padStart(8, "0")}`;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : NaN;
};

const out = printer();
const rows = [];
for (const size of sizes) {
  // The bytes put under each record kind of session "grow": h/ head, e/ batch, s/ snapshot, g/ segment.
  const { kv, written } = weighedKv((key) => /(?:^|\/)([hesg])\/grow~/.exec(key)?.[1], ["h", "e", "s", "g"]);
  const store = await SessionStore.kv(kv);
  const session = await store.open("grow");
  for (let i = 0; i < size; i += 200) {
    await session.invoke((inv) => {
      for (let j = i; j < Math.min(size, i + 200); j++) inv.setState(key(j), value(j));
    });
  }
  const inv = await session.begin();
  const plain = [];
  const snapshots = [];
  for (let n = 0; n < COMMITS; n++) {
    const before = written.s + written.g;
    const t0 = performance.now();
    inv.setState(key(size + n), value(size + n));
    await inv.checkpoint();
    const ms = performance.now() - t0;
    const snapshotBytes = written.s + written.g - before;
    if (snapshotBytes > 0) snapshots.push({ ms, bytes: snapshotBytes });
    else plain.push(ms);
  }
  await inv.commit();
  const state = session.state();
  const stateBytes = Object.entries(state).reduce((sum, [k, v]) => sum + k.length + JSON.stringify(v).length, 0);
  const row = {
    keys: size,
    stateBytes,
    commitMs: median(plain),
    snapshotMs: median(snapshots.map((s) => s.ms)),
    snapshotBytes: median(snapshots.map((s) => s.bytes)),
    snapshots: snapshots.length,
  };
  rows.push(row);
  store.close();
}

const fmt = (x, digits = 3) => (Number.isNaN(x) ? "-" : x.toFixed(digits));
out.log("## A session whose state grows (Node, SessionStore.kv over memoryKv)\n");
out.log(
  `The state filled to N keys of ~800 bytes, then ${COMMITS} commits of one more key each (setState + checkpoint);` +
    ' "snapshot" = the commits that wrote a snapshot (its s/ and g/ records), "commit" = the others; medians.',
);
out.log("A snapshot writes the values set since the one before, not the state (docs/storage-layout.md).\n");
out.log("| keys at start | state KB at end | commit ms | snapshot commit ms | snapshot ÷ commit | snapshots | KB a snapshot writes | ÷ state |");
out.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows) {
  out.log(
    `| ${r.keys} | ${fmt(r.stateBytes / 1024, 0)} | ${fmt(r.commitMs)} | ${fmt(r.snapshotMs)} | ${fmt(r.snapshotMs / r.commitMs, 1)} | ${r.snapshots} | ${fmt(r.snapshotBytes / 1024, 1)} | ${fmt(r.snapshotBytes / r.stateBytes, 4)} |`,
  );
}
const command = ["node", "bench/state-growth.mjs", ...process.argv.slice(2)].join(" ");
out.log(`\nCommand: \`${command}\` (Node ${process.version}, ${new Date().toISOString()})`);
writeJson(jsonPath(), import.meta.url, {
  name: "state-growth",
  title: "A session whose state grows (Node, SessionStore.kv over memoryKv)",
  markdown: out.text(),
  data: { rows, commits: COMMITS },
});
