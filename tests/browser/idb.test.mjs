// SessionStore.indexedDb() in real headless Chromium: tabs of one origin (pages of one browser
// context, sharing IndexedDB, Web Locks and BroadcastChannel) and their module workers, each running
// the built package from /js/entry/browser.js and its own store (its own owner, connection and cache).
// Fixtures: idb-tab.html (a tab), idb-worker.js (a dedicated or shared module worker), idb-fixture.js
// (what both load: the race participant, the raw IndexedDB helpers, the worker driver).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startBrowser } from "./chromium.mjs";
import { inTab, tryBegin } from "./tabs.mjs";

// Timestamps taken in different realms are compared in the race test. Chromium coarsens
// performance.now() and timeOrigin (100 µs, with jitter) outside cross-origin isolation, so two
// stamps of one instant in two realms can differ by tenths of a millisecond: 0.7 ms once between a
// dedicated worker and a tab (2026-12-05), in a run whose recorded history held (each commit one
// version above the one its begin saw, tokens rising), which is the check that proves one holder at
// a time; the intervals are the second look. Nothing else is a timing allowance: the measured
// intervals are sub-intervals of the real ones (see the race test).
const CLOCK_SLACK_MS = 2;

let chrome;
before(async () => {
  chrome = await startBrowser();
});
after(async () => chrome?.stop());

// A fresh browser context (tabs of one origin) and a fresh database name for one test; the pages'
// console output is printed when the test fails, and a test also fails on any uncaught error or
// console error in its pages (worker errors are forwarded to their page's console).
async function withTabs(t, body) {
  const tabs = await chrome.context();
  const database = `agent-session-test-${randomUUID()}`;
  try {
    await body(tabs, database);
    const errors = tabs.logs().filter((line) => / (error|pageerror): /.test(line) || / crashed$/.test(line));
    assert.deepEqual(errors, [], "the pages reported errors");
  } catch (error) {
    console.log(`----- console of the pages of "${t.name}" (database ${database}) -----\n${tabs.logs().join("\n") || "(nothing)"}\n-----`);
    throw error;
  } finally {
    await tabs.close();
  }
}

async function openTab(tabs, label) {
  const page = await tabs.page("/tests/browser/idb-tab.html", label);
  await page.waitForFunction(() => document.body?.dataset.ready);
  const ready = await page.evaluate(() => document.body.dataset.ready);
  assert.equal(ready, "true", `${label} did not load the package`);
  return page;
}

// Starts a module worker ("dedicated" or "shared") from a tab, and runs functions in it the same way.
const spawnWorker = (page, kind, name) =>
  inTab(page, async ({ fx, ctx }, [kind, name]) => {
    ctx.workers ??= {};
    ctx.workers[name] = await fx.spawn(kind, name);
    return true;
  }, [kind, name]);
const inWorker = (page, name, fn, arg) =>
  inTab(page, ({ ctx }, [name, source, arg]) => ctx.workers[name].run(source, arg), [name, fn.toString(), arg]);

test("race: 4 tabs and 2 dedicated workers make 300 invocation attempts on one session; one holder at a time", { timeout: 180000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const pages = [];
    for (let i = 1; i <= 4; i++) pages.push(await openTab(tabs, `tab ${i}`));
    await spawnWorker(pages[0], "dedicated", "worker 1");
    await spawnWorker(pages[1], "dedicated", "worker 2");
    const id = "race/one session ü";
    await inTab(pages[0], async ({ lib }, { database, id }) => {
      const store = await lib.SessionStore.indexedDb({ database });
      await store.open(id);
      await store.close();
    }, { database, id });

    const ATTEMPTS = 50;
    const common = { database, session: id, attempts: ATTEMPTS, startAt: Date.now() + 1500, maxHoldMs: 6, maxBackoffMs: 20, leaseMs: 60000 };
    const race = ({ lib, fx }, arg) => fx.raceParticipant(lib, arg);
    const logs = await Promise.all([
      ...pages.map((page, i) => inTab(page, race, { ...common, label: `tab-${i + 1}` })),
      inWorker(pages[0], "worker 1", race, { ...common, label: "worker-1" }),
      inWorker(pages[1], "worker 2", race, { ...common, label: "worker-2" }),
    ]);
    const final = await inTab(pages[2], async ({ lib }, { database, id }) => {
      const store = await lib.SessionStore.indexedDb({ database });
      const session = await store.open(id, { create: false });
      const history = await session.history();
      const out = {
        version: session.version,
        status: session.status,
        messages: session.messages(),
        history: history.map(({ version, type, data }) => ({ version, type, data })),
      };
      await store.close();
      return out;
    }, { database, id });

    const entries = logs.flat();
    const labels = new Set(entries.map((e) => e.label));
    assert.equal(entries.length, 6 * ATTEMPTS);
    assert.deepEqual([...new Set(entries.map((e) => e.realm))].sort(), ["dedicated worker", "window"]);
    // Every attempt either committed or was refused at begin(); no commit failed.
    const failures = entries.filter((e) => e.kind !== "commit" && e.kind !== "denied");
    assert.deepEqual(failures.map((e) => `${e.text} (token ${e.token}): ${e.kind}: ${e.error?.name} ${e.error?.code}: ${e.error?.message}`), []);
    const commits = entries.filter((e) => e.kind === "commit").sort((a, b) => a.version - b.version);
    const denials = entries.filter((e) => e.kind === "denied");
    t.diagnostic(`${commits.length} commits, ${denials.length} denials, by participant: ${JSON.stringify(Object.fromEntries([...labels].map((l) => [l, entries.filter((e) => e.label === l && e.kind === "commit").length])))}`);
    assert.ok(commits.length > 0, "no attempt committed");
    assert.ok(denials.length > 0, "no attempt was refused: the participants never contended");

    // Versions gapless 1..n, each commit one version above the version its begin() saw.
    assert.deepEqual(commits.map((c) => c.version), commits.map((_, i) => i + 1));
    for (const c of commits) assert.equal(c.version, c.baseVersion + 1, `${c.text}: began at ${c.baseVersion}, committed ${c.version}`);
    // Fencing tokens strictly increasing in commit order.
    for (let i = 1; i < commits.length; i++) {
      assert.ok(commits[i].token > commits[i - 1].token, `token ${commits[i].token} of v${commits[i].version} after token ${commits[i - 1].token} of v${commits[i - 1].version}`);
    }
    // At most one holder at any time. The lease is taken before begin() resolves (acquiredAt) and
    // released after commit() is called (commitAt), so [acquiredAt, commitAt] lies inside the real
    // holding interval: these intervals, in token order, must not overlap, and ordering them by
    // their start must give the token order.
    const byToken = [...commits].sort((a, b) => a.token - b.token);
    let minGap = Infinity;
    for (let i = 1; i < byToken.length; i++) {
      const [prev, next] = [byToken[i - 1], byToken[i]];
      minGap = Math.min(minGap, next.acquiredAt - prev.commitAt);
      assert.ok(prev.commitAt <= next.acquiredAt + CLOCK_SLACK_MS,
        `two holders at once: ${prev.text} (token ${prev.token}) held [${prev.acquiredAt}, ${prev.commitAt}], ${next.text} (token ${next.token}) acquired at ${next.acquiredAt}`);
    }
    t.diagnostic(`smallest gap between one holder's commit() call and the next holder's acquisition: ${minGap.toFixed(2)} ms`);
    assert.deepEqual([...commits].sort((a, b) => a.acquiredAt - b.acquiredAt).map((c) => c.token), byToken.map((c) => c.token));

    // Every denial is a ConcurrencyError (instanceof in its own realm), naming a holder that was
    // holding then: some attempt of that participant overlaps the refused begin() call.
    for (const d of denials) {
      assert.equal(d.isConcurrencyError, true, `${d.text} (${d.realm}) refused with ${JSON.stringify(d.error)}`);
      assert.equal(d.isAgentSessionError, true);
      assert.equal(d.error.name, "ConcurrencyError");
      assert.equal(d.error.code, "CONCURRENT_INVOCATION");
      assert.ok(labels.has(d.error.holder), `${d.text}: holder ${JSON.stringify(d.error.holder)} is no participant`);
      assert.ok(d.error.retryAfterMs > 0 && d.error.retryAfterMs <= common.leaseMs, `${d.text}: retryAfterMs ${d.error.retryAfterMs}`);
      const holding = commits.some((c) => c.label === d.error.holder && c.beginAt <= d.deniedAt + CLOCK_SLACK_MS && d.beginAt <= c.committedAt + CLOCK_SLACK_MS);
      assert.ok(holding, `${d.text} was refused in [${d.beginAt}, ${d.deniedAt}] naming ${d.error.holder}, which held nothing then`);
    }

    // The stored session: exactly the committed messages, each once, at the version its commit returned.
    assert.equal(final.version, commits.length);
    assert.equal(final.status, "idle");
    assert.equal(final.messages.length, commits.length);
    const stored = final.messages.map((m) => m.text);
    assert.equal(new Set(stored).size, stored.length, "a message is stored twice");
    assert.deepEqual([...stored].sort(), commits.map((c) => c.text).sort());
    const deniedTexts = new Set(denials.map((d) => d.text));
    assert.deepEqual(stored.filter((text) => deniedTexts.has(text)), []);
    const messageEvents = final.history.filter((e) => e.type === "message");
    assert.equal(messageEvents.length, commits.length);
    for (const c of commits) {
      const events = messageEvents.filter((e) => e.data.text === c.text);
      assert.equal(events.length, 1, `${c.text} appears ${events.length} times in history`);
      assert.equal(events[0].version, c.version, `${c.text} committed as v${c.version}, in history at v${events[0].version}`);
    }
    // The stored order is the commit order.
    assert.deepEqual(stored, commits.map((c) => c.text));
  });
});

