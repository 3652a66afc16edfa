// What a saver carries from one invocation of a thread to the next (langgraph/known-state.js): the
// values its last turn read or wrote, and the whole text of each channel's latest value. It is used
// only while the session is at the state that turn ended at (SessionHandle.stateId) and the head it
// knew is still the head. These tests write the thread between two turns of saver A through saver B
// (over the same store, or over another store on the same KV backend), and delete it and write it
// again to the same version, under a clock that stands still (so the new session has the old one's
// creation time): A's next turn, getTuple and put must read what B wrote, never what A remembers. The
// messages are long enough to be stored as deltas (channel-values.js), which a put builds from the
// text it takes for the parent's value. Runs under both the 1.1.x and 1.2.x configs.
import { SessionStore } from "agent-session";
import { AgentSessionSaver } from "agent-session/langgraph";
import { meta, checkpoint, cfg, storePairs, twoSaversEach } from "./_fixtures.mjs";
import { uuid6 } from "@langchain/langgraph-checkpoint";

/** A clock that stands still: every session created through it has the same creation time. */
const now = () => 1_800_000_000_000;

const pairs = storePairs({ now });

let sequence = 0;
/** A checkpoint id larger than every one made before (uuid6 orders by time, then by this sequence). */
const nextId = () => uuid6(sequence++ % 16384);

const message = (who, i) => ({ role: who, content: `${who}:${i} ${"x".repeat(300)}` });

/**
 * Puts `count` checkpoints on thread "t" through `saver`, each appending a message of `who` to the
 * parent's messages (one commit each, or all in one guarded turn); returns the last { id, messages }.
 */
async function grow(saver, count, { who, from = { messages: [] }, guarded = false }) {
  let last = from;
  const puts = async () => {
    for (let i = 0; i < count; i++) {
      const id = nextId();
      if (last.id !== undefined) expect(id > last.id).toBe(true);
      const messages = [...last.messages, message(who, last.messages.length)];
      const versions = { messages: messages.length };
      await saver.put(cfg("t", last.id), checkpoint(id, { messages }, versions), meta(messages.length), versions);
      last = { id, messages };
    }
  };
  if (guarded) await saver.guard("t", puts);
  else await puts();
  return last;
}

/** The version of thread "t"'s session in `store`. */
async function versionOf(store, saver) {
  return (await store.open(saver.sessionId("t"), { create: false })).version;
}

describe.each(Object.keys(pairs))("what a saver carries between turns, second saver on %s", (pair) => {
  let stores;
  let a;
  let b;
  twoSaversEach(pairs[pair], (made) => ({ stores, a, b } = made));

  /** Every saver, a fresh one included, reads `last` as the head and extends it exactly. */
  async function expectHead(last) {
    for (const saver of [a, b, new AgentSessionSaver(stores[1])]) {
      const tuple = await saver.getTuple(cfg("t"));
      expect(tuple.checkpoint.id).toBe(last.id);
      expect(tuple.checkpoint.channel_values.messages).toEqual(last.messages);
    }
  }

  for (const guarded of [false, true]) {
    const how = guarded ? "guarded turns" : "unguarded puts";

    it(`${how}: a put extends what the other saver wrote since this saver's last turn`, async () => {
      let last = await grow(a, 4, { who: "a", guarded });
      last = await grow(b, 3, { who: "b", from: last, guarded });
      await expectHead(last);
      last = await grow(a, 3, { who: "a", from: last, guarded });
      await expectHead(last);
    });

    it(`${how}: a thread deleted and written again to the same version within one millisecond is read afresh`, async () => {
      const before = await grow(a, 5, { who: "a", guarded });
      expect((await a.getTuple(cfg("t"))).checkpoint.channel_values.messages).toEqual(before.messages);
      const version = await versionOf(stores[0], a);
      await b.deleteThread("t");
      let last = await grow(b, 5, { who: "b", guarded });
      // The new session has the deleted one's creation time (the clock stands still) and version.
      expect(await versionOf(stores[0], a)).toBe(version);
      await expectHead(last);
      last = await grow(a, 2, { who: "a", from: last, guarded });
      await expectHead(last);
    });

    it(`${how}: after this saver deletes the thread and writes it again, it reads only the new one`, async () => {
      await grow(a, 5, { who: "a", guarded });
      await a.deleteThread("t");
      let last = await grow(a, 5, { who: "c", guarded });
      await expectHead(last);
      last = await grow(b, 2, { who: "b", from: last, guarded });
      last = await grow(a, 2, { who: "a", from: last, guarded });
      await expectHead(last);
    });
  }

  it("a guarded turn reads the head the other saver wrote since the last turn, and its pending writes", async () => {
    let last = await grow(a, 3, { who: "a", guarded: true });
    last = await grow(b, 1, { who: "b", from: last });
    await b.putWrites(cfg("t", last.id), [["messages", [message("w", 0)]]], "task-b");
    await a.guard("t", async () => {
      const tuple = await a.getTuple(cfg("t"));
      expect(tuple.checkpoint.id).toBe(last.id);
      expect(tuple.checkpoint.channel_values.messages).toEqual(last.messages);
      expect(tuple.pendingWrites).toEqual([["task-b", "messages", [message("w", 0)]]]);
    });
  });
});

