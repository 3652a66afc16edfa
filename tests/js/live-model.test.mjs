// Live turns, seeded random runs checked against what the holders did: turns of random parts (flushed
// by flush(), by liveFlushMs or by the turn's end), checkpoints, and ends by commit, abort, interrupt,
// stop() from the other store (the holder commits) and a fence (stop with graceMs 0; the late commit is
// refused); followers that start before a turn or mid-turn, and reload mid-turn
// (a new Session, `after` = the last part they saw). Each follower, across its reloads, must see every
// part of every turn it was following once, in seq order, with the data emitted, then that turn's `end`
// with the holder's outcome and version. On one memory store, and on two KV stores over one memoryKv
// (two processes). Waits are for liveness only (a generous deadline); nothing depends on how long
// anything took. LIVE_TRIALS=n runs more seeds.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { sleep } from "./_helpers.mjs";
import { seeded } from "../browser/model-checks.mjs";

const SETUPS = [
  {
    name: "memory",
    async stores() {
      const store = await SessionStore.memory({ owner: "solo", liveFlushMs: 5 });
      return [store, store];
    },
  },
  {
    name: "two kv stores over one memoryKv",
    async stores() {
      const kv = memoryKv();
      const options = { liveFlushMs: 5, stopPollMs: 20 };
      return [await SessionStore.kv(kv, { owner: "p1", ...options }), await SessionStore.kv(kv, { owner: "p2", ...options })];
    },
  },
];

const controllers = new Set();
afterEach(() => {
  for (const controller of controllers) controller.abort();
  controllers.clear();
});

