// agent-session/openai-agents: AgentSessionItems as an OpenAI Agents JS `Session` (@openai/agents
// 0.20.0), checked against the SDK's own MemorySession on the same scripts, with ScriptedModel (no
// network). Run: node --test --test-reporter=spec tests/frameworks/openai-agents.test.mjs
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runInNewContext } from "node:vm";
import {
  Agent,
  MemorySession,
  OpenAIResponsesCompactionSession,
  RunState,
  Runner,
  run,
  setTracingDisabled,
  tool,
} from "@openai/agents";
import {
  ScriptedModel,
  assistantMessage,
  functionCall,
  modelError,
  modelResponder,
  modelStreamResponder,
} from "@openai/agents/testing";
import { z } from "zod";
import { ConcurrencyError, SessionStore, ValidationError } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionItems, ITEMS_KEY, META_KEY, streamEventPart } from "agent-session/openai-agents";
import { storeVariants } from "./store-variants.mjs";
import { followTurn, stoppedBy } from "./live-turns.mjs";

setTracingDisabled(true);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const user = (text) => ({ role: "user", content: [{ type: "input_text", text }] });

async function adapter(id = "s") {
  const store = await SessionStore.memory();
  return { store, items: new AgentSessionItems(store, id) };
}

// ---------------------------------------------------------------------------------------------
// The behaviours of the SDK's MemorySession tests (packages/agents-core/test/memorySession.test.ts),
// run on both, so a difference between them is a failure here.

const backends = [
  ["MemorySession", async (sessionId) => new MemorySession({ sessionId })],
  ["AgentSessionItems", async (sessionId) => (await adapter(sessionId)).items],
];

