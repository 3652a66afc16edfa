// Expiry, list() and sweepExpired() against a model (expiry-model-fixture.mjs says what is run and
// checked), on IndexedDB in headless Chromium: two `SessionStore.indexedDb` stores on one database (two
// tabs' stores), where sweepExpired() finds sessions through the expiry index.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromiumSuite, inTab } from "./tabs.mjs";

const { withTabs, openTab } = chromiumSuite({ page: "/tests/browser/idb-tab.html", database: "expiry-model" });

test("IndexedDB: statuses, list(), begin/close refusals and sweepExpired() match a model", { timeout: 300_000 }, (t) =>
  withTabs(t, async (tabs) => {
    const page = await openTab(tabs, "tab");
    const outcome = await inTab(
      page,
      async ({ lib }, { trials }) => {
        const { runTrial } = await import("/tests/browser/expiry-model-fixture.mjs");
        const opened = [];
        let databases = 0;
        const makeStores = async (options) => {
          const database = `expiry-model-${++databases}`;
          for (let i = 0; i < 2; i++) opened.push(await lib.SessionStore.indexedDb({ database, ...options }));
          return opened.slice(-2);
        };
        for (let trial = 0; trial < trials; trial++) {
          try {
            await runTrial({ trial, name: "IndexedDB", makeStores });
          } catch (error) {
            return { error: String(error?.stack ?? error), trial };
          } finally {
            for (const store of opened.splice(0)) await store.close();
          }
        }
        return { trials };
      },
      { trials: 80 },
    );
    assert.equal(outcome.error, undefined, outcome.error);
    assert.equal(outcome.trials, 80);
  }),
);
