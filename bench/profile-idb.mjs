// A CPU profile of agent-session on IndexedDB in headless Chromium (CDP Profiler, 50 µs sampling): N turns
// (begin + 2 messages + commit) or cold loads of a session of SIZE messages, after as many unprofiled.
// Prints ms per operation, the IndexedDB calls per operation, the time with agent-session's code on the
// stack (and the leaf functions under it), and the top self-time functions. For names of Rust
// functions, build the .wasm with names first (docs/benchmarks.md "Size of the .wasm").
// Usage: [PROFILE_OUT=file.cpuprofile] node bench/profile-idb.mjs [SIZE=10] [turn|load] [N=400] [idb]   (not part of scripts/bench)
// With "idb" last, the turns profiled are the hand-written protocol's (bench/baselines.mjs (b)), for a
// side-by-side look at the same IndexedDB calls without agent-session.
import { startBrowser } from "../tests/browser/chromium.mjs";
import { benchPage } from "./page.mjs";
const size = Number(process.argv[2] ?? 10), mode = process.argv[3] ?? "turn", n = Number(process.argv[4] ?? 400);
const baseline = process.argv[5] === "idb";
const chrome = await startBrowser();
try {
  const page = await benchPage(chrome, "/bench/idb.html");
  await page.evaluate(async ({ size }) => {
    const { SessionStore } = await import("/js/entry/browser.js");
    const { message } = await import("/bench/message.mjs");
    const db = "prof-" + Math.random();
    const store = await SessionStore.indexedDb({ database: db });
    const s = await store.open("s");
    for (let i = 0; i < size; i += 100) { const inv = await s.begin(); for (let j = i; j < Math.min(size, i + 100); j++) inv.appendMessage(message(j)); await inv.commit(); }
    const { idbProtocol } = await import("/bench/baselines.mjs");
    const proto = await idbProtocol(db + "-b");
    const hand = await proto.writer("s");
    await hand.fill(Array.from({ length: size }, (_, j) => message(j)));
    window.__p = { store, s, db, SessionStore, message, hand, proto };
  }, { size });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 50 });
  const run = () => page.evaluate(async ({ mode, n, baseline }) => {
    const { store, s, db, SessionStore, message, hand, proto } = window.__p;
    if (!window.__c) { window.__c = { post: 0, put: 0, get: 0, tx: 0 }; const P = BroadcastChannel.prototype.postMessage; BroadcastChannel.prototype.postMessage = function (...a) { window.__c.post++; return P.apply(this, a); }; for (const [o, m] of [[IDBObjectStore.prototype, "put"], [IDBObjectStore.prototype, "get"], [IDBDatabase.prototype, "transaction"]]) { const f = o[m]; o[m] = function (...a) { window.__c[m === "transaction" ? "tx" : m]++; return f.apply(this, a); }; } }
    const c0 = { ...window.__c };
    const t0 = performance.now();
    for (let k = 0; k < n; k++) {
      if (baseline && mode === "turn") await hand.turn([message(k), message(k + 1)]);
      else if (baseline) (await proto.load("s")).close();
      else if (mode === "turn") { const inv = await s.begin(); inv.appendMessage(message(k)); inv.appendMessage(message(k + 1)); await inv.commit(); }
      else { const r = await SessionStore.indexedDb({ database: db }); const x = await r.open("s", { create: false }); x.messages().length; r.close(); }
    }
    const dt = (performance.now() - t0) / n; return [dt, Object.fromEntries(Object.entries(window.__c).map(([k, v]) => [k, (v - c0[k]) / n]))];
  }, { mode, n, baseline });
  console.log("warm", await run());
  await cdp.send("Profiler.start");
  const per = await run();
  const { profile } = await cdp.send("Profiler.stop");
  console.log("per op ms", per);
  // PROFILE_OUT=path keeps the whole profile (for a look at inclusive times of the engine's functions).
  if (process.env.PROFILE_OUT) (await import("node:fs")).writeFileSync(process.env.PROFILE_OUT, JSON.stringify(profile));
  const self = new Map(); const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const dt = profile.timeDeltas; const counts = new Map();
  profile.samples.forEach((id, i) => counts.set(id, (counts.get(id) ?? 0) + (dt[i] ?? 0)));
  let total = 0;
  for (const [id, t] of counts) { const node = byId.get(id); const cf = node.callFrame; const key = `${cf.functionName || "(anon)"} ${cf.url.split("/").slice(-1)[0]}:${cf.lineNumber}`; self.set(key, (self.get(key) ?? 0) + t); total += t; }
  // inclusive: samples with one of our frames on the stack, grouped by the outermost such frame
  const parent = new Map(); for (const x of profile.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const ours = (cf) => (baseline ? /baselines\.mjs|idb\/build/ : /agent_session|web\.js|runtime\.js|json\.js|errors\.js|api\.js|browser\.js/).test(cf.url);
  const incl = new Map(); let oursTotal = 0;
  for (const [id, t] of counts) { let cur = id, outer = null; while (cur) { const cf = byId.get(cur).callFrame; if (ours(cf)) outer = cf; cur = parent.get(cur); } if (outer) { oursTotal += t; const k = `${outer.functionName || "(anon)"} ${outer.url.split("/").pop()}:${outer.lineNumber}`; incl.set(k, (incl.get(k) ?? 0) + t); } }
  console.log("ours inclusive ms/op", (oursTotal / 1000 / n).toFixed(4));
  const leafUnder = new Map();
  for (const [id, t] of counts) { let cur = id, inOurs = false; while (cur) { if (ours(byId.get(cur).callFrame)) { inOurs = true; break; } cur = parent.get(cur); } if (!inOurs) continue; const cf = byId.get(id).callFrame; const k = `${cf.functionName || "(anon)"} ${cf.url.split("/").pop()}:${cf.lineNumber}`; leafUnder.set(k, (leafUnder.get(k) ?? 0) + t); }
  for (const [k, t] of [...leafUnder].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log("  leaf", (t / 1000 / n).toFixed(4), k.slice(0, 140));
  for (const [k, t] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log("  incl", (t / 1000 / n).toFixed(4), k);
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 45);
  for (const [k, t] of top) console.log((t / 1000 / n).toFixed(4), "ms/op", (100 * t / total).toFixed(1) + "%", k);
} finally { await chrome.stop(); }
