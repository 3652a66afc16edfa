// Cold loads of two builds in one headless Chromium page against the hand-written idb protocol (connect,
// open, read every message, close), interleaved, each load's deferred work drained before the next is
// timed; 50 measured loads each. The other build: its js/ copied to test-results/js-a (served, ignored by
// git). Usage: node bench/idb-ab-load.mjs [SIZE=1000]   (not part of scripts/bench)
import { startBrowser } from "../tests/browser/chromium.mjs";
import { benchPage } from "./page.mjs";
const size = Number(process.argv[2] ?? 1000);
const chrome = await startBrowser();
try {
  const page = await benchPage(chrome, "/bench/idb.html");
  console.log(size, await page.evaluate(async (size) => {
    const builds = { "test-results/js-a": "/test-results/js-a/entry/browser.js", "js": "/js/entry/browser.js" };
    const { message } = await import("/bench/message.mjs");
    const { idbProtocol } = await import("/bench/baselines.mjs");
    const loads = {};
    for (const [name, url] of Object.entries(builds)) {
      const { SessionStore } = await import(url);
      const database = "abl" + name + Math.random();
      const store = await SessionStore.indexedDb({ database });
      const s = await store.open("s");
      for (let i = 0; i < size; i += 100) { const inv = await s.begin(); for (let j = i; j < Math.min(size, i + 100); j++) inv.appendMessage(message(j)); await inv.commit(); }
      store.close();
      loads[name] = async () => { const r = await SessionStore.indexedDb({ database }); const x = await r.open("s", { create: false }); const n = x.messages().length; r.close(); if (n !== size) throw new Error("count"); };
    }
    const b = await idbProtocol("ablb" + Math.random()); const bw = await b.writer("s"); await bw.fill(Array.from({ length: size }, (_, i) => message(i)));
    loads.idb = async () => { const l = await b.load("s"); l.close(); };
    const names = Object.keys(loads); const times = Object.fromEntries(names.map((n) => [n, []]));
    for (let k = 0; k < 60; k++) for (let j = 0; j < names.length; j++) { const name = names[(k + j) % names.length]; await new Promise((r) => setTimeout(r, 0)); const t0 = performance.now(); await loads[name](); if (k >= 10) times[name].push(performance.now() - t0); }
    const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
    const base = med(times.idb);
    return names.map((n) => `${n}: ${med(times[n]).toFixed(3)} ms (${(med(times[n]) / base).toFixed(2)}x idb)`).join("  ");
  }, size));
} finally { await chrome.stop(); }
