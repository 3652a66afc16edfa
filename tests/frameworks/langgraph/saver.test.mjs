// AgentSessionSaver's own behaviour beyond the validation suite: how a thread maps onto agent-session,
// fork safety of the channel blobs, the pendingWrites rules and order, time travel, long names,
// listing across threads, deleteThread, and fail-fast outside a guard. Runs under both the 1.1.x and
// the 1.2.x configs (it uses only @langchain/langgraph-checkpoint, not @langchain/langgraph).
import { SessionStore, ConcurrencyError } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionSaver } from "agent-session/langgraph";
import { meta, checkpoint } from "./_fixtures.mjs";
import { TASKS, ERROR, INTERRUPT, uuid6 } from "@langchain/langgraph-checkpoint";

const backends = {
  memory: () => SessionStore.memory(),
  kv: () => SessionStore.kv(memoryKv()),
};


async function collect(gen) {
  const out = [];
  for await (const item of gen) out.push(item);
  return out;
}

describe.each(Object.keys(backends))("AgentSessionSaver on %s", (backend) => {
  let store;
  let saver;
  beforeEach(async () => {
    store = await backends[backend]();
    saver = new AgentSessionSaver(store);
  });
  afterEach(async () => {
    await store.close();
  });

  it("maps a thread to session langgraph/<thread_id>, a namespace to agent ns:<ns>, each put to one commit", async () => {
    const root = { configurable: { thread_id: "t-map", checkpoint_ns: "" } };
    const c1 = await saver.put(root, checkpoint(uuid6(0), { x: 1 }), meta(-1, "input"), { x: 1 });
    await saver.put(
      { configurable: { thread_id: "t-map", checkpoint_ns: "sub:1" } },
      checkpoint(uuid6(0), { y: 2 }),
      meta(0),
      { y: 1 },
    );
    await saver.putWrites(c1, [["x", 5]], "task-1");

    expect(saver.sessionId("t-map")).toBe("langgraph/t-map");
    expect(saver.agentName("")).toBe("ns:");
    expect(saver.agentName("sub:1")).toBe("ns:sub:1");
    const session = await store.open("langgraph/t-map", { create: false });
    expect(session.version).toBe(3); // one commit per put / putWrites outside a guard
    expect(session.messages({ agent: "ns:" })).toEqual([
      { checkpoint: c1.configurable.checkpoint_id, parent: null, source: "input", step: -1 },
    ]);
    expect(session.messages({ agent: "ns:sub:1" })).toHaveLength(1);
    expect(session.state()).toMatchObject({ thread: "t-map" });
    const history = await session.history();
    const sets = history.filter((e) => e.type === "state.set" && e.agent === "ns:");
    expect(sets.map((e) => e.version)).toEqual(expect.arrayContaining([1, 3]));
  });

  it("stores a blob only for the channels in newVersions and rebuilds the others from the parent", async () => {
    const cfg = { configurable: { thread_id: "t-blobs", checkpoint_ns: "" } };
    const p = await saver.put(cfg, checkpoint(uuid6(0), { a: "A1", b: "B1" }), meta(0), { a: 1, b: 1 });
    const c = await saver.put(p, checkpoint(uuid6(0), { a: "A1", b: "B2" }, { a: 1, b: 2 }), meta(1), { b: 2 });
    const session = await store.open("langgraph/t-blobs", { create: false });
    const blobs = Object.keys(session.state({ agent: "ns:" })).filter((k) => k.startsWith("b/"));
    expect(blobs).toHaveLength(3); // a@1, b@1 by the parent; b@2 by the child; a is not stored again
    expect((await saver.getTuple(c)).checkpoint.channel_values).toEqual({ a: "A1", b: "B2" });
    expect((await saver.getTuple(p)).checkpoint.channel_values).toEqual({ a: "A1", b: "B1" });
    // A channel whose version differs from the parent's and that is not in newVersions is not invented.
    const d = await saver.put(c, checkpoint(uuid6(0), { a: "A9", b: "B2" }, { a: 9, b: 2 }), meta(2), {});
    expect((await saver.getTuple(d)).checkpoint.channel_values).toEqual({ b: "B2" });
  });

  it("keeps two forks of one parent apart even when they write the same (channel, version)", async () => {
    const cfg = { configurable: { thread_id: "t-fork", checkpoint_ns: "" } };
    const parent = await saver.put(cfg, checkpoint(uuid6(0), { log: ["p"] }), meta(0), { log: 1 });
    const left = await saver.put(parent, checkpoint(uuid6(0), { log: ["p", "left"] }, { log: 2 }), meta(1), { log: 2 });
    const right = await saver.put(parent, checkpoint(uuid6(0), { log: ["p", "right"] }, { log: 2 }), meta(1), {
      log: 2,
    });
    expect((await saver.getTuple(left)).checkpoint.channel_values.log).toEqual(["p", "left"]);
    expect((await saver.getTuple(right)).checkpoint.channel_values.log).toEqual(["p", "right"]);
    // A child of the left fork carries the left value over, not the right one.
    const next = await saver.put(left, checkpoint(uuid6(0), { log: ["p", "left"], n: 1 }, { log: 2, n: 3 }), meta(2), {
      n: 3,
    });
    expect((await saver.getTuple(next)).checkpoint.channel_values).toEqual({ log: ["p", "left"], n: 1 });
  });

  it("pendingWrites: regular writes are first-wins, special channels overwrite, order is (task_path, task_id, idx) by code point", async () => {
    const cfg = await saver.put(
      { configurable: { thread_id: "t-writes", checkpoint_ns: "" } },
      checkpoint(uuid6(0), {}),
      meta(0),
      {},
    );
    await saver.putWrites(
      cfg,
      [
        ["c", "first"],
        ["d", "d0"],
      ],
      "task-z",
      "~\u{1F600}",
    ); // astral: after U+FFFF
    await saver.putWrites(cfg, [["c", "second"]], "task-z", "~\u{1F600}"); // same (task, idx 0): ignored
    await saver.putWrites(cfg, [[ERROR, "boom-1"]], "task-z");
    await saver.putWrites(cfg, [[ERROR, "boom-2"]], "task-z"); // special channel: overwrites
    await saver.putWrites(cfg, [["c", "y"]], "task-y", "~\uffff");
    await saver.putWrites(cfg, [["c", "b"]], "task-b"); // no path: first
    await saver.putWrites(cfg, [["c", "a"]], "task-a");
    await saver.putWrites(cfg, [[INTERRUPT, { value: "ask" }]], "task-a");
    const { pendingWrites } = await saver.getTuple(cfg);
    expect(pendingWrites).toEqual([
      ["task-a", INTERRUPT, { value: "ask" }], // idx -3 before idx 0
      ["task-a", "c", "a"],
      ["task-b", "c", "b"],
      ["task-y", "c", "y"], // "~\uffff" < "~\u{1F600}" by code point (not by UTF-16 code unit)
      ["task-z", ERROR, "boom-2"],
      ["task-z", "c", "first"],
      ["task-z", "d", "d0"],
    ]);
    // A putWrites that changes nothing writes no new version.
    const session = await store.open("langgraph/t-writes", { create: false });
    const before = session.version;
    await saver.putWrites(cfg, [["c", "again"]], "task-a");
    await session.refresh();
    expect(session.version).toBe(before);
  });

  it("time travel: getTuple by checkpoint_id reads the checkpoint as it was committed; its version is in history", async () => {
    let cfg = { configurable: { thread_id: "t-travel", checkpoint_ns: "" } };
    const ids = [];
    for (let i = 0; i < 4; i++) {
      cfg = await saver.put(cfg, checkpoint(uuid6(0), { n: i }, { n: i + 1 }), meta(i), { n: i + 1 });
      ids.push(cfg.configurable.checkpoint_id);
    }
    const old = await saver.getTuple({
      configurable: { thread_id: "t-travel", checkpoint_ns: "", checkpoint_id: ids[1] },
    });
    expect(old.checkpoint.channel_values).toEqual({ n: 1 });
    expect(old.parentConfig.configurable.checkpoint_id).toBe(ids[0]);
    expect((await saver.getTuple({ configurable: { thread_id: "t-travel" } })).checkpoint.id).toBe(ids[3]);

    // The agent-session version that carried checkpoint ids[1]: its record says so, history agrees,
    // and Session.at(version) shows the thread as of that commit (checkpoints 0 and 1 only).
    const session = await store.open("langgraph/t-travel", { create: false });
    const record = Object.values(session.state({ agent: "ns:" })).find((v) => v?.id === ids[1] && v.c);
    const event = (await session.history()).find((e) => e.type === "state.set" && e.data?.id === ids[1] && e.data.c);
    expect(event.version).toBe(record.version);
    const view = await session.at(record.version);
    const idsThen = Object.values(view.state({ agent: "ns:" }))
      .filter((v) => v?.c)
      .map((v) => v.id);
    expect(idsThen.sort()).toEqual(ids.slice(0, 2).sort());
  });

  it("round-trips values whose serialized bytes are not UTF-8 (base64) and text (as text)", async () => {
    const bytes = new Uint8Array([0, 255, 254, 1, 0xc3]);
    const cfg = await saver.put(
      { configurable: { thread_id: "t-bytes", checkpoint_ns: "" } },
      checkpoint(uuid6(0), { raw: bytes, text: "h\u00e9llo \u{1F600}" }),
      meta(0),
      { raw: 1, text: 1 },
    );
    const { checkpoint: cp } = await saver.getTuple(cfg);
    expect(Array.from(cp.channel_values.raw)).toEqual(Array.from(bytes));
    expect(cp.channel_values.text).toBe("h\u00e9llo \u{1F600}");
    const session = await store.open("langgraph/t-bytes", { create: false });
    const stored = Object.entries(session.state({ agent: "ns:" })).filter(([k]) => k.startsWith("b/"));
    expect(stored.some(([, v]) => typeof v.b === "string")).toBe(true);
    expect(stored.some(([, v]) => typeof v.s === "string")).toBe(true);
  });

  it("accepts thread ids, namespaces, channels and task ids longer than agent-session's 256-byte names", async () => {
    const thread = "t".repeat(300);
    const ns = "n".repeat(300);
    const channel = "c".repeat(300);
    const task = "k".repeat(300);
    const cfg = await saver.put(
      { configurable: { thread_id: thread, checkpoint_ns: ns } },
      checkpoint(uuid6(0), { [channel]: 7 }),
      meta(0),
      { [channel]: 1 },
    );
    await saver.putWrites(cfg, [[channel, 8]], task, "p".repeat(300));
    const tuple = await saver.getTuple({ configurable: { thread_id: thread, checkpoint_ns: ns } });
    expect(tuple.checkpoint.channel_values).toEqual({ [channel]: 7 });
    expect(tuple.pendingWrites).toEqual([[task, channel, 8]]);
    expect(tuple.config.configurable).toEqual({
      thread_id: thread,
      checkpoint_ns: ns,
      checkpoint_id: cfg.configurable.checkpoint_id,
    });
    const all = await collect(saver.list({ configurable: {} }));
    expect(all.map((t) => [t.config.configurable.thread_id, t.config.configurable.checkpoint_ns])).toEqual([
      [thread, ns],
    ]);
    await saver.deleteThread(thread);
    expect(await saver.getTuple({ configurable: { thread_id: thread, checkpoint_ns: ns } })).toBeUndefined();
  });

  it("lists across threads newest first, with before, limit and a metadata filter", async () => {
    const ids = [];
    for (const thread of ["t-l1", "t-l2", "t-l1", "t-l2"]) {
      const cfg = await saver.put(
        { configurable: { thread_id: thread, checkpoint_ns: "" } },
        checkpoint(uuid6(0), {}),
        meta(ids.length, ids.length % 2 ? "loop" : "input"),
        {},
      );
      ids.push(cfg.configurable.checkpoint_id);
    }
    const all = await collect(saver.list({ configurable: {} }));
    expect(all.map((t) => t.checkpoint.id)).toEqual([...ids].reverse());
    const two = await collect(saver.list({ configurable: {} }, { limit: 2 }));
    expect(two.map((t) => t.checkpoint.id)).toEqual([ids[3], ids[2]]);
    const before = await collect(
      saver.list({ configurable: {} }, { before: { configurable: { checkpoint_id: ids[2] } } }),
    );
    expect(before.map((t) => t.checkpoint.id)).toEqual([ids[1], ids[0]]);
    const loops = await collect(saver.list({ configurable: { thread_id: "t-l2" } }, { filter: { source: "loop" } }));
    expect(loops.map((t) => t.checkpoint.id)).toEqual([ids[3], ids[1]]);
    const parents = await collect(saver.list({ configurable: {} }, { filter: { parents: {} } }));
    expect(parents).toHaveLength(4); // object-valued filters compare by value
  });

  it("deleteThread deletes the session and only it", async () => {
    for (const thread of ["t-d1", "t-d2"]) {
      await saver.put({ configurable: { thread_id: thread } }, checkpoint(uuid6(0), {}), meta(0), {});
    }
    await saver.deleteThread("t-d1");
    const { sessions } = await store.list({ prefix: "langgraph/" });
    expect(sessions.map((s) => s.id)).toEqual(["langgraph/t-d2"]);
    // The thread can be used again afterwards.
    await saver.put({ configurable: { thread_id: "t-d1" } }, checkpoint(uuid6(0), { z: 1 }), meta(0), { z: 1 });
    expect((await saver.getTuple({ configurable: { thread_id: "t-d1" } })).checkpoint.channel_values).toEqual({ z: 1 });
  });

  it("serializes concurrent writes of one thread in one process (parallel tasks)", async () => {
    const cfg = await saver.put({ configurable: { thread_id: "t-par" } }, checkpoint(uuid6(0), {}), meta(0), {});
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => saver.putWrites(cfg, [["c", i]], `task-${String(i).padStart(2, "0")}`)),
    );
    const { pendingWrites } = await saver.getTuple(cfg);
    expect(pendingWrites.map((w) => w[2])).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("migrates pending sends of v<4 checkpoints from the parent's TASKS writes", async () => {
    const c0 = await saver.put(
      { configurable: { thread_id: "t-v1" } },
      { ...checkpoint(uuid6(0), {}), v: 1 },
      meta(0),
      {},
    );
    await saver.putWrites(c0, [[TASKS, "s2"]], "task-2");
    await saver.putWrites(c0, [[TASKS, "s1"]], "task-1");
    const c1 = await saver.put(c0, { ...checkpoint(uuid6(1), {}), v: 1 }, meta(1), {});
    expect((await saver.getTuple(c1)).checkpoint.channel_values).toEqual({ [TASKS]: ["s1", "s2"] });
  });
});