test("a tab closed in the middle of an invocation: another tab takes over at once with token + 1, the staged writes are gone", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const LEASE_MS = 60000;
    const id = "closing tab";
    const tabA = await openTab(tabs, "tab A");
    const tabB = await openTab(tabs, "tab B");
    const held = await inTab(tabA, async ({ lib, ctx }, { database, id, LEASE_MS }) => {
      ctx.store = await lib.SessionStore.indexedDb({ database, owner: "tab-A", leaseMs: LEASE_MS });
      const session = await ctx.store.open(id);
      await session.invoke((inv) => inv.appendMessage("A committed"));
      ctx.inv = await session.begin();
      ctx.inv.appendMessage("A staged");
      ctx.inv.setState("staged by A", true);
      return { token: ctx.inv.token, version: session.version };
    }, { database, id, LEASE_MS });
    assert.equal(held.version, 1);

    // Before the close: B is refused (A's lease is live), and each store holds its Web Lock.
    const beforeClose = await inTab(tabB, async ({ lib, ctx }, { database, id, LEASE_MS }) => {
      ctx.store = await lib.SessionStore.indexedDb({ database, owner: "tab-B", leaseMs: LEASE_MS });
      ctx.session = await ctx.store.open(id, { create: false });
      let refusal;
      try {
        await ctx.session.begin();
      } catch (error) {
        refusal = { concurrency: error instanceof lib.ConcurrencyError, holder: error.holder };
      }
      const locks = await navigator.locks.query();
      return { refusal, locks: locks.held.map((lock) => lock.name).filter((name) => name.startsWith(`agent-session/${database}/`)) };
    }, { database, id, LEASE_MS });
    assert.deepEqual(beforeClose.refusal, { concurrency: true, holder: "tab-A" });

    await tabA.close();

    const takeover = await inTab(tabB, async ({ lib, fx, ctx }, { LEASE_MS }) => {
      const start = fx.now();
      const refusals = [];
      let inv;
      while (!inv) {
        try {
          inv = await ctx.session.begin();
        } catch (error) {
          if (!(error instanceof lib.ConcurrencyError)) throw error;
          refusals.push({ after: fx.now() - start, holder: error.holder, retryAfterMs: error.retryAfterMs });
          if (fx.now() - start > LEASE_MS / 2) break;
          await fx.sleep(20);
        }
      }
      const elapsed = fx.now() - start;
      if (!inv) return { elapsed, refusals };
      const token = inv.token;
      const sawStaged = inv.messages().includes("A staged") || "staged by A" in inv.state();
      inv.appendMessage("B took over");
      const version = await inv.commit();
      const history = await ctx.session.history();
      return {
        elapsed, refusals, token, sawStaged, version,
        messages: ctx.session.messages(),
        state: ctx.session.state(),
        history: history.map(({ version, type, data, key }) => (key === undefined ? { version, type, data } : { version, type, data, key })),
      };
    }, { LEASE_MS });
    t.diagnostic(`takeover after ${takeover.elapsed.toFixed(1)} ms, ${takeover.refusals.length} refusals first`);
    assert.ok(takeover.token !== undefined, `B was still refused ${takeover.elapsed.toFixed(0)} ms after A closed (half of leaseMs): ${JSON.stringify(takeover.refusals.slice(-3))}`);
    assert.ok(takeover.elapsed < LEASE_MS / 2, `took ${takeover.elapsed} ms`);
    assert.equal(takeover.token, held.token + 1);
    assert.equal(takeover.sawStaged, false);
    assert.equal(takeover.version, 2);
    assert.deepEqual(takeover.messages, ["A committed", "B took over"]);
    assert.deepEqual(takeover.state, {});
    assert.deepEqual(takeover.history.filter((e) => e.type !== "created"), [
      { version: 1, type: "message", data: "A committed"},
      { version: 2, type: "message", data: "B took over"},
    ]);
    // A fresh reader in another tab sees the same.
    const tabC = await openTab(tabs, "tab C");
    const seen = await inTab(tabC, async ({ lib }, { database, id }) => {
      const store = await lib.SessionStore.indexedDb({ database });
      const session = await store.open(id, { create: false });
      return { version: session.version, status: session.status, messages: session.messages(), state: session.state() };
    }, { database, id });
    assert.deepEqual(seen, { version: 2, status: "idle", messages: ["A committed", "B took over"], state: {} });
    // The Web Lock rule: while both were open, each store held `agent-session/<database>/<instance>`.
    assert.equal(beforeClose.locks.length, 2, `locks held: ${JSON.stringify(beforeClose.locks)}`);
  });
});

test("a dedicated worker terminated in the middle of an invocation: a tab takes over at once with token + 1", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const LEASE_MS = 60000;
    const id = "terminated worker";
    const tab = await openTab(tabs, "tab");
    await spawnWorker(tab, "dedicated", "doomed");
    const held = await inWorker(tab, "doomed", async ({ lib, ctx }, { database, id, LEASE_MS }) => {
      ctx.store = await lib.SessionStore.indexedDb({ database, owner: "worker", leaseMs: LEASE_MS });
      const session = await ctx.store.open(id);
      ctx.inv = await session.begin();
      ctx.inv.appendMessage("worker staged");
      return { token: ctx.inv.token };
    }, { database, id, LEASE_MS });
    const takeover = await inTab(tab, async ({ lib, fx, ctx }, { database, id, LEASE_MS }) => {
      const store = await lib.SessionStore.indexedDb({ database, owner: "tab", leaseMs: LEASE_MS });
      const session = await store.open(id, { create: false });
      let refusedWhileAlive = false;
      try {
        await session.begin();
      } catch (error) {
        refusedWhileAlive = error instanceof lib.ConcurrencyError && error.holder === "worker";
      }
      ctx.workers.doomed.terminate();
      const start = fx.now();
      let inv;
      let refusals = 0;
      while (!inv && fx.now() - start < LEASE_MS / 2) {
        try {
          inv = await session.begin();
        } catch (error) {
          if (!(error instanceof lib.ConcurrencyError)) throw error;
          refusals++;
          await fx.sleep(20);
        }
      }
      const elapsed = fx.now() - start;
      if (!inv) return { refusedWhileAlive, elapsed, refusals };
      const token = inv.token;
      inv.appendMessage("tab took over");
      const version = await inv.commit();
      const messages = session.messages(); // before close(), which frees the store's cached views
      await store.close();
      return { refusedWhileAlive, elapsed, refusals, token, version, messages };
    }, { database, id, LEASE_MS });
    t.diagnostic(`takeover after ${takeover.elapsed.toFixed(1)} ms, ${takeover.refusals} refusals first`);
    assert.equal(takeover.refusedWhileAlive, true);
    assert.ok(takeover.token !== undefined, `still refused ${takeover.elapsed.toFixed(0)} ms after the worker was terminated`);
    assert.ok(takeover.elapsed < LEASE_MS / 2);
    assert.equal(takeover.token, held.token + 1);
    assert.equal(takeover.version, 1);
    assert.deepEqual(takeover.messages, ["tab took over"]);
  });
});

