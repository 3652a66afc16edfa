// Schema migrations on IndexedDB in Chromium (API.md "Schema migrations"): tab A, the old
// application (schema 1), writes a session; tab B, the new application (schema 3, two steps), reads
// it migrated without writing, and its next commit persists it as `migrated` events; a third store at
// schema 2 is refused with SchemaVersionError, and a throwing migration is a MigrationError with
// nothing written.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startBrowser } from "./chromium.mjs";
import { tabHelpers } from "./tabs.mjs";

let chrome;
before(async () => {
  chrome = await startBrowser();
});
after(async () => chrome?.stop());

const { openTab, inTab } = tabHelpers(() => chrome, {
  page: "/tests/browser/live-tab.html",
  database: "agent-session-schema",
});

test("a session written under schema 1 in one tab is read migrated at schema 3 in another, persisted by its next commit", async () => {
  const tabs = await chrome.context();
  const database = `agent-session-schema-${randomUUID()}`;
  try {
    const a = await openTab(tabs, "A");
    const b = await openTab(tabs, "B");
    await inTab(a, async ({ lib }, { database }) => {
      const store = await lib.SessionStore.indexedDb({ database, schema: { version: 1 } });
      const session = await store.open("s");
      await session.invoke((inv) => {
        inv.appendMessage({ text: "hi" });
        inv.setState("n", 1);
      });
    }, { database });
    const read = await inTab(b, async ({ lib }, { database }) => {
      const migrate = {
        2: ({ messages, state }) => ({ messages: messages.map((m) => ({ content: m.text })), state }),
        3: ({ messages, state }) => ({ messages, state: { ...state, n: state.n + 1 } }),
      };
      const store = await lib.SessionStore.indexedDb({ database, schema: { version: 3, migrate } });
      const session = await store.open("s");
      const shown = { messages: session.messages(), state: session.state(), version: session.version };
      const old = await (await lib.SessionStore.indexedDb({ database, schema: { version: 1 } })).open("s");
      const stillStored = old.messages();
      await session.invoke((inv) => inv.appendMessage({ content: "second" }));
      const events = (await session.history({ from: 2 })).map((e) => [e.type, e.data]);
      let refused = null;
      try {
        await (await lib.SessionStore.indexedDb({ database, schema: { version: 2 } })).open("s");
      } catch (error) {
        refused = { name: error.name, code: error.code, stored: error.stored, supported: error.supported };
      }
      const fresh = await (await lib.SessionStore.indexedDb({ database, schema: { version: 3 } })).open("s");
      return { shown, stillStored, events, refused, fresh: fresh.messages() };
    }, { database });
    assert.deepEqual(read.shown, { messages: [{ content: "hi" }], state: { n: 2 }, version: 1 });
    assert.deepEqual(read.stillStored, [{ text: "hi" }], "a read writes nothing");
    assert.deepEqual(read.events, [
      ["migrated", { from: 1, to: 3, messages: [{ content: "hi" }], state: { n: 2 } }],
      ["message", { content: "second" }],
    ]);
    assert.deepEqual(read.refused, { name: "SchemaVersionError", code: "SCHEMA_VERSION", stored: 3, supported: 2 });
    assert.deepEqual(read.fresh, [{ content: "hi" }, { content: "second" }]);

    const failed = await inTab(a, async ({ lib }, { database }) => {
      const plain = await lib.SessionStore.indexedDb({ database });
      await (await plain.open("old")).invoke((inv) => inv.appendMessage("x"));
      const before = (await plain.open("old")).version;
      const boom = { 1: () => { throw new Error("boom"); } };
      try {
        await (await lib.SessionStore.indexedDb({ database, schema: { version: 1, migrate: boom } })).open("old");
        return null;
      } catch (error) {
        const after = await (await lib.SessionStore.indexedDb({ database })).open("old");
        return { name: error.name, from: error.from, to: error.to, cause: error.cause?.message, before, after: after.version, messages: after.messages() };
      }
    }, { database });
    assert.deepEqual(failed, { name: "MigrationError", from: 0, to: 1, cause: "boom", before: 1, after: 1, messages: ["x"] });
  } finally {
    await tabs.close();
  }
});
