// A turn on IndexedDB with and without live parts, in one fresh headless Chromium page: begin, emit
// PARTS parts (or none), 2 messages, commit; median turn and IndexedDB transactions per turn, two
// rounds each. Each argument names a build to time (a copy of its js/ under test-results/js-NAME, or
// "." for this checkout), in turn in the same page.
// Usage: node bench/live-turn-idb.mjs [. prev ...]   (not part of scripts/bench)
import { startBrowser } from "../tests/browser/chromium.mjs";
import { benchPage } from "./page.mjs";

const PARTS = 6;
const TURNS = 200;
const builds = process.argv.length > 2 ? process.argv.slice(2) : ["."];
const chrome = await startBrowser();
try {
  const page = await benchPage(chrome, "/bench/idb.html");
  const lines = await page.evaluate(async ({ builds, parts, turns }) => {
    let transactions = 0;
    const open = IDBDatabase.prototype.transaction;
    IDBDatabase.prototype.transaction = function (...args) {
      transactions++;
      return open.apply(this, args);
    };
    const { message } = await import("/bench/message.mjs");
    const tag = Math.random().toString(36).slice(2);
    const sessions = [];
    for (const build of builds) {
      const entry = build === "." ? "/js/entry/browser.js" : `/test-results/js-${build}/entry/browser.js`;
      const { SessionStore } = await import(entry);
      sessions.push([build, await (await SessionStore.indexedDb({ database: `live-turn-${build}-${tag}` })).open("s")]);
    }
    const out = [];
    for (const round of [1, 2]) {
      for (const count of [0, parts]) {
        for (const [build, session] of sessions) {
          const times = [];
          transactions = 0;
          for (let k = 0; k < turns; k++) {
            const t0 = performance.now();
            const inv = await session.begin();
            for (let p = 0; p < count; p++) inv.emit({ type: "delta", text: `chunk ${p}` });
            inv.appendMessage(message(k));
            inv.appendMessage(message(k + 1));
            await inv.commit();
            if (k >= turns / 10) times.push(performance.now() - t0);
          }
          times.sort((a, b) => a - b);
          out.push(`round ${round}, ${build}, ${count} parts: median ${times[times.length >> 1].toFixed(3)} ms, ${(transactions / turns).toFixed(2)} transactions a turn`);
        }
      }
    }
    return out;
  }, { builds, parts: PARTS, turns: TURNS });
  for (const line of lines) console.log(line);
} finally {
  await chrome.stop();
}