test("a reload keeps everything; a corrupted batch record fails its session with CorruptRecordError naming the key, other sessions load", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const ids = { main: "reload/main é ~%", other: "reload/other", third: "reload/third" };
    const page = await openTab(tabs, "tab");
    // What a session looks like to a reader, in full.
    const describe = async ({ lib }, { database, ids, store: useStore }) => {
      const out = {};
      const store = useStore ?? (await lib.SessionStore.indexedDb({ database, snapshotEvery: 4 }));
      for (const [name, id] of Object.entries(ids)) {
        const session = await store.open(id, { create: false });
        out[name] = {
          id: session.id,
          version: session.version,
          status: session.status,
          createdAt: session.createdAt,
          updatedAt: session.updatedAt,
          expiresAt: session.expiresAt,
          messages: session.messages(),
          helper: session.messages({ agent: "helper" }),
          state: session.state(),
          interrupt: session.pendingInterrupt(),
          history: await session.history(),
          at3: session.version >= 3 ? (await session.at(3)).messages() : null,
        };
      }
      await store.close();
      return out;
    };
    const before = await inTab(page, async ({ lib }, { database, ids, describe }) => {
      const store = await lib.SessionStore.indexedDb({ database, snapshotEvery: 4, idleTtlMs: 86_400_000, durability: "strict" });
      const main = await store.open(ids.main, { metadata: { title: "main" } });
      for (let n = 1; n <= 6; n++) {
        await main.invoke((inv) => {
          inv.appendMessage({ n, text: `message ${n} ✓` });
          inv.setState("count", n);
          if (n === 2) inv.setState("temp", { nested: [1, 2, 3] });
          if (n === 3) inv.deleteState("temp");
          if (n === 4) inv.appendMessage({ n, from: "helper" }, { agent: "helper" });
        });
      }
      const other = await store.open(ids.other);
      await other.invoke((inv) => inv.appendMessage("other 1"));
      const inv = await other.begin();
      inv.appendMessage("other 2");
      await inv.interrupt("approve", { tool: "delete", args: ["x"] });
      const third = await store.open(ids.third);
      await third.invoke((inv) => inv.setState("k", "v"));
      return (0, eval)(`(${describe})`)({ lib }, { database, ids, store });
    }, { database, ids, describe: describe.toString() });
    assert.equal(before.main.version, 6);
    assert.equal(before.other.status, "interrupted");

    await page.reload();
    await page.waitForFunction(() => document.body?.dataset.ready === "true");
    const afterReload = await inTab(page, describe, { database, ids });
    assert.deepEqual(afterReload, before);

    // Corrupt the newest batch of `main` (newer than its newest snapshot, so opening must read it).
    const raw = await inTab(page, ({ fx }, { database }) => fx.rawDump(database), { database });
    const escaped = await inTab(page, ({ fx }, ids) => Object.fromEntries(Object.entries(ids).map(([k, id]) => [k, { head: fx.headKey(id), batch: fx.batchPrefix(id), snapshot: fx.snapshotPrefix(id) }])), ids);
    for (const name of Object.keys(ids)) assert.ok(escaped[name].head in raw, `no head record ${escaped[name].head}; keys: ${Object.keys(raw).join(" ")}`);
    const versionOf = (key) => parseInt(key.split("/").at(-2), 16);
    const batches = Object.keys(raw).filter((key) => key.startsWith(escaped.main.batch));
    const snapshots = Object.keys(raw).filter((key) => key.startsWith(escaped.main.snapshot));
    assert.ok(batches.length > 0, `no batch record under ${escaped.main.batch}; keys: ${Object.keys(raw).join(" ")}`);
    for (const key of [...batches, ...snapshots]) assert.match(key, /^[es]\/[^/]+~\/[0-9a-f]{16}\/[0-9a-f]{16}$/);
    const newestSnapshot = Math.max(0, ...snapshots.map(versionOf));
    const target = batches.sort((a, b) => versionOf(b) - versionOf(a))[0];
    assert.ok(versionOf(target) > newestSnapshot, `every batch is covered by a snapshot: ${batches.join(" ")} / ${snapshots.join(" ")}`);
    t.diagnostic(`corrupting ${target} (snapshots: ${snapshots.join(" ") || "none"})`);
    await inTab(page, ({ fx }, { database, key }) => fx.rawFlipByte(database, key), { database, key: target });

    const afterCorruption = await inTab(page, async ({ lib, fx }, { database, ids }) => {
      const events = [];
      const store = await lib.SessionStore.indexedDb({ database, onEvent: (event) => events.push({ ...event }) });
      const tryOpen = async (id) => {
        try {
          const session = await store.open(id, { create: false });
          return { opened: true, version: session.version, messages: session.messages(), state: session.state(), status: session.status };
        } catch (error) {
          return { opened: false, error: fx.describeError(error), isCorrupt: error instanceof lib.CorruptRecordError, isBase: error instanceof lib.AgentSessionError };
        }
      };
      const main = await tryOpen(ids.main);
      const other = await tryOpen(ids.other);
      const third = await tryOpen(ids.third);
      const mainAgain = await tryOpen(ids.main);
      const thirdSession = await store.open(ids.third, { create: false });
      await thirdSession.invoke((inv) => inv.appendMessage("still writable"));
      const version = thirdSession.version;
      const listed = (await store.list()).sessions.map((s) => s.id).sort();
      await store.close();
      return { main, other, third, mainAgain, version, listed, events };
    }, { database, ids });
    t.diagnostic(`onEvent while opening the corrupted session: ${JSON.stringify(afterCorruption.events.filter((e) => e.type === "corrupt"))}`);
    for (const attempt of [afterCorruption.main, afterCorruption.mainAgain]) {
      assert.equal(attempt.opened, false, "the corrupted session opened");
      assert.equal(attempt.isCorrupt, true, `failed with ${JSON.stringify(attempt.error)}`);
      assert.equal(attempt.isBase, true);
      assert.equal(attempt.error.code, "CORRUPT_RECORD");
      assert.equal(attempt.error.key, target);
    }
    for (const name of ["other", "third"]) {
      assert.deepEqual(afterCorruption[name], {
        opened: true, version: before[name].version, messages: before[name].messages, state: before[name].state, status: before[name].status,
      });
    }
    assert.equal(afterCorruption.version, before.third.version + 1);
    assert.deepEqual(afterCorruption.listed, Object.values(ids).sort());
  });
});

test("a record of another shape (bare bytes, an object without bytes or version, a string) is a CorruptRecordError naming its key; other sessions load", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const page = await openTab(tabs, "tab");
    const shapes = {
      bytes: "new Uint8Array([1, 2, 3])",
      noBytes: "({ n: 1 })",
      noVersion: "({ v: new Uint8Array([1]) })",
      text: "'hello'",
    };
    const result = await inTab(page, async ({ lib, fx }, { database, shapes }) => {
      const store = await lib.SessionStore.indexedDb({ database });
      for (const name of [...Object.keys(shapes), "fine"]) {
        await (await store.open(name)).invoke((inv) => inv.appendMessage(name));
      }
      await store.close();
      for (const [name, shape] of Object.entries(shapes)) {
        // Half of them on the head, half on the batch the head names.
        const key = name === "bytes" || name === "text" ? fx.headKey(name) : `${fx.batchPrefix(name)}`;
        const raw = await fx.rawDump(database);
        const target = Object.keys(raw).find((k) => k.startsWith(key));
        await fx.rawPut(database, target, (0, eval)(shape));
      }
      const reader = await lib.SessionStore.indexedDb({ database });
      const out = {};
      for (const name of [...Object.keys(shapes), "fine"]) {
        try {
          const session = await reader.open(name, { create: false });
          out[name] = { opened: true, messages: session.messages() };
        } catch (error) {
          out[name] = { isCorrupt: error instanceof lib.CorruptRecordError, code: error.code, key: error.key, message: error.message };
        }
      }
      // A list still shows every session; the two with a foreign head are left out.
      out.listed = (await reader.list()).sessions.map((s) => s.id).sort();
      out.keys = Object.fromEntries(Object.keys(shapes).map((name) => [name, name === "bytes" || name === "text" ? fx.headKey(name) : fx.batchPrefix(name)]));
      await reader.close();
      return out;
    }, { database, shapes });
    for (const name of Object.keys(shapes)) {
      const got = result[name];
      t.diagnostic(`${name}: ${JSON.stringify(got)}`);
      assert.equal(got.isCorrupt, true, `${name}: ${JSON.stringify(got)}`);
      assert.equal(got.code, "CORRUPT_RECORD");
      assert.ok(got.key.startsWith(result.keys[name]), `${name}: key ${got.key}, expected under ${result.keys[name]}`);
      assert.match(got.message, new RegExp(got.key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    }
    assert.deepEqual(result.fine, { opened: true, messages: ["fine"] });
    assert.deepEqual(result.listed, ["fine", "noBytes", "noVersion"]);
  });
});

