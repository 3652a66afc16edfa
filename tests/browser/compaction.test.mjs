// Compaction and retention (API.md "Compaction and retention: long sessions stay small") on
// SessionStore.indexedDb() in real headless Chromium: two tabs of one origin (pages of one browser
// context, sharing IndexedDB and Web Locks), each with its own store (its own owner, connection and
// cache). Tab A writes a long session, compacts it and prunes it; tab B reads the compacted view after
// refresh(), from a fresh store, and after a reload (a new wasm instance), and gets a NotFoundError
// saying "pruned" for the versions that went. The stored records are read by a raw IndexedDB
// connection (compaction-fixture.js) to check that pruning right after a compaction shrinks them.
// Fixtures: compaction-tab.html (a tab), compaction-fixture.js (helpers it loads).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startBrowser } from "./chromium.mjs";
import { tabHelpers } from "./tabs.mjs";

let chrome;
before(async () => {
  chrome = await startBrowser();
});
after(async () => chrome?.stop());

// env of inTab = { lib (the package), fx (compaction-fixture.js), ctx (an object kept across calls) }.
const { withTabs, waitReady, openTab, inTab } = tabHelpers(() => chrome, {
  page: "/tests/browser/compaction-tab.html",
  database: "agent-session-compaction",
});

// Opens a store (ctx.store, or ctx[name]) and the session into ctx.session (or ctx[name + "Session"]).
const openStore = (page, { database, id, owner, name = "store", create = false }) =>
  inTab(page, async ({ lib, ctx }, { database, id, owner, name, create }) => {
    ctx.snapshots ??= [];
    ctx[name] = await lib.SessionStore.indexedDb({
      database, owner, leaseMs: 60000, snapshotEvery: 3,
      onEvent: (event) => event.type === "snapshot" && ctx.snapshots.push(event.version),
    });
    ctx[`${name}Session`] = await ctx[name].open(id, { create });
    return ctx[`${name}Session`].version;
  }, { database, id, owner, name, create });

const msg = (i) => (i % 2 === 0 ? { role: "user", content: `u${i}` } : { role: "assistant", content: `a${i}` });
const msgs = (from, to) => Array.from({ length: to - from }, (_, k) => msg(from + k));
const SUMMARY = { role: "system", content: "summary of 38 messages" };

