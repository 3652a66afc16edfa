// saver.guard(threadId, fn) with a real @langchain/langgraph StateGraph: one turn under one
// agent-session invocation. Two stores over one backend (SessionStore.kv over one memoryKv()) play
// two processes.
import {
  StateGraph,
  Annotation,
  MessagesAnnotation,
  START,
  END,
  MemorySaver,
  Command,
  interrupt,
  INTERRUPT,
} from "@langchain/langgraph";
import { AIMessage, HumanMessage, RemoveMessage } from "@langchain/core/messages";
import { SessionStore, ConcurrencyError, LeaseLostError, LimitExceededError, NotFoundError } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionSaver } from "agent-session/langgraph";
import { uuid6 } from "@langchain/langgraph-checkpoint";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const State = Annotation.Root({
  log: Annotation({ reducer: (a, b) => a.concat(b), default: () => [] }),
});

/** START -> a (awaits a timer) -> b -> END; each node logs "<node>@<who>". */
function buildGraph(checkpointer, who, { delayMs = 50, failInB = false } = {}) {
  return new StateGraph(State)
    .addNode("a", async () => {
      await sleep(delayMs);
      return { log: [`a@${who}`] };
    })
    .addNode("b", async () => {
      if (failInB) throw new Error(`b failed for ${who}`);
      return { log: [`b@${who}`] };
    })
    .addEdge(START, "a")
    .addEdge("a", "b")
    .addEdge("b", END)
    .compile({ checkpointer });
}

async function collect(gen) {
  const out = [];
  for await (const item of gen) out.push(item);
  return out;
}

/** Every string stored in a thread's checkpoints (channel values and pending writes), read from a third store. */
async function storedStrings(kv, threadId) {
  const reader = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "reader" }));
  const tuples = await collect(reader.list({ configurable: { thread_id: threadId } }));
  const text = JSON.stringify(tuples.map((t) => [t.checkpoint.channel_values, t.pendingWrites]));
  return { tuples, text };
}

async function soloRun(input) {
  const graph = buildGraph(new MemorySaver(), "solo", { delayMs: 1 });
  const config = { configurable: { thread_id: "solo" } };
  const result = await graph.invoke(input, config);
  return { result, checkpoints: (await collect(graph.checkpointer.list(config))).length };
}

