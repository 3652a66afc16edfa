// Type-checks agent-session/langgraph as a user would write it (tsc -p tsconfig.types.json, run by
// run.sh). Not executed.
import { StateGraph, Annotation, START, END } from "@langchain/langgraph";
import { BaseCheckpointSaver, type CheckpointTuple } from "@langchain/langgraph-checkpoint";
import { SessionStore, ConcurrencyError, type Invocation } from "agent-session";
import { AgentSessionSaver, type AgentSessionSaverOptions } from "agent-session/langgraph";

const State = Annotation.Root({ log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }) });

export async function usage(): Promise<string[]> {
  const store = await SessionStore.memory();
  const options: AgentSessionSaverOptions = { prefix: "lg/", open: { idleTtlMs: 86_400_000 } };
  const checkpointer = new AgentSessionSaver(store, options);
  const base: BaseCheckpointSaver = checkpointer;
  void base;
  const graph = new StateGraph(State)
    .addNode("a", async () => ({ log: ["a"] }))
    .addEdge(START, "a")
    .addEdge("a", END)
    .compile({ checkpointer });
  const config = { configurable: { thread_id: "t1" } };
  try {
    const result = await checkpointer.guard("t1", (inv: Invocation) => {
      inv.setState("app", { turn: 1 }, { agent: "app" });
      return graph.invoke({ log: ["hi"] }, config);
    });
    // A function that returns a thenable (not a Promise) is awaited, as Session.invoke's is.
    const thenable: PromiseLike<number> = { then: (resolve) => Promise.resolve(3).then(resolve) };
    const three: number = await checkpointer.guard("t1", () => thenable);
    void three;
    return result.log;
  } catch (e) {
    if (e instanceof ConcurrencyError) return [`busy, retry in ${e.retryAfterMs} ms`];
    throw e;
  } finally {
    const latest: CheckpointTuple | undefined = await checkpointer.getTuple(config);
    for await (const tuple of checkpointer.list({ configurable: {} }, { limit: 5 })) void tuple.checkpoint.id;
    await checkpointer.putWrites(config, [["log", ["x"]]], "task", "path");
    const id: string = checkpointer.sessionId("t1") + checkpointer.agentName("");
    void latest;
    void id;
  }
}

// @ts-expect-error the store is required
new AgentSessionSaver();

export async function liveUsage(): Promise<number> {
  const checkpointer = new AgentSessionSaver(await SessionStore.memory());
  const graph = new StateGraph(State)
    .addNode("a", async () => ({ log: ["a"] }))
    .addEdge(START, "a")
    .addEdge("a", END)
    .compile({ checkpointer });
  const config = { configurable: { thread_id: "t1" }, streamMode: "updates" as const, signal: AbortSignal.timeout(1000) };
  const out = await checkpointer.invoke(graph, { log: ["hi"] }, { configurable: { thread_id: "t1" } });
  let n = out.log.length;
  for await (const chunk of checkpointer.stream(graph, { log: ["again"] }, config, { emit: (c) => ({ c: String(c) }) })) {
    void chunk;
    n++;
  }
  for await (const chunk of checkpointer.stream(graph, null, config, { emit: false, onBusy: { waitMs: 100 } })) void chunk;
  return n;
}

// @ts-expect-error the helpers need configurable.thread_id
void (async () => checkpointer0().invoke(null as never, {}, { configurable: {} }));
declare function checkpointer0(): AgentSessionSaver;
