// The race fuzz (race-fixture.mjs says what is run and checked) on IndexedDB in headless Chromium:
// three `SessionStore.indexedDb` stores on one database (three tabs' stores) at once on two sessions.
// IndexedDB's transactions interleave the stores' operations; a delete is one transaction.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromiumSuite, inTab } from "./tabs.mjs";

const { withTabs, openTab } = chromiumSuite({ page: "/tests/browser/idb-tab.html", database: "race-fuzz" });

test("IndexedDB: three stores at once on two sessions: every failure typed, and no round leaves a session that cannot be opened", { timeout: 300_000 }, (t) =>
  withTabs(t, async (tabs) => {
    const page = await openTab(tabs, "tab");
    const outcome = await inTab(
      page,
      async ({ lib }, { trials }) => {
        const { runTrials } = await import("/tests/browser/race-fixture.mjs");
        const opened = [];
        const idb = async (options) => {
          const store = await lib.SessionStore.indexedDb(options);
          opened.push(store);
          return store;
        };
        try {
          const codes = await runTrials({
            lib,
            trials,
            storesOf: async (trial) => {
              for (const store of opened.splice(0)) await store.close();
              const database = `race-fuzz-${trial}`;
              const stores = [];
              for (let i = 0; i < 3; i++) stores.push(await idb({ database, snapshotEvery: 1 + (trial % 3), owner: `tab${i}` }));
              return { stores, fresh: () => idb({ database }) };
            },
          });
          return { codes };
        } catch (error) {
          return { error: String(error?.stack ?? error) };
        } finally {
          for (const store of opened.splice(0)) await store.close();
        }
      },
      { trials: 40 },
    );
    assert.equal(outcome.error, undefined, outcome.error);
    t.diagnostic(`failures by code: ${JSON.stringify(outcome.codes)}`);
  }),
);
