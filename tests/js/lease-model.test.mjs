// The guard against a model (tests/browser/lease-model-fixture.mjs says what is run and checked): on
// one memory store (four Sessions of it), on three stores over one memoryKv (three processes; a fourth
// actor shares the first store), then fewer trials on three node-redis clients of a real redis-server and
// three @deno/kv connections to one file. A store closed here is a process that crashed: its lease
// blocks until it runs out. The same trials run on IndexedDB in Chromium (tests/browser/lease-model.test.mjs).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as lib from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { LEASE_MS, addSeen, runTrial } from "../browser/lease-model-fixture.mjs";
import { realKvs } from "./_real-kv.mjs";

const { SessionStore } = lib;
const real = realKvs("lease-model");

/** Three stores over one backend (`kvFor(i)` gives connection i's HostKv); actor 3 shares store 0. */
function processes(name, kvFor) {
  return {
    name,
    locks: false,
    async open(now, prefix) {
      const options = { now, leaseMs: LEASE_MS, heartbeat: false, prefix };
      let made = 0;
      const store = async () => {
        const owner = `p${made++}`;
        return { store: await SessionStore.kv(await kvFor(made % 3), { ...options, owner }), owner };
      };
      const [a, b, c] = [await store(), await store(), await store()];
      return { actors: [a, b, c, a], replace: store, fresh: async () => SessionStore.kv(await kvFor(1), options) };
    },
  };
}

const memoryBackend = {
  name: "one memory store",
  locks: false,
  async open(now) {
    const one = { store: await SessionStore.memory({ now, leaseMs: LEASE_MS, heartbeat: false, owner: "m" }), owner: "m" };
    return { actors: [one, one, one, one], fresh: async () => one.store };
  },
};

test("the guard against a model: one memory store with four Sessions, and three stores over one memoryKv", async () => {
  const seen = {};
  for (let trial = 0; trial < 60; trial++) {
    const kv = memoryKv();
    const backend = trial % 3 === 0 ? memoryBackend : processes("three stores over one memoryKv", () => kv);
    addSeen(seen, await runTrial({ lib, backend, trial }));
  }
  // Every path the model tells apart was taken (a closed process's lease blocks until it runs out).
  for (const path of ["staleRefused", "takenOverExpired", "fenced", "raceCommitWon", "raceTakeoverWon"]) assert.ok(seen[path] > 0, `${path}: ${JSON.stringify(seen)}`);
  assert.equal(seen.takenOverGone, 0);
});

test("the guard against a model: three connections to one redis-server, and to one Deno KV file", async () => {
  const [redisKvs, denoKvs] = [await real.redis(3), await real.deno(3, "lease.sqlite")];
  const backends = [
    processes("three node-redis clients", async (i) => redisKvs[i]),
    processes("three @deno/kv connections", async (i) => denoKvs[i]),
  ];
  const seen = {};
  for (let trial = 0; trial < 8; trial++) addSeen(seen, await runTrial({ lib, backend: backends[trial % 2], trial: 1000 + trial }));
  for (const path of ["staleRefused", "takenOverExpired", "fenced"]) assert.ok(seen[path] > 0, `${path}: ${JSON.stringify(seen)}`);
});