test("a page opening its session by id per turn reloads mid-turn: after the reload the next turn begins at once, the interrupted turn left nothing", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const LEASE_MS = 60000;
    const page = await openTab(tabs, "tab");
    const before = await inTab(page, async ({ lib, ctx }, { database, LEASE_MS }) => {
      ctx.store = await lib.SessionStore.indexedDb({ database, leaseMs: LEASE_MS });
      for (let i = 0; i < 100; i++) {
        const session = await ctx.store.open("chat");
        await session.invoke((inv) => {
          inv.appendMessage({ role: "user", i });
          inv.appendMessage({ role: "assistant", i });
        });
      }
      const session = await ctx.store.open("chat");
      ctx.inv = await session.begin(); // a turn in flight when the page reloads
      ctx.inv.appendMessage({ role: "user", text: "lost with the reload" });
      return { version: session.version, token: ctx.inv.token };
    }, { database, LEASE_MS });
    assert.equal(before.version, 100);

    await page.reload();
    await page.waitForFunction(() => document.body?.dataset.ready === "true");
    const after = await inTab(page, async ({ lib, fx }, { database, LEASE_MS }) => {
      const store = await lib.SessionStore.indexedDb({ database, leaseMs: LEASE_MS });
      const session = await store.open("chat");
      const started = fx.now();
      const inv = await session.begin(); // the reloaded page's Web Lock is gone: no wait for leaseMs
      const waited = fx.now() - started;
      inv.appendMessage({ role: "user", text: "after the reload" });
      const version = await inv.commit();
      const messages = (await store.open("chat")).messages();
      await store.close();
      return { waited, token: inv.token, version, count: messages.length, last: messages.at(-1), lost: messages.some((m) => m.text === "lost with the reload") };
    }, { database, LEASE_MS });
    t.diagnostic(`begin after the reload took ${after.waited.toFixed(1)} ms`);
    assert.ok(after.waited < LEASE_MS / 2);
    assert.equal(after.token, before.token + 1, "the interrupted turn's lease was taken over");
    assert.equal(after.version, 101);
    assert.equal(after.count, 201);
    assert.deepEqual(after.last, { role: "user", text: "after the reload" });
    assert.equal(after.lost, false);
  });
});

test("a stale holder (lease expired, session taken over) gets LeaseLostError on commit and writes nothing", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const SHORT_LEASE_MS = 500;
    const id = "stale holder";
    const tabA = await openTab(tabs, "tab A");
    const tabB = await openTab(tabs, "tab B");
    const a = await inTab(tabA, async ({ lib, fx, ctx }, { database, id, SHORT_LEASE_MS }) => {
      ctx.store = await lib.SessionStore.indexedDb({ database, owner: "tab-A", leaseMs: SHORT_LEASE_MS, heartbeat: false });
      ctx.session = await ctx.store.open(id);
      await ctx.session.invoke((inv) => {
        inv.appendMessage("A before");
        inv.setState("who", "A before");
      });
      ctx.inv = await ctx.session.begin();
      ctx.inv.appendMessage("A stale");
      ctx.inv.setState("who", "A stale");
      ctx.inv.setState("only A", true);
      const token = ctx.inv.token;
      await fx.sleep(SHORT_LEASE_MS + 300);
      return { token };
    }, { database, id, SHORT_LEASE_MS });

    const b = await inTab(tabB, async ({ lib, fx }, { database, id }) => {
      const store = await lib.SessionStore.indexedDb({ database, owner: "tab-B", leaseMs: 60000 });
      const session = await store.open(id, { create: false });
      const inv = await session.begin();
      const token = inv.token;
      inv.appendMessage("B");
      inv.setState("who", "B");
      const version = await inv.commit();
      await store.close();
      return { token, version, raw: await fx.rawDump(database) };
    }, { database, id });
    assert.equal(b.token, a.token + 1);
    assert.equal(b.version, 2);

    const stale = await inTab(tabA, async ({ lib, fx, ctx }, { database }) => {
      let outcome;
      try {
        outcome = { committed: await ctx.inv.commit() };
      } catch (error) {
        outcome = { error: fx.describeError(error), isLeaseLost: error instanceof lib.LeaseLostError };
      }
      let again;
      try {
        await ctx.inv.commit();
        again = "committed";
      } catch (error) {
        again = error.name;
      }
      await ctx.session.refresh();
      const history = await ctx.session.history();
      return {
        outcome, again,
        raw: await fx.rawDump(database),
        version: ctx.session.version,
        messages: ctx.session.messages(),
        state: ctx.session.state(),
        history: history.map(({ version, type, data, key }) => (key === undefined ? { version, type, data } : { version, type, data, key })),
      };
    }, { database });
    assert.equal(stale.outcome.isLeaseLost, true, `the stale commit gave ${JSON.stringify(stale.outcome)}`);
    assert.equal(stale.outcome.error.code, "LEASE_LOST");
    assert.equal(stale.again, "InvalidTransitionError");
    // Nothing written: every record that existed after B's commit is unchanged, byte for byte, and
    // no record was added (a commit is one IndexedDB transaction, refused as a whole); at most an
    // orphan under A's stale token would be tolerable by the API, so say which if one appears.
    for (const [key, value] of Object.entries(b.raw)) {
      assert.deepEqual(stale.raw[key], value, `record ${key} changed or vanished after the stale commit`);
    }
    const added = Object.keys(stale.raw).filter((key) => !(key in b.raw));
    assert.deepEqual(added, [], `the stale commit added records (A's token is ${a.token} = ${a.token.toString(16).padStart(16, "0")})`);
    assert.equal(stale.version, 2);
    assert.deepEqual(stale.messages, ["A before", "B"]);
    assert.deepEqual(stale.state, { who: "B" });
    assert.deepEqual(stale.history.filter((e) => e.type !== "created"), [
      { version: 1, type: "message", data: "A before"},
      { version: 1, type: "state.set", data: "A before", key: "who" },
      { version: 2, type: "message", data: "B"},
      { version: 2, type: "state.set", data: "B", key: "who" },
    ]);
  });
});

test("onChange: a commit in one tab fires store and session onChange in another tab and in a worker; the cached view follows", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const id = "change feed";
    const tabA = await openTab(tabs, "tab A");
    const tabB = await openTab(tabs, "tab B");
    await spawnWorker(tabA, "dedicated", "watcher");
    const listen = async ({ lib, ctx }, { database, id }) => {
      ctx.store = await lib.SessionStore.indexedDb({ database });
      ctx.session = await ctx.store.open(id);
      ctx.storeChanges = [];
      ctx.sessionChanges = [];
      ctx.store.onChange(({ id, version, status }) => ctx.storeChanges.push({ id, version, status }));
      ctx.session.onChange(({ version, status }) => ctx.sessionChanges.push({ version, status, cachedVersion: ctx.session.version }));
      return ctx.session.version;
    };
    assert.equal(await inTab(tabB, listen, { database, id }), 0);
    assert.equal(await inWorker(tabA, "watcher", listen, { database, id }), 0);
    assert.equal(await inTab(tabA, listen, { database, id }), 0);

    await inTab(tabA, async ({ ctx }) => {
      await ctx.session.invoke((inv) => inv.appendMessage("first"));
      await ctx.session.invoke((inv) => inv.appendMessage("second"));
    });
    const collect = async ({ fx, ctx }) => {
      await fx.waitFor(() => ctx.storeChanges.some((c) => c.version === 2) && ctx.sessionChanges.some((c) => c.version === 2), "the change of version 2");
      // The cached view follows the change feed, without refresh().
      let cached = true;
      try {
        await fx.waitFor(() => ctx.session.version === 2, "the cached view to reach version 2", 5000);
      } catch {
        cached = false;
      }
      const view = { cached, version: ctx.session.version, messages: ctx.session.messages() };
      const same = (await ctx.session.refresh()) === ctx.session;
      return { storeChanges: ctx.storeChanges, sessionChanges: ctx.sessionChanges, view, refreshed: { same, version: ctx.session.version, messages: ctx.session.messages() } };
    };
    const seenInB = await inTab(tabB, collect);
    const seenInWorker = await inWorker(tabA, "watcher", collect);
    const seenInA = await inTab(tabA, collect);
    for (const [where, seen] of [["tab B", seenInB], ["the worker", seenInWorker], ["tab A (the committer)", seenInA]]) {
      assert.deepEqual(seen.storeChanges, [{ id, version: 1, status: "idle" }, { id, version: 2, status: "idle" }], `store.onChange in ${where}`);
      assert.deepEqual(seen.sessionChanges.map(({ version, status }) => ({ version, status })), [{ version: 1, status: "idle" }, { version: 2, status: "idle" }], `session.onChange in ${where}`);
      assert.deepEqual(seen.refreshed, { same: true, version: 2, messages: ["first", "second"] }, `refresh() in ${where}`);
      assert.deepEqual(seen.view, { cached: true, version: 2, messages: ["first", "second"] }, `the cached view in ${where}`);
    }
    t.diagnostic(`cached version when session.onChange fired, in tab B: ${seenInB.sessionChanges.map((c) => c.cachedVersion)}, in the worker: ${seenInWorker.sessionChanges.map((c) => c.cachedVersion)}`);
  });
});

