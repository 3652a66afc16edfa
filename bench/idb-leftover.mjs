// What an IndexedDB turn leaves behind for the code that runs next, in one fresh headless Chromium
// page: the same turn on SessionStore.memory() (the engine and bindings, no storage) timed alone, right
// after a hand-written IndexedDB turn (bench/baselines.mjs (b)), right after an agent-session IndexedDB
// turn, and after a 2 ms sleep; medians of 500 turns each. It shows why the report's interleaved turns
// are slower than the same code in a loop: the browser's work after an IndexedDB transaction and cold
// caches land on whatever runs next. Usage: node bench/idb-leftover.mjs   (not part of scripts/bench)
import { startBrowser } from "../tests/browser/chromium.mjs";
import { benchPage } from "./page.mjs";

const chrome = await startBrowser();
try {
  const page = await benchPage(chrome, "/bench/idb.html");
  const lines = await page.evaluate(async () => {
    const { SessionStore } = await import("/js/entry/browser.js");
    const { message } = await import("/bench/message.mjs");
    const { idbProtocol } = await import("/bench/baselines.mjs");
    const tag = Math.random().toString(36).slice(2);
    const memory = await (await SessionStore.memory()).open("s");
    const onIdb = await (await SessionStore.indexedDb({ database: `leftover-${tag}` })).open("s");
    const hand = await (await idbProtocol(`leftover-hand-${tag}`)).writer("s");
    const sessionTurn = (session) => async (k) => {
      const inv = await session.begin();
      inv.appendMessage(message(k));
      inv.appendMessage(message(k + 1));
      await inv.commit();
    };
    const handTurn = async (k) => {
      const token = await hand.begin();
      await hand.commit(token, [message(k), message(k + 1)]);
    };
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    const before = {
      alone: null,
      "after a hand-written IndexedDB turn": handTurn,
      "after an agent-session IndexedDB turn": sessionTurn(onIdb),
      "after a 2 ms sleep": () => sleep(2),
      "alone, again": null,
    };
    const out = [];
    for (const [label, first] of Object.entries(before)) {
      const times = [];
      for (let k = 0; k < 600; k++) {
        if (first) await first(k);
        const t0 = performance.now();
        await sessionTurn(memory)(k);
        if (k >= 100) times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      out.push(`memory-store turn ${label}: median ${(times[times.length >> 1] * 1000).toFixed(0)} µs`);
    }
    return out;
  });
  for (const line of lines) console.log(line);
} finally {
  await chrome.stop();
}
