// What a saver carries from one invocation of a thread to the next (langgraph/known-state.js): the
// values its last turn read or wrote, and the whole text of each channel's latest value. It is used
// only while the session is at the state that turn ended at (SessionHandle.stateId) and the head it
// knew is still the head. These tests write the thread between two turns of saver A through saver B
// (over the same store, or over another store on the same KV backend), and delete it and write it
// again to the same version, under a clock that stands still (so the new session has the old one's
// creation time): A's next turn, getTuple and put must read what B wrote, never what A remembers. The
// messages are long enough to be stored as deltas (channel-values.js), which a put builds from the
// text it takes for the parent's value. Runs under both the 1.1.x and 1.2.x configs.
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