test("IndexedDB, two tabs: tab A compacts a long session and prunes it; tab B reads the compacted view (refresh, fresh store, after a reload) and NotFoundError for pruned versions; the stored records shrink", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const id = "long/ü session";
    const a = await openTab(tabs, "tab A");
    const b = await openTab(tabs, "tab B");
    await openStore(a, { database, id, owner: "A", create: true });

    // 20 turns of two messages and a state key: versions 1..20, snapshots every 3 commits.
    const captured = await inTab(a, async ({ ctx }) => {
      const session = ctx.storeSession;
      for (let turn = 0; turn < 20; turn++) {
        await session.invoke((inv) => {
          const n = inv.messages().length;
          for (const i of [n, n + 1]) inv.appendMessage(i % 2 === 0 ? { role: "user", content: `u${i}` } : { role: "assistant", content: `a${i}` });
          inv.setState("turn", turn);
        });
      }
      const views = [];
      for (let v = 0; v <= session.version; v++) {
        const view = await session.at(v);
        views.push(JSON.parse(JSON.stringify({ version: view.version, messages: view.messages(), state: view.state() })));
      }
      return { version: session.version, views, history: JSON.parse(JSON.stringify(await session.history())) };
    });
    assert.equal(captured.version, 20);
    assert.deepEqual(captured.views[20].messages, msgs(0, 40));

    // Tab B opens it before the compaction (its store caches the 40 messages).
    await openStore(b, { database, id, owner: "B" });
    assert.deepEqual(await inTab(b, ({ ctx }) => (ctx.readBefore = ctx.storeSession.messages())), msgs(0, 40));

    // Tab A: the tool-pair rule holds on this backend too (a separate session).
    const refusal = await inTab(a, async ({ ctx, fx }) => {
      const s = await ctx.store.open("tools");
      await s.invoke((inv) => {
        inv.appendMessage({ role: "user", content: "weather?" });
        inv.appendMessage({ role: "assistant", content: [{ type: "tool_use", id: "toolu_idb", name: "w", input: {} }] });
        inv.appendMessage({ role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_idb", content: "18" }] });
      });
      const inv = await s.begin();
      const error = fx.throws(() => inv.compact({ before: 2, summary: [] }));
      const staged = inv.messages().length;
      await inv.abort();
      return { error, staged };
    });
    assert.equal(refusal.error.name, "ValidationError", JSON.stringify(refusal.error));
    assert.equal(refusal.error.path, "before");
    assert.match(refusal.error.message, /toolu_idb/);
    assert.equal(refusal.staged, 3, "nothing staged by the refused compaction");

    // Tab A compacts the first 38 messages and appends one, in one commit.
    const compacted = await inTab(a, async ({ ctx }, SUMMARY) => {
      const session = ctx.storeSession;
      const inv = await session.begin();
      inv.compact({ before: 38, summary: [SUMMARY] });
      inv.appendMessage("after the summary");
      const seen = inv.messages();
      const version = await inv.commit();
      return { version, seen, messages: session.messages(), snapshots: ctx.snapshots };
    }, SUMMARY);
    const expected = [SUMMARY, msg(38), msg(39), "after the summary"];
    assert.equal(compacted.version, 21);
    assert.deepEqual(compacted.seen, expected, "read your writes");
    assert.deepEqual(compacted.messages, expected);
    assert.ok(compacted.snapshots.some((v) => v <= 20), `snapshots before the compaction: ${compacted.snapshots}`);

    // Tab B: after refresh() the compacted view; history keeps the originals; at(v) before shows them.
    const readB = await inTab(b, async ({ ctx }) => {
      const session = ctx.storeSession;
      const before = ctx.readBefore;
      await session.refresh();
      const history = await session.history();
      const at5 = await session.at(5);
      const at20 = await session.at(20);
      return {
        version: session.version,
        before,
        messages: session.messages(),
        compactedEvents: history.filter((e) => e.type === "compacted"),
        messageEvents: history.filter((e) => e.type === "message").map((e) => e.data),
        at5: at5.messages(),
        at20: at20.messages(),
      };
    });
    assert.equal(readB.version, 21);
    assert.deepEqual(readB.before, msgs(0, 40), "an array read before the compaction is unchanged");
    assert.deepEqual(readB.messages, expected, "tab B after refresh()");
    assert.equal(readB.compactedEvents.length, 1);
    assert.deepEqual(
      { version: readB.compactedEvents[0].version, agent: readB.compactedEvents[0].agent, before: readB.compactedEvents[0].before, data: readB.compactedEvents[0].data },
      { version: 21, agent: "default", before: 38, data: [SUMMARY] },
    );
    assert.deepEqual(readB.messageEvents, [...msgs(0, 40), "after the summary"], "every original message event is kept");
    assert.deepEqual(readB.at5, captured.views[5].messages);
    assert.deepEqual(readB.at20, msgs(0, 40));

    // Tab A prunes everything below the latest version, right after the compaction.
    const pruned = await inTab(a, async ({ ctx, fx }, database) => {
      const session = ctx.storeSession;
      const before = await fx.sessionRecords(database, session.id);
      const view = await session.at(21);
      const kept = {
        at21: { version: view.version, messages: view.messages(), state: view.state() },
        history21: await session.history({ from: 21 }),
      };
      const n = await session.prune({ before: 21 });
      const after = await fx.sessionRecords(database, session.id);
      const afterKeys = new Set(after.map((r) => r.key));
      return {
        n,
        version: session.version,
        kept: JSON.parse(JSON.stringify(kept)),
        before: fx.totals(before),
        after: fx.totals(after),
        gone: before.filter((r) => !afterKeys.has(r.key)).length,
        at20: await fx.settle(session.at(20)),
        from1: await fx.settle(session.history({ from: 1 })),
      };
    }, database);
    t.diagnostic(`IndexedDB records of the session: before the prune ${JSON.stringify(pruned.before)}, after ${JSON.stringify(pruned.after)}, prune() returned ${pruned.n}`);
    assert.ok(pruned.n > 0, `prune returned ${pruned.n}`);
    assert.equal(pruned.n, pruned.gone, "prune() returns how many records went");
    assert.equal(pruned.version, 21, "prune commits no version");
    assert.ok(pruned.after.bytes < pruned.before.bytes, "stored bytes shrink");
    assert.ok(pruned.after.bytes * 4 < pruned.before.bytes, "stored bytes shrink to a fraction");
    assert.ok(pruned.after.records < pruned.before.records, "fewer records");
    assert.ok(pruned.after.snapshotBytes < pruned.before.snapshotBytes, "fewer snapshot bytes");
    for (const [what, got] of [["at(20)", pruned.at20], ["history({ from: 1 })", pruned.from1]]) {
      assert.equal(got.name, "NotFoundError", `${what}: ${JSON.stringify(got)}`);
      assert.match(got.message, /prun/i, `${what} says pruned`);
    }

    // Tab B: a fresh store (its own connection and cache) reads the compacted view.
    const checkFresh = ({ lib, ctx, fx }, { database, id }) =>
      (async () => {
        const store = await lib.SessionStore.indexedDb({ database, owner: "B-fresh", leaseMs: 60000 });
        const session = await store.open(id, { create: false });
        const at21 = await session.at(21);
        const out = {
          version: session.version,
          messages: session.messages(),
          state: session.state(),
          at21: { version: at21.version, messages: at21.messages(), state: at21.state() },
          history21: await session.history({ from: 21 }),
          at1: await fx.settle(session.at(1)),
          at20: await fx.settle(session.at(20)),
          from1: await fx.settle(session.history({ from: 1 })),
          from0to30: await fx.settle(session.history({ from: 0, to: 21 })),
        };
        ctx.fresh = session;
        return JSON.parse(JSON.stringify(out));
      })();
    for (const when of ["fresh store in tab B", "fresh store in tab B after a reload"]) {
      if (when.includes("reload")) {
        await b.reload();
        await waitReady(b, "tab B (reloaded)");
      }
      const fresh = await inTab(b, checkFresh, { database, id });
      assert.equal(fresh.version, 21, when);
      assert.deepEqual(fresh.messages, expected, `${when}: messages()`);
      assert.deepEqual(fresh.state, { turn: 19 }, `${when}: state()`);
      assert.deepEqual(fresh.at21, pruned.kept.at21, `${when}: at(21) unchanged`);
      assert.deepEqual(fresh.history21, pruned.kept.history21, `${when}: history({ from: 21 }) unchanged`);
      for (const what of ["at1", "at20", "from1", "from0to30"]) {
        assert.equal(fresh[what].name, "NotFoundError", `${when}: ${what}: ${JSON.stringify(fresh[what])}`);
        assert.match(fresh[what].message, /prun/i, `${when}: ${what} says pruned`);
      }
    }

    // A new turn from tab B; tab A sees it.
    await inTab(b, async ({ ctx }) => {
      await ctx.fresh.invoke((inv) => inv.appendMessage("from tab B"));
    });
    const seenByA = await inTab(a, async ({ ctx }) => {
      await ctx.storeSession.refresh();
      return { version: ctx.storeSession.version, messages: ctx.storeSession.messages() };
    });
    assert.equal(seenByA.version, 22);
    assert.deepEqual(seenByA.messages, [...expected, "from tab B"]);
    for (const page of [a, b]) await inTab(page, async ({ ctx }) => ctx.store?.close());
  });
});