describe("outside a guard, a write fails fast when another process holds the thread", () => {
  it("put rejects with ConcurrencyError and stores nothing", async () => {
    const kv = memoryKv();
    const other = await SessionStore.kv(kv, { owner: "other" });
    const saver = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "me" }));
    const held = await (await other.open("langgraph/t-busy")).begin();
    const id = uuid6(0);
    const started = Date.now();
    await expect(
      saver.put({ configurable: { thread_id: "t-busy" } }, checkpoint(id, { a: 1 }), meta(0), { a: 1 }),
    ).rejects.toBeInstanceOf(ConcurrencyError);
    expect(Date.now() - started).toBeLessThan(1000);
    await held.abort();
    expect(await saver.getTuple({ configurable: { thread_id: "t-busy", checkpoint_id: id } })).toBeUndefined();
    expect((await other.open("langgraph/t-busy")).version).toBe(0);
  });
});

describe("two savers over one backend see each other's commits", () => {
  it("reads and writes after a commit from elsewhere use the latest version, not a stale cache", async () => {
    const kv = memoryKv();
    const a = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "A" }));
    const b = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "B" }), { cacheThreads: 1 });
    const root = { configurable: { thread_id: "t-shared", checkpoint_ns: "" } };
    const c1 = await a.put(root, checkpoint(uuid6(0), { keep: "K", n: 1 }, { keep: 1, n: 1 }), meta(0), {
      keep: 1,
      n: 1,
    });
    expect((await b.getTuple(root)).checkpoint.id).toBe(c1.configurable.checkpoint_id); // B loads its cache
    const c2 = await a.put(c1, checkpoint(uuid6(0), { keep: "K", n: 2 }, { keep: 1, n: 2 }), meta(1), { n: 2 });
    await a.putWrites(c2, [["n", 3]], "task-a");
    const latest = await b.getTuple(root);
    expect(latest.checkpoint.id).toBe(c2.configurable.checkpoint_id);
    expect(latest.pendingWrites).toEqual([["task-a", "n", 3]]);
    // B writes a child of A's latest: the carried-over channel comes from A's record, which B's
    // earlier cache did not have.
    const c3 = await b.put(c2, checkpoint(uuid6(0), { keep: "K", n: 3 }, { keep: 1, n: 3 }), meta(2), { n: 3 });
    expect((await a.getTuple(root)).checkpoint.id).toBe(c3.configurable.checkpoint_id);
    expect((await a.getTuple(c3)).checkpoint.channel_values).toEqual({ keep: "K", n: 3 });
    // Other threads through B (cacheThreads: 1 evicts) and back.
    await b.put({ configurable: { thread_id: "t-other" } }, checkpoint(uuid6(0), { o: 1 }), meta(0), { o: 1 });
    expect((await b.getTuple(root)).checkpoint.channel_values).toEqual({ keep: "K", n: 3 });
    expect((await b.getTuple({ configurable: { thread_id: "t-other" } })).checkpoint.channel_values).toEqual({ o: 1 });
  });
});

describe("a server's threads stay open", () => {
  it("by default a saver keeps a thousand threads' sessions open: a put to any of 100 threads used round-robin opens none again", async () => {
    const kv = memoryKv();
    const counted = { ...kv, get: (...args) => (gets++, kv.get(...args)) };
    let gets = 0;
    const saver = new AgentSessionSaver(await SessionStore.kv(counted));
    const threads = Array.from({ length: 100 }, (_, i) => `round-robin-${i}`);
    const put = (thread, n) =>
      saver.put({ configurable: { thread_id: thread } }, checkpoint(uuid6(0), { n }), meta(n), { n: n + 1 });
    for (const thread of threads) await put(thread, 0);
    // A put to a thread whose session is open, right after a put to it: the reads a put needs.
    await put(threads[99], 1);
    gets = 0;
    await put(threads[99], 2);
    const warm = gets;
    gets = 0;
    for (const thread of threads) await put(thread, 3);
    expect(gets).toBe(warm * threads.length);
  });
});
