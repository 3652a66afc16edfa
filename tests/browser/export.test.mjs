// Export and import (API.md "Export, import and backup") across backends, with IndexedDB in real
// headless Chromium: the fixture sessions (export-fixture.mjs: several agents, state deletes, a
// resumed and a pending interrupt, a fork, a compaction, a stopped and a fenced turn, metadata, a
// closed and an expired session, odd ids, a message larger than a KV value) go
// memory (Node) -> IndexedDB (a tab, read back after a reload, by a new store) -> Redis (a real
// redis-server, read back by a new store) -> memory, and every leg must keep versions, history(),
// messages(), state() (now and at every version), status, pending interrupt and the export itself.
// The tab is idb-tab.html (it loads the built package from /js/entry/browser.js); exports cross
// into and out of the page as JSON text, the file format.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createClient } from "redis";
import { SessionStore } from "agent-session";
import { redisKv } from "agent-session/adapters";
import { startBrowser } from "./chromium.mjs";
import { startRedis } from "../js/adapters/_redis-server.mjs";
import { FIXTURE_IDS, buildSessions, describeAll, exportAll } from "./export-fixture.mjs";

let chrome;
let redis;
let client;
before(async () => {
  chrome = await startBrowser();
  redis = await startRedis();
  client = await createClient({ url: redis.url }).connect();
});
after(async () => {
  await client?.quit();
  await redis?.stop();
  await chrome?.stop();
});

// A fresh browser context (its own IndexedDB) with one tab on idb-tab.html; the tab's console is
// printed when the test fails, and the test fails on any uncaught error or console error.
async function withTab(t, body) {
  const tabs = await chrome.context();
  const database = `agent-session-export-${randomUUID()}`;
  try {
    const page = await tabs.page("/tests/browser/idb-tab.html", "tab");
    await waitReady(page);
    await body(page, database);
    const errors = tabs.logs().filter((line) => / (error|pageerror): /.test(line) || / crashed$/.test(line));
    assert.deepEqual(errors, [], "the page reported errors");
  } catch (error) {
    console.log(`----- console of "${t.name}" (database ${database}) -----\n${tabs.logs().join("\n") || "(nothing)"}\n-----`);
    throw error;
  } finally {
    await tabs.close();
  }
}

async function waitReady(page) {
  await page.waitForFunction(() => document.body?.dataset.ready);
  assert.equal(await page.evaluate(() => document.body.dataset.ready), "true", "the tab did not load the package");
}

// Runs `fn(env, arg)` in the tab (env = { lib, fx: idb-fixture.js, ctx, realm }); `fn` is sent as
// source, so it may use only its arguments.
const inTab = (page, fn, arg) => page.evaluate(([source, arg]) => window.run(source, arg), [fn.toString(), arg]);

const sortedIds = [...FIXTURE_IDS].sort();

/** The leg's exports and descriptions must be the source's. */
function assertSame(leg, got, source) {
  assert.deepEqual(got.exports.map((e) => e.id), sortedIds, `${leg}: every session exported exactly once`);
  for (const [i, expected] of source.exports.entries()) {
    assert.deepEqual(got.exports[i], expected, `${leg}: the export of ${JSON.stringify(expected.id)} is the source's`);
  }
  for (const id of sortedIds) {
    assert.deepEqual(got.views[id], source.views[id], `${leg}: ${JSON.stringify(id)} reads as in the source (versions, history, messages, state, status, interrupt)`);
  }
}

