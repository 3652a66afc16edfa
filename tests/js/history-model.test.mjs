// Every version of a session, read back every way, against a model of what was committed
// (tests/browser/history-model-fixture.mjs says what is run and checked), on the memory store, on
// kv(memoryKv), on kv(memoryKv) with a cache of one session, and on kv(memoryKv) with encryption at
// rest. The KV backends write through two stores over one memoryKv (two processes); the encrypted ones
// are mid key rotation (both have both keys, one writes under the new key id). Then fewer trials on a real redis-server (two node-redis clients) and on
// one Deno KV file (two connections, @deno/kv). The same trials run on IndexedDB in Chromium
// (tests/browser/history-model.test.mjs).
import { test } from "node:test";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { LIMITS, runTrial } from "../browser/history-model-fixture.mjs";
import { manualClock } from "./_helpers.mjs";
import { realKvs } from "./_real-kv.mjs";

const real = realKvs("history-model");

const aes = () => crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);

function backends(now, keys) {
  const kvBackend = (name, optionsOf) => {
    let kv;
    return {
      name,
      async open(snapshotEvery) {
        kv = memoryKv();
        const options = { now, snapshotEvery, limits: LIMITS };
        return [await SessionStore.kv(kv, { ...options, ...optionsOf(0) }), await SessionStore.kv(kv, { ...options, ...optionsOf(1) })];
      },
      fresh: () => SessionStore.kv(kv, { now, ...optionsOf(1) }),
    };
  };
  let memory;
  return [
    {
      name: "memory",
      async open(snapshotEvery) {
        memory = await SessionStore.memory({ now, snapshotEvery, limits: LIMITS });
        return [memory, memory];
      },
      fresh: async () => memory, // nothing else reads a memory store's data
    },
    kvBackend("kv(memoryKv)", () => ({})),
    // A cache of one small session: every other read evicts and reloads.
    kvBackend("kv(memoryKv), a cache of one session", () => ({ cache: { maxSessions: 1, maxBytes: 4096 } })),
    kvBackend("kv(memoryKv), encrypted", (which) => ({ encryptionKey: { current: which === 0 ? "default" : "next", keys } })),
  ];
}

// Trials 326, 360 and 597 of a longer run found a pruned session's export losing its oldest kept
// version when that version held nothing (CHANGELOG, 2026-12-03): they run here too.
test("every version of a session, read back every way, matches what was committed", async () => {
  const keys = { default: await aes(), next: await aes() };
  for (const trial of [...Array(48).keys(), 326, 360, 597]) {
    const now = manualClock();
    const all = backends(now, keys);
    const targets = all.map((backend) => ({ name: backend.name, make: async () => (await backend.open(1))[0] }));
    // A target's open() replaces that backend's data: the targets are made of their own backends.
    const backend = backends(now, keys)[trial % all.length];
    const snapshotEvery = 1 + (Math.floor(trial / all.length) % 5);
    await runTrial({ trial, backend, snapshotEvery, targets, tick: () => now.advance(1) });
  }
});

/** A backend of two stores over two connections to one database (`connect(n)` gives connection n's HostKv). */
let prefixes = 0;
function twoConnections(name, connect) {
  let prefix;
  return {
    name,
    async open(snapshotEvery) {
      prefix = `hm${++prefixes}:`;
      const options = { prefix, snapshotEvery, limits: LIMITS };
      return [await SessionStore.kv(await connect(0), options), await SessionStore.kv(await connect(1), options)];
    },
    fresh: async () => SessionStore.kv(await connect(1), { prefix }),
  };
}

test("on Redis and Deno KV (two connections each): every version read back every way matches what was committed", async () => {
  const [redisKvs, denoKvs] = [await real.redis(2), await real.deno(2, "history.sqlite")];
  const backends = (kind) => [
    twoConnections("Redis", async (i) => redisKvs[i]),
    twoConnections("Deno KV", async (i) => denoKvs[i]),
  ].map((backend) => Object.assign(backend, { name: `${backend.name}${kind}` }));
  const reals = backends("");
  // The import targets are backends of their own (a backend's open() moves it to a new prefix).
  const targets = [{ name: "memory", make: () => SessionStore.memory() }, ...backends(" (import)").map((b) => ({ name: b.name, make: async () => (await b.open(1))[0] }))];
  for (let trial = 0; trial < 12; trial++) {
    const backend = reals[trial % reals.length];
    await runTrial({ trial, backend, snapshotEvery: 1 + (Math.floor(trial / reals.length) % 5), targets });
  }
});
