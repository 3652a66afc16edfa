// What a checkpoint costs as a session's state grows (the LangGraph saver keeps every checkpoint as state
// keys): 300 setState + checkpoint() on SessionStore.memory() holding 10, 1000 and 5000 keys of ~800
// bytes; the median, and the 6th slowest of the 300 (every 50th commit writes a snapshot, which writes
// every state value).
// Usage: node bench/state-snapshot.mjs   (not part of scripts/bench)
import { SessionStore } from "agent-session";
for (const keys of [10, 1000, 5000]) {
  const store = await SessionStore.memory();
  const s = await store.open("s");
  for (let i = 0; i < keys; i += 500) await s.invoke((inv) => { for (let j = i; j < Math.min(keys, i + 500); j++) inv.setState(`lg/ns/checkpoint/${String(j).padStart(8, "0")}`, { v: "x".repeat(800), j }); });
  const inv = await s.begin();
  const N = 300; const ts = [];
  for (let k = 0; k < N; k++) { const t0 = performance.now(); inv.setState(`lg/new/${k}`, { v: "y".repeat(800) }); await inv.checkpoint(); ts.push(performance.now() - t0); }
  ts.sort((a, b) => a - b); const dt = ts[N >> 1] * 1000; const mx = ts[N - 6] * 1000; // 300 commits write 6 snapshots
  await inv.commit();
  console.log(keys, "state keys: median", dt.toFixed(1), "µs per setState+checkpoint; 6th slowest (about a snapshot's)", mx.toFixed(0), "µs");
  store.close();
}