test("round trip memory -> IndexedDB -> Redis -> memory keeps versions, history, messages, state, status and pending interrupt", { timeout: 120_000 }, async (t) => {
  // Source: a memory store in Node.
  const memory = await SessionStore.memory({ snapshotEvery: 3 });
  await buildSessions(memory);
  const source = { exports: await exportAll(memory), views: await describeAll(memory, sortedIds) };
  await memory.close();
  assert.deepEqual(source.exports.map((e) => e.id), sortedIds);
  const multi = source.views["rich/multi"];
  assert.equal(multi.status, "interrupted");
  assert.deepEqual(multi.pendingInterrupt, { reason: "pending question", payload: null });
  const types = new Set(source.exports.flatMap((e) => e.events.map((event) => event.type)));
  for (const type of ["created", "message", "state.set", "state.delete", "interrupt", "resume", "closed", "forked", "stopped", "compacted"]) {
    assert.ok(types.has(type), `the fixture has a ${type} event`);
  }
  assert.equal(source.views["rich/closed"].status, "closed");
  assert.equal(source.views["rich/expired"].status, "expired");
  const json = JSON.stringify(source.exports);

  // Leg 1: IndexedDB in a tab. Import, reload the tab, read back with a new store.
  let idb;
  await withTab(t, async (page, database) => {
    const imported = await inTab(page, async ({ lib }, { database, json }) => {
      const store = await lib.SessionStore.indexedDb({ database });
      const versions = [];
      for (const data of JSON.parse(json)) versions.push((await store.import(data)).version);
      await store.close();
      return versions;
    }, { database, json });
    assert.deepEqual(imported, source.exports.map((e) => e.version), "import resolves to a Session at the export's version");
    await page.reload();
    await waitReady(page);
    const text = await inTab(page, async ({ lib }, { database, ids }) => {
      const fixture = await import("/tests/browser/export-fixture.mjs");
      const store = await lib.SessionStore.indexedDb({ database });
      const out = { exports: await fixture.exportAll(store), views: await fixture.describeAll(store, ids) };
      await store.close();
      return JSON.stringify(out);
    }, { database, ids: sortedIds });
    idb = JSON.parse(text);
  });
  assertSame("IndexedDB", idb, source);

  // Leg 2: Redis. Import what IndexedDB exported, read back with a new store (empty cache, other owner).
  const prefix = `export-${randomUUID()}:`;
  const writer = await SessionStore.kv(redisKv(client), { prefix });
  for (const data of JSON.parse(JSON.stringify(idb.exports))) await writer.import(data);
  await writer.close();
  const reader = await SessionStore.kv(redisKv(client), { prefix });
  const viaRedis = { exports: await exportAll(reader), views: await describeAll(reader, sortedIds) };
  await reader.close();
  assertSame("Redis", viaRedis, source);

  // Leg 3: back into memory.
  const back = await SessionStore.memory();
  for (const data of JSON.parse(JSON.stringify(viaRedis.exports))) await back.import(data);
  const final = { exports: await exportAll(back), views: await describeAll(back, sortedIds) };
  assertSame("memory again", final, source);

  // An imported session holds no lease: it can be resumed at once, and then goes on from its version.
  const session = await back.open("rich/multi", { create: false });
  await session.invoke((inv) => inv.appendMessage("answered"), { resume: "yes" });
  assert.equal(session.version, multi.version + 1);
  assert.equal(session.status, "idle");
  await back.close();
});

test("IndexedDB: a malformed export and an existing id are refused with their path, and nothing is written", { timeout: 60_000 }, async (t) => {
  const memory = await SessionStore.memory();
  await buildSessions(memory);
  const exports = await exportAll(memory);
  await memory.close();
  const good = exports.find((e) => e.id === "rich/multi");
  await withTab(t, async (page, database) => {
    const result = await inTab(page, async ({ lib, fx }, { database, good }) => {
      const store = await lib.SessionStore.indexedDb({ database });
      await store.import(good);
      const before = await fx.rawDump(database);
      const attempt = async (data, options) => {
        try {
          await store.import(data, options);
          return { fulfilled: true };
        } catch (error) {
          return { ...fx.describeError(error), isValidation: error instanceof lib.ValidationError };
        }
      };
      const outOfOrder = structuredClone(good);
      outOfOrder.id = "other";
      const last = outOfOrder.events.length - 1;
      [outOfOrder.events[1], outOfOrder.events[last]] = [outOfOrder.events[last], outOfOrder.events[1]];
      const unknownType = structuredClone(good);
      unknownType.id = "other";
      unknownType.events[3].type = "telepathy";
      const errors = {
        existing: await attempt(good),
        outOfOrder: await attempt(outOfOrder),
        unknownType: await attempt(unknownType),
        bigint: await attempt({ ...good, id: "other", metadata: { n: 1n } }),
      };
      const unchanged = JSON.stringify(await fx.rawDump(database)) === JSON.stringify(before);
      const renamed = await store.import(good, { id: "rich/multi copy" });
      const copy = { id: renamed.id, version: renamed.version, status: renamed.status, interrupt: renamed.pendingInterrupt() };
      await store.close();
      return { errors, unchanged, copy };
    }, { database, good });
    for (const [name, error] of Object.entries(result.errors)) {
      assert.equal(error.isValidation, true, `${name}: a ValidationError, got ${JSON.stringify(error)}`);
    }
    assert.equal(result.errors.existing.path, "id");
    assert.equal(result.errors.outOfOrder.path, "data.events[2]", "the first event whose version is below the one before it");
    assert.equal(result.errors.unknownType.path, "data.events[3].type");
    assert.equal(result.errors.bigint.path, "data.metadata.n");
    assert.equal(result.unchanged, true, "no IndexedDB record changed");
    assert.deepEqual(result.copy, { id: "rich/multi copy", version: good.version, status: "interrupted", interrupt: { reason: "pending question", payload: null } });
  });
});