for (const [name, make] of backends) {
  describe(`Session contract: ${name}`, () => {
    test("getSessionId echoes the id; items keep their order; getItems(n) is the newest n in order", async () => {
      const session = await make("session-1");
      assert.equal(await session.getSessionId(), "session-1");
      assert.deepEqual(await session.getItems(), []);
      const initial = [user("hello")];
      await session.addItems(initial);
      assert.deepEqual(await session.getItems(), initial);
      const added = [user("one"), user("two")];
      await session.addItems(added);
      assert.deepEqual(await session.getItems(), [...initial, ...added]);
      assert.deepEqual(await session.getItems(2), added);
      assert.deepEqual(await session.getItems(1), [added[1]]);
      assert.deepEqual(await session.getItems(10), [...initial, ...added]);
    });

    test("getItems(0) and a negative limit return []", async () => {
      const session = await make("session-zero");
      await session.addItems([user("a"), user("b")]);
      assert.deepEqual(await session.getItems(0), []);
      assert.deepEqual(await session.getItems(-1), []);
      // NaN is not <= 0: every item, as MemorySession gives them.
      assert.deepEqual(await session.getItems(NaN), [user("a"), user("b")]);
    });

    test("popItem returns the newest and removes it; clearSession empties; then popItem is undefined", async () => {
      const session = await make("session-pop");
      const items = [user("hello"), user("one"), user("two")];
      await session.addItems(items);
      assert.deepEqual(await session.popItem(), items[2]);
      assert.deepEqual(await session.getItems(), items.slice(0, 2));
      await session.clearSession();
      assert.deepEqual(await session.getItems(), []);
      assert.deepEqual(await session.getItems(3), []);
      assert.equal(await session.popItem(), undefined);
    });

    test("returned, added and popped items are copies: mutating them changes nothing stored", async () => {
      const session = await make("session-clones");
      const initial = user("start");
      await session.addItems([initial]);
      const items = await session.getItems();
      assert.notEqual(items[0], initial);
      items[0].content = "mutated";
      items[0].extra = 1;
      assert.deepEqual(await session.getItems(), [user("start")]);

      const next = user("next");
      await session.addItems([next]);
      next.content = "mutated";
      assert.deepEqual(await session.getItems(), [user("start"), user("next")]);

      const popped = await session.popItem();
      assert.deepEqual(popped, user("next"));
      popped.content = "mutated";
      assert.deepEqual(await session.getItems(), [user("start")]);
    });

    test("addItems([]) changes nothing", async () => {
      const session = await make("session-empty-add");
      await session.addItems([user("a")]);
      await session.addItems([]);
      assert.deepEqual(await session.getItems(), [user("a")]);
    });

    test("pop, add, pop and clear in any order keep the order of what is left", async () => {
      const session = await make("session-mixed");
      const [a, b, c, d, e, f] = ["a", "b", "c", "d", "e", "f"].map(user);
      await session.addItems([a, b, c]);
      assert.deepEqual(await session.popItem(), c);
      await session.addItems([d]);
      assert.deepEqual(await session.getItems(), [a, b, d]);
      assert.deepEqual(await session.popItem(), d);
      assert.deepEqual(await session.popItem(), b);
      await session.addItems([e, f]);
      assert.deepEqual(await session.getItems(), [a, e, f]);
      assert.deepEqual(await session.getItems(2), [e, f]);
      assert.deepEqual(await session.popItem(), f);
      assert.deepEqual(await session.popItem(), e);
      assert.deepEqual(await session.popItem(), a);
      assert.equal(await session.popItem(), undefined);
      await session.addItems([b]);
      assert.deepEqual(await session.getItems(), [b]);
      await session.clearSession();
      await session.addItems([c, d]);
      assert.deepEqual(await session.getItems(), [c, d]);
    });

    test("items round-trip exactly: undefined properties, Uint8Array, nested arrays", async () => {
      const session = await make("session-exact");
      const item = {
        type: "function_call",
        name: "lookup",
        callId: "c1",
        namespace: undefined,
        providerData: undefined,
        arguments: "{}",
        status: "completed",
        extra: { bytes: new Uint8Array([0, 1, 254, 255]), list: [1, undefined, { deep: undefined }] },
      };
      await session.addItems([item]);
      const [back] = await session.getItems();
      assert.deepStrictEqual(back, item);
      assert.ok(Object.hasOwn(back, "namespace"), "the undefined property is present, as structuredClone keeps it");
      assert.ok(back.extra.bytes instanceof Uint8Array);
      assert.deepStrictEqual(await session.popItem(), item);
    });

    test("an item holding another realm's Uint8Array (a Buffer in Jest's sandbox) comes back as this realm's, same bytes", async () => {
      const session = await make("session-realm");
      const bytes = runInNewContext("Uint8Array").from([0, 1, 254, 255]);
      assert.equal(bytes instanceof Uint8Array, false);
      await session.addItems([{ type: "message", role: "user", content: "x", providerData: { bytes } }]);
      const [back] = await session.getItems();
      assert.ok(back.providerData.bytes instanceof Uint8Array);
      assert.deepStrictEqual(back.providerData.bytes, new Uint8Array([0, 1, 254, 255]));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// What the adapter adds or does differently because it stores in agent-session.

describe("AgentSessionItems over agent-session", () => {
  test("each item is one message event; the items survive a new adapter and a second store", async () => {
    const kv = memoryKv();
    const storeA = await SessionStore.kv(kv);
    const storeB = await SessionStore.kv(kv);
    const a = new AgentSessionItems(storeA, "shared");
    await a.addItems([user("one"), user("two")]);
    await a.addItems([user("three")]);
    const session = await storeA.open("shared");
    assert.equal(session.version, 2, "one commit per addItems outside guard");
    assert.deepEqual(session.messages(), [user("one"), user("two"), user("three")]);
    const b = new AgentSessionItems(storeB, "shared");
    assert.deepEqual(await b.getItems(), [user("one"), user("two"), user("three")]);
    await b.popItem();
    // `a` has its Session loaded at version 2; getItems must read what storeB committed since.
    assert.deepEqual(await a.getItems(), [user("one"), user("two")]);
  });

  test("popItem writes only the live-view state key; clearSession compacts the log, history keeps every item", async () => {
    const { store, items } = await adapter("views");
    await items.addItems([user("a"), user("b"), user("c")]);
    await items.popItem();
    const session = await store.open("views");
    assert.equal(session.messages().length, 3, "a pop is a suffix, which compaction cannot cut: the event stays");
    assert.deepEqual(session.state()[ITEMS_KEY], { start: 3, kept: [[0, 2]] });
    await items.clearSession();
    await session.refresh();
    assert.deepEqual(session.messages(), [], "cleared: the log is compacted away, the popped event with it");
    assert.equal(session.state()[ITEMS_KEY], undefined, "every event is live again: no view");
    const history = await session.history();
    assert.deepEqual(
      history.filter((e) => e.type !== "created").map((e) => (e.type === "compacted" ? `compacted:${e.before}:${e.data.length}` : e.type)),
      ["message", "message", "message", "state.set", "compacted:3:0", "state.delete"],
    );
    assert.equal((await session.at(2)).messages().length, 3, "at() of an earlier version shows the originals");
    // A new adapter reads the cleared session, and the log grows from empty.
    const fresh = new AgentSessionItems(store, "views");
    assert.deepEqual(await fresh.getItems(), []);
    await fresh.addItems([user("d")]);
    await session.refresh();
    assert.deepEqual(session.messages(), [user("d")]);
    assert.deepEqual(await items.getItems(), [user("d")]);
  });

  test("compact: false: popItem and clearSession write only the live-view state key; the log keeps every event", async () => {
    const store = await SessionStore.memory();
    const items = new AgentSessionItems(store, "views", { compact: false });
    await items.addItems([user("a"), user("b"), user("c")]);
    await items.popItem();
    const session = await store.open("views");
    assert.equal(session.messages().length, 3, "append-only: the popped event stays in the log");
    assert.deepEqual(session.state()[ITEMS_KEY], { start: 3, kept: [[0, 2]] });
    await items.clearSession();
    await session.refresh();
    assert.deepEqual(session.state()[ITEMS_KEY], { start: 3, kept: [] });
    const history = await session.history();
    assert.deepEqual(
      history.filter((e) => e.type !== "created").map((e) => e.type),
      ["message", "message", "message", "state.set", "state.set"],
    );
    await items.replaceHistoryWithCompaction([user("x")]);
    await session.refresh();
    assert.equal(session.messages().length, 4);
    assert.deepEqual(await items.getItems(), [user("x")]);
    assert.throws(() => new AgentSessionItems(store, "views", { compact: "yes" }), TypeError);
  });

  test("a popItem or clearSession with nothing to remove commits no version", async () => {
    const { store, items } = await adapter("noop");
    assert.equal(await items.popItem(), undefined);
    await items.clearSession();
    await items.addItems([]);
    assert.equal((await store.open("noop")).version, 0);
  });

  test("an item holding the reserved key round-trips, and a plain item is stored unchanged", async () => {
    const { store, items } = await adapter("reserved");
    const odd = { type: "message", role: "user", content: "x", [META_KEY]: { u: [["content"]] } };
    await items.addItems([odd, user("plain")]);
    assert.deepStrictEqual(await items.getItems(), [odd, user("plain")]);
    assert.deepEqual((await store.open("reserved")).messages()[1], user("plain"));
  });

  test("the `agent` option keeps the items in that agent's log", async () => {
    const { store } = await adapter();
    const items = new AgentSessionItems(store, "agents", { agent: "assistant" });
    await items.addItems([user("hi")]);
    await items.popItem();
    await items.addItems([user("again")]);
    const session = await store.open("agents");
    assert.deepEqual(session.messages(), []);
    assert.deepEqual(session.messages({ agent: "assistant" }), [user("hi"), user("again")]);
    assert.deepEqual(await new AgentSessionItems(store, "agents", { agent: "assistant" }).getItems(), [user("again")]);
  });

  test("no sessionId: the store picks a random one, and getSessionId names it", async () => {
    const { store } = await adapter();
    const items = new AgentSessionItems(store);
    const id = await items.getSessionId();
    assert.match(id, /^[A-Za-z0-9_-]{22,}$/);
    await items.addItems([user("x")]);
    assert.deepEqual((await store.open(id)).messages(), [user("x")]);
  });

  test("a session id longer than an agent-session id can be (MemorySession takes any): kept under a hashed id, getSessionId gives it back", async () => {
    const { store } = await adapter();
    const long = "conversation-".repeat(30); // 390 bytes
    const items = new AgentSessionItems(store, long);
    assert.equal(await items.getSessionId(), long);
    await items.addItems([user("x"), user("y")]);
    assert.equal(await items.popItem().then((item) => item.content[0].text), "y");
    const again = new AgentSessionItems(await SessionStore.kv(memoryKv()), long);
    assert.deepEqual(await again.getItems(), [], "another backend: another session");
    assert.deepEqual(await new AgentSessionItems(store, long).getItems(), [user("x")], "the same id: the same session");
    const id = (await items.session()).id;
    assert.ok(new TextEncoder().encode(id).length <= 256, id);
    await items.clearSession();
    assert.deepEqual(await new AgentSessionItems(store, long).getItems(), []);
  });

  test("an empty session id (MemorySession takes it): kept under a hashed id, getSessionId gives it back", async () => {
    const { store } = await adapter();
    const items = new AgentSessionItems(store, "");
    assert.equal(await items.getSessionId(), "");
    await items.addItems([user("x")]);
    assert.deepEqual(await new AgentSessionItems(store, "").getItems(), [user("x")], "the same id: the same session");
    assert.notEqual((await items.session()).id, "");
    await items.clearSession();
    assert.deepEqual(await new AgentSessionItems(store, "").getItems(), []);
  });

  test("replaceHistoryWithCompaction replaces everything in one commit", async () => {
    const { store, items } = await adapter("compact");
    await items.addItems([user("a"), user("b")]);
    const compaction = { type: "compaction", encrypted_content: "opaque" };
    await items.replaceHistoryWithCompaction([compaction, user("b")]);
    assert.deepEqual(await items.getItems(), [compaction, user("b")]);
    assert.equal((await store.open("compact")).version, 2);
  });

  test("replaceHistoryWithCompaction keeps a shared tail in place; a cut the core refuses replaces everything", async () => {
    const { store, items } = await adapter("tail");
    const compaction = { type: "compaction", encrypted_content: "opaque" };
    // A popped item (masked by the view) sits inside the tail that stays.
    await items.addItems([user("a"), user("b"), user("c"), user("popped")]);
    await items.popItem();
    await items.addItems([user("d")]);
    await items.replaceHistoryWithCompaction([compaction, user("c"), user("d")]);
    const session = await store.open("tail");
    assert.deepEqual(await items.getItems(), [compaction, user("c"), user("d")]);
    assert.deepEqual(session.messages(), [compaction, user("c"), user("popped"), user("d")], "a, b replaced by the compaction item");
    assert.deepEqual(session.state()[ITEMS_KEY], { start: 3, kept: [[0, 2]] }, "the view, rebased");
    let last = (await session.history()).at(-2);
    assert.deepEqual([last.type, last.before, last.data], ["compacted", 2, [compaction]]);
    assert.deepEqual(await new AgentSessionItems(store, "tail").getItems(), [compaction, user("c"), user("d")]);

    // A tail that starts with a tool result whose call is cut: the core refuses that cut (no force),
    // so everything is replaced: the compaction item is the summary, the rest are messages again.
    const call = { type: "function_call", callId: "call_9", name: "weather", arguments: "{}", status: "completed" };
    const result = { type: "function_call_result", callId: "call_9", name: "weather", status: "completed", output: { type: "text", text: "sunny" } };
    const { store: other, items: pairs } = await adapter("pairs");
    await pairs.addItems([user("q"), call, result, user("r")]);
    await pairs.replaceHistoryWithCompaction([compaction, result, user("r")]);
    assert.deepEqual(await pairs.getItems(), [compaction, result, user("r")]);
    const paired = await other.open("pairs");
    assert.deepEqual(paired.messages(), [compaction, result, user("r")]);
    last = (await paired.history()).filter((e) => e.type === "compacted");
    assert.deepEqual(last.map((e) => [e.before, e.data]), [[4, [compaction]]]);
  });

  test("outside guard, a write fails fast with ConcurrencyError while another holder has the session", async () => {
    const kv = memoryKv();
    const other = await (await SessionStore.kv(kv)).open("busy");
    const items = new AgentSessionItems(await SessionStore.kv(kv), "busy");
    const inv = await other.begin();
    try {
      await assert.rejects(items.addItems([user("x")]), ConcurrencyError);
      await assert.rejects(items.clearSession(), ConcurrencyError);
      assert.deepEqual(await items.getItems(), [], "reads never need the guard");
    } finally {
      await inv.abort();
    }
    await items.addItems([user("x")]);
    assert.deepEqual(await items.getItems(), [user("x")]);
  });

  test("guard: writes inside are staged (visible to this instance only) and committed once", async () => {
    const { store, items } = await adapter("staged");
    await items.addItems([user("before")]);
    const outsider = new AgentSessionItems(store, "staged");
    const returned = await items.guard(async (inv) => {
      assert.equal(typeof inv.commit, "function", "fn receives the Invocation");
      await items.addItems([user("a"), user("b")]);
      assert.deepEqual(await items.popItem(), user("b"));
      assert.deepEqual(await items.getItems(), [user("before"), user("a")]);
      assert.deepEqual(await outsider.getItems(), [user("before")], "not committed yet");
      await assert.rejects(outsider.addItems([user("intruder")]), ConcurrencyError);
      // A nested guard on the same instance is refused, and leaves the running one in place.
      await assert.rejects(items.guard(() => items.addItems([user("nested")])), ConcurrencyError);
      await items.addItems([user("c")]);
      assert.deepEqual(await outsider.getItems(), [user("before")]);
      assert.deepEqual(await items.popItem(), user("c"));
      return "done";
    });
    assert.equal(returned, "done");
    assert.deepEqual(await outsider.getItems(), [user("before"), user("a")]);
    assert.equal((await store.open("staged")).version, 2, "the whole guard is one commit");
  });

  test("guard: an error inside aborts (nothing stored), rethrows, and releases", async () => {
    const { store, items } = await adapter("aborted");
    const boom = new Error("boom");
    await assert.rejects(
      items.guard(async () => {
        await items.addItems([user("lost")]);
        throw boom;
      }),
      (error) => error === boom,
    );
    assert.deepEqual(await items.getItems(), []);
    assert.equal((await store.open("aborted")).version, 0);
    await items.guard(() => items.addItems([user("kept")]));
    assert.deepEqual(await items.getItems(), [user("kept")]);
  });
});

// ---------------------------------------------------------------------------------------------
// Real runs with ScriptedModel.

function weatherTool(calls) {
  return tool({
    name: "weather",
    description: "Weather for a city.",
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push(city);
      return `sunny in ${city}`;
    },
  });
}

/** A tool-call turn then a plain turn on `session`; the model calls and the stored items. */
async function twoRuns(session) {
  const executed = [];
  const model = new ScriptedModel([
    [functionCall("weather", { city: "Oslo" }, { callId: "call_1" })],
    [assistantMessage("It is sunny in Oslo.")],
    [assistantMessage("You asked about Oslo.")],
  ]);
  const agent = new Agent({ name: "weather", model, tools: [weatherTool(executed)] });
  const first = await run(agent, "Weather in Oslo?", { session });
  const second = await run(agent, "What did I ask?", { session });
  model.assertComplete();
  return { first, second, model, executed, items: await session.getItems() };
}

describe("run() with ScriptedModel", () => {
  test("a tool-call turn, then a second run that sees the first run's items", async () => {
    const { store, items } = await adapter("runs");
    const got = await twoRuns(items);
    assert.equal(got.first.finalOutput, "It is sunny in Oslo.");
    assert.equal(got.second.finalOutput, "You asked about Oslo.");
    assert.deepEqual(got.executed, ["Oslo"]);
    assert.deepEqual(
      got.items.map((i) => i.type === "message" ? `${i.role}` : i.type),
      ["user", "function_call", "function_call_result", "assistant", "user", "assistant"],
    );
    // The third model call (the second run) got the first run's four items, then the new input.
    const input = got.model.calls[2].request.input;
    assert.equal(input.length, 5);
    assert.deepEqual(input.slice(0, 4), got.items.slice(0, 4));
    assert.deepEqual(input[4], got.items[4]);

    // The same script on MemorySession stores the same items, exactly (undefined fields included).
    const memory = await twoRuns(new MemorySession({ sessionId: "runs" }));
    assert.deepStrictEqual(got.items, memory.items);
    // Unguarded, each run's one addItems is one commit.
    assert.equal((await store.open("runs")).version, 2);
  });

  test("the same two runs under guard: one commit per run, the second still sees the first", async () => {
    const { store, items } = await adapter("guarded-runs");
    const model = new ScriptedModel([
      [functionCall("weather", { city: "Oslo" }, { callId: "call_1" })],
      [assistantMessage("It is sunny in Oslo.")],
      [assistantMessage("You asked about Oslo.")],
    ]);
    const agent = new Agent({ name: "weather", model, tools: [weatherTool([])] });
    await items.guard(() => run(agent, "Weather in Oslo?", { session: items }));
    await items.guard(() => run(agent, "What did I ask?", { session: items }));
    assert.equal(model.calls[2].request.input.length, 5);
    assert.equal((await store.open("guarded-runs")).version, 2);
    assert.equal((await items.getItems()).length, 6);
  });

  test("a streamed run under guard commits after `completed`", async () => {
    const { store, items } = await adapter("streamed");
    const model = new ScriptedModel([[assistantMessage("streamed answer")]]);
    const agent = new Agent({ name: "s", model });
    const session = await store.open("streamed");
    const result = await items.guard(async () => {
      const streamed = await run(agent, "stream it", { session: items, stream: true });
      const text = [];
      for await (const chunk of streamed.toTextStream()) text.push(chunk);
      assert.equal(text.join(""), "streamed answer");
      await session.refresh();
      assert.equal(session.version, 0, "nothing is committed while the guard runs");
      return streamed;
    });
    assert.equal(result.finalOutput, "streamed answer");
    await session.refresh();
    assert.equal(session.version, 1);
    assert.deepEqual((await items.getItems()).map((i) => i.role), ["user", "assistant"]);

    // Not consumed inside fn: the guard still waits for the run to end before it commits.
    model.enqueue([assistantMessage("background")]);
    await items.guard(() => run(agent, "again", { session: items, stream: true }));
    assert.equal((await items.getItems()).length, 4);
  });

  test("a model error under guard stores nothing, even where the streamed runner already wrote", async () => {
    const { store, items } = await adapter("model-error");
    const agent = (model) => new Agent({ name: "e", model });
    // Unguarded, a failing streamed run leaves its user item behind (FRAMEWORKS.md §2) ...
    const loose = await adapter("loose");
    const failing = new ScriptedModel([modelError(new Error("model down"))]);
    const streamed = await run(agent(failing), "hello", { session: loose.items, stream: true });
    await assert.rejects(streamed.completed, /model down/);
    assert.equal((await loose.items.getItems()).length, 1);
    // ... under guard the turn is all or nothing, and the lease is released.
    for (const stream of [false, true]) {
      const model = new ScriptedModel([modelError(new Error("model down"))]);
      await assert.rejects(
        items.guard(() => run(agent(model), "hello", { session: items, stream })),
        /model down/,
      );
    }
    assert.deepEqual(await items.getItems(), []);
    assert.equal((await store.open("model-error")).version, 0);
    await items.guard(() => run(agent(new ScriptedModel([[assistantMessage("ok")]])), "hi", { session: items }));
    assert.equal((await items.getItems()).length, 2);
  });
});

// ---------------------------------------------------------------------------------------------
// Compaction: the SDK's ways of shrinking a session's history, each one inv.compact in the turn's commit.

const COMPACTION = { type: "compaction", encrypted_content: "ENC", id: "cmp_1" };
const short = (item) => (item.role !== undefined ? `${item.role}:${typeof item.content === "string" ? item.content : item.content.map((c) => c.text).join("")}` : item.type);

/** Three runs; the model compacts server-side in the second (its output starts with a compaction item). */
async function compactingRuns(session, guard = (fn) => fn()) {
  const model = new ScriptedModel([
    [functionCall("weather", { city: "Oslo" }, { callId: "call_1" })],
    [assistantMessage("It is sunny in Oslo.")],
    [COMPACTION, assistantMessage("A2")],
    [assistantMessage("A3")],
  ]);
  const agent = new Agent({ name: "c", model, tools: [weatherTool([])] });
  for (const input of ["one", "two", "three"]) await guard(() => run(agent, input, { session }));
  model.assertComplete();
  return { model, items: await session.getItems() };
}

describe("compaction", () => {
  test("a model that compacts server-side: the runner's replaceHistoryWithCompaction is one inv.compact", async () => {
    const kv = memoryKv();
    const [storeA, storeB] = [await SessionStore.kv(kv), await SessionStore.kv(kv)];
    const items = new AgentSessionItems(storeA, "server-side");
    const other = await storeB.open("server-side");
    let refused;
    const got = await compactingRuns(items, (fn) =>
      items.guard(async () => {
        // The guard still holds across the compaction: the other process cannot begin meanwhile.
        refused ??= await other.begin().then((inv) => inv.abort(), (error) => error);
        return fn();
      }),
    );
    assert.ok(refused instanceof ConcurrencyError);
    assert.deepEqual(got.items.map(short), ["compaction", "assistant:A2", "user:three", "assistant:A3"]);
    // The third model call saw the compaction item first, not the compacted turn.
    assert.deepEqual(got.model.calls[3].request.input.map(short), ["compaction", "assistant:A2", "user:three"]);
    // The same script on MemorySession stores the same items.
    const memory = await compactingRuns(new MemorySession({ sessionId: "server-side" }));
    assert.deepStrictEqual(got.items, memory.items);

    // Another process reads the compacted items; the history keeps the first turn and the compaction.
    await other.refresh();
    assert.equal(other.version, 3, "one commit per run");
    assert.deepEqual(other.messages().map(short), ["compaction", "assistant:A2", "user:three", "assistant:A3"]);
    assert.equal(other.state()[ITEMS_KEY], undefined);
    const events = (await other.history()).filter((e) => e.type === "message" || e.type === "compacted");
    assert.deepEqual(
      events.map((e) => (e.type === "compacted" ? `compacted:${e.before}:${e.data.map(short)}` : short(e.data))),
      ["user:one", "function_call", "function_call_result", "assistant:It is sunny in Oslo.",
        "compacted:4:compaction", "assistant:A2", "user:three", "assistant:A3"],
    );
    assert.deepEqual((await new AgentSessionItems(storeB, "server-side").getItems()).map(short), got.items.map(short));
    assert.equal((await other.at(1)).messages().length, 4, "at() of the first turn shows its items");
  });

  test("OpenAIResponsesCompactionSession over AgentSessionItems: its clear and re-add commit with the turn", async () => {
    const { store, items } = await adapter("responses-compact");
    const requests = [];
    const client = {
      responses: {
        compact: async (request) => {
          requests.push(request);
          return {
            output: [{ type: "message", role: "user", content: [{ type: "input_text", text: "one" }] }, COMPACTION],
            usage: { input_tokens: 10, output_tokens: 2, total_tokens: 12 },
          };
        },
      },
    };
    const session = new OpenAIResponsesCompactionSession({
      client,
      underlyingSession: items,
      model: "gpt-4.1",
      compactionMode: "input",
      shouldTriggerCompaction: ({ sessionItems }) => sessionItems.length >= 4,
    });
    const model = new ScriptedModel([[assistantMessage("A1")], [assistantMessage("A2")], [assistantMessage("A3")]]);
    const agent = new Agent({ name: "r", model });
    const observed = await store.open("responses-compact");
    await items.guard(() => run(agent, "one", { session }));
    assert.equal(requests.length, 0);
    await items.guard(() => run(agent, "two", { session }));
    assert.equal(requests.length, 1, "the decorator compacted after the second turn");
    assert.deepEqual(requests[0].input.map(short), ["user:one", "assistant:A1", "user:two", "assistant:A2"]);

    await observed.refresh();
    assert.equal(observed.version, 2, "the turn, the clear and the re-add: one commit");
    assert.deepEqual(observed.messages().map(short), ["user:one", "compaction"]);
    const last = (await observed.history({ from: 2 })).filter((e) => e.type === "message" || e.type === "compacted");
    assert.deepEqual(
      last.map((e) => (e.type === "compacted" ? `compacted:${e.before}:${e.data.length}` : short(e.data))),
      ["user:two", "assistant:A2", "compacted:4:0", "user:one", "compaction"],
    );
    await items.guard(() => run(agent, "three", { session }));
    assert.deepEqual(model.calls[2].request.input.map(short), ["compaction", "user:three"]);
    assert.deepEqual((await new AgentSessionItems(store, "responses-compact").getItems()).map(short), [
      "user:one", "compaction", "user:three", "assistant:A3",
    ]);
  });

  test("clearSession under guard: the cut after a tool call and its result commits with the new turn", async () => {
    const { store, items } = await adapter("clear-guarded");
    const { items: before } = await twoRuns(items);
    assert.equal(before.length, 6);
    const agent = new Agent({ name: "fresh", model: new ScriptedModel([[assistantMessage("fresh start")]]) });
    await items.guard(async () => {
      await items.clearSession();
      assert.deepEqual(await items.getItems(), []);
      return run(agent, "hello again", { session: items });
    });
    const session = await store.open("clear-guarded");
    assert.equal(session.version, 3);
    assert.deepEqual(session.messages().map(short), ["user:hello again", "assistant:fresh start"]);
    const compacted = (await session.history()).filter((e) => e.type === "compacted");
    assert.deepEqual(compacted.map((e) => [e.version, e.before, e.data]), [[3, 6, []]]);
    assert.equal((await session.history()).filter((e) => e.type === "message").length, 8);
  });
});

// ---------------------------------------------------------------------------------------------
// The approval flow of the SDK's hitlMemorySessionScenario test, with ScriptedModel.

const REJECTED = "Tool execution was not approved.";

function approvalTools(executed) {
  const make = (name, prefix) =>
    tool({
      name,
      description: `${name} (needs approval)`,
      parameters: z.object({ query: z.string() }),
      needsApproval: async () => true,
      execute: async ({ query }) => {
        executed[name] = (executed[name] ?? 0) + 1;
        return `${prefix}:${query}`;
      },
    });
  return [make("approved_echo", "approved"), make("approved_note", "approved_note")];
}

const STEPS = [
  { message: "Fetch profile for customer 104.", tool: "approved_echo", approval: "approve", output: "approved:Fetch profile for customer 104." },
  { message: "Update note for customer 104.", tool: "approved_note", approval: "approve", output: "approved_note:Update note for customer 104." },
  { message: "Delete note for customer 104.", tool: "approved_echo", approval: "reject", output: REJECTED },
];

/**
 * Three turns, each interrupted for approval, then resumed on `reopen()` (a new Session instance
 * over the same storage), the RunState carried as a string as across a restart.
 */
async function approvalScenario(first, reopen) {
  const executed = {};
  const tools = approvalTools(executed);
  const model = new ScriptedModel(
    STEPS.map((step, i) => [functionCall(step.tool, { query: step.message }, { callId: `call_${i + 1}`, id: `fc_${i + 1}` })]),
  );
  const agentFor = (step) =>
    new Agent({ name: "hitl", model, tools, modelSettings: { toolChoice: step.tool }, toolUseBehavior: "stop_on_first_tool" });
  const counts = [];
  let session = first;
  for (const step of STEPS) {
    const agent = agentFor(step);
    const interrupted = await run(agent, step.message, { session });
    assert.equal(interrupted.interruptions.length, 1);
    const state = await RunState.fromString(agent, interrupted.state.toString());
    const [approval] = state.getInterruptions();
    if (step.approval === "approve") state.approve(approval);
    else state.reject(approval);
    session = await reopen(session);
    const resumed = await run(agent, state, { session });
    assert.equal(resumed.interruptions.length, 0);
    assert.equal(resumed.finalOutput, step.output);
    const items = await session.getItems();
    counts.push({
      user: items.filter((i) => i.type === "message" && i.role === "user").length,
      calls: items.filter((i) => i.type === "function_call").length,
      results: items.filter((i) => i.type === "function_call_result").length,
      total: items.length,
    });
  }
  model.assertComplete();
  return { executed, counts, items: await session.getItems() };
}

describe("approvals (needsApproval): approve, approve, reject, each resumed on a new instance", () => {
  test("each tool executes once and the store holds what MemorySession holds", async () => {
    const store = await SessionStore.memory();
    const ours = await approvalScenario(new AgentSessionItems(store, "hitl"), async () => new AgentSessionItems(store, "hitl"));
    const theirs = await approvalScenario(
      new MemorySession({ sessionId: "hitl" }),
      async (previous) => new MemorySession({ sessionId: "hitl", initialItems: await previous.getItems() }),
    );
    assert.deepEqual(ours.executed, { approved_echo: 1, approved_note: 1 });
    assert.deepEqual(theirs.executed, { approved_echo: 1, approved_note: 1 });
    assert.deepEqual(
      ours.counts.map(({ user, calls, results }) => [user, calls, results]),
      [[1, 1, 1], [2, 2, 2], [3, 3, 3]],
    );
    assert.deepEqual(ours.counts, theirs.counts);
    assert.deepStrictEqual(ours.items, theirs.items);
    const result = ours.items.filter((i) => i.type === "function_call_result").at(-1);
    assert.equal(result.output.text, REJECTED);
  });

  test("guarded, with the RunState kept in the session's state: a new process resumes it", async () => {
    const kv = memoryKv();
    const executed = {};
    const tools = approvalTools(executed);
    const step = STEPS[0];
    const model = new ScriptedModel([[functionCall(step.tool, { query: step.message }, { callId: "call_1" })]]);
    const agent = new Agent({ name: "hitl", model, tools, toolUseBehavior: "stop_on_first_tool" });

    const before = new AgentSessionItems(await SessionStore.kv(kv), "restart");
    await before.guard(async (inv) => {
      const result = await run(agent, step.message, { session: before });
      inv.setState("openai.runState", result.state.toString());
      return result;
    });

    // "After a restart": another store over the same backend, a new adapter.
    const after = new AgentSessionItems(await SessionStore.kv(kv), "restart");
    const stored = (await after.session()).state()["openai.runState"];
    const state = await RunState.fromString(agent, stored);
    state.approve(state.getInterruptions()[0]);
    const resumed = await after.guard(async (inv) => {
      const result = await run(agent, state, { session: after });
      inv.deleteState("openai.runState");
      return result;
    });
    assert.equal(resumed.finalOutput, step.output);
    assert.deepEqual(executed, { approved_echo: 1 });
    assert.deepEqual((await after.getItems()).map((i) => i.type), ["message", "function_call", "function_call_result"]);
    assert.equal((await after.session()).state()["openai.runState"], undefined);
  });
});

// ---------------------------------------------------------------------------------------------
// Two runs on one session at once.

/** An agent whose model answers `text` after `delayMs`, so two runs overlap. */
function slowAgent(text, delayMs = 60) {
  const model = new ScriptedModel([
    modelResponder(async () => {
      await sleep(delayMs);
      return [assistantMessage(text)];
    }),
  ]);
  return { model, agent: new Agent({ name: `slow-${text}`, model }) };
}

describe("two concurrent runs on one session", () => {
  for (const [name, twoAdapters] of [
    ["two adapters over one store", async () => {
      const store = await SessionStore.memory();
      return [new AgentSessionItems(store, "race"), new AgentSessionItems(store, "race")];
    }],
    ["two stores over one backend (two processes)", async () => {
      const kv = memoryKv();
      return [
        new AgentSessionItems(await SessionStore.kv(kv), "race"),
        new AgentSessionItems(await SessionStore.kv(kv), "race"),
      ];
    }],
  ]) {
    test(`guarded (${name}): one fails fast with ConcurrencyError, the store holds exactly one turn`, async () => {
      const [a, b] = await twoAdapters();
      const one = slowAgent("A");
      const two = slowAgent("B");
      const settled = await Promise.allSettled([
        a.guard(() => run(one.agent, "one", { session: a })),
        b.guard(() => run(two.agent, "two", { session: b })),
      ]);
      const won = settled.filter((s) => s.status === "fulfilled");
      const lost = settled.filter((s) => s.status === "rejected");
      assert.equal(won.length, 1, "exactly one run succeeds");
      assert.equal(lost.length, 1);
      assert.ok(lost[0].reason instanceof ConcurrencyError, `got ${lost[0].reason}`);
      const winner = settled[0].status === "fulfilled" ? one : two;
      const loser = winner === one ? two : one;
      assert.equal(loser.model.calls.length, 0, "refused before the model was called");
      const items = await a.getItems();
      assert.deepEqual(
        items.map((i) => [i.role, typeof i.content === "string" ? i.content : i.content[0].text]),
        winner === one ? [["user", "one"], ["assistant", "A"]] : [["user", "two"], ["assistant", "B"]],
      );
      assert.deepEqual(await b.getItems(), items);
      assert.equal((await a.session()).version, 1);
    });
  }

  test("unguarded, one AgentSessionItems shared by both runs: both succeed and store all four items, as on MemorySession", async () => {
    const items = new AgentSessionItems(await SessionStore.memory(), "race");
    const one = slowAgent("A");
    const two = slowAgent("B");
    const settled = await Promise.allSettled([
      run(one.agent, "one", { session: items }),
      run(two.agent, "two", { session: items }),
    ]);
    assert.deepEqual(settled.map((s) => s.reason?.message ?? s.status), ["fulfilled", "fulfilled"]);
    const stored = (await items.getItems()).map((i) => (typeof i.content === "string" ? i.content : i.content[0].text));
    assert.deepEqual([...stored].sort(), ["A", "B", "one", "two"]);
    // The writes of one instance went one after another: a commit each, none refused.
    const writes = await Promise.allSettled([items.addItems([user("x")]), items.popItem(), items.addItems([user("y")])]);
    assert.deepEqual(writes.map((w) => w.status), ["fulfilled", "fulfilled", "fulfilled"]);
    assert.deepEqual((await items.getItems()).slice(-1), [user("y")]);
    assert.equal((await items.session()).status, "idle");
  });

  test("unguarded MemorySession: both succeed and the second model call never saw the first turn", async () => {
    const session = new MemorySession({ sessionId: "race" });
    const one = slowAgent("A");
    const two = slowAgent("B");
    const settled = await Promise.allSettled([
      run(one.agent, "one", { session }),
      run(two.agent, "two", { session }),
    ]);
    assert.deepEqual(settled.map((s) => s.status), ["fulfilled", "fulfilled"], "no guard: both succeed");
    // Each model call saw only its own input: whichever ran second lost the other's turn.
    assert.equal(one.model.calls[0].request.input.length, 1);
    assert.equal(two.model.calls[0].request.input.length, 1);
    const items = await session.getItems();
    assert.deepEqual(
      items.map((i) => (typeof i.content === "string" ? i.content : i.content[0].text)),
      ["one", "A", "two", "B"],
    );
    // A third run now sees a history in which "two" was answered without "one" in view.
  });
});

// ---------------------------------------------------------------------------------------------
// Live turns: items.run() passes the invocation's signal to run() and forwards the stream to the
// turn's live log; a follower in another store sees it, and a stop from another store ends it.

/** A raw model stream: the text in `chunks`, `delayMs` apart, then the finished response. */
function textStream(chunks, delayMs = 60) {
  return modelStreamResponder(async function* () {
    yield { type: "response_started" };
    for (const delta of chunks) {
      await sleep(delayMs);
      yield { type: "output_text_delta", delta, itemId: "msg_1" };
    }
    yield {
      type: "response_done",
      response: {
        id: "resp_text",
        usage: { requests: 1, inputTokens: 3, outputTokens: chunks.length, totalTokens: 3 + chunks.length },
        output: [assistantMessage(chunks.join(""), { id: "msg_1" })],
      },
    };
  });
}

/** A raw model stream that sends `chunks`, then waits for the request's abort signal (or 3 s). */
function stoppableStream(chunks, seen) {
  return modelStreamResponder(async function* (call) {
    yield { type: "response_started" };
    for (const delta of chunks) {
      await sleep(30);
      yield { type: "output_text_delta", delta, itemId: "msg_1" };
    }
    const signal = call.request.signal;
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 3000);
      signal?.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
    seen.aborted = signal?.aborted === true;
    seen.reason = signal?.reason;
    if (!seen.aborted) yield { type: "output_text_delta", delta: "never stopped", itemId: "msg_1" };
  });
}

async function twoKvStores() {
  const kv = memoryKv();
  return [await SessionStore.kv(kv, { owner: "runner" }), await SessionStore.kv(kv, { owner: "viewer" })];
}

describe("live turns: items.run() with the invocation's signal and emit()", () => {
  test("a streamed run forwards its events; a follower in another store gets them in order, then `end` committed", async () => {
    const [storeA, storeB] = await twoKvStores();
    const items = new AgentSessionItems(storeA, "live");
    const viewer = await storeB.open("live");
    const following = followTurn(viewer);
    const executed = [];
    const model = new ScriptedModel([
      [functionCall("weather", { city: "Oslo" }, { callId: "call_1", id: "fc_1" })],
      textStream(["It is ", "sunny ", "in Oslo."]),
    ]);
    const agent = new Agent({ name: "weather", model, tools: [weatherTool(executed)] });
    const seen = [];
    const result = await items.run(agent, "Weather in Oslo?", { stream: true }, { onEvent: (event) => seen.push(event) });
    assert.equal(result.finalOutput, "It is sunny in Oslo.");
    assert.equal(model.calls[1].request.signal instanceof AbortSignal, true, "the run had an abort signal");
    const events = await following;

    const parts = events.filter((e) => e.type === "part");
    const end = events.at(-1);
    assert.equal(end.type, "end");
    assert.equal(end.outcome, "committed");
    assert.equal(end.version, 1);
    assert.deepEqual(events.slice(0, -1).map((e) => e.type), parts.map(() => "part"), "parts, then end");
    assert.deepEqual(parts.map((p) => p.seq), parts.map((_, i) => i), "every part once, in seq order");
    assert.ok(parts.every((p) => p.invocation === end.invocation));
    // Exactly the projections of what the run streamed, in the order it streamed them.
    const expected = seen.map(streamEventPart).filter((part) => part !== undefined);
    assert.deepEqual(parts.map((p) => p.data), JSON.parse(JSON.stringify(expected)));
    assert.deepEqual(
      parts.filter((p) => p.data.data?.type === "output_text_delta").map((p) => p.data.data.delta),
      ["It is ", "sunny ", "in Oslo."],
    );
    assert.deepEqual(
      parts.filter((p) => p.data.type === "run_item_stream_event").map((p) => p.data.name),
      ["tool_called", "tool_output", "message_output_created"],
    );
    const output = parts.find((p) => p.data.name === "tool_output").data.item;
    assert.equal(output.type, "function_call_result");
    assert.equal(output.callId, "call_1");
    assert.deepEqual(executed, ["Oslo"]);
    // Parts are not history: the commit holds the items, history no part.
    assert.equal(viewer.version, 1);
    assert.deepEqual(viewer.messages().map((m) => m.type === "message" ? m.role : m.type),
      ["user", "function_call", "function_call_result", "assistant"]);
    assert.ok((await viewer.history()).every((e) => e.type !== "part"));
  });

  test("emit: false forwards nothing, a function picks the parts; a non-streamed run emits nothing", async () => {
    const store = await SessionStore.memory();
    const items = new AgentSessionItems(store, "live-options");
    const session = await store.open("live-options");
    const agentWith = (model) => new Agent({ name: "o", model });
    // Same store: the follower shares the holder's Session view.
    const quiet = followTurn(session);
    await items.run(agentWith(new ScriptedModel([textStream(["a", "b"])])), "x", { stream: true }, { emit: false });
    const silent = await quiet;
    assert.deepEqual(silent.filter((e) => e.type === "part"), [], "no part");
    assert.equal(silent.at(-1)?.version, 1, "the follower still sees the turn's commit");
    const picky = followTurn(session);
    await items.run(
      agentWith(new ScriptedModel([textStream(["a", "b", "c"])])),
      "y",
      { stream: true },
      { emit: (event) => (event.data?.type === "output_text_delta" ? { text: event.data.delta } : undefined) },
    );
    const events = await picky;
    assert.deepEqual(events.filter((e) => e.type === "part").map((e) => e.data), [{ text: "a" }, { text: "b" }, { text: "c" }]);
    assert.equal(events.at(-1).outcome, "committed");
    // A Runner of the caller's instead of the SDK's default run().
    const runner = new Runner();
    const ran = [];
    const original = runner.run.bind(runner);
    runner.run = (agent, input, options) => {
      ran.push(options.signal instanceof AbortSignal && options.session === items);
      return original(agent, input, options);
    };
    const plain = await items.run(agentWith(new ScriptedModel([[assistantMessage("not streamed")]])), "z", {}, { runner });
    assert.equal(plain.finalOutput, "not streamed");
    assert.deepEqual(ran, [true]);
    assert.equal((await items.getItems()).length, 6);
    // The provider's raw events repeat the normalized ones: not forwarded by default.
    assert.equal(streamEventPart({ type: "raw_model_stream_event", data: { type: "model", event: {} } }), undefined);
  });

  for (const stream of [true, false]) {
    test(`stop() from another store aborts a ${stream ? "streamed" : "non-streamed"} run through the signal; the turn ends "stopped"`, async () => {
      const [storeA, storeB] = await twoKvStores();
      const items = new AgentSessionItems(storeA, "stop-me");
      await items.addItems([user("earlier")]);
      const viewer = await storeB.open("stop-me");
      const following = followTurn(viewer);
      const seen = {};
      const model = stream
        ? new ScriptedModel([stoppableStream(["Let me ", "think"], seen)])
        : new ScriptedModel([
            modelResponder(async (call) => {
              const signal = call.request.signal;
              await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
              seen.aborted = signal.aborted;
              seen.reason = signal.reason;
              return [assistantMessage("too late")];
            }),
          ]);
      const agent = new Agent({ name: "slow", model });
      const running = items.run(agent, "take your time", { stream });
      running.catch(() => {});
      // Stop once the run is under way (a streamed run once its first parts reached the follower).
      await sleep(150);
      const stop = await viewer.stop({ reason: "user pressed stop" });
      assert.equal(stop.outcome, "stopped", "the holder ended the turn within the grace");
      assert.equal(seen.aborted, true, "the model call saw the abort");
      assert.equal(seen.reason?.code, "STOP_REQUESTED", "with the stop as its reason");
      if (stream) {
        const result = await running;
        assert.equal(result.cancelled, true, "the stream ended early");
      } else {
        await assert.rejects(running, (error) => {
          assert.equal(error.name, "StopRequestedError");
          assert.equal(error.code, "STOP_REQUESTED");
          assert.equal(error.by, "viewer");
          return true;
        });
      }
      const events = await following;
      const end = events.at(-1);
      assert.equal(end.type, "end");
      assert.equal(end.outcome, "stopped");
      assert.equal(end.version, stop.version);
      if (stream) {
        const deltas = events.filter((e) => e.type === "part" && e.data.data?.type === "output_text_delta");
        assert.deepEqual(deltas.map((e) => e.data.data.delta), ["Let me ", "think"]);
      }
      await viewer.refresh();
      const stopped = (await viewer.history()).filter((e) => e.type === "stopped");
      assert.equal(stopped.length, 1, "one stopped event");
      assert.equal(stopped[0].reason, "user pressed stop");
      assert.deepEqual(stopped[0].data, { by: "viewer", outcome: "stopped" });
      assert.equal(stopped[0].version, stop.version);
      assert.equal(viewer.status, "idle");
      // A streamed run commits what the runner stored before the stop (the user input); a rejected
      // non-streamed run is aborted, so nothing of it is stored.
      const items2 = await new AgentSessionItems(storeB, "stop-me").getItems();
      assert.deepEqual(items2.map((i) => i.content?.[0]?.text ?? i.content), stream ? ["earlier", "take your time"] : ["earlier"]);
      // Released: the next run goes ahead.
      const next = await items.run(new Agent({ name: "n", model: new ScriptedModel([[assistantMessage("ok")]]) }), "again");
      assert.equal(next.finalOutput, "ok");
    });
  }

  test("stop({ graceMs: 0 }) from another store fences a streamed run: it rejects with the StopRequestedError (not the LeaseLostError of its refused commit), and nothing of it is stored", async () => {
    const [storeA, storeB] = await twoKvStores();
    const items = new AgentSessionItems(storeA, "fence-me");
    await items.addItems([user("earlier")]);
    const viewer = await storeB.open("fence-me");
    const seen = {};
    const running = items.run(new Agent({ name: "slow", model: new ScriptedModel([stoppableStream(["Let me ", "think"], seen)]) }), "take your time", { stream: true });
    running.catch(() => {});
    await sleep(150);
    const stop = await viewer.stop({ reason: "now", graceMs: 0 });
    assert.equal(stop.outcome, "fenced");
    await assert.rejects(running, stoppedBy("viewer", "now"));
    const stored = await new AgentSessionItems(storeB, "fence-me").getItems();
    assert.deepEqual(stored.map((i) => i.content?.[0]?.text ?? i.content), ["earlier"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Against MemorySession, operation by operation: seeded random sequences of addItems, popItem,
// clearSession, replaceHistoryWithCompaction and getItems(limit), some of them inside guard(fn) (a third
// of those throw: nothing of them may stay), with the same operations applied to a MemorySession (a copy
// of it for a guard, kept only when the guard commits). After every step, a new AgentSessionItems on
// another store over the same KV reads exactly what the MemorySession holds.
describe("AgentSessionItems against MemorySession, random operations (plain, encrypted, a one-session cache)", () => {
  test("20 seeded sequences of 40 steps: every answer and every fresh read equal MemorySession's", async () => {
    let guards = 0;
    let aborted = 0;
    const variants = await storeVariants();
    for (let trial = 0; trial < 21; trial++) {
      let seed = 991 + trial * 7717;
      const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      const kv = memoryKv();
      const options = variants[trial % variants.length];
      const items = new AgentSessionItems(await SessionStore.kv(kv, options), "fuzz");
      let model = new MemorySession();
      let made = 0;
      const item = () => {
        made++;
        return random() < 0.6
          ? { role: "user", content: `m${made}` }
          : { role: "assistant", status: "completed", content: [{ type: "output_text", text: `r${made}` }] };
      };
      const step = async (memory, where) => {
        const roll = random();
        if (roll < 0.55) {
          const batch = Array.from({ length: 1 + Math.floor(random() * 3) }, item);
          await items.addItems(structuredClone(batch));
          await memory.addItems(structuredClone(batch));
        } else if (roll < 0.75) {
          assert.deepEqual(await items.popItem(), await memory.popItem(), `${where}: popItem`);
        } else if (roll < 0.8) {
          await items.clearSession();
          await memory.clearSession();
        } else if (roll < 0.88) {
          const batch = [{ type: "compaction", encrypted_content: `e${made++}` }, item()];
          await items.replaceHistoryWithCompaction(structuredClone(batch));
          await memory.clearSession();
          await memory.addItems(structuredClone(batch));
        } else {
          const limit = random() < 0.5 ? undefined : Math.floor(random() * 4);
          assert.deepEqual(await items.getItems(limit), await memory.getItems(limit), `${where}: getItems(${limit})`);
        }
      };
      for (let i = 0; i < 40; i++) {
        const where = `trial ${trial}, step ${i}`;
        if (random() < 0.4) {
          guards++;
          const copy = new MemorySession();
          await copy.addItems(structuredClone(await model.getItems()));
          const fail = random() < 0.3;
          try {
            await items.guard(async () => {
              const count = 1 + Math.floor(random() * 4);
              for (let j = 0; j < count; j++) await step(copy, `${where} (guarded ${j})`);
              if (fail) throw new Error("the turn failed");
            });
            model = copy;
          } catch (error) {
            if (error?.message !== "the turn failed") throw error;
            aborted++;
          }
        } else {
          await step(model, where);
        }
        const fresh = new AgentSessionItems(await SessionStore.kv(kv, options), "fuzz");
        assert.deepEqual(await fresh.getItems(), await model.getItems(), `${where}: a fresh reader`);
      }
    }
    assert.ok(guards > 100 && aborted > 30, `${guards} guards, ${aborted} aborted`);
  });
});

describe("AgentSessionItems refuses what JSON cannot carry with agent-session's ValidationError", () => {
  test("a cyclic item, one nested past 512 levels, or one whose getter throws: ValidationError naming the path, nothing stored", async () => {
    const store = await SessionStore.memory();
    const items = new AgentSessionItems(store, "bad-items");
    await items.addItems([{ role: "user", content: "kept" }]);
    const cyclic = { role: "user", content: "x", providerData: { note: new Uint8Array([1]) } };
    cyclic.providerData.self = cyclic;
    let deep = { role: "user", content: "deep" };
    for (let i = 0; i < 100_000; i++) deep = { role: "user", content: "deep", providerData: deep };
    const boom = new Error("getter boom");
    const throwing = { role: "user", get content() { throw boom; } };
    for (const [what, item, path, cause] of [
      ["a cycle", cyclic, /providerData\.self/, undefined],
      ["nesting past 512 levels", deep, /providerData/, undefined],
      ["a getter that throws", throwing, /content/, boom],
    ]) {
      await assert.rejects(items.addItems([{ role: "user", content: "first of the batch" }, item]), (error) => {
        assert.ok(error instanceof ValidationError, `${what}: ${error}`);
        assert.equal(error.code, "INVALID_INPUT");
        assert.match(error.path, path, what);
        if (cause) assert.equal(error.cause, cause, what);
        return true;
      });
    }
    assert.deepEqual(await items.getItems(), [{ role: "user", content: "kept" }]);
    await store.close();
  });
});
