// Which IndexedDB turns set the p99: the turns whose commit writes a snapshot against the others, in one
// fresh headless Chromium page (begin + 2 messages of ~200 bytes + commit, 600 turns after the session is
// filled to SIZE messages): how many of each, their medians, and the bytes each kind puts. Not part of
// scripts/bench. Usage: node bench/idb-snapshot-turn.mjs [SIZE=10] [TURNS=600]
import { startBrowser } from "../tests/browser/chromium.mjs";
import { benchPage } from "./page.mjs";

const size = Number(process.argv[2] ?? 10);
const turns = Number(process.argv[3] ?? 600);
const chrome = await startBrowser();
try {
  const page = await benchPage(chrome, "/bench/idb.html");
  const out = await page.evaluate(
    async ({ size, turns }) => {
      const { SessionStore } = await import("/js/entry/browser.js");
      const { message } = await import("/bench/message.mjs");
      let snapshot = false;
      let bytes = 0;
      const put = IDBObjectStore.prototype.put;
      IDBObjectStore.prototype.put = function (value, ...rest) {
        bytes += value?.v?.byteLength ?? value?.byteLength ?? 0;
        return put.call(this, value, ...rest);
      };
      const store = await SessionStore.indexedDb({
        database: `snapshot-turn-${Date.now()}`,
        onEvent: (event) => event.type === "snapshot" && (snapshot = true),
      });
      const session = await store.open("s");
      for (let i = 0; i < size; i += 100) {
        await session.invoke((inv) => {
          for (let k = i; k < Math.min(size, i + 100); k++) inv.appendMessage(message(k));
        });
      }
      const kinds = { snapshot: { ms: [], bytes: [] }, other: { ms: [], bytes: [] } };
      for (let t = 0; t < turns; t++) {
        snapshot = false;
        bytes = 0;
        const start = performance.now();
        const inv = await session.begin();
        inv.appendMessage(message(t));
        inv.appendMessage(message(t + 1));
        await inv.commit();
        const kind = kinds[snapshot ? "snapshot" : "other"];
        kind.ms.push(performance.now() - start);
        kind.bytes.push(bytes);
      }
      const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
      const all = [...kinds.snapshot.ms.map((ms) => [ms, "snapshot"]), ...kinds.other.ms.map((ms) => [ms, "other"])].sort((a, b) => a[0] - b[0]);
      return {
        p99: all[Math.floor(0.99 * all.length)][0],
        slowest: all.slice(-Math.max(1, turns - Math.floor(0.99 * turns))).map(([ms, kind]) => `${ms.toFixed(2)} (${kind})`),
        rows: Object.entries(kinds).map(([name, kind]) => ({ name, turns: kind.ms.length, ms: median(kind.ms), bytes: median(kind.bytes) })),
      };
    },
    { size, turns },
  );
  console.log(`${size} messages, ${turns} turns in one page; p99 of all turns ${out.p99.toFixed(2)} ms; the slowest 1%: ${out.slowest.join(", ")}`);
  console.log("| turns | count | median ms | bytes put (median) |\n| --- | ---: | ---: | ---: |");
  for (const row of out.rows) console.log(`| ${row.name} | ${row.turns} | ${row.ms.toFixed(2)} | ${row.bytes} |`);
} finally {
  await chrome.stop();
}