describe("what a saver carries between turns is bounded", () => {
  /** One put on `thread` through `saver` of a checkpoint holding `messages`; returns its id. */
  async function putOn(saver, thread, messages, parent) {
    const id = nextId();
    const versions = { messages: messages.length };
    await saver.put(cfg(thread, parent), checkpoint(id, { messages }, versions), meta(messages.length), versions);
    return id;
  }

  /** The saver's carried entries agree with its count of their text, and stay within its bounds. */
  function expectWithinBounds(saver) {
    let units = 0;
    for (const entry of saver._carried.values()) units += entry.units;
    expect(saver._carriedUnits).toBe(units);
    expect(units).toBeLessThanOrEqual(saver._carryLimit);
  }

  // Each of these threads carries 1,668 units after its first put (four messages of ~330 characters, and
  // its records), 4,050 and 4,810 after the next ones (the parent's text too, which the put extended):
  // 24,000 units hold five of them at most. With handles for two threads only, what is carried for the
  // others still serves them (it is kept by session id).
  for (const [bound, cacheThreads, limit, most] of [["the text bound", 6, 24_000, 5], ["cacheThreads 2", 2, 1_000_000, 6]]) {
    it(`turns over six threads, ${bound}: what is carried stays within its bounds; every read stays right`, async () => {
      const store = await SessionStore.memory();
      const saver = new AgentSessionSaver(store, { cacheThreads });
      saver._carryLimit = limit;
      const last = new Map();
      for (let round = 0; round < 3; round++) {
        for (let t = 0; t < 6; t++) {
          const thread = `t${t}`;
          const messages = Array.from({ length: 4 + round }, (_, i) => message(thread, i));
          last.set(thread, { id: await putOn(saver, thread, messages, last.get(thread)?.id), messages });
          expectWithinBounds(saver);
        }
      }
      expect(saver._carried.size).toBeGreaterThan(0);
      expect(saver._carried.size).toBeLessThanOrEqual(most);
      if (bound.startsWith("cacheThreads")) expect(saver._carried.size).toBe(6);
      for (const [thread, { id, messages }] of last) {
        const tuple = await saver.getTuple(cfg(thread));
        expect(tuple.checkpoint.id).toBe(id);
        expect(tuple.checkpoint.channel_values.messages).toEqual(messages);
      }
      await store.close();
    });
  }

  for (const pair of Object.keys(pairs)) {
    it(`${pair}: with its handle dropped between turns, a saver still reads what the other saver wrote, and a thread deleted and written again afresh`, async () => {
      const [storeA, storeB] = await pairs[pair]();
      const a = new AgentSessionSaver(storeA, { cacheThreads: 1 });
      const b = new AgentSessionSaver(storeB);
      const other = async () => putOn(a, "other", [message("o", 0)]); // takes "t"'s handle's place
      let last = await grow(a, 3, { who: "a" });
      await other();
      last = await grow(b, 2, { who: "b", from: last });
      await other();
      last = await grow(a, 2, { who: "a", from: last });
      expect((await a.getTuple(cfg("t"))).checkpoint.channel_values.messages).toEqual(last.messages);
      const version = await versionOf(storeA, a);
      await other();
      await b.deleteThread("t");
      last = await grow(b, 7, { who: "c" });
      expect(await versionOf(storeA, a)).toBe(version);
      await other();
      expect((await a.getTuple(cfg("t"))).checkpoint.channel_values.messages).toEqual(last.messages);
      last = await grow(a, 2, { who: "a", from: last });
      expect((await b.getTuple(cfg("t"))).checkpoint.channel_values.messages).toEqual(last.messages);
      await storeA.close();
      if (storeB !== storeA) await storeB.close();
    });
  }

  it("a thread whose turn holds more than a quarter of the bound is not carried, and is read afresh", async () => {
    const store = await SessionStore.memory();
    const saver = new AgentSessionSaver(store);
    saver._carryLimit = 4000;
    const small = await putOn(saver, "small", [message("s", 0)]);
    expect(saver._carried.size).toBe(1);
    const messages = Array.from({ length: 8 }, (_, i) => message("big", i)); // about 2,600 units
    let id = await putOn(saver, "big", messages);
    expect(saver._carried.has(saver.sessionId("big"))).toBe(false);
    expectWithinBounds(saver);
    id = await putOn(saver, "big", [...messages, message("big", 8)], id);
    const tuple = await saver.getTuple(cfg("big"));
    expect(tuple.checkpoint.id).toBe(id);
    expect(tuple.checkpoint.channel_values.messages).toHaveLength(9);
    expect((await saver.getTuple(cfg("small"))).checkpoint.id).toBe(small);
    // A thread deleted through the saver carries nothing on.
    await saver.deleteThread("small");
    expectWithinBounds(saver);
    expect([...saver._carried.values()].some((entry) => entry.head === small)).toBe(false);
    await store.close();
  });
});