test("a session deleted and created again in another tab: the change of its first commit brings this tab's cached view to the new session, at a lower or the same version", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const id = "recreated";
    const tabA = await openTab(tabs, "tab A");
    const tabB = await openTab(tabs, "tab B");
    const setUp = async ({ lib, ctx }, { database, id }) => {
      ctx.store = await lib.SessionStore.indexedDb({ database });
      ctx.session = await ctx.store.open(id);
      ctx.changes = [];
      ctx.session.onChange(({ version }) => ctx.changes.push({ version, cached: ctx.session.version }));
    };
    await inTab(tabB, setUp, { database, id });
    await inTab(tabA, setUp, { database, id });
    await inTab(tabA, async ({ ctx }) => {
      for (const text of ["old 1", "old 2", "old 3"]) await ctx.session.invoke((inv) => inv.appendMessage(text));
    });
    await inTab(tabB, ({ fx, ctx }) => fx.waitFor(() => ctx.session.version === 3 && ctx.changes.length === 3, "tab B's view at version 3, and its three changes"));
    await inTab(tabA, async ({ ctx }, { id }) => {
      await ctx.store.delete(id);
      await (await ctx.store.open(id)).invoke((inv) => inv.appendMessage("new 1"));
    }, { id });
    const seen = await inTab(tabB, async ({ fx, ctx }) => {
      // After the deleted session's three changes.
      await fx.waitFor(() => ctx.changes.length >= 4, "the change of the new session's version 1");
      return { version: ctx.session.version, messages: ctx.session.messages(), changes: ctx.changes };
    });
    assert.deepEqual(seen.changes.at(-1), { version: 1, cached: 1 }, "session.onChange fired with the view at the new session");
    assert.deepEqual([seen.version, seen.messages], [1, ["new 1"]], "tab B's cached view");
    // Again, the new session reaching the version the view is at: the notice's token tells them apart.
    await inTab(tabA, async ({ ctx }, { id }) => {
      await ctx.store.delete(id);
      await (await ctx.store.open(id)).invoke((inv) => inv.appendMessage("newer 1"));
    }, { id });
    const again = await inTab(tabB, async ({ fx, ctx }) => {
      await fx.waitFor(() => ctx.changes.length >= 5, "the change of the newer session's version 1");
      return { version: ctx.session.version, messages: ctx.session.messages(), last: ctx.changes.at(-1) };
    });
    assert.deepEqual(again, { version: 1, messages: ["newer 1"], last: { version: 1, cached: 1 } }, "tab B's cached view of the session at the same version");
  });
});

test("commit notices: a tab alone posts none; once another tab is on the channel it posts every commit, and a tab that joins while another commits hears every commit after its load", { timeout: 180000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    // Counts the commit notices (messages with a session id) this realm puts on a BroadcastChannel.
    const countPosts = ({ ctx }) => {
      ctx.posted = 0;
      const post = BroadcastChannel.prototype.postMessage;
      BroadcastChannel.prototype.postMessage = function (message) {
        if (typeof message?.id === "string") ctx.posted += 1;
        return post.call(this, message);
      };
    };
    const tabA = await openTab(tabs, "tab A");
    await inTab(tabA, countPosts);
    const alone = await inTab(tabA, async ({ lib, ctx }, { database }) => {
      ctx.store = await lib.SessionStore.indexedDb({ database });
      ctx.session = await ctx.store.open("alone");
      for (let i = 0; i < 20; i++) await ctx.session.invoke((inv) => inv.appendMessage(i));
      await new Promise((resolve) => setTimeout(resolve, 50)); // the outbox is emptied after the task
      return { posted: ctx.posted, version: ctx.session.version };
    }, { database });
    assert.deepEqual(alone, { posted: 0, version: 20 }, "a tab alone on the channel posts no commit notice");

    // Tab B joins while A commits in a loop, each round on a new session: B opens its store (it says
    // "open"), then the session, and records every change it hears. Whatever A committed after B's load
    // must reach B, in order, with no gap: posted once A knows of B, replayed if A committed it alone.
    const tabB = await openTab(tabs, "tab B");
    for (let round = 0; round < 3; round++) {
      const id = `joined while committing ${round}`;
      const looping = inTab(tabA, async ({ ctx }, { id }) => {
        const session = await ctx.store.open(id);
        for (let i = 0; i < 150; i++) await session.invoke((inv) => inv.appendMessage(i));
        return session.version;
      }, { id });
      const joined = await inTab(tabB, async ({ lib, ctx }, { database, id, round }) => {
        await new Promise((resolve) => setTimeout(resolve, 20 + 15 * round));
        ctx.store?.close();
        ctx.store = await lib.SessionStore.indexedDb({ database });
        ctx.heard = [];
        ctx.store.onChange((change) => change.id === id && ctx.heard.push(change.version));
        ctx.session = await ctx.store.open(id);
        return ctx.session.version;
      }, { database, id, round });
      const last = await looping;
      const heard = await inTab(tabB, async ({ fx, ctx }, { last }) => {
        // The view may reach the last commit (read from IndexedDB on an earlier notice) before the
        // notices of the commits since reach onChange, on a loaded machine: wait for the last notice.
        await fx.waitFor(() => ctx.session.version === last && ctx.heard.includes(last), "the last commit's notice");
        return ctx.heard;
      }, { last });
      const after = heard.filter((version) => version > joined);
      assert.deepEqual(after, Array.from({ length: last - joined }, (_, i) => joined + 1 + i),
        `round ${round}: B loaded version ${joined} and heard ${JSON.stringify(heard)}`);
      t.diagnostic(`round ${round}: B joined at version ${joined} of ${last}`);
    }

    // Both on the channel: A posts each of its commits.
    const posted = await inTab(tabA, async ({ ctx }) => {
      const before = ctx.posted;
      for (let i = 0; i < 5; i++) await ctx.session.invoke((inv) => inv.appendMessage(i));
      await new Promise((resolve) => setTimeout(resolve, 50));
      return ctx.posted - before;
    });
    assert.equal(posted, 5, "with another tab on the channel every commit is posted");
  });
});

test("a shared worker: commits seen by a tab, a tab's commits seen by it, and the guard between them", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const id = "shared worker";
    const tabA = await openTab(tabs, "tab A");
    const tabB = await openTab(tabs, "tab B");
    await spawnWorker(tabA, "shared", `shared-${database}`);
    const shared = (fn, arg) => inWorker(tabA, `shared-${database}`, fn, arg);
    const start = async ({ lib, ctx, realm }, { database, id, owner }) => {
      ctx.store = await lib.SessionStore.indexedDb({ database, owner });
      ctx.session = await ctx.store.open(id);
      ctx.changes = [];
      ctx.store.onChange(({ id, version, status }) => ctx.changes.push({ id, version, status }));
      return realm;
    };
    assert.equal(await shared(start, { database, id, owner: "shared" }), "shared worker");
    assert.equal(await inTab(tabB, start, { database, id, owner: "tab-B" }), "window");

    const held = await shared(async ({ ctx }) => {
      ctx.inv = await ctx.session.begin();
      ctx.inv.appendMessage("from the shared worker");
      return ctx.inv.token;
    });
    const refused = await inTab(tabB, tryBegin);
    assert.deepEqual(refused, { concurrency: true, holder: "shared" });
    assert.equal(await shared(({ ctx }) => ctx.inv.commit()), 1);
    const inB = await inTab(tabB, async ({ fx, ctx }) => {
      await fx.waitFor(() => ctx.changes.some((c) => c.version === 1), "the shared worker's commit");
      const inv = await ctx.session.begin();
      const token = inv.token;
      inv.appendMessage("from tab B");
      await inv.commit();
      return { changes: ctx.changes, token, messages: ctx.session.messages() };
    });
    // The shared worker's commit, then B's own (a store hears its own commits too).
    assert.deepEqual(inB.changes, [{ id, version: 1, status: "idle" }, { id, version: 2, status: "idle" }]);
    assert.equal(inB.token, held + 1);
    assert.deepEqual(inB.messages, ["from the shared worker", "from tab B"]);
    const inShared = await shared(async ({ fx, ctx }) => {
      await fx.waitFor(() => ctx.changes.some((c) => c.version === 2), "tab B's commit");
      await ctx.session.refresh();
      return { changes: ctx.changes, messages: ctx.session.messages(), version: ctx.session.version };
    });
    assert.deepEqual(inShared, {
      changes: [{ id, version: 1, status: "idle" }, { id, version: 2, status: "idle" }],
      messages: ["from the shared worker", "from tab B"],
      version: 2,
    });
  });
});

