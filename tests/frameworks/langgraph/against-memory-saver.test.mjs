// AgentSessionSaver against LangGraph's own MemorySaver, operation by operation, with a real StateGraph:
// seeded random sequences of invokes (guarded or not), forks from a checkpoint of the history,
// updateState and deleteThread on two threads, the same operations on a MemorySaver graph. After every
// step, the state and the whole history (values, next, step, source) read through this saver and
// through a new saver on another store over the same KV equal MemorySaver's. The nodes' messages are
// large enough (up to 54 KB) for the `messages` channel to pass 64 Ki units, so that rollups
// (langgraph/channel-values.js) are written and read back.
import { StateGraph, Annotation, START, END, MemorySaver } from "@langchain/langgraph";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionSaver } from "agent-session/langgraph";
import { storeVariants } from "../store-variants.mjs";

const State = Annotation.Root({
  messages: Annotation({ reducer: (a, b) => a.concat(b), default: () => [] }),
  steps: Annotation({ reducer: (a, b) => a + b, default: () => 0 }),
});

const graphWith = (checkpointer) =>
  new StateGraph(State)
    .addNode("agent", async (s) => ({
      messages: [{ role: "assistant", content: `x${s.messages.length}${"p".repeat((s.messages.length % 7) * 9000)}` }],
      steps: 1,
    }))
    .addNode("tools", async (s) => ({ messages: [{ role: "tool", content: `t${s.messages.length}` }], steps: 1 }))
    .addEdge(START, "agent")
    .addEdge("agent", "tools")
    .addEdge("tools", END)
    .compile({ checkpointer });

async function historyOf(graph, config) {
  const out = [];
  for await (const snapshot of graph.getStateHistory(config)) {
    out.push([snapshot.values, snapshot.next, snapshot.metadata?.step, snapshot.metadata?.source]);
  }
  return out;
}

it("6 seeded sequences of 40 steps (plain, encrypted, a one-session cache): states and histories equal MemorySaver's, through this saver and a fresh one", async () => {
  let rollups = 0;
  const done = {};
  const variants = await storeVariants();
  for (let trial = 0; trial < 6; trial++) {
    const options = variants[trial % variants.length];
    let seed = 31337 + trial * 4099;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const kv = memoryKv();
    const saver = new AgentSessionSaver(await SessionStore.kv(kv, options));
    const reference = graphWith(new MemorySaver());
    const ours = graphWith(saver);
    for (let step = 0; step < 40; step++) {
      const thread = random() < 0.75 ? "t1" : "t2";
      const config = { configurable: { thread_id: thread } };
      const input = { messages: [{ role: "user", content: `u${step}` }] };
      const where = `trial ${trial}, step ${step}`;
      const roll = random();
      let kind = "read";
      if (roll < 0.55) {
        kind = "invoke";
        const expected = await reference.invoke(input, config);
        const got = random() < 0.5 ? await saver.guard(thread, () => ours.invoke(input, config)) : await ours.invoke(input, config);
        expect(got, `${where}: invoke`).toEqual(expected);
      } else if (roll < 0.67) {
        const [theirs, mine] = [[], []];
        for await (const s of reference.getStateHistory(config)) theirs.push(s.config);
        for await (const s of ours.getStateHistory(config)) mine.push(s.config);
        if (theirs.length > 0) {
          kind = "fork";
          const k = Math.floor(random() * theirs.length);
          expect(await ours.invoke(input, mine[k]), `${where}: fork from #${k}`).toEqual(await reference.invoke(input, theirs[k]));
        }
      } else if (roll < 0.77) {
        kind = "updateState";
        const values = { messages: [{ role: "system", content: `s${step}` }], steps: 5 };
        await reference.updateState(config, values);
        await ours.updateState(config, values);
      } else if (roll < 0.8) {
        kind = "deleteThread";
        await reference.checkpointer.deleteThread(thread);
        await saver.deleteThread(thread);
      }
      done[kind] = (done[kind] ?? 0) + 1;
      const fresh = graphWith(new AgentSessionSaver(await SessionStore.kv(kv, options)));
      const expected = await reference.getState(config);
      const history = await historyOf(reference, config);
      for (const graph of [ours, fresh]) {
        const state = await graph.getState(config);
        expect([state.values, state.next], `${where} (${kind}): state`).toEqual([expected.values, expected.next]);
        expect(await historyOf(graph, config), `${where} (${kind}): history`).toEqual(history);
      }
    }
    const store = await SessionStore.kv(kv, options);
    for (const thread of ["t1", "t2"]) {
      const session = await store.open(saver.sessionId(thread), { create: false }).catch(() => undefined);
      for (const [key, value] of Object.entries(session?.state({ agent: "ns:" }) ?? {})) {
        if (key.startsWith("b") && Array.isArray(value?.p)) rollups++;
      }
    }
  }
  for (const kind of ["invoke", "fork", "updateState"]) expect(done[kind], kind).toBeGreaterThan(3);
  expect(done.deleteThread).toBeGreaterThan(1);
  expect(rollups).toBeGreaterThan(1);
}, 60_000);
