// Outside a guard, the writes of one thread that are called while its queue is busy are committed
// together (one begin/commit). These tests pin what that folding must keep: every write lands, in call
// order, each caller resolves only once the commit holding its write is durable (checked by reading
// the backend as it was at that instant through a fresh store and saver), and a write that fails
// rejects only its own caller. Runs under both the 1.1.x and the 1.2.x configs.
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionSaver } from "agent-session/langgraph";
import { meta, checkpoint } from "./_fixtures.mjs";
import { uuid6 } from "@langchain/langgraph-checkpoint";


/** A memoryKv that also keeps, synchronously, a copy of what its completed puts and deletes left. */
function recordingKv() {
  const kv = memoryKv();
  const durable = new Map();
  return {
    durable,
    capabilities: kv.capabilities,
    get: (key) => kv.get(key),
    list: (prefix, options) => kv.list(prefix, options),
    async put(key, value, options) {
      const version = await kv.put(key, value, options);
      if (typeof version === "string") durable.set(String(key), value.slice());
      return version;
    },
    async delete(key, options) {
      const deleted = await kv.delete(key, options);
      if (deleted) durable.delete(String(key));
      return deleted;
    },
  };
}

/** A fresh saver over a new store over a copy of `entries` (the backend as it was when copied). */
async function saverOver(entries) {
  const kv = memoryKv();
  for (const [key, value] of entries) await kv.put(key, value);
  return new AgentSessionSaver(await SessionStore.kv(kv));
}

const thread = (id, checkpointId) => ({ configurable: { thread_id: id, checkpoint_ns: "", checkpoint_id: checkpointId } });

/**
 * `count` puts of a chain of checkpoints on thread `t`, each followed by two putWrites of one task
 * against it: the first of a regular channel (kept: the first write of a (task, idx) wins) and the
 * second of the same (task, idx) (ignored), all called without awaiting. Returns the calls in order.
 */
function writeChain(saver, count) {
  const calls = [];
  let parent;
  for (let i = 0; i < count; i++) {
    const id = uuid6(i);
    const config = parent === undefined ? thread("t") : thread("t", parent);
    calls.push({ kind: "put", id, promise: saver.put(config, checkpoint(id, { n: i }, { n: i + 1 }), meta(i), { n: i + 1 }) });
    calls.push({ kind: "first", id, promise: saver.putWrites(thread("t", id), [["out", `first ${i}`]], `task-${i}`) });
    calls.push({ kind: "second", id, promise: saver.putWrites(thread("t", id), [["out", `second ${i}`]], `task-${i}`) });
    parent = id;
  }
  return calls;
}

/** Asserts that `saver` holds the first `puts` checkpoints of writeChain, whole and linked in order. */
async function expectChain(saver, puts, ids) {
  const tuples = [];
  for await (const tuple of saver.list({ configurable: { thread_id: "t" } })) tuples.push(tuple);
  expect(tuples.map((t) => t.config.configurable.checkpoint_id)).toEqual(ids.slice(0, puts).reverse());
  for (const [i, id] of ids.slice(0, puts).entries()) {
    const tuple = await saver.getTuple(thread("t", id));
    expect(tuple.checkpoint.channel_values).toEqual({ n: i });
    expect(tuple.parentConfig?.configurable.checkpoint_id).toBe(i === 0 ? undefined : ids[i - 1]);
    expect(tuple.pendingWrites).toEqual([[`task-${i}`, "out", `first ${i}`]]);
  }
}