describe("saver.guard(threadId, fn) with a real StateGraph", () => {
  it("runs a turn, commits a version per step and releases the lease", async () => {
    const kv = memoryKv();
    const store = await SessionStore.kv(kv);
    const saver = new AgentSessionSaver(store);
    const graph = buildGraph(saver, "A");
    const config = { configurable: { thread_id: "t-ok" } };
    const result = await saver.guard("t-ok", () => graph.invoke({ log: ["in"] }, config));
    expect(result.log).toEqual(["in", "a@A", "b@A"]);
    const solo = await soloRun({ log: ["in"] });
    const session = await store.open("langgraph/t-ok", { create: false });
    // One version per put (LangGraph puts once per step), nothing else: the writes of a step ride in
    // the next step's checkpoint, and the final release writes no empty version.
    expect(session.version).toBe(solo.checkpoints);
    expect(session.status).toBe("idle");
    const { tuples } = await storedStrings(kv, "t-ok");
    expect(tuples).toHaveLength(solo.checkpoints);
    // Released: another store begins at once.
    const other = await SessionStore.kv(kv, { owner: "next" });
    await (await (await other.open("langgraph/t-ok")).begin()).abort();
  });

  it("writes the caller stages on the invocation commit with the turn, even after the last put", async () => {
    const store = await SessionStore.memory();
    const saver = new AgentSessionSaver(store);
    const graph = buildGraph(saver, "A", { delayMs: 1 });
    const config = { configurable: { thread_id: "t-app" } };
    const result = await saver.guard("t-app", async (inv) => {
      const out = await graph.invoke({ log: ["in"] }, config);
      inv.setState("lastLog", out.log, { agent: "app" });
      return out;
    });
    const session = await store.open("langgraph/t-app", { create: false });
    expect(session.state({ agent: "app" })).toEqual({ lastLog: result.log });
    expect(session.status).toBe("idle");
  });

  it("two guarded runs on one thread from two stores: one fails fast, the thread holds only the winner's checkpoints", async () => {
    const kv = memoryKv();
    const sa = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "A" }));
    const sb = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "B" }));
    const config = { configurable: { thread_id: "t-race" } };
    const ga = buildGraph(sa, "A", { delayMs: 200 });
    const gb = buildGraph(sb, "B", { delayMs: 200 });
    const started = Date.now();
    const timed = (p) =>
      p.then(
        (value) => ({ ok: true, value, ms: Date.now() - started }),
        (error) => ({ ok: false, error, ms: Date.now() - started }),
      );
    const outcomes = await Promise.all([
      timed(sa.guard("t-race", () => ga.invoke({ log: ["A"] }, config))),
      timed(sb.guard("t-race", () => gb.invoke({ log: ["B"] }, config))),
    ]);
    const won = outcomes.filter((o) => o.ok);
    const lost = outcomes.filter((o) => !o.ok);
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0].error).toBeInstanceOf(ConcurrencyError);
    expect(lost[0].ms).toBeLessThan(150); // failed fast, while the winner's node was still sleeping
    const winner = outcomes[0].ok ? "A" : "B";
    const loser = winner === "A" ? "B" : "A";
    expect(won[0].value.log).toEqual([winner, `a@${winner}`, `b@${winner}`]);

    const { tuples, text } = await storedStrings(kv, "t-race");
    expect(tuples).toHaveLength((await soloRun({ log: ["x"] })).checkpoints);
    expect(text).toContain(`b@${winner}`);
    expect(text).not.toContain(`"${loser}"`);
    expect(text).not.toContain(`@${loser}`);
  });

  it("without the guard, the same two runs both 'succeed' and interleave in one thread (what the guard prevents)", async () => {
    const kv = memoryKv();
    const sa = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "A" }));
    const sb = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "B" }));
    const config = { configurable: { thread_id: "t-unguarded" } };
    const [ra, rb] = await Promise.all([
      buildGraph(sa, "A", { delayMs: 60 }).invoke({ log: ["A"] }, config),
      sleep(30).then(() => buildGraph(sb, "B", { delayMs: 60 }).invoke({ log: ["B"] }, config)),
    ]);
    // Each run saw only its own turn: B started from A's half-done thread and A never saw B.
    expect(ra.log).toEqual(["A", "a@A", "b@A"]);
    expect(rb.log).toContain("B");
    const { text } = await storedStrings(kv, "t-unguarded");
    expect(text).toContain("@A");
    expect(text).toContain("@B");
  });

  it("an error in the turn rethrows and releases; the steps checkpointed before it and the failed step's pending writes stay, as MemorySaver keeps them", async () => {
    const kv = memoryKv();
    const store = await SessionStore.kv(kv);
    const saver = new AgentSessionSaver(store);
    const graph = buildGraph(saver, "A", { delayMs: 5, failInB: true });
    const config = { configurable: { thread_id: "t-err" } };
    await expect(saver.guard("t-err", () => graph.invoke({ log: ["in"] }, config))).rejects.toThrow("b failed for A");
    const session = await store.open("langgraph/t-err", { create: false });
    expect(session.status).toBe("idle");
    const { tuples, text } = await storedStrings(kv, "t-err");
    expect(text).toContain("a@A"); // the step of node a was checkpointed
    // The failed step's writes (its __error__ write) are kept: LangGraph was told they were saved.
    expect(text).toContain("b failed");
    expect(tuples.length).toBeGreaterThan(0);
    const state = await graph.getState(config);
    expect(state.tasks.map((task) => [task.name, String(task.error?.message ?? task.error)])).toEqual([["b", "b failed for A"]]);
    // The thread is usable again at once, and resumes from the last checkpoint.
    const fixed = buildGraph(saver, "A2", { delayMs: 5 });
    const resumed = await saver.guard("t-err", () => fixed.invoke(null, config));
    expect(resumed.log).toEqual(["in", "a@A", "b@A2"]);
  });

  it("an error in a turn whose fn staged writes of its own on the invocation aborts: those and the failed step's writes are dropped", async () => {
    const kv = memoryKv();
    const store = await SessionStore.kv(kv);
    const saver = new AgentSessionSaver(store);
    const graph = buildGraph(saver, "A", { delayMs: 5, failInB: true });
    const config = { configurable: { thread_id: "t-err-own" } };
    const turn = saver.guard("t-err-own", async (inv) => {
      try {
        return await graph.invoke({ log: ["in"] }, config);
      } catch (error) {
        inv.setState("mine", 1, { agent: "app" }); // staged after the last put: goes with the turn
        throw error;
      }
    });
    await expect(turn).rejects.toThrow("b failed for A");
    const session = await store.open("langgraph/t-err-own", { create: false });
    expect(session.state({ agent: "app" })).toEqual({});
    const { text } = await storedStrings(kv, "t-err-own");
    expect(text).toContain("a@A");
    expect(text).not.toContain("b failed");
  });

  it("a stale holder (short lease, no heartbeat, taken over) gets LeaseLostError on put and stores nothing", async () => {
    const kv = memoryKv();
    const stale = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "A", leaseMs: 100, heartbeat: false }));
    const fresh = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "B" }));
    const refused = [];
    const put = stale.put.bind(stale);
    stale.put = async (config, checkpoint, ...rest) => {
      try {
        return await put(config, checkpoint, ...rest);
      } catch (e) {
        refused.push({ id: checkpoint.id, error: e });
        throw e;
      }
    };
    const config = { configurable: { thread_id: "t-stale" } };
    const slow = buildGraph(stale, "A", { delayMs: 300 });
    const running = stale.guard("t-stale", () => slow.invoke({ log: ["A"] }, config));
    running.catch(() => {});
    await sleep(150); // A's lease (100 ms, never renewed) has lapsed while its node a sleeps
    const b = await fresh.guard("t-stale", () => buildGraph(fresh, "B", { delayMs: 1 }).invoke({ log: ["B"] }, config));
    expect(b.log).toContain("b@B");
    await expect(running).rejects.toBeInstanceOf(LeaseLostError);

    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0].error).toBeInstanceOf(LeaseLostError);
    const reader = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "reader" }));
    for (const { id } of refused) {
      expect(
        await reader.getTuple({ configurable: { thread_id: "t-stale", checkpoint_ns: "", checkpoint_id: id } }),
      ).toBeUndefined();
    }
    const { text } = await storedStrings(kv, "t-stale");
    expect(text).not.toContain("a@A"); // nothing A produced after the takeover is visible
    expect(text).toContain("b@B");
  });

  it("inside a guard, put and putWrites after a takeover are refused with LeaseLostError and store nothing", async () => {
    const kv = memoryKv();
    const stale = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "A", leaseMs: 100, heartbeat: false }));
    const other = await SessionStore.kv(kv, { owner: "B" });
    const cp = (values) => ({
      v: 4,
      id: uuid6(0),
      ts: new Date().toISOString(),
      channel_values: values,
      channel_versions: Object.fromEntries(Object.keys(values).map((k) => [k, 1])),
      versions_seen: {},
    });
    const meta = { source: "loop", step: 0, parents: {} };
    const first = cp({ x: "kept" });
    const second = cp({ x: "refused" });
    let firstConfig;
    const outcome = stale.guard("t-stale-direct", async () => {
      firstConfig = await stale.put({ configurable: { thread_id: "t-stale-direct" } }, first, meta, { x: 1 });
      await sleep(150);
      const taker = await (await other.open("langgraph/t-stale-direct")).begin(); // takes the lapsed lease
      await taker.abort();
      await stale.putWrites(firstConfig, [["x", "staged-by-stale"]], "task-1"); // staged; refused with the put below
      await expect(stale.put(firstConfig, second, meta, { x: 1 })).rejects.toBeInstanceOf(LeaseLostError);
      await expect(stale.putWrites(firstConfig, [["x", "late"]], "task-2")).rejects.toBeInstanceOf(LeaseLostError);
      return "finished";
    });
    await expect(outcome).rejects.toBeInstanceOf(LeaseLostError);
    const reader = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "reader" }));
    const kept = await reader.getTuple(firstConfig);
    expect(kept.checkpoint.channel_values).toEqual({ x: "kept" });
    expect(kept.pendingWrites).toEqual([]);
    expect(
      await reader.getTuple({
        configurable: { thread_id: "t-stale-direct", checkpoint_ns: "", checkpoint_id: second.id },
      }),
    ).toBeUndefined();
  });

  it("a put that fails inside a guard ends the turn: later writes are refused, the step is aborted, earlier steps stay", async () => {
    const store = await SessionStore.memory({ limits: { maxStateValueBytes: 4000 } });
    const saver = new AgentSessionSaver(store);
    const cp = (values, versions) => ({
      v: 4,
      id: uuid6(0),
      ts: new Date().toISOString(),
      channel_values: values,
      channel_versions: versions,
      versions_seen: {},
    });
    const meta = { source: "loop", step: 0, parents: {} };
    const first = cp({ a: "small" }, { a: 1 });
    const second = cp({ a: "small2", big: "x".repeat(10000) }, { a: 2, big: 1 });
    let firstConfig;
    const outcome = saver.guard("t-limit", async () => {
      firstConfig = await saver.put({ configurable: { thread_id: "t-limit" } }, first, meta, { a: 1 });
      await saver.putWrites(firstConfig, [["a", "step write"]], "task-1");
      // The blob of `a` is staged, then `big` exceeds maxStateValueBytes: half a put must not be written.
      await expect(saver.put(firstConfig, second, meta, { a: 2, big: 1 })).rejects.toBeInstanceOf(LimitExceededError);
      await expect(saver.putWrites(firstConfig, [["a", "late"]], "task-2")).rejects.toBeInstanceOf(LimitExceededError);
      return "fn swallowed the errors";
    });
    await expect(outcome).rejects.toBeInstanceOf(LimitExceededError);
    const reader = new AgentSessionSaver(store);
    const kept = await reader.getTuple(firstConfig);
    expect(kept.checkpoint.channel_values).toEqual({ a: "small" });
    expect(kept.pendingWrites).toEqual([]); // the failed step's writes were aborted
    expect(
      await reader.getTuple({ configurable: { thread_id: "t-limit", checkpoint_ns: "", checkpoint_id: second.id } }),
    ).toBeUndefined();
    const session = await store.open("langgraph/t-limit", { create: false });
    expect(session.status).toBe("idle");
    expect(session.version).toBe(1); // the first put's checkpoint only
  });

  it("a second guard of the same thread in the same saver fails fast; other threads are independent", async () => {
    const saver = new AgentSessionSaver(await SessionStore.memory({ owner: "server-1", leaseMs: 20000 }));
    const graph = buildGraph(saver, "A", { delayMs: 100 });
    const first = saver.guard("t-same", () => graph.invoke({ log: ["1"] }, { configurable: { thread_id: "t-same" } }));
    await sleep(10);
    const busy = await saver
      .guard("t-same", () => graph.invoke({ log: ["2"] }, { configurable: { thread_id: "t-same" } }))
      .then(() => "resolved", (error) => error);
    expect(busy).toBeInstanceOf(ConcurrencyError);
    // As another process's guard would be told (API.md): the lease's owner and the time until it ends.
    expect(busy.holder).toBe("server-1");
    expect(busy.retryAfterMs).toBeGreaterThan(0);
    expect(busy.retryAfterMs).toBeLessThanOrEqual(20000);
    const other = await saver.guard("t-other", () =>
      graph.invoke({ log: ["3"] }, { configurable: { thread_id: "t-other" } }),
    );
    expect(other.log).toEqual(["3", "a@A", "b@A"]);
    expect((await first).log).toEqual(["1", "a@A", "b@A"]);
    const state = await graph.getState({ configurable: { thread_id: "t-same" } });
    expect(state.values.log).toEqual(["1", "a@A", "b@A"]);
  });

  it("an interrupt stays a LangGraph pending write: committed by the guard, resumed by the next guarded turn", async () => {
    const kv = memoryKv();
    const store = await SessionStore.kv(kv);
    const saver = new AgentSessionSaver(store);
    const graph = new StateGraph(State)
      .addNode("ask", async () => {
        const answer = interrupt({ question: "approve?" });
        return { log: [`answer:${answer}`] };
      })
      .addEdge(START, "ask")
      .addEdge("ask", END)
      .compile({ checkpointer: saver });
    const config = { configurable: { thread_id: "t-interrupt" } };
    const first = await saver.guard("t-interrupt", () => graph.invoke({ log: ["in"] }, config));
    expect(first[INTERRUPT][0].value).toEqual({ question: "approve?" });
    // The interrupt was written after the turn's last put: only the guard's final commit stores it.
    const reader = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "reader" }));
    const latest = await reader.getTuple(config);
    expect(latest.pendingWrites.map((w) => w[1])).toContain(INTERRUPT);
    // agent-session's own interrupt API is not used: the session is idle, not "interrupted".
    const session = await store.open("langgraph/t-interrupt", { create: false });
    expect(session.status).toBe("idle");
    expect(session.pendingInterrupt()).toBeNull();
    const resumed = await saver.guard("t-interrupt", () => graph.invoke(new Command({ resume: "yes" }), config));
    expect(resumed.log).toEqual(["in", "answer:yes"]);
  });

  it("time travel and forks through a real graph read the right branch", async () => {
    const saver = new AgentSessionSaver(await SessionStore.kv(memoryKv()));
    const graph = buildGraph(saver, "A", { delayMs: 1 });
    const config = { configurable: { thread_id: "t-fork" } };
    await saver.guard("t-fork", () => graph.invoke({ log: ["turn1"] }, config));
    await saver.guard("t-fork", () => graph.invoke({ log: ["turn2"] }, config));
    const history = await collect(graph.getStateHistory(config));
    const endOfTurn1 = history.find((s) => s.values.log.join() === "turn1,a@A,b@A" && s.next.length === 0);
    // Read the past...
    const past = await graph.getState(endOfTurn1.config);
    expect(past.values.log).toEqual(["turn1", "a@A", "b@A"]);
    // ...and fork from it: the new branch writes the same channel version as turn 2 did.
    await saver.guard("t-fork", () => graph.updateState(endOfTurn1.config, { log: ["fork"] }));
    expect((await graph.getState(config)).values.log).toEqual(["turn1", "a@A", "b@A", "fork"]);
    const turn2End = history[0];
    expect((await graph.getState(turn2End.config)).values.log).toEqual(["turn1", "a@A", "b@A", "turn2", "a@A", "b@A"]);
  });
});

