// Runs bench/idb.html in headless Debian Chromium (the browser the tests drive, tests/browser/chromium.mjs)
// and prints its tables as markdown, with the shipped .wasm size, the command and the date.
// Usage: node bench/run.mjs [--sizes=10,100,1000,10000] [--turns=100] [--loads=10] [--json=path]   (scripts/bench builds first)
// Figures are ratios to baselines measured in the same page and run; nothing here is a pass/fail threshold.
import { readFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import { startBrowser } from "../tests/browser/chromium.mjs";
import { jsonPath, writeJson } from "./json.mjs";
import { benchPage } from "./page.mjs";
import { markdown } from "./table.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const options = {};
if (args.sizes) options.sizes = args.sizes.split(",").map(Number);
if (args.turns) options.turns = Number(args.turns);
if (args.loads) options.loads = Number(args.loads);

const wasm = await readFile(new URL("../js/wasm/agent_session_bg.wasm", import.meta.url));
const chrome = await startBrowser();
let results;
let errors = [];
const chromium = chrome.browser.version();
try {
  const page = await benchPage(chrome, "/bench/idb.html");
  results = await page.evaluate((options) => window.bench.run(options), options);
  await new Promise((resolve) => setTimeout(resolve, 500)); // let late errors of the teardown arrive
  errors = page.errors;
} finally {
  await chrome.stop();
}

const command = process.env.BENCH_COMMAND ?? ["node", "bench/run.mjs", ...process.argv.slice(2)].join(" ");
const gzipped = gzipSync(wasm, { level: 9 }).length;
const printed = `## agent-session on IndexedDB (headless Chromium)

${markdown(results)}

Shipped .wasm (js/wasm/agent_session_bg.wasm): ${wasm.length} bytes raw, ${gzipped} bytes gzipped.

Command: \`${command}\`
Date: ${new Date().toISOString()}`;
console.log(printed);
writeJson(jsonPath(), import.meta.url, {
  name: "idb", title: "agent-session on IndexedDB (headless Chromium)", chromium, userAgent: results.userAgent,
  pageErrors: errors.length, wasm: { raw: wasm.length, gzip: gzipped }, markdown: printed, data: results,
});
// An uncaught error in the page does not void the figures, but it must not pass unseen.
for (const error of errors) console.error(`page error: ${error.stack ?? error}`);
if (errors.length) process.exitCode = 1;