test("sweepExpired with an injected clock removes an expired session from list() in every tab and worker", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const ids = { expiring: "sweep/expiring", kept: "sweep/kept", later: "sweep/later" };
    const pages = [await openTab(tabs, "tab A"), await openTab(tabs, "tab B"), await openTab(tabs, "tab C")];
    await spawnWorker(pages[2], "dedicated", "lister");
    const list = async ({ lib, ctx }, { database }) => {
      ctx.store ??= await lib.SessionStore.indexedDb({ database });
      return (await ctx.store.list()).sessions.map((s) => s.id).sort();
    };
    const everywhere = (fn, arg) => Promise.all([...pages.map((page) => inTab(page, fn, arg)), inWorker(pages[2], "lister", fn, arg)]);

    await inTab(pages[0], async ({ lib, ctx }, { database, ids }) => {
      ctx.store = await lib.SessionStore.indexedDb({ database });
      ctx.expiring = await ctx.store.open(ids.expiring, { idleTtlMs: 60_000 });
      await ctx.expiring.invoke((inv) => inv.appendMessage("soon gone"));
      const kept = await ctx.store.open(ids.kept);
      await kept.invoke((inv) => inv.appendMessage("kept"));
      const later = await ctx.store.open(ids.later, { idleTtlMs: 7_200_000 });
      await later.invoke((inv) => inv.appendMessage("later"));
    }, { database, ids });
    const all = Object.values(ids).sort();
    assert.deepEqual(await everywhere(list, { database }), [all, all, all, all]);

    const swept = await inTab(pages[1], async ({ lib }, { database }) => {
      const store = await lib.SessionStore.indexedDb({ database, now: () => Date.now() + 3_600_000 });
      const before = (await store.list()).sessions.map(({ id, status }) => ({ id, status }));
      const count = await store.sweepExpired();
      await store.close();
      return { before, count };
    }, { database });
    assert.equal(swept.count, 1);
    assert.deepEqual(swept.before.find((s) => s.id === ids.expiring).status, "expired");
    const remaining = [ids.kept, ids.later].sort();
    assert.deepEqual(await everywhere(list, { database }), [remaining, remaining, remaining, remaining]);

    // Gone for good: not openable without creating, and none of its records is left.
    const gone = await inTab(pages[0], async ({ lib, fx, ctx }, { database, ids }) => {
      let open;
      try {
        await ctx.store.open(ids.expiring, { create: false });
        open = "opened";
      } catch (error) {
        open = { notFound: error instanceof lib.NotFoundError, code: error.code };
      }
      const raw = Object.keys(await fx.rawDump(database));
      const prefixes = (id) => [fx.headKey(id), fx.batchPrefix(id), fx.snapshotPrefix(id)];
      return {
        open,
        left: raw.filter((key) => prefixes(ids.expiring).some((p) => key.startsWith(p))),
        others: [ids.kept, ids.later].map((id) => raw.includes(fx.headKey(id))),
      };
    }, { database, ids });
    assert.deepEqual(gone, { open: { notFound: true, code: "NOT_FOUND" }, left: [], others: [true, true] });
  });
});

test("versionchange: another tab upgrading the database is not blocked, and the store reopens and goes on", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const a = await openTab(tabs, "tab-A");
    const b = await openTab(tabs, "tab-B");
    await inTab(a, async ({ lib, ctx }, database) => {
      ctx.store = await lib.SessionStore.indexedDb({ database, owner: "A" });
      ctx.session = await ctx.store.open("upgrade");
      await ctx.session.invoke((inv) => inv.appendMessage("before"));
    }, database);
    const upgrade = await inTab(b, async (_, database) => {
      const outcome = await new Promise((resolve) => {
        const request = indexedDB.open(database, 2);
        const blocked = [];
        request.onblocked = () => blocked.push("blocked");
        request.onupgradeneeded = () => request.result.createObjectStore("extra");
        request.onsuccess = () => {
          request.result.close();
          resolve({ ok: true, blocked });
        };
        request.onerror = () => resolve({ ok: false, error: String(request.error), blocked });
        setTimeout(() => resolve({ ok: false, error: "no answer in 10 s", blocked }), 10000);
      });
      return outcome;
    }, database);
    assert.deepEqual(upgrade, { ok: true, blocked: [] }, "the upgrade went through without being blocked");
    const after = await inTab(a, async ({ ctx }) => {
      const version = await ctx.session.invoke(async (inv) => {
        inv.appendMessage("after");
      }).then(() => ctx.session.version);
      return { version, messages: ctx.session.messages() };
    });
    assert.deepEqual(after, { version: 2, messages: ["before", "after"] });
    const fresh = await inTab(b, async ({ lib }, database) => {
      const store = await lib.SessionStore.indexedDb({ database, owner: "B" });
      const session = await store.open("upgrade", { create: false });
      const messages = session.messages();
      await store.close();
      return messages;
    }, database);
    assert.deepEqual(fresh, ["before", "after"]);
  });
});

test("versionchange: another tab upgrading the database to a version without its records is a StorageError that says so, and the store writes nothing into that version", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const a = await openTab(tabs, "tab-A");
    const b = await openTab(tabs, "tab-B");
    await inTab(a, async ({ lib, ctx }, database) => {
      ctx.store = await lib.SessionStore.indexedDb({ database, owner: "A" });
      ctx.session = await ctx.store.open("dropped");
      await ctx.session.invoke((inv) => inv.appendMessage("before"));
    }, database);
    const upgrade = await inTab(b, async (_, database) => {
      return new Promise((resolve) => {
        const request = indexedDB.open(database, 2);
        request.onupgradeneeded = () => {
          request.result.deleteObjectStore("records");
          request.result.createObjectStore("v2");
        };
        request.onsuccess = () => {
          request.result.close();
          resolve("upgraded");
        };
        request.onerror = () => resolve(String(request.error));
        setTimeout(() => resolve("no answer in 10 s"), 10000);
      });
    }, database);
    assert.equal(upgrade, "upgraded");
    const after = await inTab(a, async ({ lib, ctx }) => {
      try {
        await ctx.session.invoke((inv) => inv.appendMessage("after"));
        return "resolved";
      } catch (error) {
        return { storage: error instanceof lib.StorageError, code: error.code, upgraded: /was upgraded by another tab/.test(error.message) };
      }
    });
    assert.deepEqual(after, { storage: true, code: "STORAGE", upgraded: true });
    const left = await inTab(b, async (_, database) => {
      return new Promise((resolve) => {
        const request = indexedDB.open(database);
        request.onsuccess = () => {
          const db = request.result;
          const out = { version: db.version, stores: [...db.objectStoreNames] };
          db.close();
          resolve(out);
        };
        request.onerror = () => resolve(String(request.error));
      });
    }, database);
    assert.deepEqual(left, { version: 2, stores: ["v2"] }, "the upgraded database is as the other tab left it");
  });
});

// What the calls of tab `page`'s store (ctx.store; ctx.other's begin when there is one), of its
// session ctx.session and of its invocation ctx.inv give once its database went away: REFUSED each.
const afterGone = (page) =>
  inTab(page, async ({ lib, ctx }) => {
    const outcome = async (call) => {
      try {
        await call();
        return "resolved";
      } catch (error) {
        return { storage: error instanceof lib.StorageError, code: error.code, deleted: /was deleted/.test(error.message) };
      }
    };
    return {
      commit: await outcome(() => ctx.inv.commit()),
      open: await outcome(() => ctx.store.open("another")),
      list: await outcome(() => ctx.store.list()),
      ...(ctx.other && { begin: await outcome(() => ctx.other.begin()) }),
      cached: ctx.session.messages(),
    };
  });
const REFUSED = { storage: true, code: "STORAGE", deleted: true };

// Closes tab `page`'s store (ctx.store) and makes a new one on `database`: the sessions it lists, and
// the messages of a session it creates and commits a turn to.
const startAfresh = (page, database) =>
  inTab(page, async ({ lib, ctx }, database) => {
    await ctx.store.close();
    const store = await lib.SessionStore.indexedDb({ database, owner: "A2" });
    const listed = (await store.list()).sessions.length;
    const session = await store.open("logout");
    await session.invoke((inv) => inv.appendMessage("new user"));
    const messages = session.messages();
    await store.close();
    return { listed, messages };
  }, database);

