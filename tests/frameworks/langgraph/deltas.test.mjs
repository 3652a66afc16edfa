// Channel values stored as deltas (js/frameworks/langgraph.js, "channel values stored as deltas"): a
// value whose text extends the parent checkpoint's value of that channel is stored as what it adds. These tests pin that every checkpoint still reads back exactly (time travel, list, a
// fresh saver on another store over the same backend), that what is not an extension is stored whole,
// that a thread written before deltas (every value whole) still loads and grows with deltas, and that
// a re-put of a checkpoint never turns a whole value (a possible base) into a delta. Every 17th version
// of a growing value is a rollup naming regions of earlier values: a thread grows past the 1 MiB bound
// of one state value, no record grows with it, and rollups still read after their sources are put
// again. They also pin the
// unguarded folding of a step's putWrites into the commit of the put that follows it. Runs under both
// the 1.1.x and the 1.2.x configs.
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionSaver } from "agent-session/langgraph";
import { meta, checkpoint, cfg } from "./_fixtures.mjs";
import { uuid6 } from "@langchain/langgraph-checkpoint";

const backends = {
  memory: async () => ({ store: await SessionStore.memory(), reopen: null }),
  kv: async () => {
    const kv = memoryKv();
    return { store: await SessionStore.kv(kv), reopen: () => SessionStore.kv(kv) };
  },
};

const message = (i) => ({ role: i % 2 ? "assistant" : "user", content: `${"x".repeat(150)} ${i}` });

/** `count` checkpoints on `thread`, each appending one message to `messages` and bumping `n`. */
async function grow(saver, thread, count, { from = 0, parent, messages = [] } = {}) {
  const ids = [];
  let list = messages;
  for (let i = from; i < from + count; i++) {
    const id = uuid6(i);
    list = [...list, message(i)];
    const versions = { messages: i + 1, n: i + 1 };
    await saver.put(cfg(thread, parent), checkpoint(id, { messages: list, n: i }, versions), meta(i), versions);
    ids.push({ id, messages: list, n: i });
    parent = id;
  }
  return ids;
}

const blobsOf = (session) =>
  Object.entries(session.state({ agent: "ns:" })).filter(([key]) => key.startsWith("b/") || key.startsWith("b#"));

