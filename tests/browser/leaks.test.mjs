// What a page keeps over long use. The instance's externref table, over many IndexedDB transactions: each one left three
// slots allocated for good (its IDBTransaction, its abort handler and its promise's reject function:
// a Rust closure holding the transaction, which held the closure, a cycle through the table that the
// collector could not take), so a page that opened its session on every action, or an idle tab
// following a session, grew without end (about a million slots a day for the follower; at about eight
// million the instance traps). Now their callbacks are JavaScript's (js/web.js).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startBrowser } from "./chromium.mjs";

let browser;
let page;
let cdp;

before(async () => {
  browser = await startBrowser();
  page = await browser.page("/tests/browser/leaks-tab.html");
  await page.waitForFunction(() => document.body.dataset.ready);
  assert.equal(await page.evaluate(() => document.body.dataset.ready), "true", page.logs.join("\n"));
  cdp = await page.context().newCDPSession(page);
});

after(async () => {
  await browser?.stop();
});

/** A full collection, with tasks between for the finalizers it schedules. */
async function collectGarbage() {
  for (let i = 0; i < 3; i++) {
    await cdp.send("HeapProfiler.collectGarbage");
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 20)));
  }
}

async function slotsInUse() {
  await collectGarbage();
  return page.evaluate(() => window.slotsInUse());
}

test("IndexedDB transactions (opens by id, turns) leave no externref slot behind", async () => {
  await page.evaluate(async () => {
    window.store = await window.lib.SessionStore.indexedDb({ database: `externref-${Date.now()}` });
    await (await window.store.open("s")).invoke((inv) => inv.appendMessage("hello"));
  });
  const seen = [];
  for (let round = 0; round < 3; round++) {
    await page.evaluate(async () => {
      for (let i = 0; i < 500; i++) await window.store.open("s"); // one read-only transaction each
      for (let i = 0; i < 50; i++) await (await window.store.open("s")).invoke((inv) => inv.setState("i", i));
    });
    seen.push(await slotsInUse());
  }
  // 600 transactions a round: three slots each was 1,800 more every round.
  assert.ok(seen[2] - seen[0] < 60, `slots in use after each round: ${seen.join(", ")}`);
  assert.deepEqual(page.errors, []);
});

// A store dropped without close() (a component unmounted without cleanup), once collected: its callback
// on the realm's commit channel was gone, and the channel's delivery threw at it and stopped, so the
// stores after it heard no commit again (and the page logged an error per commit); its Web Lock stayed.
test("stores collected without close() leave the commit channel and their Web Lock: the others still hear every commit", async () => {
  const database = `dropped-${Date.now()}`;
  const locksHeld = () => page.evaluate(async () => (await navigator.locks.query()).held.length);
  const before = await locksHeld();
  await page.evaluate(async (database) => {
    for (let i = 0; i < 20; i++) {
      const store = await window.lib.SessionStore.indexedDb({ database });
      await (await store.open(`d-${i}`)).invoke((inv) => inv.appendMessage(i));
    }
  }, database);
  await collectGarbage();
  const heard = await page.evaluate(async (database) => {
    const listener = await window.lib.SessionStore.indexedDb({ database, owner: "L" });
    const writer = await window.lib.SessionStore.indexedDb({ database, owner: "M" });
    let heard = 0;
    const unsubscribe = listener.onChange((change) => change.id === "m" && heard++);
    const session = await writer.open("m");
    for (let i = 0; i < 10; i++) await session.invoke((inv) => inv.appendMessage(i));
    await new Promise((resolve) => setTimeout(resolve, 100));
    unsubscribe();
    await listener.close();
    await writer.close();
    return heard;
  }, database);
  assert.equal(heard, 10, "the listening store heard every commit of the other");
  assert.ok((await locksHeld()) - before <= 1, `Web Locks held: ${before} before, ${await locksHeld()} after`);
  assert.deepEqual(page.errors.map(String), []);
});

// A session whose store object the page dropped (only the session kept: `(await SessionStore.indexedDb()).open(id)`):
// the store, once collected, left the commit channel, and the session heard no other store's commit
// until it refreshed or began. The store's tie to the channel now lives as long as one of its sessions.
test("a session whose store was dropped without close() still hears the commits of other stores once the store is collected", async () => {
  const database = `kept-session-${Date.now()}`;
  await page.evaluate(async (database) => {
    window.kept = await (await window.lib.SessionStore.indexedDb({ database, owner: "K" })).open("k");
    window.keptChanges = [];
    window.kept.onChange((change) => window.keptChanges.push(change.version));
  }, database);
  await collectGarbage();
  const seen = await page.evaluate(async (database) => {
    const writer = await window.lib.SessionStore.indexedDb({ database, owner: "W" });
    const session = await writer.open("k");
    for (let i = 0; i < 3; i++) await session.invoke((inv) => inv.appendMessage(i));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await writer.close();
    const seen = { changes: window.keptChanges, version: window.kept.version, messages: window.kept.messages() };
    window.kept = undefined;
    return seen;
  }, database);
  assert.deepEqual(seen.changes, [1, 2, 3], "the kept session heard each commit");
  assert.equal(seen.version, 3);
  assert.deepEqual(seen.messages, [0, 1, 2]);
  assert.deepEqual(page.errors.map(String), []);
});
