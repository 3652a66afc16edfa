// Every version of a session, read back every way, against a model of what was committed
// (history-model-fixture.mjs says what is run and checked), on IndexedDB in headless Chromium: each
// turn through one of two `SessionStore.indexedDb` stores on one database (two tabs' stores), a fresh
// store's load, exports imported into the memory store or another database; plain and encrypted at
// rest (mid key rotation: both stores have both keys, one writes under the new key id).
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromiumSuite, inTab } from "./tabs.mjs";

const { withTabs, openTab } = chromiumSuite({ page: "/tests/browser/idb-tab.html", database: "history-model" });

test("IndexedDB: every version of a session, read back every way, matches what was committed", { timeout: 300_000 }, (t) =>
  withTabs(t, async (tabs) => {
    const page = await openTab(tabs, "tab");
    const outcome = await inTab(
      page,
      async ({ lib }, { trials }) => {
        const { LIMITS, runTrial } = await import("/tests/browser/history-model-fixture.mjs");
        const aes = () => crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
        const keys = { default: await aes(), next: await aes() };
        const opened = [];
        const idb = async (options) => {
          const store = await lib.SessionStore.indexedDb(options);
          opened.push(store);
          return store;
        };
        let databases = 0;
        const backend = (name, optionsOf) => {
          let database;
          return {
            name,
            async open(snapshotEvery) {
              database = `history-model-${++databases}`;
              const options = { database, snapshotEvery, limits: LIMITS };
              return [await idb({ ...options, ...optionsOf(0) }), await idb({ ...options, ...optionsOf(1) })];
            },
            fresh: () => idb({ database, ...optionsOf(1) }),
          };
        };
        const plain = () => ({});
        const encrypted = (which) => ({ encryptionKey: { current: which === 0 ? "default" : "next", keys } });
        const targets = [
          { name: "memory", make: () => lib.SessionStore.memory() },
          { name: "IndexedDB", make: () => idb({ database: `history-model-copy-${++databases}` }) },
        ];
        const results = [];
        for (let trial = 0; trial < trials; trial++) {
          const which = trial % 2 === 0 ? backend("IndexedDB", plain) : backend("IndexedDB, encrypted", encrypted);
          try {
            results.push(await runTrial({ trial, backend: which, snapshotEvery: 1 + (Math.floor(trial / 2) % 5), targets }));
          } catch (error) {
            return { error: String(error?.stack ?? error) };
          } finally {
            for (const store of opened.splice(0)) await store.close();
          }
        }
        return { results };
      },
      { trials: 20 },
    );
    assert.equal(outcome.error, undefined, outcome.error);
    assert.equal(outcome.results.length, 20);
    assert.ok(outcome.results.some((r) => r.retained > 0), "some trial pruned");
  }),
);
