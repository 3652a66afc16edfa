// AgentSessionSaver against LangGraph's MemorySaver on a graph that uses what the simple comparison
// (against-memory-saver.test.mjs) does not: a node that calls interrupt() and is resumed with
// Command({ resume }), two nodes that run in parallel from one (pending writes of one superstep), a
// node that throws now and then (a failed task's error write, the thread left to be resumed), and a
// subgraph (checkpoints under a checkpoint_ns). Seeded random sequences of invokes (guarded or not),
// resumes, retries and forks from a checkpoint of the history on two threads, the same operations on a
// MemorySaver graph. After every step the state (values, next, the tasks' interrupts and errors, the
// subgraph's state) and the history read through this saver and through a new saver over the same KV
// equal MemorySaver's. Each run takes one of LangGraph's durability modes, the same for both.
import { StateGraph, Annotation, START, END, MemorySaver, Command, interrupt } from "@langchain/langgraph";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionSaver } from "agent-session/langgraph";
import { storeVariants } from "../store-variants.mjs";

const State = Annotation.Root({
  log: Annotation({ reducer: (a, b) => a.concat(b), default: () => [] }),
  fail: Annotation({ reducer: (_, b) => b, default: () => false }),
});

const Inner = Annotation.Root({ log: Annotation({ reducer: (a, b) => a.concat(b), default: () => [] }) });

/** The graph: plan -> (search, draft in parallel) -> review (interrupt) -> sub (a subgraph) -> END. */
function graphWith(checkpointer) {
  const sub = new StateGraph(Inner)
    .addNode("inner", async (s) => ({ log: [`inner${s.log.length}`] }))
    .addEdge(START, "inner")
    .addEdge("inner", END)
    .compile();
  return new StateGraph(State)
    .addNode("plan", async (s) => ({ log: [`plan${s.log.length}`] }))
    .addNode("search", async (s) => {
      if (s.fail) throw new Error(`search failed at ${s.log.length}`);
      return { log: [`search${s.log.length}`] };
    })
    .addNode("draft", async (s) => ({ log: [`draft${s.log.length}`] }))
    .addNode("review", async (s) => {
      const answer = interrupt({ question: `ok at ${s.log.length}?` });
      return { log: [`review:${JSON.stringify(answer)}`], fail: false };
    })
    .addNode("sub", sub)
    .addEdge(START, "plan")
    .addEdge("plan", "search")
    .addEdge("plan", "draft")
    .addEdge(["search", "draft"], "review")
    .addEdge("review", "sub")
    .addEdge("sub", END)
    .compile({ checkpointer });
}

/** What getState shows, without the parts that differ by saver (configs, timestamps, ids). */
function stateOf(snapshot) {
  return {
    values: snapshot.values,
    next: snapshot.next,
    tasks: snapshot.tasks.map((task) => ({
      name: task.name,
      error: task.error === undefined ? undefined : String(task.error?.message ?? task.error),
      interrupts: task.interrupts.map((i) => i.value),
      state: task.state?.values,
    })),
    step: snapshot.metadata?.step,
    source: snapshot.metadata?.source,
  };
}

async function historyOf(graph, config) {
  const out = [];
  for await (const snapshot of graph.getStateHistory(config)) out.push(stateOf(snapshot));
  return out;
}

/** An invoke's result without the interrupts' ids (made from checkpoint ids, which differ by saver). */
function withoutIds(value) {
  if (value === null || typeof value !== "object" || !Array.isArray(value.__interrupt__)) return value;
  return { ...value, __interrupt__: value.__interrupt__.map(({ id, ...rest }) => rest) };
}

/** Runs `fn`, giving its value or the error's message (a failing node's error reaches the caller). */
async function outcome(fn) {
  try {
    return { value: withoutIds(await fn()) };
  } catch (error) {
    return { error: String(error?.message ?? error) };
  }
}

