// Every version of a session, read back every way, against a model of what was committed
// (tests/browser/history-model-fixture.mjs says what is run and checked), on the memory store, on
// kv(memoryKv) and on kv(memoryKv) with encryption at rest. The KV backends write through two stores
// over one memoryKv (two processes); the encrypted ones are mid key rotation (both have both keys, one
// writes under the new key id). The same trials run on IndexedDB in Chromium
// (tests/browser/history-model.test.mjs).
import { test } from "node:test";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { runTrial } from "../browser/history-model-fixture.mjs";
import { manualClock } from "./_helpers.mjs";

const aes = () => crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);

function backends(now, keys) {
  const kvBackend = (name, optionsOf) => {
    let kv;
    return {
      name,
      async open(snapshotEvery) {
        kv = memoryKv();
        return [await SessionStore.kv(kv, { now, snapshotEvery, ...optionsOf(0) }), await SessionStore.kv(kv, { now, snapshotEvery, ...optionsOf(1) })];
      },
      fresh: () => SessionStore.kv(kv, { now, ...optionsOf(1) }),
    };
  };
  let memory;
  return [
    {
      name: "memory",
      async open(snapshotEvery) {
        memory = await SessionStore.memory({ now, snapshotEvery });
        return [memory, memory];
      },
      fresh: async () => memory, // nothing else reads a memory store's data
    },
    kvBackend("kv(memoryKv)", () => ({})),
    kvBackend("kv(memoryKv), encrypted", (which) => ({ encryptionKey: { current: which === 0 ? "default" : "next", keys } })),
  ];
}

test("every version of a session, read back every way, matches what was committed", async () => {
  const keys = { default: await aes(), next: await aes() };
  for (let trial = 0; trial < 48; trial++) {
    const now = manualClock();
    const all = backends(now, keys);
    const targets = all.map((backend) => ({ name: backend.name, make: async () => (await backend.open(1))[0] }));
    // A target's open() replaces that backend's data: the targets are made of their own backends.
    const backend = backends(now, keys)[trial % all.length];
    const snapshotEvery = 1 + (Math.floor(trial / all.length) % 5);
    await runTrial({ trial, backend, snapshotEvery, targets, tick: () => now.advance(1) });
  }
});
