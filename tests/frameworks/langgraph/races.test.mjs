// AgentSessionSaver against what races it on a server: a deleteThread from another process while a
// guard holds the thread, a put whose parent checkpoint a delete took, a list() of every thread while
// a guard of the same saver ends, and a guard that waits behind one of its own saver. Deterministic:
// the nodes wait on gates, never on timers. Found by model.test.mjs.
import { StateGraph, Annotation, START, END, MemorySaver } from "@langchain/langgraph";
import { SessionStore, ConcurrencyError, LeaseLostError } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionSaver } from "agent-session/langgraph";

const State = Annotation.Root({
  messages: Annotation({ reducer: (a, b) => a.concat(b), default: () => [] }),
  steps: Annotation({ reducer: (a, b) => a + b, default: () => 0 }),
});

function gate() {
  let open;
  const promise = new Promise((resolve) => (open = resolve));
  return { promise, open };
}
const macrotask = () => new Promise((resolve) => setImmediate(resolve));
/** A second connection to the same backend (another process's). */
const connection = (base) => ({ capabilities: base.capabilities, get: base.get, put: base.put, delete: base.delete, list: base.list });

/** START -> agent -> END; the agent waits on `gates[last message]` when there is one. */
function graphOf(saver, gates = {}, running = {}) {
  return new StateGraph(State)
    .addNode("agent", async (s) => {
      const turn = s.messages.at(-1);
      if (gates[turn]) {
        running[turn]?.open();
        await gates[turn].promise;
      }
      return { messages: [`a:${turn}`], steps: 1 };
    })
    .addEdge(START, "agent")
    .addEdge("agent", END)
    .compile({ checkpointer: saver });
}

describe("AgentSessionSaver races", () => {
  it("a guard whose lease a deleteThread took stores nothing more, and a second guard of its saver waits for it to end", async () => {
    const kv = memoryKv();
    const saver = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "server-1" }));
    const otherServer = new AgentSessionSaver(await SessionStore.kv(connection(kv), { owner: "server-2" }));
    const gates = { A: gate() };
    const running = { A: gate() };
    const graph = graphOf(saver, gates, running);
    const config = { configurable: { thread_id: "t" }, durability: "sync" };
    await graph.invoke({ messages: ["first"] }, config);
    const turnA = saver.guard("t", () => graph.invoke({ messages: ["A"] }, config));
    await running.A.promise; // A holds the lease, its node runs
    await otherServer.deleteThread("t");
    // The thread's writes carry no mark of their turn: a second guard of this saver must not begin
    // while A runs, though the store would grant it a lease now.
    await expect(saver.guard("t", () => graph.invoke({ messages: ["B"] }, config))).rejects.toBeInstanceOf(ConcurrencyError);
    const waiting = saver.guard("t", () => graph.invoke({ messages: ["C"] }, config), { onBusy: { waitMs: 60_000 } });
    gates.A.open();
    await expect(turnA).rejects.toBeInstanceOf(LeaseLostError);
    const c = await waiting;
    expect(c.messages).toEqual(["C", "a:C"]);
    const fresh = new AgentSessionSaver(await SessionStore.kv(connection(kv), { owner: "reader" }));
    const stored = [];
    for await (const tuple of fresh.list({ configurable: { thread_id: "t" } })) stored.push(tuple.checkpoint.channel_values.messages ?? []);
    expect(stored.flat().filter((m) => m.includes("A"))).toEqual([]);
  });

  it("a put whose parent checkpoint a delete took keeps every channel, as MemorySaver does", async () => {
    const results = [];
    for (const make of [async () => new MemorySaver(), async () => new AgentSessionSaver(await SessionStore.kv(memoryKv()))]) {
      const saver = await make();
      let deleteNow = false;
      const getTuple = saver.getTuple.bind(saver);
      // The delete lands between the turn's read of the thread and its first put (another request's).
      saver.getTuple = async (config) => {
        const tuple = await getTuple(config);
        if (deleteNow) {
          deleteNow = false;
          await saver.deleteThread("t");
        }
        return tuple;
      };
      const graph = new StateGraph(State)
        .addNode("agent", async () => {
          throw new Error("agent failed");
        })
        .addEdge(START, "agent")
        .addEdge("agent", END)
        .compile({ checkpointer: saver });
      const config = { configurable: { thread_id: "t" }, durability: "sync" };
      await graph.updateState(config, { messages: ["u1", "a1"], steps: 1 });
      deleteNow = true;
      await expect(graph.invoke({ messages: ["u2"] }, config)).rejects.toThrow("agent failed");
      results.push((await graph.getState(config)).values);
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[1].steps).toBe(1);
  });

  it("list() of every thread while a guard of the same saver ends lists that thread", async () => {
    const base = memoryKv();
    // Reads of thread t2's records take a few macrotasks (another server's thread, over a network).
    const kv = {
      ...connection(base),
      get: async (key, ...rest) => {
        if (key.includes("t2")) for (let i = 0; i < 5; i++) await macrotask();
        return base.get(key, ...rest);
      },
    };
    const saver = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "server" }));
    const listTookT1 = gate();
    const graph = new StateGraph(State)
      .addNode("agent", async (s) => {
        if (s.messages.at(-1) === "u2") await listTookT1.promise;
        return { messages: ["a"], steps: 1 };
      })
      .addEdge(START, "agent")
      .addEdge("agent", END)
      .compile({ checkpointer: saver });
    await graph.invoke({ messages: ["u"] }, { configurable: { thread_id: "t1" } });
    const otherServer = new AgentSessionSaver(await SessionStore.kv(connection(base), { owner: "other" }));
    await graphOf(otherServer).invoke({ messages: ["u"] }, { configurable: { thread_id: "t2" } });
    // Lets the turn end once the list holds t1's view (the turn's own read is the first).
    let t1Views = 0;
    const view = saver._view;
    saver._view = async function (sid) {
      const v = await view.call(this, sid);
      if (sid.endsWith("t1") && ++t1Views === 2) listTookT1.open();
      return v;
    };
    const listing = (async () => {
      const threads = [];
      for await (const tuple of saver.list({ configurable: {} })) threads.push(tuple.config.configurable.thread_id);
      return threads;
    })();
    await saver.guard("t1", () => graph.invoke({ messages: ["u2"] }, { configurable: { thread_id: "t1" }, durability: "exit" }));
    const threads = await listing;
    expect(threads.filter((t) => t === "t1").length).toBeGreaterThan(0);
    expect(threads.filter((t) => t === "t2").length).toBeGreaterThan(0);
  });

  it("a guard waiting with onBusy behind a guard of its own saver gets the thread once that turn ends", async () => {
    const saver = new AgentSessionSaver(await SessionStore.kv(memoryKv()));
    const graph = graphOf(saver);
    const config = { configurable: { thread_id: "t" } };
    const order = [];
    const first = saver.guard("t", () => graph.invoke({ messages: ["u1"] }, config)).then(() => order.push("first"));
    const second = saver
      .guard("t", () => graph.invoke({ messages: ["u2"] }, config), { onBusy: { waitMs: 60_000 } })
      .then(() => order.push("second"));
    await Promise.all([first, second]);
    expect(order).toEqual(["first", "second"]);
    expect((await graph.getState(config)).values.messages).toEqual(["u1", "a:u1", "u2", "a:u2"]);
  });
});
