// A/B of agent-session IndexedDB turns against the hand-written idb protocol (bench/baselines.mjs), in one
// headless Chromium page, interleaved turn by turn, 700 measured turns each; prints medians and ratios.
// The argument names each variant: its store options, or { options, entry } where entry is the URL of
// another build's js/entry/browser.js (copy that build's js/ under test-results/, which is served and
// ignored by git): two builds in one page is the comparison that separates a 1% change from the noise
// between runs (about 2%).
// Usage: node bench/idb-ab.mjs '{"default":{},"no heartbeat":{"heartbeat":false}}'
//        node bench/idb-ab.mjs '{"default":{},"onEvent":{"onEvent":"noop"}}'
//        node bench/idb-ab.mjs '{"before":{"entry":"/test-results/js-a/entry/browser.js"},"after":{}}'
//        node bench/idb-ab.mjs '{"before":{"entry":"/test-results/js-a/entry/browser.js","signal":true},"after":{"options":{},"signal":true}}'
//        node bench/idb-ab.mjs '{"before":{"entry":"/test-results/js-a/entry/browser.js","open":true},"after":{"options":{},"open":true}}'
// ("signal": true reads inv.signal after begin, as the framework drop-ins do; "open": true opens the
// session by id before each turn, as a server or a page that does not hold it does.)
import { startBrowser } from "../tests/browser/chromium.mjs";
import { benchPage } from "./page.mjs";
const configs = JSON.parse(process.argv[2] ?? '{"default":{}}');
const chrome = await startBrowser();
try {
  const page = await benchPage(chrome, "/bench/idb.html");
  console.log(await page.evaluate(async (configs) => {
    const { message } = await import("/bench/message.mjs");
    const { idbProtocol } = await import("/bench/baselines.mjs");
    const impls = {};
    for (const [name, config] of Object.entries(configs)) {
      const variant = ["entry", "options", "signal", "open"].some((flag) => flag in config);
      const { SessionStore } = await import(variant && config.entry ? config.entry : "/js/entry/browser.js");
      const given = variant ? config.options ?? {} : config;
      // "onEvent": "noop" gives the store a listener that does nothing (what events cost to build).
      const opts = given.onEvent === "noop" ? { ...given, onEvent: () => {} } : given;
      const store = await SessionStore.indexedDb({ database: "ab" + Math.random(), ...opts });
      const s = await store.open("s");
      const signal = variant && config.signal === true;
      const perRequest = variant && config.open === true;
      impls[name] = async (k) => {
        const inv = await (perRequest ? await store.open("s") : s).begin();
        if (signal) inv.signal.addEventListener("abort", () => {});
        inv.appendMessage(message(k));
        inv.appendMessage(message(k + 1));
        await inv.commit();
      };
    }
    const b = await idbProtocol("abb" + Math.random()); const bw = await b.writer("s");
    impls.idb = (k) => bw.turn([message(k), message(k + 1)]);
    const times = Object.fromEntries(Object.keys(impls).map((k) => [k, []]));
    const names = Object.keys(impls);
    for (let k = 0; k < 800; k++) {
      for (let j = 0; j < names.length; j++) {
        const name = names[(k + j) % names.length];
        // What a turn defers (a timer, a posted message) runs before the next is timed, not in it.
        await new Promise((resolve) => setTimeout(resolve, 0));
        const t0 = performance.now(); await impls[name](k); const dt = performance.now() - t0;
        if (k >= 100) times[name].push(dt);
      }
    }
    const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
    const base = med(times.idb);
    return names.map((n) => `${n}: ${med(times[n]).toFixed(3)} ms (${(med(times[n]) / base).toFixed(3)}x idb)`).join("\n");
  }, configs));
} finally { await chrome.stop(); }
