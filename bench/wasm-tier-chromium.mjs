// How a turn's cost falls as V8 compiles the engine's WebAssembly with its optimizing tier: in one fresh
// headless Chromium page (no code cache, as on a first visit), blocks of turns (begin + 2 messages +
// commit) on agent-session's IndexedDB store interleaved with the hand-written idb protocol
// (bench/baselines.mjs (b)), and the same turn on SessionStore.memory(); prints each block's medians
// and the IndexedDB ratio. V8 starts every wasm function in its baseline compiler (Liftoff) and moves a
// function to the optimizing one (TurboFan) once it has run enough: a page that makes a few turns runs
// the engine mostly in the first tier. Not part of scripts/bench.
// Usage: node bench/wasm-tier-chromium.mjs [BLOCKS=8] [TURNS_PER_BLOCK=500]
import { startBrowser } from "../tests/browser/chromium.mjs";
import { benchPage } from "./page.mjs";

const blocks = Number(process.argv[2] ?? 8);
const perBlock = Number(process.argv[3] ?? 500);
const chrome = await startBrowser();
try {
  const page = await benchPage(chrome, "/bench/idb.html");
  const rows = await page.evaluate(
    async ({ blocks, perBlock }) => {
      const { SessionStore } = await import("/js/entry/browser.js");
      const { message } = await import("/bench/message.mjs");
      const { idbProtocol } = await import("/bench/baselines.mjs");
      const idb = await (await SessionStore.indexedDb({ database: `tier-${Math.random()}` })).open("s");
      const memory = await (await SessionStore.memory()).open("s");
      const hand = await (await idbProtocol(`tier-hand-${Math.random()}`)).writer("s");
      const turn = async (session, k) => {
        const inv = await session.begin();
        inv.appendMessage(message(k));
        inv.appendMessage(message(k + 1));
        await inv.commit();
      };
      const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
      const rows = [];
      let k = 0;
      for (let block = 0; block < blocks; block++) {
        const times = { idb: [], hand: [], memory: [] };
        for (let i = 0; i < perBlock; i++, k += 2) {
          let start = performance.now();
          await turn(idb, k);
          times.idb.push(performance.now() - start);
          start = performance.now();
          await hand.turn([message(k), message(k + 1)]);
          times.hand.push(performance.now() - start);
          start = performance.now();
          await turn(memory, k);
          times.memory.push(performance.now() - start);
        }
        rows.push({ turns: (block + 1) * perBlock, idb: median(times.idb), hand: median(times.hand), memory: median(times.memory) });
      }
      return rows;
    },
    { blocks, perBlock },
  );
  console.log("| turns so far | agent-session IndexedDB ms | hand-written ms | ratio | memory store ms |");
  console.log("| ---: | ---: | ---: | ---: | ---: |");
  for (const row of rows) {
    console.log(`| ${row.turns} | ${row.idb.toFixed(3)} | ${row.hand.toFixed(3)} | ${(row.idb / row.hand).toFixed(2)} | ${row.memory.toFixed(3)} |`);
  }
} finally {
  await chrome.stop();
}