// ---------------------------------------------------------------------------------------------
// RemoveMessage: LangGraph shrinks the messages channel itself (messagesStateReducer applies the
// RemoveMessage writes); the saver stores the shorter list as the channel's next value. There is no
// message log to compact (the session's messages are one note per checkpoint), and the longer values
// stay for time travel. Retention maps instead: session.prune drops the per-version event batches,
// and every checkpoint stays readable, because the checkpoints are the session's state.

/** START -> chat (answers the last message) -> trim (keeps the last 2 messages once there are more than 4) -> END. */
function trimmingGraph(checkpointer) {
  return new StateGraph(MessagesAnnotation)
    .addNode("chat", async ({ messages }) => ({ messages: [new AIMessage(`echo:${messages.at(-1).content}`)] }))
    .addNode("trim", async ({ messages }) =>
      messages.length > 4 ? { messages: messages.slice(0, -2).map((m) => new RemoveMessage({ id: m.id })) } : {},
    )
    .addEdge(START, "chat")
    .addEdge("chat", "trim")
    .addEdge("trim", END)
    .compile({ checkpointer });
}

describe("RemoveMessage shrinking through AgentSessionSaver", () => {
  it("a fresh saver reads the shrunk conversation; time travel keeps the originals; prune keeps every checkpoint; the guard holds", async () => {
    const kv = memoryKv();
    const saverA = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "a" }));
    const graphA = trimmingGraph(saverA);
    const config = { configurable: { thread_id: "t-trim" } };
    for (const text of ["h1", "h2", "h3"]) await saverA.invoke(graphA, { messages: [new HumanMessage(text)] }, config);
    const contents = (state) => state.values.messages.map((m) => m.content);

    // Another process reads the shrunk conversation.
    const storeB = await SessionStore.kv(kv, { owner: "b" });
    const saverB = new AgentSessionSaver(storeB);
    const graphB = trimmingGraph(saverB);
    expect(contents(await graphB.getState(config))).toEqual(["h3", "echo:h3"]);
    // LangGraph's own history keeps the originals: the checkpoint before the trim has all six.
    const history = await collect(graphB.getStateHistory(config));
    const beforeTrim = history.find((s) => s.next.includes("trim") && s.values.messages.length === 6);
    expect(contents(beforeTrim)).toEqual(["h1", "echo:h1", "h2", "echo:h2", "h3", "echo:h3"]);

    // Nothing to compact: the session's messages are the checkpoint notes, and no event is `compacted`.
    const session = await storeB.open("langgraph/t-trim", { create: false });
    const notes = session.messages({ agent: saverB.agentName("") });
    expect(notes).toHaveLength(history.length);
    expect(notes.every((note) => typeof note.checkpoint === "string")).toBe(true);
    expect((await session.history()).some((e) => e.type === "compacted")).toBe(false);

    // Retention: prune the versions before the latest; every checkpoint is still there (it is state).
    const version = session.version;
    expect(await session.prune({ before: version })).toBeGreaterThan(0);
    await expect(session.at(1)).rejects.toBeInstanceOf(NotFoundError);
    const reader = trimmingGraph(new AgentSessionSaver(await SessionStore.kv(kv, { owner: "reader" })));
    expect(contents(await reader.getState(config))).toEqual(["h3", "echo:h3"]);
    const after = await collect(reader.getStateHistory(config));
    expect(after.map((s) => s.config.configurable.checkpoint_id)).toEqual(history.map((s) => s.config.configurable.checkpoint_id));
    expect(contents(await reader.getState(beforeTrim.config))).toEqual(contents(beforeTrim));

    // The guard still holds: while another process holds the thread, a guarded turn fails fast.
    const holder = await session.begin();
    await expect(saverA.invoke(graphA, { messages: [new HumanMessage("h4")] }, config)).rejects.toBeInstanceOf(ConcurrencyError);
    await holder.abort();
    await saverA.invoke(graphA, { messages: [new HumanMessage("h4")] }, config);
    expect(contents(await graphB.getState(config))).toEqual(["h3", "echo:h3", "h4", "echo:h4"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Live turns: saver.invoke / saver.stream run the graph with the invocation's signal and forward
// the stream's chunks to the turn's live log; followers in another store see them, and a stop from
// another store ends the turn.

/** Follows `session` until the first `end` (or `ms`); every event, in order. */
async function followTurn(session, ms = 5000) {
  const events = [];
  for await (const event of session.follow({ signal: AbortSignal.timeout(ms) })) {
    events.push(event);
    if (event.type === "end") break;
  }
  return events;
}

/** START -> plan -> write -> END; each node waits `delayMs` and writes custom stream parts. */
function liveGraph(checkpointer, { delayMs = 70 } = {}) {
  return new StateGraph(State)
    .addNode("plan", async (_state, config) => {
      await sleep(delayMs);
      config.writer?.({ token: "planning" });
      return { log: ["plan"] };
    })
    .addNode("write", async (_state, config) => {
      for (const token of ["Hello", " world"]) {
        await sleep(delayMs);
        config.writer?.({ token });
      }
      return { log: ["write"] };
    })
    .addEdge(START, "plan")
    .addEdge("plan", "write")
    .addEdge("write", END)
    .compile({ checkpointer });
}

/** START -> first -> stuck -> END; `stuck` waits for the run's abort signal (or 3 s). */
function stoppableGraph(checkpointer, seen) {
  return new StateGraph(State)
    .addNode("first", async (_state, config) => {
      config.writer?.({ token: "started" });
      return { log: ["first"] };
    })
    .addNode("stuck", async (_state, config) => {
      config.writer?.({ token: "thinking" });
      const signal = config.signal;
      seen.hadSignal = signal instanceof AbortSignal;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 3000);
        signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
      seen.aborted = signal?.aborted === true;
      seen.reason = signal?.reason;
      return { log: ["stuck-finished"] };
    })
    .addEdge(START, "first")
    .addEdge("first", "stuck")
    .addEdge("stuck", END)
    .compile({ checkpointer });
}

async function liveStores() {
  const kv = memoryKv();
  return [kv, await SessionStore.kv(kv, { owner: "runner" }), await SessionStore.kv(kv, { owner: "viewer" })];
}

describe("live turns: saver.invoke / saver.stream", () => {
  it("stream forwards every chunk (streamMode as given) to a follower in another store, in order, then `end` committed", async () => {
    const [kv, storeA, storeB] = await liveStores();
    const saver = new AgentSessionSaver(storeA);
    const graph = liveGraph(saver);
    const config = { configurable: { thread_id: "t-live" }, streamMode: ["updates", "custom"] };
    const viewer = await storeB.open(saver.sessionId("t-live"));
    const following = followTurn(viewer);
    const chunks = [];
    for await (const chunk of saver.stream(graph, { log: ["in"] }, config)) chunks.push(chunk);
    expect(chunks).toEqual([
      ["custom", { token: "planning" }],
      ["updates", { plan: { log: ["plan"] } }],
      ["custom", { token: "Hello" }],
      ["custom", { token: " world" }],
      ["updates", { write: { log: ["write"] } }],
    ]);
    const events = await following;
    const parts = events.filter((e) => e.type === "part");
    const end = events.at(-1);
    expect(end.type).toBe("end");
    expect(end.outcome).toBe("committed");
    expect(parts.map((p) => p.data)).toEqual(JSON.parse(JSON.stringify(chunks)));
    expect(parts.map((p) => p.seq)).toEqual(parts.map((_, i) => i));
    expect(parts.every((p) => p.invocation === end.invocation)).toBe(true);
    // Between the parts, only the step checkpoints (commit events), at ascending versions below the end.
    const commits = events.filter((e) => e.type === "commit").map((e) => e.version);
    expect(events.filter((e) => !["part", "commit", "end"].includes(e.type))).toEqual([]);
    expect([...commits].sort((a, b) => a - b)).toEqual(commits);
    expect(commits.every((v) => v < end.version)).toBe(true);
    // The checkpoints are the record: another store reads the finished thread.
    const reader = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "reader" }));
    const latest = await reader.getTuple({ configurable: { thread_id: "t-live" } });
    expect(latest.checkpoint.channel_values.log).toEqual(["in", "plan", "write"]);
    expect((await viewer.history()).some((e) => e.type === "part")).toBe(false);
  });

  // On a KV whose calls take time (a remote one), a step's checkpoint is still being written when
  // LangGraph yields that step's chunk and runs the next node: the chunks and what the nodes stage then
  // must not be refused (they were: the follower missed chunks, a node's emit failed the turn).
  function slowKv(ms) {
    const kv = memoryKv();
    const delayed = (name) => async (...args) => {
      await sleep(ms);
      return kv[name](...args);
    };
    return { capabilities: kv.capabilities, get: delayed("get"), put: delayed("put"), delete: delayed("delete"), list: delayed("list") };
  }

  for (const streamMode of ["updates", "values"]) {
    it(`stream on a KV with latency (streamMode "${streamMode}"): the follower gets every chunk, including those yielded while a step's checkpoint is written`, async () => {
      const kv = slowKv(2);
      const saver = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "runner" }));
      const graph = liveGraph(saver, { delayMs: 1 });
      const viewer = await (await SessionStore.kv(kv, { owner: "viewer" })).open(saver.sessionId("t-slow"));
      const following = followTurn(viewer);
      const chunks = [];
      for await (const chunk of saver.stream(graph, { log: ["in"] }, { configurable: { thread_id: "t-slow" }, streamMode })) {
        chunks.push(chunk);
      }
      expect(chunks.length).toBeGreaterThan(1);
      const events = await following;
      expect(events.at(-1)).toMatchObject({ type: "end", outcome: "committed" });
      const parts = events.filter((e) => e.type === "part");
      expect(parts.map((p) => p.data)).toEqual(JSON.parse(JSON.stringify(chunks)));
      expect(parts.map((p) => p.seq)).toEqual(parts.map((_, i) => i));
    });
  }

  it("guard on a KV with latency: nodes that emit and stage app state while the last step's checkpoint is written commit with the turn", async () => {
    const kv = slowKv(2);
    const saver = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "runner" }));
    let inv;
    const node = (name) => async () => {
      inv.emit({ progress: `${name} started` });
      inv.setState(`seen.${name}`, true, { agent: "app" });
      await sleep(1);
      return { log: [name] };
    };
    const graph = new StateGraph(State)
      .addNode("a", node("a"))
      .addNode("b", node("b"))
      .addNode("c", node("c"))
      .addEdge(START, "a")
      .addEdge("a", "b")
      .addEdge("b", "c")
      .addEdge("c", END)
      .compile({ checkpointer: saver });
    const viewer = await (await SessionStore.kv(kv, { owner: "viewer" })).open(saver.sessionId("t-nodes"));
    const following = followTurn(viewer);
    const out = await saver.guard("t-nodes", async (i) => {
      inv = i;
      return graph.invoke({ log: ["in"] }, { configurable: { thread_id: "t-nodes" }, signal: i.signal });
    });
    expect(out.log).toEqual(["in", "a", "b", "c"]);
    const events = await following;
    expect(events.filter((e) => e.type === "part").map((e) => e.data.progress)).toEqual(["a started", "b started", "c started"]);
    expect(events.at(-1)).toMatchObject({ type: "end", outcome: "committed" });
    await viewer.refresh();
    expect({ ...viewer.state({ agent: "app" }) }).toEqual({ "seen.a": true, "seen.b": true, "seen.c": true });
  });

  it("stream: emit: false forwards nothing, a function picks the parts; invoke passes the signal and emits nothing", async () => {
    const store = await SessionStore.memory();
    const saver = new AgentSessionSaver(store);
    const graph = liveGraph(saver, { delayMs: 60 });
    const session = await store.open(saver.sessionId("t-opts"));
    const config = { configurable: { thread_id: "t-opts" }, streamMode: "custom" };
    const picked = followTurn(session);
    const tokens = [];
    const stream = saver.stream(graph, { log: ["1"] }, config, {
      emit: (chunk) => (chunk.token === "planning" ? undefined : { t: chunk.token }),
    });
    for await (const chunk of stream) tokens.push(chunk.token);
    expect(tokens).toEqual(["planning", "Hello", " world"]);
    const events = await picked;
    expect(events.filter((e) => e.type === "part").map((e) => e.data)).toEqual([{ t: "Hello" }, { t: " world" }]);
    expect(events.at(-1).outcome).toBe("committed");

    const before = session.version;
    for await (const chunk of saver.stream(graph, { log: ["2"] }, config, { emit: false })) void chunk;
    await session.refresh();
    // No part: one version per put (the same count as a fresh thread's run), and the turn releases
    // after its last checkpoint without an empty version, as guard does.
    expect(session.version - before).toBe((await soloRun({ log: ["x"] })).checkpoints);

    const seen = {};
    const probe = new StateGraph(State)
      .addNode("n", async (_state, cfg) => {
        seen.signal = cfg.signal;
        return { log: ["n"] };
      })
      .addEdge(START, "n")
      .addEdge("n", END)
      .compile({ checkpointer: saver });
    const out = await saver.invoke(probe, { log: ["3"] }, { configurable: { thread_id: "t-invoke" } });
    expect(out.log).toEqual(["3", "n"]);
    expect(seen.signal).toBeInstanceOf(AbortSignal); // linked to the invocation's: see the stop tests
    await expect(saver.invoke(probe, {}, { configurable: {} })).rejects.toThrow(/thread_id is required/);
  });

  it("a turn without parts (invoke, stream with emit: false) ends `committed` for a follower in another store, without an empty version; a failed one `aborted`", async () => {
    const [, storeA, storeB] = await liveStores();
    const saver = new AgentSessionSaver(storeA);
    const graph = buildGraph(saver, "A", { delayMs: 40 });
    const viewer = await storeB.open(saver.sessionId("t-quiet"));
    const config = { configurable: { thread_id: "t-quiet" } };
    const checkpoints = (await soloRun({ log: ["x"] })).checkpoints;

    let following = followTurn(viewer);
    await saver.invoke(graph, { log: ["1"] }, config);
    let events = await following;
    expect(events.filter((e) => e.type === "part")).toEqual([]);
    expect(events.at(-1)).toMatchObject({ type: "end", outcome: "committed", version: checkpoints });

    following = followTurn(viewer);
    for await (const chunk of saver.stream(graph, { log: ["2"] }, config, { emit: false })) void chunk;
    events = await following;
    expect(events.at(-1)).toMatchObject({ type: "end", outcome: "committed" });
    await viewer.refresh();
    expect(viewer.version).toBe(events.at(-1).version);

    following = followTurn(viewer);
    await expect(
      saver.guard("t-quiet", async () => {
        await graph.invoke({ log: ["3"] }, config);
        throw new Error("the caller's own failure");
      }),
    ).rejects.toThrow("the caller's own failure");
    events = await following;
    expect(events.at(-1)).toMatchObject({ type: "end", outcome: "aborted" });
  });

  it("a plain guard whose fn emits parts ends the turn with a commit, so followers see `committed`", async () => {
    const store = await SessionStore.memory();
    const saver = new AgentSessionSaver(store);
    const graph = buildGraph(saver, "A", { delayMs: 80 });
    const session = await store.open(saver.sessionId("t-emit"));
    const following = followTurn(session);
    const config = { configurable: { thread_id: "t-emit" } };
    const out = await saver.guard("t-emit", async (inv) => {
      inv.emit({ status: "starting" });
      const result = await graph.invoke({ log: ["in"] }, { ...config, signal: inv.signal });
      inv.emit({ status: "done" });
      return result;
    });
    expect(out.log).toEqual(["in", "a@A", "b@A"]);
    const events = await following;
    expect(events.filter((e) => e.type === "part").map((e) => e.data)).toEqual([{ status: "starting" }, { status: "done" }]);
    expect(events.at(-1)).toMatchObject({ type: "end", outcome: "committed" });
    // One version per put, plus the final (empty) commit that ends the live turn.
    expect(events.at(-1).version).toBe((await soloRun({ log: ["x"] })).checkpoints + 1);
  });

  for (const mode of ["invoke", "stream"]) {
    it(`stop() from another store aborts a guarded ${mode} through the signal; the turn ends "stopped" with one stopped event`, async () => {
      const [kv, storeA, storeB] = await liveStores();
      const saver = new AgentSessionSaver(storeA);
      const seen = {};
      const graph = stoppableGraph(saver, seen);
      const config = { configurable: { thread_id: `t-stop-${mode}` }, streamMode: "custom" };
      const viewer = await storeB.open(saver.sessionId(config.configurable.thread_id));
      const following = followTurn(viewer);
      const chunks = [];
      const running =
        mode === "invoke"
          ? saver.invoke(graph, { log: ["in"] }, config)
          : (async () => {
              for await (const chunk of saver.stream(graph, { log: ["in"] }, config)) chunks.push(chunk);
            })();
      running.catch(() => {});
      await sleep(150);
      const stop = await viewer.stop({ reason: "enough" });
      expect(stop.outcome).toBe("stopped");
      await expect(running).rejects.toMatchObject({ name: "StopRequestedError", code: "STOP_REQUESTED", by: "viewer", reason: "enough" });
      expect(seen.hadSignal).toBe(true);
      expect(seen.aborted).toBe(true);
      expect(seen.reason?.code).toBe("STOP_REQUESTED");
      if (mode === "stream") expect(chunks).toEqual([{ token: "started" }, { token: "thinking" }]);

      const events = await following;
      const end = events.at(-1);
      expect(end.type).toBe("end");
      expect(end.outcome).toBe("stopped");
      expect(end.version).toBe(stop.version);
      if (mode === "stream") {
        expect(events.filter((e) => e.type === "part").map((e) => e.data)).toEqual([{ token: "started" }, { token: "thinking" }]);
      }
      await sleep(50); // the aborted node finishes in the background: nothing of it is written
      await viewer.refresh();
      expect(viewer.version).toBe(stop.version);
      expect(viewer.status).toBe("idle");
      const stopped = (await viewer.history()).filter((e) => e.type === "stopped");
      expect(stopped).toHaveLength(1);
      expect(stopped[0]).toMatchObject({ version: stop.version, reason: "enough", data: { by: "viewer", outcome: "stopped" } });
      // The step before the stop stays checkpointed; the thread goes on from it.
      const reader = new AgentSessionSaver(await SessionStore.kv(kv, { owner: "reader" }));
      const latest = await reader.getTuple({ configurable: { thread_id: config.configurable.thread_id } });
      expect(latest.checkpoint.channel_values.log).toEqual(["in", "first"]);
      const done = new StateGraph(State)
        .addNode("first", async () => ({ log: ["first-again"] }))
        .addNode("stuck", async () => ({ log: ["stuck-resumed"] }))
        .addEdge(START, "first")
        .addEdge("first", "stuck")
        .addEdge("stuck", END)
        .compile({ checkpointer: saver });
      const resumed = await saver.invoke(done, null, { configurable: config.configurable });
      expect(resumed.log).toEqual(["in", "first", "stuck-resumed"]);
    });
  }
});

describe("no thread id", () => {
  it("guard, deleteThread and sessionId refuse an undefined or null thread id with a TypeError, and touch no thread", async () => {
    const store = await SessionStore.memory();
    const saver = new AgentSessionSaver(store);
    // A real thread named "undefined": a caller's bug must not guard or delete it.
    const named = await store.open(saver.sessionId("undefined"));
    await named.invoke((inv) => inv.appendMessage("kept"));
    for (const threadId of [undefined, null]) {
      expect(() => saver.sessionId(threadId)).toThrow(TypeError);
      await expect(saver.guard(threadId, async () => "ran")).rejects.toThrow(/the thread id is (undefined|null); pass the thread_id of the config/);
      await expect(saver.deleteThread(threadId)).rejects.toThrow(TypeError);
    }
    await named.refresh();
    expect(named.messages()).toEqual(["kept"]);
    expect(named.status).toBe("idle");
    await store.close();
  });
});
