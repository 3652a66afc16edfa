// The race fuzz (tests/browser/race-fixture.mjs says what is run and checked) in Node: three stores over
// a KV whose calls each take 0 to 2 macrotasks (so that they interleave as over a network), then fewer
// trials on three connections to a real redis-server and to one Deno KV file. The same fuzz runs on
// IndexedDB in Chromium (tests/browser/race-fuzz.test.mjs). FUZZ_TRIALS=n runs more seeds (2,000
// trials: no failure; 150 on each real backend: none).
import { test } from "node:test";
import * as lib from "agent-session";
import { runTrials } from "../browser/race-fixture.mjs";
import { slowKv } from "./_helpers.mjs";
import { realKvs } from "./_real-kv.mjs";

const { SessionStore } = lib;
const TRIALS = Number(process.env.FUZZ_TRIALS ?? 120);
const real = realKvs("race-fuzz");

/** Three stores over the HostKvs `kvs` (one per store) under `prefix`. */
async function storesOver(kvs, trial, prefix) {
  const stores = [];
  for (let i = 0; i < 3; i++) stores.push(await SessionStore.kv(kvs[i], { snapshotEvery: 1 + (trial % 3), owner: `p${i}`, prefix }));
  return { stores, fresh: () => SessionStore.kv(kvs[0], { prefix }) };
}

test("three stores at once on two sessions over a slow KV: every failure typed, and no round leaves a session that cannot be opened", () =>
  runTrials({
    lib,
    trials: TRIALS,
    storesOf: (trial, random) => {
      const kv = slowKv(random);
      return storesOver([kv, kv, kv], trial, "");
    },
  }));

test("the same on three connections to a redis-server, and to one Deno KV file", async () => {
  const [redis, deno] = [await real.redis(3), await real.deno(3, "race.sqlite")];
  await runTrials({ lib, trials: 30, first: 10_000, storesOf: (trial) => storesOver(redis, trial, `race${trial}:`) });
  await runTrials({ lib, trials: 30, first: 20_000, storesOf: (trial) => storesOver(deno, trial, `race${trial}:`) });
});
