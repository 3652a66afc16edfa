// Encryption at rest on IndexedDB (headless Chromium): the cost of `encryptionKey` (AES-GCM through
// WebCrypto) on a turn (begin + 2 messages of ~200 bytes + commit) and on a cold load (a new store with
// its own connection opening the session and reading messages()), at 10, 1000 and 10,000 messages; each
// size written twice, once per store, each on a fresh database, and measured interleaved (one turn or
// load of each in turn), so that both see the same machine. Ratio = with a key ÷ without.
// Usage: node bench/encryption-chromium.mjs [--sizes=10,1000,10000] [--turns=200] [--loads=21] [--json=path]
// Figures are ratios to a baseline measured in the same run; nothing here is a pass/fail threshold.
import { startBrowser } from "../tests/browser/chromium.mjs";
import { jsonPath, printer, writeJson } from "./json.mjs";
import { crossOriginIsolate } from "./page.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const SIZES = (args.sizes ?? "10,1000,10000").split(",").map(Number);
const TURNS = Number(args.turns ?? 200);
const LOADS = Number(args.loads ?? 21);
const PAGE = "/tests/browser/blank.html";

/** Runs in the page: every measurement of one size, both stores interleaved. */
async function measureSize({ size, turns, loads, tag }) {
  const { SessionStore } = await import("/js/entry/browser.js");
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  const { message: numbered } = await import("/bench/message.mjs");
  let n = 0;
  const message = () => numbered(n++);
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const p99 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))];
  const sides = [
    { name: "plain", options: {} },
    { name: "encrypted", options: { encryptionKey: key } },
  ];
  for (const side of sides) {
    side.database = `bench-encryption-${side.name}-${size}-${tag}`;
    side.store = await SessionStore.indexedDb({ database: side.database, ...side.options });
    side.session = await side.store.open("s");
    for (let i = 0; i < size; i += 100) {
      await side.session.invoke((inv) => {
        for (let j = i; j < Math.min(size, i + 100); j++) inv.appendMessage(message());
      });
    }
    side.loads = [];
    side.turns = [];
  }
  for (let i = 0; i < loads + 1; i++) {
    for (const side of sides) {
      const t0 = performance.now();
      const reader = await SessionStore.indexedDb({ database: side.database, ...side.options });
      const read = (await reader.open("s", { create: false })).messages().length;
      const ms = performance.now() - t0;
      await reader.close();
      if (read < size) throw new Error(`${side.name}: a cold load read ${read} messages, not ${size}`);
      if (i > 0) side.loads.push(ms); // the first of each warms the page
    }
  }
  for (let i = 0; i < turns; i++) {
    for (const side of sides) {
      const t0 = performance.now();
      const inv = await side.session.begin();
      inv.appendMessage(message());
      inv.appendMessage(message());
      await inv.commit();
      side.turns.push(performance.now() - t0);
    }
  }
  const out = {};
  for (const side of sides) {
    await side.store.close();
    await new Promise((done) => Object.assign(indexedDB.deleteDatabase(side.database), { onsuccess: done, onerror: done, onblocked: done }));
    out[side.name] = { turnMedian: median(side.turns), turnP99: p99(side.turns), loadMedian: median(side.loads) };
  }
  return { size, ...out };
}

const chrome = await startBrowser();
const chromium = chrome.browser.version();
const tabs = await chrome.context();
const rows = [];
const errors = [];
try {
  await crossOriginIsolate(tabs.context, PAGE);
  const page = await tabs.page(PAGE, "bench");
  page.on("pageerror", (error) => errors.push(error));
  const tag = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  for (const size of SIZES) {
    console.error(`[bench] encryption: ${size} messages`);
    rows.push(await page.evaluate(measureSize, { size, turns: TURNS, loads: LOADS, tag }));
  }
} finally {
  await chrome.stop();
}

const f = (x) => (x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(1));
const out = printer();
out.log(`## Encryption at rest on IndexedDB (headless Chromium)

Headless Chromium ${chromium}, one page, cross-origin isolated; each size written to two fresh databases, one
store without a key and one with \`encryptionKey\` (AES-GCM 256, WebCrypto), measured interleaved: medians of
${TURNS} turns (begin + 2 messages of ~200 bytes of JSON + commit) and of ${LOADS} cold loads (a new store
opening the session and reading messages()); ratio = with a key ÷ without (goal ≤ 1.3).

| messages | turn ms, plain | turn ms, encrypted | turn ÷ | turn p99 ÷ | cold load ms, plain | cold load ms, encrypted | cold load ÷ |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows
  .map((r) => `| ${r.size} | ${f(r.plain.turnMedian)} | ${f(r.encrypted.turnMedian)} | ${(r.encrypted.turnMedian / r.plain.turnMedian).toFixed(2)} | ${(r.encrypted.turnP99 / r.plain.turnP99).toFixed(2)} | ${f(r.plain.loadMedian)} | ${f(r.encrypted.loadMedian)} | ${(r.encrypted.loadMedian / r.plain.loadMedian).toFixed(2)} |`)
  .join("\n")}

Command: \`${process.env.BENCH_COMMAND ?? ["node", "bench/encryption-chromium.mjs", ...process.argv.slice(2)].join(" ")}\`
Date: ${new Date().toISOString()}`);
writeJson(jsonPath(), import.meta.url, { name: "encryption-chromium", title: "Encryption at rest on IndexedDB (headless Chromium)", chromium, pageErrors: errors.length, markdown: out.text(), data: rows });
for (const error of errors) console.error(`page error: ${error.stack ?? error}`);
if (errors.length) process.exitCode = 1;
