// The README's browser example ("In a browser"), run in headless Chromium as a user's page runs it:
// the code block is taken from README.md as it stands, `import ... from "agent-session"` resolves
// through an import map to the package's "browser" entry (what a bundler picks), and the part after
// the store is made is one chat turn, `send(text)`, which opens the session by id on every call.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { startBrowser } from "./chromium.mjs";

const ROOT = new URL("../../", import.meta.url);
const PAGE = "/tests/browser/readme-example.html";
const MODULE = "/tests/browser/readme-example.mjs";
const MIB = 2 ** 20;

let chrome;
before(async () => {
  chrome = await startBrowser();
});
after(async () => chrome?.stop());

/** The first ```js block after the heading `heading` of README.md. */
async function readmeBlock(heading) {
  const readme = await readFile(new URL("README.md", ROOT), "utf8");
  const start = readme.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `README.md has no section "${heading}"`);
  const block = readme.slice(start).match(/```js\n([\s\S]*?)```/);
  assert.ok(block, `no js code block under "${heading}"`);
  return block[1];
}

/**
 * The README's snippet as a module of the page: what comes before `const session = ...` (the import
 * and the store) runs once, as in an app; the rest becomes `send(text)`, with the user's "Hello"
 * replaced by `text`. `callModel` is the app's; here it echoes the last message.
 */
function snippetModule(snippet) {
  const split = snippet.indexOf("const session = await store.open(");
  assert.ok(split >= 0, `the snippet no longer opens its session with store.open:\n${snippet}`);
  const [once, turn] = [snippet.slice(0, split), snippet.slice(split)];
  assert.match(turn, /"Hello"/, "the snippet's user message");
  return `${once}
async function callModel(messages) {
  return \`You said: \${messages[messages.length - 1].content}\`;
}
export async function send(text) {
${turn.replace('"Hello"', "text")}}
export { SessionStore, store };
`;
}

test("the README's browser example: 2000 turns, each opening \"chat-42\" by id; every message in order, wasm memory bounded", { timeout: 300_000 }, async (t) => {
  const TURNS = 2000;
  const WARM_UP = 100;
  const snippet = await readmeBlock("## In a browser");
  const pkg = JSON.parse(await readFile(new URL("package.json", ROOT), "utf8"));
  const entry = pkg.exports["."].browser.replace(/^\./, "");
  const tabs = await chrome.context(); // a fresh profile: the snippet's default database starts empty
  try {
    // The page and the module are served under the test server's origin, so /js/ is the built package.
    await tabs.context.route(`**${PAGE}`, (route) =>
      route.fulfill({
        contentType: "text/html; charset=utf-8",
        body: `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="importmap">${JSON.stringify({ imports: { "agent-session": entry } })}</script>`,
      }),
    );
    await tabs.context.route(`**${MODULE}`, (route) => route.fulfill({ contentType: "text/javascript; charset=utf-8", body: snippetModule(snippet) }));
    const page = await tabs.page(PAGE, "README page");
    await page.evaluate(async (url) => {
      window.example = await import(url);
    }, MODULE);

    // `n` turns in sequence in the page, then what the app and the instance hold.
    const turns = (from, to) =>
      page.evaluate(async ([from, to]) => {
        const { send, store, SessionStore } = window.example;
        for (let i = from; i <= to; i++) await send(`message ${i}`);
        const session = await store.open("chat-42");
        return { version: session.version, status: session.status, count: session.messages().length, memory: SessionStore.memoryUsage(), cache: store.cacheUsage() };
      }, [from, to]);

    const started = performance.now();
    const warm = await turns(1, WARM_UP);
    assert.deepEqual([warm.version, warm.count], [WARM_UP, 2 * WARM_UP]);
    const done = await turns(WARM_UP + 1, TURNS);
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`${TURNS} turns in ${seconds.toFixed(1)} s; wasm memory ${(warm.memory.wasmBytes / MIB).toFixed(1)} MiB after ${WARM_UP} turns, ${(done.memory.wasmBytes / MIB).toFixed(1)} MiB after ${TURNS} (counted ${(done.memory.countedBytes / MIB).toFixed(2)} MiB); cache ${JSON.stringify(done.cache)}`);

    assert.equal(done.version, TURNS, "one commit per turn");
    assert.equal(done.status, "idle");
    assert.equal(done.count, 2 * TURNS);
    assert.ok(done.memory.wasmBytes - warm.memory.wasmBytes <= 16 * MIB,
      `wasm memory grew from ${warm.memory.wasmBytes} to ${done.memory.wasmBytes} bytes over ${TURNS - WARM_UP} turns`);
    assert.equal(done.cache.sessions, 1, "one cached view of the session, however often it was opened");

    // Every message once, in order, as a fresh store (another tab's, say) loads them from IndexedDB.
    const messages = await page.evaluate(async () => {
      const store = await window.example.SessionStore.indexedDb();
      const session = await store.open("chat-42", { create: false });
      const messages = session.messages();
      await store.close();
      return messages;
    });
    const pair = (i) => [
      { role: "user", content: `message ${i}` },
      { role: "assistant", content: `You said: message ${i}` },
    ];
    assert.equal(messages.length, 2 * TURNS);
    assert.deepEqual(messages.slice(0, 2), pair(1));
    assert.deepEqual(messages.slice(TURNS, TURNS + 2), pair(TURNS / 2 + 1));
    assert.deepEqual(messages.slice(-2), pair(TURNS));
    assert.deepEqual(messages, Array.from({ length: TURNS }, (_, i) => pair(i + 1)).flat());

    // The snippet logs "busy, ..." on ConcurrencyError: sequential turns must never see one.
    const errors = tabs.logs().filter((line) => / (error|pageerror): /.test(line) || / crashed$/.test(line) || /busy, retry/.test(line));
    assert.deepEqual(errors, [], "the page reported errors");
  } catch (error) {
    console.log(`----- console of the README page -----\n${tabs.logs().join("\n") || "(nothing)"}\n-----`);
    throw error;
  } finally {
    await tabs.close();
  }
});