async function waitFor(predicate, what) {
  const deadline = Date.now() + 10_000;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/**
 * A follower as a page sees it: its events across reloads. `start` follows a new Session object of
 * `store` (resuming after the last part it saw); `reload` stops the current one and starts again.
 */
function follower(name, store, id) {
  const self = { name, events: [], lastPart: undefined, current: undefined, failure: undefined };
  self.start = async (nextStore = store) => {
    const controller = new AbortController();
    controllers.add(controller);
    const options = { signal: controller.signal };
    if (self.lastPart !== undefined) options.after = { invocation: self.lastPart.invocation, seq: self.lastPart.seq };
    const session = await nextStore.open(id);
    const iterator = session.follow(options);
    const done = (async () => {
      for await (const event of iterator) {
        if (controller.signal.aborted) break; // yielded after this page "reloaded": never seen
        self.events.push(event);
        if (event.type === "part") self.lastPart = event;
      }
    })().catch((error) => (self.failure = error));
    self.current = { controller, done };
  };
  self.reload = async (nextStore) => {
    self.current.controller.abort();
    await self.current.done;
    await self.start(nextStore);
  };
  self.stop = async () => {
    self.current.controller.abort();
    await self.current.done;
  };
  return self;
}

for (const setup of SETUPS) {
  test(`live turns on ${setup.name}: random turns, followers and reloads; every part once, in order, then end`, async () => {
    for (let trial = 0; trial < Number(process.env.LIVE_TRIALS ?? 16); trial++) {
      const random = seeded(77 + trial * 6151);
      const pick = (list) => list[Math.floor(random() * list.length)];
      const stores = await setup.stores();
      const id = `live-${trial}`;
      await (await stores[0].open(id)).invoke((inv) => inv.appendMessage("start"));
      const followers = [];
      let interrupted = false;
      for (let turn = 0; turn < 8; turn++) {
        const where = `${setup.name}, trial ${trial}, turn ${turn}`;
        if (followers.length < 3 && random() < 0.5) {
          const f = follower(`f${followers.length}`, pick(stores), id);
          await f.start();
          followers.push(f);
        }
        const [holderStore, otherStore] = random() < 0.5 ? stores : [stores[1], stores[0]];
        const holder = await holderStore.open(id);
        const inv = await holder.begin(interrupted ? { resume: "ok" } : undefined);
        const signal = inv.signal; // read now: the stop watch starts
        const turnFollowers = new Set(followers.filter(() => true));
        const parts = [];
        const ending = pick(["commit", "commit", "abort", "interrupt", "stop", ...(interrupted ? [] : ["fence"])]);
        const rounds = 1 + Math.floor(random() * 4);
        const stopAt = ending === "stop" ? Math.floor(random() * rounds) : -1;
        let stopping;
        let checkpointed = false;
        let flushed = 0; // parts durable for sure (flush() or a checkpoint resolved)
        for (let round = 0; round < rounds; round++) {
          for (let i = 0, n = Math.floor(random() * 6); i < n; i++) {
            const data = { turn, seq: parts.length, text: "t".repeat(Math.floor(random() * 40)) };
            assert.equal(inv.emit(data), parts.length, `${where}: emit's seq`);
            parts.push(data);
          }
          const action = random();
          if (action < 0.3) {
            await inv.flush();
            flushed = parts.length;
          }
          else if (action < 0.5) await sleep(Math.floor(random() * 12)); // liveFlushMs may flush them
          else if (action < 0.6) {
            inv.appendMessage({ turn, round });
            await inv.checkpoint();
            checkpointed = true;
            flushed = parts.length;
          }
          if (random() < 0.35 && followers.length > 0) {
            // A page reloads mid-turn (perhaps onto the other store) or a new one starts following.
            if (random() < 0.6) await pick(followers).reload(pick(stores));
            else if (followers.length < 4) {
              const f = follower(`f${followers.length}`, pick(stores), id);
              await f.start();
              followers.push(f);
              turnFollowers.add(f);
            }
          }
          if (round === stopAt) stopping = (await otherStore.open(id)).stop({ reason: `stop ${turn}`, graceMs: 10_000 });
        }
        if (ending === "fence") {
          // A holder that ignores the stop: the stopper fences it at once, and its late commit is refused.
          const stopped = await (await otherStore.open(id)).stop({ reason: `fence ${turn}`, graceMs: 0 });
          assert.equal(stopped.outcome, "fenced", `${where}: stop({ graceMs: 0 })`);
          inv.appendMessage({ turn, late: true });
          await assert.rejects(inv.commit(), (error) => error.code === "LEASE_LOST", `${where}: the fenced holder's commit`);
        }
        if (stopping !== undefined) {
          await waitFor(() => signal.aborted, `${where}: the holder's signal after stop()`);
          assert.equal(signal.reason?.code, "STOP_REQUESTED", `${where}: the signal's reason`);
        }
        let version;
        let outcome;
        let status = "idle";
        if (ending === "fence") {
          outcome = "stopped";
        } else if (ending === "abort") {
          await inv.abort();
          outcome = "aborted";
        } else if (ending === "interrupt") {
          version = await inv.interrupt(`ask ${turn}`);
          outcome = "interrupted";
          status = "interrupted";
        } else {
          inv.appendMessage({ turn, end: true });
          version = await inv.commit();
          outcome = ending === "stop" ? "stopped" : "committed";
        }
        if (stopping !== undefined) assert.equal((await stopping).outcome, "stopped", `${where}: stop() resolves stopped`);
        // An aborted resume leaves the session interrupted, the question still pending, unless a
        // checkpoint committed the answer.
        if (ending === "abort" && interrupted && !checkpointed) status = "interrupted";
        interrupted = status === "interrupted";
        await holder.refresh();
        version ??= holder.version;
        // Every follower of this turn gets its end before the next turn begins (which deletes the
        // turn's live log): then it must have every part.
        for (const f of turnFollowers) {
          await waitFor(
            () => f.failure !== undefined || f.events.some((e) => e.type === "end" && e.invocation === inv.id),
            `${where}: ${f.name}'s end of the turn (${JSON.stringify(f.events.slice(-3))})`,
          );
          assert.equal(f.failure, undefined, `${where}: ${f.name} failed: ${f.failure}`);
          const mine = f.events.filter((e) => e.invocation === inv.id);
          const seen = mine.filter((e) => e.type === "part");
          // A fenced holder's parts not flushed before the fence are lost (its later writes are refused):
          // then a follower sees a prefix of them, at least what flush() made durable.
          const expected = ending === "fence" ? parts.slice(0, Math.max(flushed, seen.length)) : parts;
          assert.deepEqual(
            seen.map((e) => e.seq),
            expected.map((_, seq) => seq),
            `${where}: ${f.name} sees every part of the turn once, in order`,
          );
          assert.deepEqual(seen.map((e) => e.data), expected, `${where}: ${f.name}: the parts' data`);
          const ends = mine.filter((e) => e.type === "end");
          assert.equal(ends.length, 1, `${where}: ${f.name}: one end`);
          assert.deepEqual(
            { outcome: ends[0].outcome, version: ends[0].version, status: ends[0].status },
            { outcome, version, status },
            `${where}: ${f.name}: the end`,
          );
          assert.equal(mine.at(-1), ends[0], `${where}: ${f.name}: nothing of the turn after its end`);
        }
      }
      for (const f of followers) await f.stop();
    }
  });
}
