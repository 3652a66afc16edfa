// The guard against a model (lease-model-fixture.mjs says what is run and checked) on IndexedDB in
// headless Chromium: three `SessionStore.indexedDb` stores on one database (three tabs' stores; a fourth
// actor shares the first store). A store closed here is a tab closed or reloaded: its Web Lock is free, so
// its lease stops blocking at once and the next begin takes over.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromiumSuite, inTab } from "./tabs.mjs";

const { withTabs, openTab } = chromiumSuite({ page: "/tests/browser/idb-tab.html", database: "lease-model" });

test("IndexedDB: the guard against a model, tabs closed and reloaded mid-turn included", { timeout: 300_000 }, (t) =>
  withTabs(t, async (tabs) => {
    const page = await openTab(tabs, "tab");
    const outcome = await inTab(
      page,
      async ({ lib }, { trials }) => {
        const { LEASE_MS, addSeen, runTrial } = await import("/tests/browser/lease-model-fixture.mjs");
        const opened = [];
        const idb = async (options) => {
          const store = await lib.SessionStore.indexedDb(options);
          opened.push(store);
          return store;
        };
        const backend = {
          name: "three IndexedDB stores on one database",
          locks: true,
          async open(now, prefix) {
            const options = { database: `lease-model-${prefix}`, now, leaseMs: LEASE_MS, heartbeat: false };
            let made = 0;
            const store = async () => {
              const owner = `tab${made++}`;
              return { store: await idb({ ...options, owner }), owner };
            };
            const [a, b, c] = [await store(), await store(), await store()];
            return { actors: [a, b, c, a], replace: store, fresh: () => idb(options) };
          },
        };
        const seen = {};
        for (let trial = 0; trial < trials; trial++) {
          try {
            addSeen(seen, await runTrial({ lib, backend, trial }));
          } catch (error) {
            return { error: String(error?.stack ?? error), trials: trial };
          } finally {
            for (const store of opened.splice(0)) await store.close();
          }
        }
        return { trials, seen };
      },
      { trials: 30 },
    );
    assert.equal(outcome.error, undefined, outcome.error);
    assert.equal(outcome.trials, 30);
    // Every path the model tells apart was taken, a takeover of a closed tab's live lease included.
    for (const path of ["staleRefused", "takenOverExpired", "takenOverGone", "fenced", "raceCommitWon", "raceTakeoverWon"]) {
      assert.ok(outcome.seen[path] > 0, `${path}: ${JSON.stringify(outcome.seen)}`);
    }
  }),
);
