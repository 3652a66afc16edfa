// The saver's writes remember what they last read or staged in a thread (head, checkpoint records,
// thread/namespace entries, task lists) and skip reading it again while the session is still at the
// version they saw. These tests write to the thread through a second saver in between (over the same
// store, and over another store on the same KV backend) and check that the first saver's next
// put/putWrites/getTuple sees those writes. Runs under both the 1.1.x and 1.2.x configs.
import { meta, checkpoint, cfg, storePairs, twoSaversEach } from "./_fixtures.mjs";
import { uuid6 } from "@langchain/langgraph-checkpoint";

// Two savers over the same thread storage: the same store, or two stores over one KV backend (_fixtures.mjs).
const pairs = storePairs();

const ids = (n) => Array.from({ length: n }, (_, i) => uuid6(-3 - i));

describe.each(Object.keys(pairs))("write cache, second saver on %s", (pair) => {
  let stores;
  let a;
  let b;
  twoSaversEach(pairs[pair], (made) => ({ stores, a, b } = made));

  it("a newer head written by the other saver stays the head after this saver's next put", async () => {
    const [id1, id2, id3] = ids(3);
    expect(id1 < id2 && id2 < id3).toBe(true);
    await a.put(cfg("t"), checkpoint(id1, { x: 1 }, { x: 1 }), meta(0), { x: 1 });
    await b.put(cfg("t", id1), checkpoint(id3, { x: 3 }, { x: 3 }), meta(2), { x: 3 });
    // A's cache has head = id1; id2 > id1 but < id3, so a stale head would move the head back.
    await a.put(cfg("t", id1), checkpoint(id2, { x: 2 }, { x: 2 }), meta(1), { x: 2 });
    for (const saver of [a, b]) {
      const latest = await saver.getTuple(cfg("t"));
      expect(latest.config.configurable.checkpoint_id).toBe(id3);
      expect(latest.checkpoint.channel_values).toEqual({ x: 3 });
      expect((await saver.getTuple(cfg("t", id2))).checkpoint.channel_values).toEqual({ x: 2 });
    }
  });

  it("a parent rewritten by the other saver is the one the next put inherits from", async () => {
    const [id1, id2] = ids(2);
    await a.put(cfg("t"), checkpoint(id1, { x: "A", y: "Y" }, { x: 1, y: 1 }), meta(0), { x: 1, y: 1 });
    // B puts the same checkpoint id again, with x at version 2.
    await b.put(cfg("t"), checkpoint(id1, { x: "B", y: "Y" }, { x: 2, y: 1 }), meta(0), { x: 2 });
    // B's record of id1 (no parent) stores only x. A's next put stores no channel and inherits what
    // B's record has: x at version 2, and no y (A's own, stale, record would give y and no x).
    await a.put(cfg("t", id1), checkpoint(id2, { x: "B", y: "Y" }, { x: 2, y: 1 }), meta(1), {});
    for (const saver of [a, b]) {
      const tuple = await saver.getTuple(cfg("t", id2));
      expect(tuple.checkpoint.channel_values).toEqual({ x: "B" });
      expect(tuple.parentConfig.configurable.checkpoint_id).toBe(id1);
    }
  });

  it("pending writes of the other saver are kept by this saver's next putWrites", async () => {
    const [id1] = ids(1);
    await a.put(cfg("t"), checkpoint(id1, { x: 1 }, { x: 1 }), meta(0), { x: 1 });
    await a.putWrites(cfg("t", id1), [["x", "from a 1"]], "task-a1");
    await b.putWrites(cfg("t", id1), [["x", "from b"]], "task-b");
    await a.putWrites(cfg("t", id1), [["x", "from a 2"]], "task-a2");
    // A regular write of a task already written elsewhere is ignored (the first one wins).
    await b.putWrites(cfg("t", id1), [["x", "again"]], "task-a2");
    await a.putWrites(cfg("t", id1), [["x", "again"]], "task-b");
    for (const saver of [a, b]) {
      const tuple = await saver.getTuple(cfg("t", id1));
      expect(tuple.pendingWrites.map(([task, , value]) => [task, value]).sort()).toEqual([
        ["task-a1", "from a 1"],
        ["task-a2", "from a 2"],
        ["task-b", "from b"],
      ]);
    }
  });

  it("a thread deleted and written again by the other saver is read afresh", async () => {
    const [id1, id2, id3] = ids(3);
    await a.put(cfg("t"), checkpoint(id3, { x: 1 }, { x: 1 }), meta(0), { x: 1 });
    await b.deleteThread("t");
    // The new session reaches the version A last saw, with another head and no record of id3.
    await b.put(cfg("t"), checkpoint(id1, { x: 2 }, { x: 2 }), meta(0), { x: 2 });
    await a.put(cfg("t", id1), checkpoint(id2, { x: 2 }, { x: 2 }), meta(1), {});
    for (const saver of [a, b]) {
      const tuple = await saver.getTuple(cfg("t"));
      expect(tuple.config.configurable.checkpoint_id).toBe(id2);
      expect(tuple.checkpoint.channel_values).toEqual({ x: 2 });
      expect(await saver.getTuple(cfg("t", id3))).toBeUndefined();
    }
  });

  it("a guarded turn sees what the other saver wrote since the last one, and the other sees it", async () => {
    const [id1, id2, id3, id4] = ids(4);
    await a.guard("t", async () => {
      await a.put(cfg("t"), checkpoint(id1, { x: 1 }, { x: 1 }), meta(0), { x: 1 });
      await a.putWrites(cfg("t", id1), [["x", "a"]], "task-a");
    });
    await b.put(cfg("t", id1), checkpoint(id3, { x: 3, y: "y" }, { x: 3, y: 1 }), meta(1), { x: 3, y: 1 });
    await b.putWrites(cfg("t", id1), [["x", "b"]], "task-b");
    await a.guard("t", async () => {
      expect((await a.getTuple(cfg("t"))).config.configurable.checkpoint_id).toBe(id3);
      await a.putWrites(cfg("t", id1), [["x", "a2"]], "task-a2");
      // Not the head (id3 is newer); y is inherited from B's record of id3.
      await a.put(cfg("t", id3), checkpoint(id2, { x: 3, y: "y" }, { x: 3, y: 1 }), meta(2), {});
    });
    await b.put(cfg("t", id2), checkpoint(id4, { x: 4, y: "y" }, { x: 4, y: 1 }), meta(3), { x: 4 });
    for (const saver of [a, b]) {
      expect((await saver.getTuple(cfg("t"))).config.configurable.checkpoint_id).toBe(id4);
      expect((await saver.getTuple(cfg("t", id2))).checkpoint.channel_values).toEqual({ x: 3, y: "y" });
      expect((await saver.getTuple(cfg("t", id4))).checkpoint.channel_values).toEqual({ x: 4, y: "y" });
      const writes = (await saver.getTuple(cfg("t", id1))).pendingWrites.map(([task]) => task).sort();
      expect(writes).toEqual(["task-a", "task-a2", "task-b"]);
    }
  });

  it("each checkpoint a guard puts names the version that committed it, before and after the caller's own checkpoint", async () => {
    const [id1, id2, id3, id4] = ids(4);
    await a.guard("t", async (inv) => {
      await a.put(cfg("t"), checkpoint(id1, { x: 1 }, { x: 1 }), meta(0), { x: 1 });
      await a.putWrites(cfg("t", id1), [["x", "w1"]], "task-1");
      await a.put(cfg("t", id1), checkpoint(id2, { x: 2 }, { x: 2 }), meta(1), { x: 2 });
      // The caller's own version between two puts.
      inv.setState("note", "mine", { agent: "app" });
      await inv.checkpoint();
      await a.put(cfg("t", id2), checkpoint(id3, { x: 3 }, { x: 3 }), meta(2), { x: 3 });
    });
    await a.guard("t", async () => {
      await a.put(cfg("t", id3), checkpoint(id4, { x: 4 }, { x: 4 }), meta(3), { x: 4 });
    });
    const session = await stores[0].open(a.sessionId("t"), { create: false });
    const history = await session.history();
    for (const id of [id1, id2, id3, id4]) {
      const record = session.state({ agent: a.agentName("") })[`c/${JSON.stringify([id])}`];
      const event = history.find((e) => e.type === "state.set" && e.data?.id === id && e.data.c);
      expect(record.version).toBe(event.version);
    }
    expect(session.version).toBe(5); // four puts and the caller's checkpoint
  });

  it("a caller's own setState inside a guard is seen by the next put", async () => {
    const [id1, id2, id3] = ids(3);
    await a.put(cfg("t"), checkpoint(id1, { x: 1 }, { x: 1 }), meta(0), { x: 1 });
    await a.guard("t", async (inv) => {
      // Moves the head on by hand (the layout's "head" key of the root namespace's agent).
      inv.setState("head", id3, { agent: a.agentName("") });
      await a.put(cfg("t", id1), checkpoint(id2, { x: 2 }, { x: 2 }), meta(1), { x: 2 });
    });
    const head = await b.getTuple(cfg("t"));
    expect(head).toBeUndefined(); // id3 has no record: the head the caller set was kept
  });
});
