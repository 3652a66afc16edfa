// The JavaScript garbage of one IndexedDB turn (begin + 2 messages of ~200 bytes + commit), agent-session
// against the hand-written idb protocol (bench/baselines.mjs (b)), in one headless Chromium page: bytes
// allocated per turn by the page's JS (V8's sampling heap profiler over CDP, every 128 bytes, objects the
// collector freed included), and where agent-session's come from. In a page that holds a large heap (the
// report's IndexedDB page, where idb-keyval rewrites a 2 MB session a turn), the collector's work falls
// on whoever allocates: this is the turn's share of it.
//
// Run: node bench/idb-alloc.mjs [--turns=1000] [--json=path]
import { startBrowser } from "../tests/browser/chromium.mjs";
import { jsonPath, writeJson } from "./json.mjs";
import { benchPage } from "./page.mjs";

const arg = (name, fallback) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback);
const TURNS = arg("turns", 1000);
const WARMUP = 200;
const SAMPLING_BYTES = 128;

const chrome = await startBrowser();
const chromium = chrome.browser.version();
const rows = [];
let top = [];
try {
  const page = await benchPage(chrome, "/bench/idb.html");
  await page.evaluate(async () => {
    const { SessionStore } = await import("/js/entry/browser.js");
    const { message } = await import("/bench/message.mjs");
    const { idbProtocol } = await import("/bench/baselines.mjs");
    const tag = Math.random().toString(36).slice(2);
    const session = await (await SessionStore.indexedDb({ database: `alloc-as-${tag}` })).open("s");
    const hand = await (await idbProtocol(`alloc-b-${tag}`)).writer("s");
    await hand.fill([message(0)]);
    window.__alloc = {
      "agent-session": async (k) => {
        const inv = await session.begin();
        inv.appendMessage(message(k));
        inv.appendMessage(message(k + 1));
        await inv.commit();
      },
      "(b) hand-written idb": (k) => hand.turn([message(k), message(k + 1)]),
    };
  });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("HeapProfiler.enable");
  for (const name of ["agent-session", "(b) hand-written idb"]) {
    const run = (turns) =>
      page.evaluate(async ({ name, turns }) => {
        for (let k = 0; k < turns; k++) await window.__alloc[name](k);
      }, { name, turns });
    await run(WARMUP);
    await cdp.send("HeapProfiler.startSampling", {
      samplingInterval: SAMPLING_BYTES,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    await run(TURNS);
    const { profile } = await cdp.send("HeapProfiler.stopSampling");
    const byFunction = new Map();
    let total = 0;
    const walk = (node) => {
      const { functionName, url, lineNumber } = node.callFrame;
      const where = `${functionName || "(anonymous)"} ${url.split("/").pop() || "(native)"}:${lineNumber + 1}`;
      total += node.selfSize;
      if (node.selfSize > 0) byFunction.set(where, (byFunction.get(where) ?? 0) + node.selfSize);
      for (const child of node.children) walk(child);
    };
    walk(profile.head);
    rows.push({ name, bytesPerTurn: total / TURNS });
    if (name === "agent-session") {
      top = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([where, bytes]) => ({ where, bytesPerTurn: bytes / TURNS }));
    }
  }
} finally {
  await chrome.stop();
}

const baseline = rows.find((row) => row.name.startsWith("(b)")).bytesPerTurn;
const printed = `Bytes of JavaScript allocated per turn (begin + 2 messages of ~200 bytes + commit) on a session of 1-2
messages, ${TURNS} turns of each after ${WARMUP}, one after the other in one page; V8's sampling heap profiler
(every ${SAMPLING_BYTES} bytes, collected objects included). Headless Chromium ${chromium}.

| implementation | bytes per turn | ÷ hand-written |
| --- | ---: | ---: |
${rows.map((row) => `| ${row.name} | ${row.bytesPerTurn.toFixed(0)} | ${(row.bytesPerTurn / baseline).toFixed(2)} |`).join("\n")}

Where agent-session's come from (bytes per turn, by allocating function; "(native)" = the browser's own,
as IndexedDB's put and request results):

| function | bytes per turn |
| --- | ---: |
${top.map((row) => `| \`${row.where}\` | ${row.bytesPerTurn.toFixed(0)} |`).join("\n")}

Command: \`node bench/idb-alloc.mjs${process.argv.slice(2).filter((a) => !a.startsWith("--json=")).map((a) => ` ${a}`).join("")}\`
Date: ${new Date().toISOString()}`;
console.log(printed);
writeJson(jsonPath(), import.meta.url, {
  name: "idb-alloc",
  title: "JavaScript garbage of an IndexedDB turn (headless Chromium)",
  chromium,
  markdown: printed,
  data: { turns: TURNS, samplingBytes: SAMPLING_BYTES, rows, top },
});
