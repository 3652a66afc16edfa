// Runs bench/open-by-id.html in headless Debian Chromium, each part in a fresh page (so that each wasm
// memory is its own): the held loop, the loop opening the session by id per turn, then distinct sessions
// opened and dropped, on SessionStore.indexedDb; prints markdown tables, the command and the date.
// Usage: node bench/run-open-by-id.mjs [--turns=5000] [--window=50] [--warmup=20] [--sessions=10000] [--every=2000] [--json=path]
// Figures are ratios to baselines measured in the same run; nothing here is a pass/fail threshold.
import { startBrowser } from "../tests/browser/chromium.mjs";
import { jsonPath, writeJson } from "./json.mjs";
import { markdown } from "./open-by-id-table.mjs";
import { benchPage } from "./page.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const number = (name) => (args[name] === undefined ? undefined : Number(args[name]));
const loopOptions = { turns: number("turns"), window: number("window"), warmup: number("warmup") };
const distinctOptions = { sessions: number("sessions"), every: number("every") };

const chrome = await startBrowser();
const chromium = chrome.browser.version();
const errors = [];
/** `window.bench[call](options)` in a fresh page, closed afterwards. */
async function inFreshPage(call, options) {
  const page = await benchPage(chrome, "/bench/open-by-id.html");
  try {
    const started = performance.now();
    const result = await page.evaluate(([call, options]) => window.bench[call](options), [call, options]);
    console.error(`[bench] ${[call, options.mode].filter(Boolean).join(" ")} done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    await new Promise((resolve) => setTimeout(resolve, 500)); // let late errors of the teardown arrive
    return result;
  } finally {
    errors.push(...page.errors);
    await page.close();
  }
}

let results;
try {
  const held = await inFreshPage("loop", { ...loopOptions, mode: "held" });
  const open = await inFreshPage("loop", { ...loopOptions, mode: "open" });
  const distinct = await inFreshPage("distinct", distinctOptions);
  results = { held, open, distinct };
} finally {
  await chrome.stop();
}

const command = process.env.BENCH_COMMAND ?? ["node", "bench/run-open-by-id.mjs", ...process.argv.slice(2)].join(" ");
const printed = `## Opening a session by id on every request, IndexedDB (headless Chromium)

${markdown(results)}

Command: \`${command}\`
Date: ${new Date().toISOString()}`;
console.log(printed);
writeJson(jsonPath(), import.meta.url, {
  name: "open-by-id-idb", title: "Opening a session by id on every request, IndexedDB (headless Chromium)", chromium,
  userAgent: results.held.userAgent, pageErrors: errors.length, markdown: printed, data: results,
});
// An uncaught error in the page does not void the figures, but it must not pass unseen.
for (const error of errors) console.error(`page error: ${error.stack ?? error}`);
if (errors.length) process.exitCode = 1;