test("deleteDatabase: another tab deleting the database is not blocked, and the open store refuses every later call instead of creating it again, empty", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const a = await openTab(tabs, "tab-A");
    const b = await openTab(tabs, "tab-B");
    await inTab(a, async ({ lib, ctx }, database) => {
      ctx.store = await lib.SessionStore.indexedDb({ database, owner: "A" });
      ctx.session = await ctx.store.open("logout");
      await ctx.session.invoke((inv) => inv.appendMessage("before"));
      ctx.inv = await ctx.session.begin();
      ctx.inv.appendMessage("mid-turn");
    }, database);
    const deletion = await inTab(b, async (_, database) => {
      return new Promise((resolve) => {
        const request = indexedDB.deleteDatabase(database);
        const blocked = [];
        request.onblocked = () => blocked.push("blocked");
        request.onsuccess = () => resolve({ ok: true, blocked });
        request.onerror = () => resolve({ ok: false, error: String(request.error), blocked });
        setTimeout(() => resolve({ ok: false, error: "no answer in 10 s", blocked }), 10000);
      });
    }, database);
    assert.deepEqual(deletion, { ok: true, blocked: [] }, "the deletion went through without being blocked");
    assert.deepEqual(await afterGone(a), { commit: REFUSED, open: REFUSED, list: REFUSED, cached: ["before"] });
    const names = await inTab(b, async () => (await indexedDB.databases()).map((db) => db.name));
    assert.ok(!names.includes(database), `the deleted database stays deleted (databases: ${names.join(", ")})`);
    assert.deepEqual(await startAfresh(a, database), { listed: 0, messages: ["new user"] }, "a new store starts the database afresh");
  });
});

test("clearing the site's data (CDP Storage.clearDataForOrigin, as \"Clear site data\" or a Clear-Site-Data header does): the heartbeat does not create the database again, the open store refuses every later call, a new store starts it afresh", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const a = await openTab(tabs, "tab-A");
    // A short lease, so that the heartbeat (every third of it) reconnects soon after the clear; the
    // store's clock stops at the clear, so that the lease is still live at the commit below.
    const LEASE_MS = 600;
    await inTab(a, async ({ lib, ctx }, { database, LEASE_MS }) => {
      ctx.store = await lib.SessionStore.indexedDb({ database, owner: "A", leaseMs: LEASE_MS, now: () => ctx.clock ?? Date.now() });
      ctx.other = await ctx.store.open("other");
      ctx.session = await ctx.store.open("logout");
      await ctx.session.invoke((inv) => inv.appendMessage("before"));
      ctx.inv = await ctx.session.begin();
      ctx.inv.appendMessage("mid-turn");
      // Counts the opens of the database in this tab that have had their answer from now on: the
      // store's reconnections.
      ctx.opens = 0;
      const open = indexedDB.open.bind(indexedDB);
      indexedDB.open = (name, ...rest) => {
        const request = open(name, ...rest);
        if (name === database) {
          const answered = () => ctx.opens++;
          request.addEventListener("success", answered);
          request.addEventListener("error", answered);
        }
        return request;
      };
      ctx.clock = Date.now();
    }, { database, LEASE_MS });
    const cdp = await a.context().newCDPSession(a);
    await cdp.send("Storage.clearDataForOrigin", { origin: chrome.origin, storageTypes: "indexeddb" });
    const gone = await inTab(a, async ({ fx, ctx }, database) => {
      await fx.waitFor(() => ctx.opens > 0, "the store's heartbeat to open the database again");
      return !(await indexedDB.databases()).some((db) => db.name === database);
    }, database);
    assert.equal(gone, true, "the heartbeat created the cleared database again");
    assert.deepEqual(await afterGone(a), { commit: REFUSED, open: REFUSED, list: REFUSED, begin: REFUSED, cached: ["before"] });
    const left = await inTab(a, async (_, database) => (await indexedDB.databases()).some((db) => db.name === database), database);
    assert.equal(left, false, "the store's calls created the cleared database again");
    // Once the lease has run out (by the store's clock), the invocation has lost it.
    const late = await inTab(a, async ({ lib, ctx }, LEASE_MS) => {
      ctx.clock += 2 * LEASE_MS;
      const renew = await ctx.inv.renew().then(() => "renewed", (error) => ({ leaseLost: error instanceof lib.LeaseLostError, code: error.code }));
      return { renew, signal: ctx.inv.signal.reason instanceof lib.LeaseLostError };
    }, LEASE_MS);
    assert.deepEqual(late, { renew: { leaseLost: true, code: "LEASE_LOST" }, signal: true });
    assert.deepEqual(await startAfresh(a, database), { listed: 0, messages: ["new user"] }, "a new store starts the database afresh");
  });
});

test("a quota error surfaces as StorageError, the previous version stays intact and readable, and the invocation stays open", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const a = await openTab(tabs, "tab-A");
    // Chromium applies a quota override to connections opened after it.
    const cdp = await a.context().newCDPSession(a);
    await cdp.send("Storage.overrideQuotaForOrigin", { origin: chrome.origin, quotaSize: 400 * 1024 });
    await inTab(a, async ({ lib, ctx }, database) => {
      ctx.store = await lib.SessionStore.indexedDb({ database, owner: "A" });
      ctx.session = await ctx.store.open("quota");
      await ctx.session.invoke((inv) => inv.appendMessage({ text: "small" }));
    }, database);
    const outcome = await inTab(a, async ({ lib, ctx }) => {
      const inv = await ctx.session.begin();
      inv.appendMessage({ text: "x".repeat(900 * 1024) });
      let error;
      try {
        await inv.commit();
      } catch (caught) {
        error = caught;
      }
      const stillOpen = inv.messages().length;
      await inv.abort();
      return {
        isStorage: error instanceof lib.StorageError,
        code: error?.code,
        causeName: error?.cause?.name,
        stillOpen,
        version: ctx.session.version,
        messages: ctx.session.messages(),
      };
    });
    await cdp.send("Storage.overrideQuotaForOrigin", { origin: chrome.origin });
    assert.equal(outcome.isStorage, true, `a StorageError, got ${outcome.code}`);
    assert.equal(outcome.code, "STORAGE");
    assert.equal(outcome.causeName, "QuotaExceededError");
    assert.equal(outcome.stillOpen, 2, "the failed commit left the invocation open with its staged message");
    assert.equal(outcome.version, 1);
    assert.deepEqual(outcome.messages, [{ text: "small" }]);
    const fresh = await inTab(a, async ({ lib }, database) => {
      const store = await lib.SessionStore.indexedDb({ database, owner: "fresh" });
      const session = await store.open("quota", { create: false });
      const result = { version: session.version, messages: session.messages() };
      await store.close();
      return result;
    }, database);
    assert.deepEqual(fresh, { version: 1, messages: [{ text: "small" }] });
  });
});

test("a load resolves once its reads are in, before its read-only transaction's complete event; its messages and state are the committed ones", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const page = await openTab(tabs, "tab");
    const order = await inTab(page, async ({ lib }, { database }) => {
      const writer = await lib.SessionStore.indexedDb({ database });
      const session = await writer.open("s");
      for (let i = 0; i < 3; i++) {
        await session.invoke((inv) => {
          inv.appendMessage({ i });
          inv.setState("n", i);
        });
      }
      await writer.close();
      // Every transaction from now on, with the order of its complete event against the load's end.
      const events = [];
      const opener = IDBDatabase.prototype.transaction;
      IDBDatabase.prototype.transaction = function (...args) {
        const tx = opener.apply(this, args);
        const n = events.filter((e) => e.startsWith("tx")).length;
        events.push(`tx ${n} ${tx.mode}`);
        tx.addEventListener("complete", () => events.push(`complete ${n}`));
        return tx;
      };
      try {
        const reader = await lib.SessionStore.indexedDb({ database });
        const loaded = await reader.open("s", { create: false });
        events.push("loaded");
        const seen = { messages: loaded.messages(), n: loaded.stateValue("n") };
        await new Promise((resolve) => setTimeout(resolve, 50));
        await reader.close();
        return { events, seen };
      } finally {
        IDBDatabase.prototype.transaction = opener;
      }
    }, { database });
    assert.deepEqual(order.seen, { messages: [{ i: 0 }, { i: 1 }, { i: 2 }], n: 2 });
    const loadTx = order.events.filter((e) => e.endsWith("readonly")).at(-1)?.split(" ")[1];
    assert.ok(loadTx !== undefined, `no read-only transaction: ${order.events}`);
    const loaded = order.events.indexOf("loaded");
    const completed = order.events.indexOf(`complete ${loadTx}`);
    assert.ok(completed > loaded, `the load waited for complete: ${order.events.join(", ")}`);
  });
});