it("interrupts, parallel nodes, failing tasks and a subgraph: 6 seeded sequences (plain, encrypted, a one-session cache) equal MemorySaver's", async () => {
  const done = {};
  const variants = await storeVariants();
  for (let trial = 0; trial < 6; trial++) {
    const options = variants[trial % variants.length];
    let seed = 8675309 + trial * 4111;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const kv = memoryKv();
    const saver = new AgentSessionSaver(await SessionStore.kv(kv, options));
    const reference = graphWith(new MemorySaver());
    const ours = graphWith(saver);
    for (let step = 0; step < 30; step++) {
      const thread = random() < 0.7 ? "t1" : "t2";
      const config = { configurable: { thread_id: thread } };
      const where = `trial ${trial}, step ${step}`;
      const current = await reference.getState(config);
      const interrupted = current.tasks.some((task) => task.interrupts.length > 0);
      const roll = random();
      let kind;
      let input;
      let runConfig = config;
      if (interrupted && roll < 0.7) {
        kind = "resume";
        input = new Command({ resume: { approved: random() < 0.5, step } });
      } else if (current.next.length > 0 && roll < 0.8) {
        kind = "retry"; // run on from where it stopped (a failed task runs again)
        input = null;
      } else if (roll < 0.9) {
        kind = "invoke";
        input = { log: [`u${step}`], fail: random() < 0.3 };
      } else {
        const [theirs, mine] = [[], []];
        for await (const s of reference.getStateHistory(config)) theirs.push(s.config);
        for await (const s of ours.getStateHistory(config)) mine.push(s.config);
        if (theirs.length === 0) continue;
        kind = "fork";
        const k = Math.floor(random() * theirs.length);
        input = { log: [`f${step}`], fail: false };
        const expected = await outcome(() => reference.invoke(input, theirs[k]));
        const got = await outcome(() => ours.invoke(input, mine[k]));
        expect(got, `${where}: fork from #${k}`).toEqual(expected);
        runConfig = undefined;
      }
      if (runConfig !== undefined) {
        // LangGraph's durability: "async" (its default) puts after each step, "exit" once at the end
        // (putting again the pending writes it read), "sync" waits for each put.
        const durability = [undefined, "exit", "sync"][Math.floor(random() * 3)];
        const run = durability === undefined ? config : { ...config, durability };
        const expected = await outcome(() => reference.invoke(input, run));
        const guarded = random() < 0.5;
        const got = await outcome(() => (guarded ? saver.guard(thread, () => ours.invoke(input, run)) : ours.invoke(input, run)));
        expect(got, `${where}: ${kind}${guarded ? " (guarded)" : ""}${durability ? ` durability ${durability}` : ""}`).toEqual(expected);
        if (expected.error !== undefined) kind += " (failed)";
        if (durability === "exit") done.exit = (done.exit ?? 0) + 1;
        if (guarded) kind += ", guarded";
      }
      done[kind] = (done[kind] ?? 0) + 1;
      const fresh = graphWith(new AgentSessionSaver(await SessionStore.kv(kv, options)));
      const expected = stateOf(await reference.getState(config, { subgraphs: true }));
      const history = await historyOf(reference, config);
      for (const [name, graph] of [["this saver", ours], ["a fresh saver", fresh]]) {
        expect(stateOf(await graph.getState(config, { subgraphs: true })), `${where} (${kind}), ${name}: state`).toEqual(expected);
        expect(await historyOf(graph, config), `${where} (${kind}), ${name}: history`).toEqual(history);
      }
    }
  }
  // The sequences reached every kind of step.
  for (const kind of ["invoke", "invoke (failed)", "resume", "retry", "fork"]) {
    const count = Object.entries(done).reduce((n, [k, v]) => n + (k === kind || k === `${kind}, guarded` ? v : 0), 0);
    expect(count, `${kind} steps: ${JSON.stringify(done)}`).toBeGreaterThan(0);
  }
  for (const kind of ["invoke (failed), guarded", "resume, guarded", "exit"]) expect(done[kind] ?? 0, `${kind} steps: ${JSON.stringify(done)}`).toBeGreaterThan(0);
});