describe.each(Object.keys(backends))("AgentSessionSaver channel deltas on %s", (backend) => {
  let store;
  let reopen;
  beforeEach(async () => {
    ({ store, reopen } = await backends[backend]());
  });
  afterEach(async () => {
    await store.close();
  });

  it("stores a growing channel as tails, and reads every checkpoint back exactly", async () => {
    const saver = new AgentSessionSaver(store);
    const written = await grow(saver, "t", 60);
    const session = await store.open(saver.sessionId("t"), { create: false });
    const blobs = blobsOf(session);
    const deltas = blobs.filter(([, blob]) => typeof blob.base === "string");
    expect(deltas.length).toBeGreaterThan(40);
    for (const [, blob] of deltas) {
      expect(blob).not.toHaveProperty("s"); // an older saver fails on it instead of reading the tail
      // n deltas down to a whole value or a rollup, at most 16.
      expect(blob.n).toBeLessThanOrEqual(16);
      let rec = blob;
      for (let i = 0; i < blob.n; i++) rec = session.stateValue(rec.base, { agent: "ns:" });
      expect(typeof rec.s === "string" || Array.isArray(rec.p)).toBe(true);
    }
    // Values under 64 Ki units are whole where a rollup would be (the 17th delta): no rollups here.
    expect(blobs.filter(([, blob]) => Array.isArray(blob.p))).toEqual([]);
    // Far fewer bytes than whole values at every version.
    const stored = blobs.reduce((sum, [, blob]) => sum + JSON.stringify(blob).length, 0);
    const whole = written.reduce((sum, w) => sum + JSON.stringify(JSON.stringify(w.messages)).length, 0);
    expect(stored).toBeLessThan(whole / 4);

    const readers = [saver, new AgentSessionSaver(store)];
    if (reopen) readers.push(new AgentSessionSaver(await reopen()));
    for (const reader of readers) {
      for (const w of written) {
        const tuple = await reader.getTuple(cfg("t", w.id));
        expect(tuple.checkpoint.channel_values).toEqual({ messages: w.messages, n: w.n });
      }
      expect((await reader.getTuple(cfg("t"))).checkpoint.id).toBe(written.at(-1).id);
      const listed = [];
      for await (const tuple of reader.list(cfg("t"))) listed.push(tuple);
      expect(listed.map((t) => t.checkpoint.channel_values.messages)).toEqual(written.map((w) => w.messages).reverse());
    }
  });

  it("grows a thread past the 1 MiB bound of one state value: no record grows with it, every checkpoint reads back", async () => {
    // 70 messages of 20 KB: 1.4 MB of messages at the end. Whole at every 17th version (before
    // rollups), the value went over limits.maxStateValueBytes (1 MiB) at about the 50th and the put threw.
    const saver = new AgentSessionSaver(store);
    const big = (i) => ({ role: "user", content: `${String(i).padStart(4, "0")}${"y".repeat(20_000)}` });
    const written = [];
    let list = [];
    let parent;
    for (let i = 0; i < 70; i++) {
      const id = uuid6(i);
      list = [...list, big(i)];
      const versions = { messages: i + 1 };
      await saver.put(cfg("t", parent), checkpoint(id, { messages: list }, versions), meta(i), versions);
      written.push({ id, messages: list });
      parent = id;
    }
    const session = await store.open(saver.sessionId("t"), { create: false });
    const blobs = blobsOf(session);
    const sizes = blobs.map(([, blob]) => JSON.stringify(blob).length);
    const total = JSON.stringify(JSON.stringify(list)).length;
    expect(total).toBeGreaterThan(1024 * 1024);
    // The largest record: a rollup holding at most 256 Ki units of text of its own (plus a message).
    expect(Math.max(...sizes)).toBeLessThan(300_000);
    const rollups = blobs.filter(([, blob]) => Array.isArray(blob.p));
    expect(rollups.length).toBe(4); // where the 17th delta would be, as from the 2nd version (whole)
    for (const [, blob] of rollups) expect(blob).not.toHaveProperty("s"); // an older saver fails on it
    // All versions together: a few times the final value (every version whole: 35 times it).
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThan(4 * total);
    const readBack = async () => {
      const readers = [new AgentSessionSaver(store)];
      if (reopen) readers.push(new AgentSessionSaver(await reopen()));
      for (const reader of readers) {
        for (const w of written) {
          expect((await reader.getTuple(cfg("t", w.id))).checkpoint.channel_values.messages).toEqual(w.messages);
        }
      }
    };
    await readBack();
    // The later rollups name regions of the first 40 versions; put those again (stored whole, their
    // text unchanged) and every rollup still reads.
    const named = new Set(blobs.flatMap(([, blob]) => (Array.isArray(blob.p) ? blob.p.map(([key]) => key) : [])));
    parent = undefined;
    for (const [i, w] of written.slice(0, 40).entries()) {
      const versions = { messages: i + 1 };
      await saver.put(cfg("t", parent), checkpoint(w.id, { messages: w.messages }, versions), meta(i), versions);
      parent = w.id;
    }
    await session.refresh();
    const rewritten = blobsOf(session).filter(([key, blob]) => named.has(key) && typeof blob.s === "string");
    expect(rewritten.length).toBeGreaterThan(5);
    await readBack();
  });

  it("reads back every checkpoint of a random history of extensions, forks, shrinks and re-puts across rollups", async () => {
    // A seeded sequence of puts with messages of 3-8 KB, so that values pass 64 Ki units (rollups)
    // within a few dozen versions: each put extends the latest checkpoint (most), extends an earlier
    // one (a fork), halves or edits the latest (stored whole; halved too whenever it nears the 1 MiB of
    // one whole value), or puts an existing checkpoint again (whole, with the same text). Every
    // checkpoint must read back as it was put, through a fresh saver.
    let seed = 20261203;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const saver = new AgentSessionSaver(store);
    const written = []; // { id, parent, messages, version }
    let version = 0;
    const put = async (id, parent, messages) => {
      const versions = { messages: ++version };
      await saver.put(cfg("r", parent?.id), checkpoint(id, { messages }, versions), meta(version), versions);
    };
    for (let i = 0; i < 200; i++) {
      const roll = random();
      const latest = written.at(-1);
      const size = 3000 + Math.floor(random() * 5000);
      const grown = (from) => [...(from?.messages ?? []), { role: "user", content: `${i}:${"z".repeat(size)}` }];
      if (roll < 0.05 && written.length > 0) {
        // Put an existing checkpoint again, under the parent it had.
        const again = written[Math.floor(random() * written.length)];
        const versions = { messages: again.version };
        await saver.put(cfg("r", again.parent), checkpoint(again.id, { messages: again.messages }, versions), meta(again.version), versions);
        continue;
      }
      const id = uuid6(i);
      let parent = latest;
      let messages;
      const large = latest !== undefined && JSON.stringify(latest.messages).length > 600_000;
      if (roll < 0.1 && written.length > 1 && !large) {
        parent = written[Math.floor(random() * written.length)];
        messages = grown(parent); // a fork from an earlier checkpoint
      } else if ((roll < 0.13 || large) && latest && latest.messages.length > 2) {
        messages = latest.messages.slice(latest.messages.length >> 1); // a shrink (RemoveMessage)
      } else if (roll < 0.15 && latest) {
        messages = latest.messages.map((m, k) => (k === 0 ? { ...m, content: "edited" } : m));
      } else {
        messages = grown(latest);
      }
      await put(id, parent, messages);
      written.push({ id, parent: parent?.id, messages, version });
    }
    const session = await store.open(saver.sessionId("r"), { create: false });
    const rollups = blobsOf(session).filter(([, blob]) => Array.isArray(blob.p));
    expect(rollups.length).toBeGreaterThan(1);
    expect(rollups.some(([, blob]) => blob.p.length > 1)).toBe(true); // regions of other records, not just x
    const readers = [new AgentSessionSaver(store)];
    if (reopen) readers.push(new AgentSessionSaver(await reopen()));
    for (const reader of readers) {
      for (const w of written) {
        expect((await reader.getTuple(cfg("r", w.id))).checkpoint.channel_values.messages).toEqual(w.messages);
      }
    }
  });

  it("stores whole a value that does not extend its parent's (a shrink, an edit), and forks stay apart", async () => {
    const saver = new AgentSessionSaver(store);
    const written = await grow(saver, "t", 10);
    const last = written.at(-1);
    // A shrink (RemoveMessage) and an edit of an early message: not extensions of the parent's text.
    const shrunk = last.messages.slice(3);
    const edited = last.messages.map((m, i) => (i === 1 ? { ...m, content: "edited" } : m));
    const a = uuid6(100);
    const b = uuid6(101);
    await saver.put(cfg("t", last.id), checkpoint(a, { messages: shrunk, n: 0 }, { messages: 50, n: 50 }), meta(10), { messages: 50, n: 50 });
    await saver.put(cfg("t", last.id), checkpoint(b, { messages: edited, n: 0 }, { messages: 50, n: 50 }), meta(10), { messages: 50, n: 50 });
    // Both branches grow on from their own value.
    const [a2] = await grow(saver, "t", 1, { from: 200, parent: a, messages: shrunk });
    const [b2] = await grow(saver, "t", 1, { from: 300, parent: b, messages: edited });

    const session = await store.open(saver.sessionId("t"), { create: false });
    const blobAt = (id) => {
      const record = session.stateValue(`c/${JSON.stringify([id])}`, { agent: "ns:" });
      return session.stateValue(record.src.messages[1], { agent: "ns:" });
    };
    expect(typeof blobAt(a).s).toBe("string");
    expect(typeof blobAt(b).s).toBe("string");
    const fresh = new AgentSessionSaver(store);
    expect((await fresh.getTuple(cfg("t", a))).checkpoint.channel_values.messages).toEqual(shrunk);
    expect((await fresh.getTuple(cfg("t", b))).checkpoint.channel_values.messages).toEqual(edited);
    expect((await fresh.getTuple(cfg("t", a2.id))).checkpoint.channel_values.messages).toEqual(a2.messages);
    expect((await fresh.getTuple(cfg("t", b2.id))).checkpoint.channel_values.messages).toEqual(b2.messages);
    expect((await fresh.getTuple(cfg("t", last.id))).checkpoint.channel_values.messages).toEqual(last.messages);
  });

  it("loads a thread written before deltas (every value whole), and grows it with deltas", async () => {
    // The layout as the saver wrote it before deltas, written here record by record.
    const saver = new AgentSessionSaver(store);
    const dump = async (value) => ({ t: "json", s: new TextDecoder().decode((await saver.serde.dumpsTyped(value))[1]) });
    const session = await store.open(saver.sessionId("old"));
    const agent = { agent: "ns:" };
    const old = [];
    let parent = null;
    let list = [];
    for (let i = 0; i < 8; i++) {
      const id = uuid6(i);
      list = [...list, message(i)];
      const inv = await session.begin();
      const blobKey = `b/${JSON.stringify(["messages", i + 1, id])}`;
      inv.setState(blobKey, await dump(list), agent);
      const { channel_values: _, ...skeleton } = checkpoint(id, {}, { messages: i + 1 });
      skeleton.channel_values = {};
      inv.setState(
        `c/${JSON.stringify([id])}`,
        { id, parent, version: session.version + 1, c: await dump(skeleton), m: await dump(meta(i)), src: { messages: [i + 1, blobKey] } },
        agent,
      );
      inv.setState("head", id, agent);
      if (i === 0) {
        inv.setState("thread", "old");
        inv.setState(`ns/${JSON.stringify([""])}`, { ns: "", agent: "ns:" });
      }
      inv.appendMessage({ checkpoint: id, parent, source: "loop", step: i }, agent);
      await inv.commit();
      old.push({ id, messages: list });
      parent = id;
    }

    const fresh = new AgentSessionSaver(store);
    for (const w of old) expect((await fresh.getTuple(cfg("old", w.id))).checkpoint.channel_values).toEqual({ messages: w.messages });
    expect((await fresh.getTuple(cfg("old"))).checkpoint.id).toBe(old.at(-1).id);

    // New checkpoints on it are deltas against the old whole values, and read back exactly.
    const grown = await grow(fresh, "old", 5, { from: 8, parent, messages: list });
    await session.refresh();
    const deltas = blobsOf(session).filter(([, blob]) => typeof blob.base === "string");
    expect(deltas.length).toBeGreaterThan(0);
    const reader = new AgentSessionSaver(store);
    for (const w of [...old, ...grown]) {
      expect((await reader.getTuple(cfg("old", w.id))).checkpoint.channel_values.messages).toEqual(w.messages);
    }
  });

  it("does not turn a stored whole value into a delta when its checkpoint is put again under a parent", async () => {
    const saver = new AgentSessionSaver(store);
    const earlier = Array.from({ length: 10 }, (_, i) => message(100 + i));
    const [x0] = await grow(saver, "t", 1, { messages: earlier });
    // x1 put without a parent: its value is stored whole, and x2's delta is based on it.
    const [x1] = await grow(saver, "t", 1, { from: 1, messages: x0.messages });
    const [x2] = await grow(saver, "t", 1, { from: 2, parent: x1.id, messages: x1.messages });
    const session = await store.open(saver.sessionId("t"), { create: false });
    const blobOf = (id) => {
      const record = session.stateValue(`c/${JSON.stringify([id])}`, { agent: "ns:" });
      return [record.src.messages[1], session.stateValue(record.src.messages[1], { agent: "ns:" })];
    };
    const [x1Key] = blobOf(x1.id);
    expect(blobOf(x2.id)[1].base).toBe(x1Key);
    // x1 again, now under x0 (whose value its value extends).
    await saver.put(cfg("t", x0.id), checkpoint(x1.id, { messages: x1.messages, n: 1 }, { messages: 2, n: 2 }), meta(1), { messages: 2, n: 2 });
    await session.refresh();
    expect(typeof blobOf(x1.id)[1].s).toBe("string");
    const fresh = new AgentSessionSaver(store);
    expect((await fresh.getTuple(cfg("t", x2.id))).checkpoint.channel_values.messages).toEqual(x2.messages);
    expect((await fresh.getTuple(cfg("t", x1.id))).checkpoint.channel_values.messages).toEqual(x1.messages);
  });

  it("keeps a re-put checkpoint's values whole, so that the deltas and rollups reading them still read", async () => {
    const saver = new AgentSessionSaver(store);
    const written = await grow(saver, "t", 40);
    const session = await store.open(saver.sessionId("t"), { create: false });
    const bases = new Set(blobsOf(session).flatMap(([, blob]) => (typeof blob.base === "string" ? [blob.base] : [])));
    expect(bases.size).toBeGreaterThan(0);
    // Put again every checkpoint, in order, as a caller replaying them might.
    let parent;
    for (const w of written) {
      const versions = { messages: w.n + 1, n: w.n + 1 };
      await saver.put(cfg("t", parent), checkpoint(w.id, { messages: w.messages, n: w.n }, versions), meta(w.n), versions);
      parent = w.id;
    }
    await session.refresh();
    for (const key of bases) expect(typeof session.stateValue(key, { agent: "ns:" }).s).toBe("string");
    const fresh = new AgentSessionSaver(store);
    for (const w of written) expect((await fresh.getTuple(cfg("t", w.id))).checkpoint.channel_values.messages).toEqual(w.messages);
  });

  it("outside a guard, commits a step's putWrites with the put that follows it, durable when both resolve", async () => {
    const saver = new AgentSessionSaver(store);
    const [first] = await grow(saver, "t", 1);
    const session = await store.open(saver.sessionId("t"), { create: false });
    const before = session.version;
    // As LangGraph calls them: the task's writes, then (in a later microtask) the step's checkpoint.
    const writes = saver.putWrites(cfg("t", first.id), [["messages", [message(1)]]], "task-1");
    for (let i = 0; i < 200; i++) await Promise.resolve(); // LangGraph's own steps in between
    expect(session.version).toBe(before);
    const next = uuid6(1);
    const put = saver.put(cfg("t", first.id), checkpoint(next, { messages: [...first.messages, message(1)], n: 1 }, { messages: 2, n: 2 }), meta(1), { messages: 2, n: 2 });
    await Promise.all([writes, put]);
    await session.refresh();
    expect(session.version).toBe(before + 1);
    const fresh = new AgentSessionSaver(store);
    expect((await fresh.getTuple(cfg("t", first.id))).pendingWrites).toEqual([["task-1", "messages", [message(1)]]]);
    expect((await fresh.getTuple(cfg("t"))).checkpoint.id).toBe(next);

    // A putWrites that no put follows still commits on its own.
    await saver.putWrites(cfg("t", next), [["messages", [message(2)]]], "task-2");
    await session.refresh();
    expect(session.version).toBe(before + 2);
    expect((await new AgentSessionSaver(store).getTuple(cfg("t"))).pendingWrites).toEqual([["task-2", "messages", [message(2)]]]);
  });
});
