// IndexedDB stores on a page served over plain http from a host name (not a secure context, as an
// intranet site may be): no Web Locks, no crypto.subtle, no crypto.randomUUID. The guard falls back to
// lease expiry and commits still reach the other tab (the commit channel names realms without
// randomUUID, whose absence hung a store's creation there before this test caught it).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startBrowser } from "./chromium.mjs";
import { tabHelpers, tryBegin } from "./tabs.mjs";

let chrome;
before(async () => {
  chrome = await startBrowser({ host: "intranet.test" });
});
after(async () => chrome?.stop());

const { withTabs, openTab, inTab } = tabHelpers(() => chrome, { page: "/tests/browser/idb-tab.html", database: "agent-session-insecure" });

test("not a secure context: two tabs share a session, the guard refuses a second holder, a commit reaches the other tab; an encryptionKey that is no CryptoKey is INVALID_INPUT", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const [tabA, tabB] = [await openTab(tabs, "tab A"), await openTab(tabs, "tab B")];
    const context = await tabA.evaluate(() => ({
      secure: isSecureContext,
      locks: typeof navigator.locks,
      subtle: typeof crypto.subtle,
      randomUUID: typeof crypto.randomUUID,
    }));
    assert.deepEqual(context, { secure: false, locks: "undefined", subtle: "undefined", randomUUID: "undefined" });

    const open = async ({ lib, ctx }, { database, owner }) => {
      ctx.store = await lib.SessionStore.indexedDb({ database, owner });
      ctx.session = await ctx.store.open("intranet");
      ctx.changes = [];
      ctx.store.onChange(({ version }) => ctx.changes.push(version));
      return ctx.session.version;
    };
    assert.equal(await inTab(tabA, open, { database, owner: "A" }), 0);
    assert.equal(await inTab(tabB, open, { database, owner: "B" }), 0);

    // A holds the session: B is refused (the lease decides; no Web Lock to ask).
    await inTab(tabA, async ({ ctx }) => {
      ctx.inv = await ctx.session.begin();
      ctx.inv.appendMessage("from A");
    });
    const refused = await inTab(tabB, tryBegin);
    assert.deepEqual(refused, { concurrency: true, holder: "A" });
    assert.equal(await inTab(tabA, ({ ctx }) => ctx.inv.commit()), 1);

    // B hears A's commit and its cached view follows; then B commits and A hears it.
    const inB = await inTab(tabB, async ({ fx, ctx }) => {
      await fx.waitFor(() => ctx.changes.includes(1) && ctx.session.version === 1, "A's commit in tab B");
      await ctx.session.invoke((inv) => inv.appendMessage("from B"));
      return { messages: ctx.session.messages(), changes: ctx.changes };
    });
    assert.deepEqual(inB, { messages: ["from A", "from B"], changes: [1, 2] });
    const inA = await inTab(tabA, async ({ fx, ctx }) => {
      await fx.waitFor(() => ctx.changes.includes(2) && ctx.session.version === 2, "B's commit in tab A");
      return { messages: ctx.session.messages(), changes: ctx.changes };
    });
    assert.deepEqual(inA, { messages: ["from A", "from B"], changes: [1, 2] });

    // Encryption needs a WebCrypto AES-GCM key, which this page cannot make: what it can pass is refused
    // with a typed error, not a crash.
    const keyed = await inTab(tabA, async ({ lib }, { database }) => {
      try {
        await lib.SessionStore.indexedDb({ database: `${database}-keyed`, encryptionKey: {} });
        return "opened";
      } catch (error) {
        return { name: error.name, code: error.code };
      }
    }, { database });
    assert.equal(typeof keyed, "object", "a store with an encryptionKey must not open without WebCrypto");
    assert.equal(keyed.code, "INVALID_INPUT");
  });
});
