// Many callers on one session at once, waiting their turn (`onBusy: { waitMs }`), seeded random runs: 8
// workers, each through its own store or a shared one (one memory store; or KV stores over one
// memoryKv, as processes), run 12 turns each; a turn reads a counter from the state, yields to the
// event loop a random number of times (as an LLM call would), writes the counter + 1 and appends a
// message naming itself, or throws (aborted: nothing of it may stay). What must hold on the recorded
// run and the stored result: at most one turn inside its body at a time; no lost update (the counter
// equals the turns committed); every committed turn's message once, none of an aborted one; one
// version per committed turn, each turn's events in one version; a fresh store reads the same.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { seeded } from "../browser/model-checks.mjs";

const SETUPS = [
  ["one memory store", async () => {
    const store = await SessionStore.memory();
    return { storeFor: () => store, fresh: () => store };
  }],
  ["a KV store per worker over one memoryKv", async () => {
    const kv = memoryKv();
    const stores = await Promise.all(Array.from({ length: 8 }, (_, i) => SessionStore.kv(kv, { owner: `w${i}` })));
    return { storeFor: (i) => stores[i], fresh: () => SessionStore.kv(kv) };
  }],
];

for (const [name, setup] of SETUPS) {
  test(`contention on ${name}: waiting callers take turns, no lost update, aborted turns leave nothing`, async () => {
    for (let trial = 0; trial < 4; trial++) {
      const random = seeded(606 + trial * 31);
      const { storeFor, fresh } = await setup();
      const id = `contended-${trial}`;
      await (await storeFor(0).open(id)).invoke((inv) => inv.setState("counter", 0));
      let inside = 0;
      let most = 0;
      const committed = [];
      const aborted = [];
      const worker = async (w) => {
        for (let k = 0; k < 12; k++) {
          const label = `w${w}.${k}`;
          const fails = random() < 0.15;
          const yields = Math.floor(random() * 4);
          try {
            const session = await storeFor(w).open(id);
            await session.invoke(
              async (inv) => {
                inside++;
                most = Math.max(most, inside);
                try {
                  const counter = inv.state().counter;
                  for (let y = 0; y < yields; y++) await new Promise((resolve) => setTimeout(resolve, random() < 0.5 ? 0 : 1));
                  inv.setState("counter", counter + 1);
                  inv.appendMessage(label);
                  if (fails) throw new Error(`${label} fails`);
                } finally {
                  inside--;
                }
              },
              { onBusy: { waitMs: 30_000 } },
            );
            committed.push(label);
          } catch (error) {
            assert.equal(error.message, `${label} fails`, `${label}: ${error?.stack ?? error}`);
            aborted.push(label);
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
      const where = `${name}, trial ${trial}`;
      assert.equal(most, 1, `${where}: at most one turn inside its body at a time`);
      assert.equal(committed.length + aborted.length, 96);
      const session = await (await fresh()).open(id, { create: false });
      assert.equal(session.state().counter, committed.length, `${where}: no lost update`);
      assert.deepEqual([...session.messages()].sort(), [...committed].sort(), `${where}: every committed turn once, no aborted one`);
      assert.equal(session.version, 1 + committed.length, `${where}: one version a committed turn`);
      const history = await session.history({ from: 2 });
      const byVersion = new Map();
      for (const event of history) byVersion.set(event.version, [...(byVersion.get(event.version) ?? []), event]);
      for (const [version, events] of byVersion) {
        const messages = events.filter((e) => e.type === "message");
        assert.equal(messages.length, 1, `${where}: version ${version} holds one turn`);
        assert.equal(new Set(events.map((e) => e.invocation)).size, 1, `${where}: version ${version} is one invocation's`);
      }
    }
  });
}