describe("AgentSessionSaver folds the writes of a busy thread into one commit", () => {
  it("keeps every write, in call order, and resolves each caller only once its commit is durable", async () => {
    const kv = recordingKv();
    const store = await SessionStore.kv(kv);
    const saver = new AgentSessionSaver(store);
    const calls = writeChain(saver, 20);
    // What the backend held at the moment each caller resolved.
    const seen = calls.map((call) => call.promise.then(() => new Map(kv.durable)));
    const atResolve = await Promise.all(seen);

    const ids = calls.filter((c) => c.kind === "put").map((c) => c.id);
    // Folded: 60 writes called in one go are far fewer commits than writes.
    const session = await store.open(saver.sessionId("t"), { create: false });
    expect(session.version).toBeLessThan(calls.length / 2);
    // In call order: one note per put in the namespace's log, in the order the puts were called.
    expect(session.messages({ agent: saver.agentName("") }).map((note) => note.checkpoint)).toEqual(ids);
    await expectChain(await saverOver(kv.durable), ids.length, ids);

    // Durable when resolved: the backend as it was then already holds that write and every one before it.
    for (const [i, call] of calls.entries()) {
      const fresh = await saverOver(atResolve[i]);
      const puts = calls.slice(0, i + 1).filter((c) => c.kind === "put").length;
      const tuple = await fresh.getTuple(thread("t", call.id));
      expect(tuple?.config.configurable.checkpoint_id).toBe(call.id);
      if (call.kind !== "put") expect(tuple.pendingWrites).toEqual([[`task-${puts - 1}`, "out", `first ${puts - 1}`]]);
      const head = await fresh.getTuple(thread("t"));
      expect(ids.indexOf(head.config.configurable.checkpoint_id)).toBeGreaterThanOrEqual(puts - 1);
    }
    await store.close();
  });

  it("rejects only the caller of a write that fails to stage; the others commit", async () => {
    const store = await SessionStore.kv(memoryKv(), { limits: { maxStateValueBytes: 2000 } });
    // A serde that refuses one value, as a custom serializer may.
    const { serde } = new AgentSessionSaver(store);
    const refusing = {
      dumpsTyped: async (value) => {
        if (value === "refused") throw new Error("not serializable");
        return serde.dumpsTyped(value);
      },
      loadsTyped: (type, data) => serde.loadsTyped(type, data),
    };
    const saver = new AgentSessionSaver(store, { serde: refusing });
    const a = uuid6(1);
    const b = uuid6(2);
    const putA = saver.put(thread("t"), checkpoint(a, { n: 1 }, { n: 1 }), meta(0), { n: 1 });
    const tooLarge = saver.putWrites(thread("t", a), [["out", "x".repeat(5000)]], "task-big");
    const unserializable = saver.putWrites(thread("t", a), [["out", "refused"]], "task-refused");
    const writesA = saver.putWrites(thread("t", a), [["out", "ok"]], "task-ok");
    const putB = saver.put(thread("t", a), checkpoint(b, { n: 2 }, { n: 2 }), meta(1), { n: 2 });
    const outcomes = await Promise.allSettled([putA, tooLarge, unserializable, writesA, putB]);

    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled", "fulfilled"]);
    expect(outcomes[1].reason.code).toBe("LIMIT_EXCEEDED");
    expect(outcomes[2].reason.message).toBe("not serializable");
    const fresh = new AgentSessionSaver(store);
    expect((await fresh.getTuple(thread("t", a))).pendingWrites).toEqual([["task-ok", "out", "ok"]]);
    expect((await fresh.getTuple(thread("t"))).config.configurable.checkpoint_id).toBe(b);
    await store.close();
  });

  it("commits writes that fit one commit each but not together, each in its own commit", async () => {
    // Each putWrites stores ~1.5 KB; two exceed maxCommitBytes together, so a batch of them must split.
    const store = await SessionStore.kv(memoryKv(), { limits: { maxCommitBytes: 2500 } });
    const saver = new AgentSessionSaver(store);
    const id = uuid6(1);
    await saver.put(thread("t"), checkpoint(id, {}, {}), meta(0), {});
    const tasks = ["a", "b", "c", "d"];
    const written = tasks.map((task) => saver.putWrites(thread("t", id), [["out", task.repeat(1500)]], task));
    await Promise.all(written);

    const tuple = await new AgentSessionSaver(store).getTuple(thread("t", id));
    expect(tuple.pendingWrites).toEqual(tasks.map((task) => [task, "out", task.repeat(1500)]));
    await store.close();
  });
});