test("a turn that emitted parts commits its last flush with its batch, in one transaction; a follower in another store gets every part before the end; the next begin deletes that live log with its lease", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const page = await openTab(tabs, "tab");
    const seen = await inTab(page, async ({ lib }, { database }) => {
      const writer = await lib.SessionStore.indexedDb({ database, liveFlushMs: 60000 });
      const reader = await lib.SessionStore.indexedDb({ database });
      const session = await writer.open("s");
      await session.invoke((inv) => inv.appendMessage({ role: "user", content: "go" }));
      const followed = await reader.open("s", { create: false });
      const controller = new AbortController();
      const events = [];
      const following = (async () => {
        for await (const event of followed.follow({ signal: controller.signal })) {
          events.push(event.type === "part" ? `part ${event.seq} ${event.data.text}` : event.type);
          if (event.type === "end") break;
        }
      })();
      const inv = await session.begin();
      for (let seq = 0; seq < 3; seq++) inv.emit({ text: `chunk ${seq}` });
      inv.appendMessage({ role: "assistant", content: "done" });
      const modes = [];
      const opener = IDBDatabase.prototype.transaction;
      IDBDatabase.prototype.transaction = function (...args) {
        const tx = opener.apply(this, args);
        if (this.name === database && tx.mode !== "readonly") modes.push(tx.mode);
        return tx;
      };
      try {
        await inv.commit();
      } finally {
        IDBDatabase.prototype.transaction = opener;
      }
      const commitModes = [...modes];
      await following;
      controller.abort();
      const stored = await reader.open("s", { create: false });
      await stored.refresh();
      // The live log's keys in the database, read raw.
      const liveKeys = () =>
        new Promise((resolve, reject) => {
          const request = indexedDB.open(database);
          request.onsuccess = () => {
            const db = request.result;
            const keys = db.transaction("records").objectStore("records").getAllKeys(IDBKeyRange.bound("t/", "t/\uffff"));
            keys.onsuccess = () => {
              db.close();
              resolve(keys.result);
            };
            keys.onerror = () => reject(keys.error);
          };
          request.onerror = () => reject(request.error);
        });
      const keptAfterCommit = (await liveKeys()).length;
      // The next turn's begin deletes that live log with its lease: one readwrite transaction.
      modes.length = 0;
      IDBDatabase.prototype.transaction = function (...args) {
        const tx = opener.apply(this, args);
        if (this.name === database && tx.mode !== "readonly") modes.push(tx.mode);
        return tx;
      };
      let next;
      try {
        next = await session.begin();
      } finally {
        IDBDatabase.prototype.transaction = opener;
      }
      const beginModes = [...modes];
      const keptAfterBegin = (await liveKeys()).length;
      await next.abort();
      const result = { commitModes, beginModes, events, messages: stored.messages(), keptAfterCommit, keptAfterBegin };
      await writer.close();
      await reader.close();
      return result;
    }, { database });
    // The writes of the commit: one readwrite transaction (the head, the batch and the flush); of the
    // next begin: one (the lease, deleting that flush).
    assert.deepEqual({ commit: seen.commitModes, begin: seen.beginModes }, { commit: ["readwrite"], begin: ["readwrite"] });
    assert.deepEqual(seen.events, ["part 0 chunk 0", "part 1 chunk 1", "part 2 chunk 2", "end"]);
    assert.deepEqual(seen.messages, [{ role: "user", content: "go" }, { role: "assistant", content: "done" }]);
    assert.deepEqual({ afterCommit: seen.keptAfterCommit, afterBegin: seen.keptAfterBegin }, { afterCommit: 1, afterBegin: 0 });
  });
});

test("begin(), commit() and checkpoint() open their readwrite transaction and issue its read of the head during the call; a turn of begin, checkpoint and commit stays three transactions and three reads; two stores beginning in one tick: one holder, the other ConcurrencyError", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const page = await openTab(tabs, "tab");
    const seen = await inTab(page, async ({ lib }, { database }) => {
      const store = await lib.SessionStore.indexedDb({ database, owner: "a" });
      const session = await store.open("s");
      await session.invoke((inv) => inv.appendMessage({ n: 0 }));
      const counts = { transactions: 0, reads: 0 };
      const opener = IDBDatabase.prototype.transaction;
      const getter = IDBObjectStore.prototype.get;
      IDBDatabase.prototype.transaction = function (...args) {
        if (this.name === database) counts.transactions++;
        return opener.apply(this, args);
      };
      IDBObjectStore.prototype.get = function (...args) {
        if (this.transaction.db.name === database) counts.reads++;
        return getter.apply(this, args);
      };
      const atCall = (call) => {
        const before = { ...counts };
        const promise = call();
        return { promise, opened: counts.transactions - before.transactions, read: counts.reads - before.reads };
      };
      try {
        const start = { ...counts };
        const begun = atCall(() => session.begin());
        const inv = await begun.promise;
        inv.appendMessage({ n: 1 });
        const checkpointed = atCall(() => inv.checkpoint());
        await checkpointed.promise;
        inv.appendMessage({ n: 2 });
        const committed = atCall(() => inv.commit());
        await committed.promise;
        const turn = { transactions: counts.transactions - start.transactions, reads: counts.reads - start.reads };
        // Two stores (as two tabs) begin on one session in the same tick.
        const other = await lib.SessionStore.indexedDb({ database, owner: "b" });
        const theirs = await other.open("s");
        const outcomes = await Promise.allSettled([session.begin(), theirs.begin()]);
        const holders = outcomes.filter((o) => o.status === "fulfilled").map((o) => o.value);
        const refused = outcomes.filter((o) => o.status === "rejected").map((o) => o.reason);
        for (const holder of holders) {
          holder.appendMessage({ n: 3 });
          await holder.commit();
        }
        await session.refresh();
        const result = {
          begin: [begun.opened, begun.read],
          checkpoint: [checkpointed.opened, checkpointed.read],
          commit: [committed.opened, committed.read],
          turn,
          holders: holders.length,
          refused: refused.map((e) => [e instanceof lib.ConcurrencyError, e.code]),
          version: session.version,
          messages: session.messages(),
        };
        await other.close();
        await store.close();
        return result;
      } finally {
        IDBDatabase.prototype.transaction = opener;
        IDBObjectStore.prototype.get = getter;
      }
    }, { database });
    // Each call opened one transaction and issued one read before it returned its promise.
    assert.deepEqual({ begin: seen.begin, checkpoint: seen.checkpoint, commit: seen.commit }, { begin: [1, 1], checkpoint: [1, 1], commit: [1, 1] });
    // ...and that transaction was the one written in: begin, checkpoint, commit are three of each.
    assert.deepEqual(seen.turn, { transactions: 3, reads: 3 });
    assert.equal(seen.holders, 1);
    assert.deepEqual(seen.refused, [[true, "CONCURRENT_INVOCATION"]]);
    assert.equal(seen.version, 4);
    assert.deepEqual(seen.messages, [{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }]);
  });
});

test("a database of the same name that something else made (no \"records\" object store) is a ValidationError naming options.database at SessionStore.indexedDb(); that database is left as it was", { timeout: 60000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const page = await openTab(tabs, "tab");
    const result = await inTab(page, async ({ lib }, database) => {
      const made = () =>
        new Promise((resolve, reject) => {
          const request = indexedDB.open(database, 3);
          request.onupgradeneeded = () => request.result.createObjectStore("theirs").put("kept", "k");
          request.onsuccess = () => {
            request.result.close();
            resolve();
          };
          request.onerror = () => reject(request.error);
        });
      await made();
      const out = {};
      try {
        await lib.SessionStore.indexedDb({ database });
        out.opened = true;
      } catch (error) {
        out.isValidation = error instanceof lib.ValidationError;
        Object.assign(out, { code: error.code, path: error.path, message: error.message });
      }
      // Their database: the same version, object stores and value.
      out.theirs = await new Promise((resolve, reject) => {
        const request = indexedDB.open(database);
        request.onsuccess = () => {
          const db = request.result;
          const get = db.transaction("theirs").objectStore("theirs").get("k");
          get.onsuccess = () => {
            resolve({ version: db.version, stores: [...db.objectStoreNames], value: get.result });
            db.close();
          };
          get.onerror = () => reject(get.error);
        };
        request.onerror = () => reject(request.error);
      });
      return out;
    }, database);
    assert.equal(result.opened, undefined, "the store did not open");
    assert.equal(result.isValidation, true, JSON.stringify(result));
    assert.equal(result.code, "INVALID_INPUT");
    assert.equal(result.path, "options.database");
    assert.match(result.message, /exists and has no "records" object store/);
    assert.match(result.message, /pass another name as options\.database/);
    assert.deepEqual(result.theirs, { version: 3, stores: ["theirs"], value: "kept" });
  });
});