test("IndexedDB, two tabs: prune() takes the guard: ConcurrencyError while tab A's invocation holds the session, works from tab B once it ends", { timeout: 60000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const id = "guarded";
    const a = await openTab(tabs, "tab A");
    const b = await openTab(tabs, "tab B");
    await openStore(a, { database, id, owner: "A", create: true });
    await inTab(a, async ({ ctx }) => {
      for (let turn = 0; turn < 8; turn++) await ctx.storeSession.invoke((inv) => inv.appendMessage(`m${turn}`));
      ctx.held = await ctx.storeSession.begin();
      ctx.held.appendMessage("held");
    });
    await openStore(b, { database, id, owner: "B" });
    const refused = await inTab(b, async ({ ctx, fx }) => fx.settle(ctx.storeSession.prune({ before: 5 })));
    assert.equal(refused.name, "ConcurrencyError", JSON.stringify(refused));
    assert.equal(refused.holder, "A");
    assert.equal(await inTab(a, async ({ ctx }) => ctx.held.commit()), 9);
    const done = await inTab(b, async ({ ctx, fx }) => {
      await ctx.storeSession.refresh();
      const n = await ctx.storeSession.prune({ before: 5 });
      return { n, messages: ctx.storeSession.messages(), at2: await fx.settle(ctx.storeSession.at(2)), at5: (await ctx.storeSession.at(5)).messages() };
    });
    assert.ok(done.n > 0, `prune returned ${done.n}`);
    assert.deepEqual(done.messages, ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "held"]);
    assert.equal(done.at2.name, "NotFoundError");
    assert.match(done.at2.message, /prun/i);
    assert.deepEqual(done.at5, ["m0", "m1", "m2", "m3", "m4"]);
    // Tab A's next turn works after the prune.
    const next = await inTab(a, async ({ ctx }) => {
      await ctx.storeSession.invoke((inv) => inv.appendMessage("next"));
      return ctx.storeSession.messages().length;
    });
    assert.equal(next, 10);
  });
});
