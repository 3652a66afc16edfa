// agent-session/strands against the real @strands-agents/sdk 1.19.0, with a scripted Model (no network).
// Run: node --test --test-reporter=spec tests/frameworks/strands.test.mjs
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  Agent,
  Model,
  SessionManager,
  ModelError,
  SlidingWindowConversationManager,
  SummarizingConversationManager,
  NullConversationManager,
  ContextWindowOverflowError,
  Message,
  TextBlock,
  ToolResultBlock,
  FunctionTool,
  BeforeToolCallEvent,
  BeforeInvocationEvent,
  AfterInvocationEvent,
} from "@strands-agents/sdk";
import { InMemoryStorage } from "@strands-agents/sdk/storage";
import { SessionStore, ConcurrencyError, ValidationError } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionManager, AgentSessionStorage, streamEventPart } from "agent-session/strands";
import { storeVariants } from "./store-variants.mjs";
import { ScriptedModel } from "./strands-scripted-model.mjs";
import { followTurn, stoppedBy } from "./live-turns.mjs";


const makeAgent = (model, more = {}) => new Agent({ model, printer: false, retryStrategy: null, ...more });
const texts = (messages) => messages.map((m) => `${m.role}:${m.content.map((b) => b.text).join("")}`);
const plain = (value) => JSON.parse(JSON.stringify(value));

function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** A reply that waits for `gate` (or 2 s, so a broken guard cannot hang the test) before answering. */
const held = (gate, text) => async () => {
  let timer;
  await Promise.race([gate.promise, new Promise((r) => (timer = setTimeout(r, 2000)))]);
  clearTimeout(timer);
  return text;
};

async function settled(promise) {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}

/** Two stores over one memoryKv: two processes sharing one backend. */
async function twoStores(options = {}) {
  const kv = memoryKv();
  return [await SessionStore.kv(kv, options), await SessionStore.kv(kv, options), kv];
}

/**
 * An Agent saving to `sessionId` with AgentSessionManager, whose tool `pay` asks a human first (an
 * interrupt from BeforeToolCallEvent; any answer but "yes" denies it); `paid.count` counts its runs.
 */
function payingAgent(store, sessionId, replies, paid) {
  const agent = makeAgent(new ScriptedModel(replies), {
    plugins: [new AgentSessionManager({ store, sessionId })],
    tools: [
      new FunctionTool({
        name: "pay",
        description: "pays an amount",
        inputSchema: { type: "object", properties: { amount: { type: "number" } } },
        callback: (input) => {
          paid.count++;
          return { paid: input.amount };
        },
      }),
    ],
  });
  agent.addHook(BeforeToolCallEvent, (event) => {
    const answer = event.interrupt({ name: "approve", reason: { amount: event.toolUse.input.amount } });
    if (answer !== "yes") event.cancel = "denied";
  });
  return agent;
}

// ---------------------------------------------------------------------------------------------

describe("AgentSessionStorage", () => {
  test("bytes round-trip exactly through the backend (0x00..0xff, invalid UTF-8, JSON or not)", async () => {
    const [a, b] = await twoStores();
    const writer = new AgentSessionStorage(a);
    const reader = new AgentSessionStorage(b); // another store: the bytes go through the backend
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const deep = "[".repeat(600) + "]".repeat(600);
    const cases = {
      "bin/all/bytes": all,
      "bin/edges/nul-ff": Uint8Array.of(0x00, 0xff, 0x00, 0xff),
      "bin/edges/empty": new Uint8Array(0),
      "bin/utf8/invalid": Uint8Array.of(0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d), // {"\xc3(" }
      "bin/utf8/invalid-in-string": Uint8Array.of(0x22, 0xff, 0x22), // "\xff": JSON only if decoded lossily
      "bin/utf8/lone-surrogate-escape": new TextEncoder().encode('["\\ud800"]'),
      "json/canonical/obj": new TextEncoder().encode(JSON.stringify({ b: 1, a: [true, null, 0.1, "é"] })),
      "json/spaced/obj": new TextEncoder().encode('{ "a" : 1 }\n'),
      "json/bom/obj": Uint8Array.of(0xef, 0xbb, 0xbf, ...new TextEncoder().encode("{}")),
      "json/proto/obj": new TextEncoder().encode('{"__proto__":{"x":1},"y":2}'),
      "json/deep/arr": new TextEncoder().encode(deep),
      "json/number/big": new TextEncoder().encode("1e400"),
      short: Uint8Array.of(1, 2, 3),
    };
    for (const [key, bytes] of Object.entries(cases)) await writer.write(key, bytes);
    all[0] = 99; // the write copied the bytes
    for (const [key, bytes] of Object.entries(cases)) {
      const got = await reader.read(key);
      assert.ok(got instanceof Uint8Array, key);
      assert.deepEqual([...got], key === "bin/all/bytes" ? [...Uint8Array.from({ length: 256 }, (_, i) => i)] : [...bytes], key);
    }
    // Canonical JSON (what Strands writes) is structured data in the session, not an opaque blob.
    const session = await b.open("strands/json/canonical", { create: false });
    assert.deepEqual(plain(session.state().obj), { json: { b: 1, a: [true, null, 0.1, "é"] } });
    assert.equal(typeof (await b.open("strands/bin/all", { create: false })).state().bytes.base64, "string");
  });

  test("Storage contract: null when absent, overwrite, delete no-op, list = prefix, full keys, ascending", async () => {
    const store = await SessionStore.memory();
    const storage = new AgentSessionStorage(store);
    const bytes = (s) => new TextEncoder().encode(s);
    assert.equal(await storage.read("session/x/a.json"), null);
    await storage.delete("session/x/a.json"); // no-op
    const keys = [
      "session/b/scopes/agent/agent/snapshots/snapshot_latest.json",
      "session/a/z.json",
      "session/a/y/x.json",
      "session/ab/k",
      "other/1/2",
      "top",
      "two/parts",
      "session/a/~tilde",
      "session/a/__proto__",
    ];
    for (const key of keys) await storage.write(key, bytes(key));
    await storage.write("session/a/z.json", bytes("v2"));
    assert.equal(new TextDecoder().decode(await storage.read("session/a/z.json")), "v2");
    assert.equal(new TextDecoder().decode(await storage.read("session/a/__proto__")), "session/a/__proto__");
    assert.equal(new TextDecoder().decode(await storage.read("session/a/~tilde")), "session/a/~tilde");
    assert.deepEqual(await storage.list(""), [...keys].sort());
    assert.deepEqual(await storage.list("session/a/"), [
      "session/a/__proto__",
      "session/a/y/x.json",
      "session/a/z.json",
      "session/a/~tilde",
    ]);
    assert.deepEqual(await storage.list("session/a"), [
      "session/a/__proto__",
      "session/a/y/x.json",
      "session/a/z.json",
      "session/a/~tilde",
      "session/ab/k",
    ]);
    assert.deepEqual(await storage.list("session/a/y"), ["session/a/y/x.json"]);
    assert.deepEqual(await storage.list("t"), ["top", "two/parts"]);
    assert.deepEqual(await storage.list("nothing/"), []);
    await storage.delete("session/a/z.json");
    assert.equal(await storage.read("session/a/z.json"), null);
    assert.ok(!(await storage.list("session/")).includes("session/a/z.json"));
    // One agent-session session per Strands session: `session/<id>`.
    const ids = (await store.list()).sessions.map((s) => s.id).sort();
    assert.deepEqual(ids, ["strands/", "strands/other/1", "strands/session/a", "strands/session/ab", "strands/session/b"]);
  });

  test("Strands' SessionManager: save, restore, listSnapshotIds, restore by id, deleteSession", async () => {
    const [storeA, storeB] = await twoStores();
    const manager = () =>
      new SessionManager({ storage: new AgentSessionStorage(storeA), sessionId: "chat-1", snapshotTrigger: () => true });
    const first = makeAgent(new ScriptedModel(["one", "two"]), { sessionManager: manager() });
    await first.invoke("u1");
    first.appState.set("user", { name: "Ada", bytes: [0, 255] });
    await first.invoke("u2");

    // A new process (another store over the same backend) restores the latest snapshot.
    const restoredManager = new SessionManager({ storage: new AgentSessionStorage(storeB), sessionId: "chat-1" });
    const second = makeAgent(new ScriptedModel(["three"]), { sessionManager: restoredManager });
    await second.invoke("u3");
    assert.deepEqual(texts(second.messages), ["user:u1", "assistant:one", "user:u2", "assistant:two", "user:u3", "assistant:three"]);
    assert.deepEqual(second.appState.get("user"), { name: "Ada", bytes: [0, 255] });
    for (let i = 0; i < 4; i++) assert.equal(second.messages[i].trackingId, first.messages[i].trackingId);

    // Immutable snapshots (snapshotTrigger): ids ascending, restorable by id.
    const ids = await restoredManager.listSnapshotIds({ target: second });
    assert.equal(ids.length, 2);
    assert.deepEqual([...ids].sort(), ids);
    assert.deepEqual(await restoredManager.listSnapshotIds({ target: second, limit: 1 }), [ids[0]]);
    assert.deepEqual(await restoredManager.listSnapshotIds({ target: second, startAfter: ids[0] }), [ids[1]]);
    const probe = makeAgent(new ScriptedModel(), { sessionManager: restoredManager });
    assert.equal(await restoredManager.restoreSnapshot({ target: probe, snapshotId: ids[0] }), true);
    assert.deepEqual(texts(probe.messages), ["user:u1", "assistant:one"]);
    assert.equal(probe.appState.get("user"), undefined);

    // deleteSession removes every key of the session, and the agent-session session with its history.
    const storage = new AgentSessionStorage(storeB);
    assert.ok((await storage.list("session/chat-1/")).length >= 3);
    await restoredManager.deleteSession();
    assert.deepEqual(await storage.list("session/chat-1/"), []);
    assert.deepEqual((await storeA.list({ prefix: "strands/session/chat-1" })).sessions, []);
    const fresh = makeAgent(new ScriptedModel(["hi"]), { sessionManager: manager() });
    await fresh.invoke("again");
    assert.deepEqual(texts(fresh.messages), ["user:again", "assistant:hi"]);
  });

  test("a Strands session id longer than an agent-session id can be (260 characters): saved, restored, listed and deleted", async () => {
    const [storeA, storeB] = await twoStores();
    const sessionId = "s".repeat(260); // Strands takes it (/^[a-z0-9_-]+$/, no bound)
    const first = makeAgent(new ScriptedModel(["one"]), { sessionManager: new SessionManager({ storage: new AgentSessionStorage(storeA), sessionId }) });
    await first.invoke("u1");
    const manager = new SessionManager({ storage: new AgentSessionStorage(storeB), sessionId });
    const second = makeAgent(new ScriptedModel(["two"]), { sessionManager: manager });
    await second.invoke("u2");
    assert.deepEqual(texts(second.messages), ["user:u1", "assistant:one", "user:u2", "assistant:two"]);
    const storage = new AgentSessionStorage(storeB);
    const keys = await storage.list(`session/${sessionId}/`);
    assert.ok(keys.length >= 1 && keys.every((key) => key.startsWith(`session/${sessionId}/`)), JSON.stringify(keys));
    assert.deepEqual(await storage.list(""), keys, "the whole listing names it by its own key, once");
    assert.deepEqual(await storage.list("session/"), keys);
    assert.deepEqual(await storage.list("other/"), []);
    // One agent-session session, under a hashed id that fits.
    const { sessions } = await storeA.list({ prefix: "strands/" });
    assert.equal(sessions.length, 1);
    assert.ok(new TextEncoder().encode(sessions[0].id).length <= 256);
    await manager.deleteSession();
    assert.deepEqual(await storage.list(""), []);
    assert.deepEqual((await storeA.list({ prefix: "strands/" })).sessions, [], "deleted with its history");
  });

  test("AgentSessionManager with a sessionId longer than an agent-session id can be: kept under a hashed id, restored, deleted", async () => {
    const [storeA, storeB] = await twoStores();
    const sessionId = "s".repeat(300);
    const first = makeAgent(new ScriptedModel(["one"]), { plugins: [new AgentSessionManager({ store: storeA, sessionId })] });
    await first.invoke("u1");
    const manager = new AgentSessionManager({ store: storeB, sessionId });
    assert.equal(manager.sessionId, sessionId);
    const second = makeAgent(new ScriptedModel(["two"]), { plugins: [manager] });
    await second.invoke("u2");
    assert.deepEqual(texts(second.messages), ["user:u1", "assistant:one", "user:u2", "assistant:two"]);
    assert.ok(new TextEncoder().encode((await manager.session()).id).length <= 256);
    await manager.deleteSession();
    assert.deepEqual((await storeA.list()).sessions, [], "deleted with its history");
  });

  test("concurrent writes to one session are applied together; a second process waits its turn", async () => {
    const events = [];
    const [a, b] = await twoStores({ onEvent: (e) => events.push(e) });
    const storage = new AgentSessionStorage(a);
    const other = new AgentSessionStorage(b);
    const bytes = (i) => Uint8Array.of(i, 255 - i);
    const keys = Array.from({ length: 50 }, (_, i) => `session/s/k${String(i).padStart(2, "0")}`);
    events.length = 0;
    await Promise.all(keys.map((key, i) => (i % 2 ? other : storage).write(key, bytes(i))));
    const commits = events.filter((e) => e.type === "commit").length;
    assert.ok(commits <= 6, `50 writes from two stores took ${commits} commits`);
    assert.deepEqual(await other.list("session/s/"), keys);
    for (const [i, key] of keys.entries()) assert.deepEqual([...(await storage.read(key))], [i, 255 - i]);
    events.length = 0;
    await Promise.all(keys.map((key) => storage.delete(key)));
    assert.ok(events.filter((e) => e.type === "lease.acquired").length <= 3);
    assert.deepEqual(await other.list(""), []);
  });
});

// ---------------------------------------------------------------------------------------------

describe("AgentSessionManager", () => {
  test("two invocations, then a new Agent with the same sessionId restores messages and app state", async () => {
    const [storeA, storeB] = await twoStores();
    const agent = makeAgent(new ScriptedModel(["a1", "a2"]), {
      plugins: [new AgentSessionManager({ store: storeA, sessionId: "chat" })],
      systemPrompt: "be brief",
    });
    await agent.invoke("u1");
    agent.appState.set("profile", { name: "Ada", tags: ["x", "y"] });
    agent.appState.set("strands:tricky", 1); // a key in the adapter's namespace is escaped, not lost
    agent.appState.set("", "empty key");
    await agent.invoke("u2");
    agent.appState.delete("profile"); // changed outside an invocation: stored with the next one
    agent.appState.set("profile", { name: "Ada" });

    const restored = makeAgent(new ScriptedModel(["b1"]), {
      plugins: [new AgentSessionManager({ store: storeB, sessionId: "chat" })],
    });
    await restored.initialize();
    assert.deepEqual(texts(restored.messages), ["user:u1", "assistant:a1", "user:u2", "assistant:a2"]);
    assert.deepEqual(
      restored.messages.map((m) => m.trackingId),
      agent.messages.map((m) => m.trackingId),
    );
    assert.deepEqual(restored.appState.getAll(), { profile: { name: "Ada", tags: ["x", "y"] }, "strands:tricky": 1, "": "empty key" });
    await restored.invoke("u3");
    assert.deepEqual(texts(restored.messages).slice(-2), ["user:u3", "assistant:b1"]);
    // An agent that was never stored keeps its own system prompt.
    assert.equal(restored.systemPrompt, undefined);

    // The first agent's next invocation starts from the version the other process committed.
    const more = makeAgent(new ScriptedModel(["c1"]), { plugins: [new AgentSessionManager({ store: storeA, sessionId: "chat" })] });
    await more.invoke("u4");
    agent.model.replies.push("a3");
    await agent.invoke("u5");
    assert.deepEqual(texts(agent.messages), [
      "user:u1", "assistant:a1", "user:u2", "assistant:a2", "user:u3", "assistant:b1", "user:u4", "assistant:c1", "user:u5", "assistant:a3",
    ]);
    assert.deepEqual(agent.appState.getAll(), { profile: { name: "Ada", tags: ["x", "y"] }, "strands:tricky": 1, "": "empty key" });
  });

  test("the history holds one message event per message, and state events per changed key", async () => {
    const store = await SessionStore.memory();
    const manager = new AgentSessionManager({ store, sessionId: "h" });
    const agent = makeAgent(new ScriptedModel(["a1", "a2", "a3"]), { plugins: [manager] });
    await agent.invoke("u1");
    agent.appState.set("n", 1);
    await agent.invoke("u2");
    await agent.invoke("u3"); // state unchanged: no state event
    const session = await manager.session();
    assert.equal(session.version, 3);
    const history = await session.history();
    const messages = history.filter((e) => e.type === "message");
    assert.equal(messages.length, 6);
    assert.deepEqual(
      messages.map((e) => e.data),
      agent.messages.map((m) => plain(m.toJSON())),
    );
    assert.deepEqual(messages.map((e) => e.version), [1, 1, 2, 2, 3, 3]);
    assert.ok(messages.every((e) => e.agent === "agent"));
    const states = history.filter((e) => e.type === "state.set" || e.type === "state.delete");
    assert.deepEqual(states.map((e) => [e.version, e.key, e.data]), [[2, "n", 1]]);
    // No whole-conversation snapshot in state: the messages are the events.
    assert.deepEqual(Object.keys(session.state({ agent: "agent" })), ["n"]);
    assert.deepEqual(plain(session.messages({ agent: "agent" })), agent.messages.map((m) => plain(m.toJSON())));
  });

  test("two Agents invoke one sessionId at once: the second throws ConcurrencyError from BeforeInvocationEvent", async () => {
    const [storeA, storeB] = await twoStores();
    const gate = deferred();
    const modelA = new ScriptedModel([held(gate, "first answer")]);
    const modelB = new ScriptedModel(["second answer"]);
    const first = makeAgent(modelA, { plugins: [new AgentSessionManager({ store: storeA, sessionId: "race" })] });
    const second = makeAgent(modelB, { plugins: [new AgentSessionManager({ store: storeB, sessionId: "race" })] });
    const seen = [];
    second.addHook(AfterInvocationEvent, () => seen.push("after"));

    const running = first.invoke("first question");
    while (modelA.calls === 0) await new Promise((r) => setTimeout(r, 1)); // first is inside its model call
    const refused = await settled(second.invoke("second question"));
    gate.resolve();
    const done = await running;

    assert.ok(refused.error instanceof ConcurrencyError, `expected ConcurrencyError, got ${refused.error}`);
    assert.equal(refused.error.code, "CONCURRENT_INVOCATION");
    assert.equal(modelB.calls, 0, "the refused agent never called its model");
    assert.deepEqual(seen, [], "AfterInvocationEvent does not fire after a refused BeforeInvocationEvent");
    assert.deepEqual(second.messages, [], "nothing of the refused turn is in the agent");
    assert.equal(done.stopReason, "endTurn");
    const session = await storeB.open("race");
    assert.equal(session.version, 1);
    assert.deepEqual(texts(session.messages({ agent: "agent" }).map((m) => ({ role: m.role, content: m.content }))), [
      "user:first question",
      "assistant:first answer",
    ]);
    const history = await session.history();
    assert.ok(!JSON.stringify(history).includes("second"), "nothing of the refused turn is stored");
    // The refused agent can go on once the session is free, and sees the first turn.
    await second.invoke("second question");
    assert.deepEqual(texts(second.messages), [
      "user:first question",
      "assistant:first answer",
      "user:second question",
      "assistant:second answer",
    ]);
  });

  test("the same race on Strands' own SessionManager loses the first turn (last writer wins)", async () => {
    const storage = new InMemoryStorage();
    const gateA = deferred();
    const gateB = deferred();
    const modelA = new ScriptedModel([held(gateA, "first answer")]);
    const modelB = new ScriptedModel([held(gateB, "second answer")]);
    const first = makeAgent(modelA, { sessionManager: new SessionManager({ storage, sessionId: "race" }) });
    const second = makeAgent(modelB, { sessionManager: new SessionManager({ storage, sessionId: "race" }) });
    const a = first.invoke("first question");
    const b = second.invoke("second question");
    while (modelA.calls === 0 || modelB.calls === 0) await new Promise((r) => setTimeout(r, 1));
    gateA.resolve();
    await a; // the first turn completes and is saved...
    gateB.resolve();
    await b; // ...then the second overwrites it: both invocations succeeded
    const saved = JSON.parse(
      new TextDecoder().decode(await storage.read("session/race/scopes/agent/agent/snapshots/snapshot_latest.json")),
    );
    const stored = texts(saved.data.messages);
    assert.deepEqual(stored, ["user:second question", "assistant:second answer"]);
    assert.ok(!stored.includes("user:first question"), "Strands' SessionManager lost the first turn");
  });

  test("a model error aborts: the lease is released and the session stays at its last committed version", async () => {
    const [storeA, storeB] = await twoStores();
    const manager = new AgentSessionManager({ store: storeA, sessionId: "err" });
    const model = new ScriptedModel(["a1", new Error("model down"), "a3"]);
    const agent = makeAgent(model, { plugins: [manager] });
    await agent.invoke("u1");
    agent.appState.set("k", "set before the failing turn");
    const session = await manager.session();
    const before = await session.history();

    const failed = await settled(agent.invoke("u2"));
    assert.ok(failed.error instanceof ModelError, `expected the ModelError, got ${failed.error}`);
    assert.equal(failed.error.message, "model down");
    await session.refresh();
    assert.equal(session.version, 1, "nothing was committed");
    assert.equal(session.status, "idle", "the lease was released");
    assert.deepEqual(await session.history(), before);
    // The agent is back at the committed version too: no dangling user turn, no uncommitted state.
    assert.deepEqual(texts(agent.messages), ["user:u1", "assistant:a1"]);
    assert.equal(agent.appState.get("k"), undefined);
    // Another process can take the session at once (released, not left to expire).
    const other = await (await storeB.open("err")).begin();
    await other.abort();
    // And the next turn on the same agent commits normally.
    await agent.invoke("u3");
    assert.deepEqual(texts(agent.messages), ["user:u1", "assistant:a1", "user:u3", "assistant:a3"]);
    await session.refresh();
    assert.equal(session.version, 2);
    assert.equal(session.messages({ agent: "agent" }).length, 4);
  });

  // Strands ends these invocations without an AfterInvocationEvent (or before the manager's hook runs):
  // the lease must still be released, not renewed by the heartbeat for as long as the process lives.
  // Each on an Agent's first invocation (the manager is set up inside it) and on a later one.
  for (const later of [false, true]) {
    const which = later ? "a later invocation" : "the first invocation";
    /** Another store takes the session as soon as it is released (a bound, not a timing). */
    const takenElsewhere = async (store, id) => {
      const other = await (await store.open(id)).begin({ onBusy: { waitMs: 5000 } });
      await other.abort();
    };

    test(`${which}: a BeforeInvocationEvent hook that throws: the invocation is aborted and the lease released`, async () => {
      const [storeA, storeB] = await twoStores();
      const manager = new AgentSessionManager({ store: storeA, sessionId: "left" });
      const agent = makeAgent(new ScriptedModel(["a1", "a2", "a3"]), { plugins: [manager] });
      if (later) await agent.invoke("u1");
      let failing = true;
      agent.addHook(BeforeInvocationEvent, () => {
        if (failing) throw new Error("hook failed");
      });
      const failed = await settled(agent.invoke("u2"));
      assert.equal(failed.error?.message, "hook failed");
      await takenElsewhere(storeB, "left");
      const session = await manager.session();
      await session.refresh();
      assert.equal(session.version, later ? 1 : 0, "nothing of it was committed");
      assert.equal(session.status, "idle");
      failing = false;
      await agent.invoke("u3");
      assert.deepEqual(texts(agent.messages).slice(-2), ["user:u3", `assistant:${later ? "a2" : "a1"}`]);
    });

    test(`${which}: a consumer that leaves stream() at its first event: the invocation is aborted and the lease released`, async () => {
      const [storeA, storeB] = await twoStores();
      const manager = new AgentSessionManager({ store: storeA, sessionId: "left" });
      const agent = makeAgent(new ScriptedModel(["a1", "a2"]), { plugins: [manager] });
      if (later) await agent.invoke("u1");
      let first;
      for await (const event of agent.stream("u2")) {
        first = event.type;
        break;
      }
      assert.equal(first, "beforeInvocationEvent");
      await takenElsewhere(storeB, "left");
      const session = await manager.session();
      await session.refresh();
      assert.equal(session.version, later ? 1 : 0);
      assert.equal(session.status, "idle");
      await agent.invoke("u3");
      assert.equal(session.status, "idle");
    });

    test(`${which}: an AfterInvocationEvent hook that throws before the manager's: the turn is committed as the agent holds it, and released`, async () => {
      const [storeA, storeB] = await twoStores();
      const manager = new AgentSessionManager({ store: storeA, sessionId: "left" });
      const agent = makeAgent(new ScriptedModel(["a1", "a2", "a3"]), { plugins: [manager] });
      if (later) await agent.invoke("u1");
      let failing = true;
      agent.addHook(AfterInvocationEvent, () => {
        if (failing) throw new Error("after hook failed");
      });
      const failed = await settled(agent.invoke("u2"));
      assert.equal(failed.error?.message, "after hook failed");
      await takenElsewhere(storeB, "left");
      const reader = await (await storeB.open("left")).refresh();
      assert.equal(reader.status, "idle");
      const expected = later ? ["user:u1", "assistant:a1", "user:u2", "assistant:a2"] : ["user:u2", "assistant:a1"];
      assert.deepEqual(texts(reader.messages({ agent: "agent" }).map((m) => ({ role: m.role, content: m.content }))), expected);
      failing = false;
      await agent.invoke("u3");
    });
  }

  test("on a Strands without the agent's `_isInvoking` field, the wrapped stream() ends a later invocation Strands left open, before the caller hears of it", async () => {
    const [storeA, storeB] = await twoStores();
    const manager = new AgentSessionManager({ store: storeA, sessionId: "no-field" });
    const agent = makeAgent(new ScriptedModel(["a1", "a2", "a3"]), { plugins: [manager] });
    let invoking = false; // the field made an accessor: the manager cannot watch it, and wraps stream()
    Object.defineProperty(agent, "_isInvoking", { configurable: true, get: () => invoking, set: (value) => (invoking = value) });
    await agent.invoke("u1");
    let failing = true;
    agent.addHook(BeforeInvocationEvent, () => {
      if (failing) throw new Error("hook failed");
    });
    assert.equal((await settled(agent.invoke("u2"))).error?.message, "hook failed");
    // Released by the time the invoke rejected: another store takes the session at once.
    await (await (await storeB.open("no-field")).begin()).abort();
    failing = false;
    await agent.invoke("u3");
    assert.deepEqual(texts(agent.messages), ["user:u1", "assistant:a1", "user:u3", "assistant:a2"]);
  });

  test("a trimmed context (sliding window) is restored as the agent held it; the history keeps every message", async () => {
    const store = await SessionStore.memory();
    const make = (replies) =>
      makeAgent(new ScriptedModel(replies), {
        plugins: [new AgentSessionManager({ store, sessionId: "window" })],
        conversationManager: new SlidingWindowConversationManager({ windowSize: 4 }),
      });
    const agent = make(["a1", "a2", "a3", "a4"]);
    for (const u of ["u1", "u2", "u3", "u4"]) await agent.invoke(u);
    assert.deepEqual(texts(agent.messages), ["user:u3", "assistant:a3", "user:u4", "assistant:a4"]);
    const session = await store.open("window");
    assert.equal(session.messages({ agent: "agent" }).length, 4, "the trimmed messages are compacted away");
    const history = await session.history();
    assert.equal(history.filter((e) => e.type === "message").length, 8, "the history keeps every message");
    const restored = make([]);
    await restored.initialize();
    assert.deepEqual(texts(restored.messages), texts(agent.messages));
    // Without a window, a new agent gets the same context too (the context is stored, not derived).
    const unmanaged = makeAgent(new ScriptedModel(["a5"]), {
      plugins: [new AgentSessionManager({ store, sessionId: "window" })],
      conversationManager: new NullConversationManager(),
    });
    await unmanaged.invoke("u5");
    assert.deepEqual(texts(unmanaged.messages), ["user:u3", "assistant:a3", "user:u4", "assistant:a4", "user:u5", "assistant:a5"]);
    await session.refresh();
    assert.equal(session.messages({ agent: "agent" }).length, 6);
  });

  test("guard(fn): one invocation for several agent turns; a throw aborts them all; busy fails fast", async () => {
    const [storeA, storeB] = await twoStores();
    const manager = new AgentSessionManager({ store: storeA, sessionId: "g" });
    const agent = makeAgent(new ScriptedModel(["a1", "a2", "a3", "a4"]), { plugins: [manager] });
    const result = await manager.guard(async () => {
      await agent.invoke("u1");
      await agent.invoke("u2");
      // The session is held for the whole of fn, not only during an agent invocation.
      const busy = await settled((await storeB.open("g")).begin());
      assert.ok(busy.error instanceof ConcurrencyError);
      return "done";
    });
    assert.equal(result, "done");
    const session = await manager.session();
    assert.equal(session.version, 1, "two agent invocations, one commit");
    assert.equal(session.messages({ agent: "agent" }).length, 4);

    // fn throws after a successful agent turn (e.g. a tool crash, a check): nothing is kept.
    const failed = await settled(
      manager.guard(async () => {
        await agent.invoke("u3");
        throw new Error("later failure");
      }),
    );
    assert.equal(failed.error?.message, "later failure");
    await session.refresh();
    assert.equal(session.version, 1);
    assert.equal(session.status, "idle");
    assert.deepEqual(texts(agent.messages), ["user:u1", "assistant:a1", "user:u2", "assistant:a2"]);

    // Busy elsewhere: guard fails fast and fn never runs.
    const holder = await (await storeB.open("g")).begin();
    let ran = false;
    const refused = await settled(manager.guard(() => (ran = true)));
    await holder.abort();
    assert.ok(refused.error instanceof ConcurrencyError);
    assert.equal(ran, false);
  });

  test("restoreSnapshot by version and listSnapshotIds map onto agent-session versions", async () => {
    const store = await SessionStore.memory();
    const manager = new AgentSessionManager({ store, sessionId: "tt" });
    const agent = makeAgent(new ScriptedModel(["a1", "a2", "a3"]), { plugins: [manager] });
    await agent.invoke("u1");
    agent.appState.set("step", 1);
    await agent.invoke("u2");
    assert.deepEqual(await manager.listSnapshotIds({ target: agent }), ["1", "2"]);
    assert.equal(await manager.restoreSnapshot({ target: agent, snapshotId: "1" }), true);
    assert.deepEqual(texts(agent.messages), ["user:u1", "assistant:a1"]);
    assert.equal(agent.appState.get("step"), undefined);
    await agent.invoke("u3"); // continues from version 1's conversation, as version 3
    const session = await manager.session();
    assert.equal(session.version, 3);
    const restored = makeAgent(new ScriptedModel(), { plugins: [new AgentSessionManager({ store, sessionId: "tt" })] });
    await restored.initialize();
    assert.deepEqual(texts(restored.messages), ["user:u1", "assistant:a1", "user:u3", "assistant:a3"]);
    assert.deepEqual(restored.appState.getAll(), {});
    assert.equal(session.messages({ agent: "agent" }).length, 6, "the rewound turn stays in the history");
    // On an Agent that has not run yet (another process): it initializes, then loads that version.
    const otherManager = new AgentSessionManager({ store, sessionId: "tt" });
    const early = makeAgent(new ScriptedModel(["a4"]), { plugins: [otherManager] });
    assert.equal(await otherManager.restoreSnapshot({ target: early, snapshotId: 2 }), true);
    assert.deepEqual(texts(early.messages), ["user:u1", "assistant:a1", "user:u2", "assistant:a2"]);
    assert.deepEqual(early.appState.getAll(), { step: 1 });
    await early.invoke("u4");
    await session.refresh();
    assert.equal(session.version, 4);
    assert.deepEqual(texts(early.messages), ["user:u1", "assistant:a1", "user:u2", "assistant:a2", "user:u4", "assistant:a4"]);
    assert.deepEqual(await otherManager.listSnapshotIds({ target: early, startAfter: "2" }), ["3", "4"]);
    // An id that is no version: false and the agent unchanged, as Strands' SessionManager answers.
    for (const snapshotId of ["999", 5, "01890000-0000-7000-8000-000000000000", "", "1.5", "-1"]) {
      assert.equal(await otherManager.restoreSnapshot({ target: early, snapshotId }), false, `snapshotId ${JSON.stringify(snapshotId)}`);
    }
    assert.deepEqual(texts(early.messages).slice(-2), ["user:u4", "assistant:a4"]);
  });
  test("a human-in-the-loop interrupt survives a restart: a new Agent resumes it, the tool runs once", async () => {
    const [storeA, storeB] = await twoStores();
    const paid = { count: 0 };
    const make = (store, replies) => payingAgent(store, "hitl", replies, paid);
    const first = await make(storeA, [{ tool: "pay", id: "t1", input: { amount: 5 } }]).invoke("pay 5");
    assert.equal(first.stopReason, "interrupt");
    assert.equal(paid.count, 0);
    const session = await storeB.open("hitl");
    assert.equal(session.status, "idle", "a Strands interrupt is Strands state, not an agent-session interrupt");
    assert.equal(session.state({ agent: "agent" })["strands:interrupts"].activated, true);

    const resumed = make(storeB, ["paid"]); // another process
    const result = await resumed.invoke([{ interruptResponse: { interruptId: first.interrupts[0].id, response: "yes" } }]);
    assert.equal(result.stopReason, "endTurn");
    assert.equal(paid.count, 1);
    assert.deepEqual(
      resumed.messages.map((m) => `${m.role}:${m.content.map((b) => b.type).join(",")}`),
      ["user:textBlock", "assistant:toolUseBlock", "user:toolResultBlock", "assistant:textBlock"],
    );
    await session.refresh();
    assert.equal(session.state({ agent: "agent" })["strands:interrupts"].activated, false);
    assert.equal(session.messages({ agent: "agent" }).length, 4);
  });
  test("a long-lived Agent of another process answers an interrupt raised after it last saw the session: the tool runs once, and the raising Agent goes on after", async () => {
    const [storeA, storeB] = await twoStores();
    const paid = { count: 0 };
    const make = (store, replies) => payingAgent(store, "hitl-stale", replies, paid);
    const a = make(storeA, [{ tool: "pay", id: "t1", input: { amount: 5 } }, "anything else?"]);
    const b = make(storeB, ["hello", "paid"]);
    assert.equal((await b.invoke("hi")).stopReason, "endTurn"); // B has seen the session before the interrupt
    const raised = await a.invoke("pay 5");
    assert.equal(raised.stopReason, "interrupt");
    const answered = await b.invoke([{ interruptResponse: { interruptId: raised.interrupts[0].id, response: "yes" } }]);
    assert.equal(answered.stopReason, "endTurn");
    assert.equal(paid.count, 1);
    assert.deepEqual(texts(b.messages).filter((t) => t !== "user:" && t !== "assistant:"), ["user:hi", "assistant:hello", "user:pay 5", "assistant:paid"]);
    const after = await a.invoke("thanks");
    assert.equal(after.stopReason, "endTurn");
    assert.equal(paid.count, 1);
    const session = await storeB.open("hitl-stale");
    assert.equal(session.state({ agent: "agent" })["strands:interrupts"].activated, false);
    assert.equal(session.messages({ agent: "agent" }).length, 8);
  });
  test("a guardrail redaction of the input is applied before the commit: the original never reaches the store", async () => {
    const store = await SessionStore.memory();
    const manager = new AgentSessionManager({ store, sessionId: "redact" });
    const agent = makeAgent(new ScriptedModel([{ text: "I cannot help with that", redactInput: "[redacted]" }]), {
      plugins: [manager],
    });
    await agent.invoke("my card number is 4111 1111 1111 1111");
    assert.deepEqual(texts(agent.messages), ["user:[redacted]", "assistant:I cannot help with that"]);
    const session = await manager.session();
    // (The whole number: "4111" alone is in a history's millisecond timestamps for 100 s at a time, as
    // 1796411100000 to 1796411199999 on 2026-12-04, when this check failed for that reason.)
    assert.ok(!JSON.stringify(await session.history()).includes("4111 1111 1111 1111"), "the unredacted input is not in the history");
    assert.ok(!JSON.stringify(await session.history()).includes("card number"), "nor any of its words");
    assert.equal(session.messages({ agent: "agent" }).length, 2, "one event per message, the redacted one");
  });
});

// ---------------------------------------------------------------------------------------------
// Compaction: when the conversation manager shrinks agent.messages from the front, the commit of the
// turn compacts the agent's message log (inv.compact): messages() holds the context again, history()
// keeps every original message and adds a `compacted` event.

/** The agent's events of `session`'s history, as short strings: `message:<role>:<text>`, `compacted:<before>:<texts>`. */
/** A message log read as the manager reads it: one entry per trackingId, its newest version in place of the first. */
function newestVersions(log) {
  const at = new Map();
  const out = [];
  for (const message of log) {
    const key = message.trackingId ?? Symbol("no trackingId");
    if (at.has(key)) out[at.get(key)] = message;
    else at.set(key, out.push(message) - 1);
  }
  return out;
}

async function logOf(session, agent = "agent") {
  const text = (m) => `${m.role}:${m.content.map((b) => b.text ?? Object.keys(b)[0]).join("")}`;
  return (await session.history())
    .filter((e) => e.agent === agent && (e.type === "message" || e.type === "compacted"))
    .map((e) => (e.type === "message" ? `message:${text(e.data)}` : `compacted:${e.before}:${e.data.map(text).join("|")}`));
}

/** An Agent that answers a1, a2, ... (`replies` of them), with the manager on `store` and a sliding window. */
function windowedAgent(store, sessionId, replies, windowSize) {
  return makeAgent(new ScriptedModel(Array.from({ length: replies }, (_, i) => `a${i + 1}`)), {
    plugins: [new AgentSessionManager({ store, sessionId })],
    conversationManager: new SlidingWindowConversationManager({ windowSize }),
  });
}

/** After a turn: the stored log is within twice the context, and a new Agent on `store` restores the context. */
async function assertBoundedAndRestored(session, store, sessionId, agent, turn) {
  assert.ok(session.messages({ agent: "agent" }).length <= 2 * agent.messages.length, `turn ${turn}: the log stays within twice the context`);
  const restored = makeAgent(new ScriptedModel(), { plugins: [new AgentSessionManager({ store, sessionId })] });
  await restored.initialize();
  assert.deepEqual(texts(restored.messages), texts(agent.messages), `turn ${turn}: a new Agent restores the context`);
}

describe("AgentSessionManager: a session restored from a backup under a long-lived Agent", () => {
  test("an Agent that saw a version the restored session reached again with other content reloads it", async () => {
    const [storeA, storeB] = await twoStores();
    const manager = new AgentSessionManager({ store: storeA, sessionId: "restored" });
    const long = makeAgent(new ScriptedModel(["p", "q", "r"]), { plugins: [manager] });
    await long.invoke("P");
    const id = (await manager.session()).id;
    const backup = plain(await (await storeB.open(id)).export());
    await long.invoke("Q");
    // Another process restores the backup and runs a turn: the session is at the version the long-lived
    // Agent holds again (its creation time the backup's), with other messages.
    await storeB.delete(id);
    await storeB.import(backup);
    const other = makeAgent(new ScriptedModel(["z"]), { plugins: [new AgentSessionManager({ store: storeB, sessionId: "restored" })] });
    await other.invoke("Z");
    const seen = [];
    long.model.replies.unshift(async () => {
      seen.push(...texts(long.messages));
      return "r";
    });
    await long.invoke("R");
    assert.deepEqual(seen, ["user:P", "assistant:p", "user:Z", "assistant:z", "user:R"], "the model saw the restored session");
    assert.deepEqual(texts(long.messages), ["user:P", "assistant:p", "user:Z", "assistant:z", "user:R", "assistant:r"]);
    const reader = makeAgent(new ScriptedModel([]), { plugins: [new AgentSessionManager({ store: storeB, sessionId: "restored" })] });
    await reader.initialize();
    assert.deepEqual(texts(reader.messages), texts(long.messages));
  });
});

describe("AgentSessionManager: compaction of the trimmed context", () => {
  test("sliding window: each trim is one compaction in the turn's commit; a new Agent in another store reads the window", async () => {
    const [storeA, storeB] = await twoStores();
    const agent = makeAgent(new ScriptedModel(["a1", "a2", "a3", "a4"]), {
      plugins: [new AgentSessionManager({ store: storeA, sessionId: "slide" })],
      conversationManager: new SlidingWindowConversationManager({ windowSize: 4 }),
    });
    for (const u of ["u1", "u2", "u3", "u4"]) await agent.invoke(u);
    assert.deepEqual(texts(agent.messages), ["user:u3", "assistant:a3", "user:u4", "assistant:a4"]);

    const session = await storeB.open("slide");
    assert.equal(session.version, 4, "one commit per turn: the compaction is part of it");
    assert.deepEqual(texts(session.messages({ agent: "agent" })), texts(agent.messages));
    assert.equal(session.state({ agent: "agent" })["strands:context"], undefined, "the log is the context again");
    // Turn 3 drops u1 and a1 before it appends its own messages, turn 4 drops u2 and a2.
    assert.deepEqual(await logOf(session), [
      "message:user:u1", "message:assistant:a1", "message:user:u2", "message:assistant:a2",
      "compacted:2:", "message:user:u3", "message:assistant:a3",
      "compacted:2:", "message:user:u4", "message:assistant:a4",
    ]);
    assert.deepEqual(texts((await session.at(2)).messages({ agent: "agent" })), ["user:u1", "assistant:a1", "user:u2", "assistant:a2"]);

    // A new Agent in the other store restores the window, also after the old versions are pruned.
    assert.ok((await session.prune({ before: session.version })) > 0);
    const restoredModel = new ScriptedModel();
    const restored = makeAgent(restoredModel, {
      plugins: [new AgentSessionManager({ store: storeB, sessionId: "slide" })],
      conversationManager: new SlidingWindowConversationManager({ windowSize: 4 }),
    });
    await restored.initialize();
    assert.deepEqual(texts(restored.messages), texts(agent.messages));

    // The guard still holds: while the restored Agent's turn runs, the first one fails fast.
    const gate = deferred();
    restoredModel.replies = [held(gate, "a5")];
    const running = restored.invoke("u5");
    await sleep(20);
    const refused = await settled(agent.invoke("intruder"));
    gate.resolve();
    await running;
    assert.ok(refused.error instanceof ConcurrencyError);
    await session.refresh();
    assert.deepEqual(texts(session.messages({ agent: "agent" })), ["user:u4", "assistant:a4", "user:u5", "assistant:a5"]);
    assert.ok(!JSON.stringify(await session.history({ from: session.version })).includes("intruder"));
  });

  test("summarizing a few messages: the summary is cut in at once, though the log holds fewer trimmed entries than kept ones", async () => {
    const store = await SessionStore.memory();
    const summarizer = new ScriptedModel(["SUMMARY of u1 a1"]);
    const model = new ScriptedModel(["a1", "a2", "a3", new ContextWindowOverflowError("too long"), "a4"]);
    const agent = makeAgent(model, {
      plugins: [new AgentSessionManager({ store, sessionId: "early-summary" })],
      conversationManager: new SummarizingConversationManager({ model: summarizer, summaryRatio: 0.3, preserveRecentMessages: 2 }),
    });
    for (const u of ["u1", "u2", "u3", "u4"]) await agent.invoke(u);
    const expected = ["user:SUMMARY of u1 a1", "user:u2", "assistant:a2", "user:u3", "assistant:a3", "user:u4", "assistant:a4"];
    assert.deepEqual(texts(agent.messages), expected);
    const session = await store.open("early-summary");
    assert.deepEqual(texts(session.messages({ agent: "agent" })), expected);
    assert.equal(session.state({ agent: "agent" })["strands:context"], undefined);
    assert.deepEqual((await logOf(session)).slice(6), ["compacted:2:user:SUMMARY of u1 a1", "message:user:u4", "message:assistant:a4"]);
  });

  test("summarizing: the summary message is the compaction's summary, not a message of its own", async () => {
    const [storeA, storeB] = await twoStores();
    const summarizer = new ScriptedModel(["SUMMARY of u1 a1 u2"]);
    const model = new ScriptedModel(["a1", "a2", "a3", new ContextWindowOverflowError("too long"), "a4"]);
    const agent = makeAgent(model, {
      plugins: [new AgentSessionManager({ store: storeA, sessionId: "sum" })],
      conversationManager: new SummarizingConversationManager({ model: summarizer, summaryRatio: 0.5, preserveRecentMessages: 2 }),
    });
    for (const u of ["u1", "u2", "u3", "u4"]) await agent.invoke(u);
    assert.equal(summarizer.calls, 1);
    const expected = ["user:SUMMARY of u1 a1 u2", "assistant:a2", "user:u3", "assistant:a3", "user:u4", "assistant:a4"];
    assert.deepEqual(texts(agent.messages), expected);

    const session = await storeB.open("sum");
    assert.deepEqual(texts(session.messages({ agent: "agent" })), expected);
    assert.equal(session.state({ agent: "agent" })["strands:context"], undefined);
    assert.deepEqual(await logOf(session), [
      "message:user:u1", "message:assistant:a1", "message:user:u2", "message:assistant:a2",
      "message:user:u3", "message:assistant:a3",
      "compacted:3:user:SUMMARY of u1 a1 u2",
      "message:user:u4", "message:assistant:a4",
    ]);
    const restored = makeAgent(new ScriptedModel(), { plugins: [new AgentSessionManager({ store: storeB, sessionId: "sum" })] });
    await restored.initialize();
    assert.deepEqual(texts(restored.messages), expected);
    assert.equal(restored.messages[0].trackingId, agent.messages[0].trackingId, "the summary keeps its trackingId");
  });

  test("a cut the core refuses (a tool call before it, its rewritten result after it) gives way to the next one", async () => {
    const store = await SessionStore.memory();
    const calls = [];
    const agent = makeAgent(new ScriptedModel([{ tool: "lookup", id: "t1", input: { city: "Oslo" } }, "a1", "a2", "a3"]), {
      plugins: [new AgentSessionManager({ store, sessionId: "pairs" })],
      conversationManager: new NullConversationManager(),
      tools: [lookupTool(calls)],
    });
    await agent.invoke("u1");
    assert.deepEqual(calls, ["Oslo"]);
    // Rewrite the tool result in place (same trackingId), as a sliding window truncating results does:
    // the next commit stores it again, after the final answer a1.
    const result = agent.messages[2];
    agent.messages[2] = new Message({
      role: "user",
      content: [new ToolResultBlock({ toolUseId: "t1", status: "success", content: [new TextBlock("[truncated]")] })],
      trackingId: result.trackingId,
    });
    await agent.invoke("u2");
    const session = await store.open("pairs");
    const before = session.version;
    assert.equal(session.messages({ agent: "agent" }).length, 7, "u1, call, result, a1, result again, u2, a2");
    // Drop u1, the call and its result from the context (a custom manager could): the best cut, before
    // a1, would keep the stored-again result after it while its call goes.
    agent.messages.splice(0, 3);
    await agent.invoke("u3");
    assert.deepEqual(texts(agent.messages), ["assistant:a1", "user:u2", "assistant:a2", "user:u3", "assistant:a3"]);
    await session.refresh();
    assert.deepEqual(texts(session.messages({ agent: "agent" })), texts(agent.messages));
    const log = await logOf(session);
    assert.deepEqual(log.filter((e) => e.startsWith("compacted")), ["compacted:5:assistant:a1"], "cut after the result, a1 written again");
    // The core would have refused the cut before a1, as this fork at the version before shows.
    const probe = await (await session.fork({ at: before })).begin();
    assert.throws(() => probe.compact({ before: 3, summary: [], agent: "agent" }), ValidationError);
    await probe.abort();
    const restored = makeAgent(new ScriptedModel(), { plugins: [new AgentSessionManager({ store, sessionId: "pairs" })] });
    await restored.initialize();
    assert.deepEqual(texts(restored.messages), texts(agent.messages));
  });

  test("guard(fn): the compactions of several turns commit with them, or not at all", async () => {
    const store = await SessionStore.memory();
    const manager = new AgentSessionManager({ store, sessionId: "guarded" });
    const agent = makeAgent(new ScriptedModel(["a1", "a2", "a3", "a4", "a5"]), {
      plugins: [manager],
      conversationManager: new SlidingWindowConversationManager({ windowSize: 2 }),
    });
    await agent.invoke("u1");
    const failed = await settled(
      manager.guard(async () => {
        await agent.invoke("u2");
        await agent.invoke("u3");
        throw new Error("later failure");
      }),
    );
    assert.equal(failed.error?.message, "later failure");
    const session = await manager.session();
    assert.equal(session.version, 1);
    assert.deepEqual(texts(session.messages({ agent: "agent" })), ["user:u1", "assistant:a1"]);
    assert.deepEqual(texts(agent.messages), ["user:u1", "assistant:a1"], "the agent is back at version 1");
    await manager.guard(async () => {
      await agent.invoke("u4");
      await agent.invoke("u5");
    });
    await session.refresh();
    assert.equal(session.version, 2);
    assert.deepEqual(texts(session.messages({ agent: "agent" })), ["user:u5", "assistant:a5"]);
    assert.deepEqual((await logOf(session)).slice(2), [
      "compacted:2:", "message:user:u4", "message:assistant:a4",
      "compacted:2:", "message:user:u5", "message:assistant:a5",
    ]);
  });

  test("turn after turn of cuts, a rewrite and a message written outside the manager, the stored log stays the agent's", async () => {
    // The manager plans each cut from its own index of the log instead of reading the log back: after
    // every turn, the session, and a new Agent in another store, must hold what the agent holds.
    const [storeA, storeB] = await twoStores();
    const agent = windowedAgent(storeA, "index", 10, 6);
    const session = await storeB.open("index", { create: true });
    const written = [];
    for (let turn = 1; turn <= 10; turn++) {
      if (turn === 3) {
        // Another writer appends a message without a trackingId: the next turn reloads it, and stores
        // it again as the agent holds it (with the trackingId Strands gave it).
        const outside = await session.begin();
        outside.appendMessage({ role: "user", content: [{ text: "outside" }] }, { agent: "agent" });
        await outside.commit();
        written.push("user:outside", "user:outside");
      }
      if (turn === 6) {
        // A message rewritten in place (same trackingId) is stored again; its old version is dead.
        const at = agent.messages.length - 1;
        const old = agent.messages[at];
        agent.messages[at] = new Message({ role: old.role, content: [new TextBlock("rewritten")], trackingId: old.trackingId });
        written.push(`${old.role}:rewritten`);
      }
      await agent.invoke(`u${turn}`);
      written.push(`user:u${turn}`, `assistant:a${turn}`);
      await session.refresh();
      const stored = session.messages({ agent: "agent" });
      if (session.state({ agent: "agent" })["strands:context"] === undefined) {
        assert.deepEqual(texts(newestVersions(stored)), texts(agent.messages), `turn ${turn}: the log is the context`);
      }
      await assertBoundedAndRestored(session, storeB, "index", agent, turn);
    }
    assert.ok((await logOf(session)).some((e) => e.startsWith("compacted")));
    // Every message version written is in the history, in order.
    const logged = (await logOf(session)).filter((e) => e.startsWith("message:")).map((e) => e.slice("message:".length));
    assert.deepEqual(logged, written);
  });

  test("restoreSnapshot to a version before a compaction, then turns: the log stays the agent's", async () => {
    // The restored messages are found in the latest log by trackingId, not by their index in the
    // version they came from (the compaction since moved every entry).
    const [storeA, storeB] = await twoStores();
    const manager = new AgentSessionManager({ store: storeA, sessionId: "back" });
    const agent = makeAgent(new ScriptedModel(["a1", "a2", "a3", "a4", "a5"]), {
      plugins: [manager],
      conversationManager: new NullConversationManager(),
    });
    for (const u of ["u1", "u2"]) await agent.invoke(u);
    // Drop u1 and a1 from the context (a custom manager could): turn 3 compacts them away.
    agent.messages.splice(0, 2);
    await agent.invoke("u3");
    const session = await storeB.open("back");
    assert.deepEqual(texts(session.messages({ agent: "agent" })), ["user:u2", "assistant:a2", "user:u3", "assistant:a3"]);
    assert.equal(await manager.restoreSnapshot({ target: agent, snapshotId: "2" }), true);
    assert.deepEqual(texts(agent.messages), ["user:u1", "assistant:a1", "user:u2", "assistant:a2"]);
    for (const u of ["u4", "u5"]) {
      await agent.invoke(u);
      const restored = makeAgent(new ScriptedModel(), { plugins: [new AgentSessionManager({ store: storeB, sessionId: "back" })] });
      await restored.initialize();
      assert.deepEqual(texts(restored.messages), texts(agent.messages), `after ${u}`);
    }
    assert.deepEqual(texts(agent.messages), ["user:u1", "assistant:a1", "user:u2", "assistant:a2", "user:u4", "assistant:a4", "user:u5", "assistant:a5"]);
  });

  test("compact: false, restoreSnapshot to a version before another manager's compaction, then a turn: a new Agent restores it", async () => {
    // Nothing compacts in that turn, so the context key is written from the manager's index of the log:
    // the restored messages must be found in the latest log by trackingId (u2, a2 moved from 2, 3 to 0, 1).
    const store = await SessionStore.memory();
    const make = (compact, replies = []) => {
      const manager = new AgentSessionManager({ store, sessionId: "mixed", compact });
      return [makeAgent(new ScriptedModel(replies), { plugins: [manager], conversationManager: new NullConversationManager() }), manager];
    };
    const [first] = make(true, ["a1", "a2", "a3"]);
    for (const u of ["u1", "u2"]) await first.invoke(u);
    first.messages.splice(0, 2);
    await first.invoke("u3"); // compacts u1 and a1 away
    const [second, manager] = make(false, ["a4"]);
    await second.initialize();
    assert.equal(await manager.restoreSnapshot({ target: second, snapshotId: "2" }), true);
    await second.invoke("u4");
    assert.deepEqual(texts(second.messages), ["user:u1", "assistant:a1", "user:u2", "assistant:a2", "user:u4", "assistant:a4"]);
    const [restored] = make(false);
    await restored.initialize();
    assert.deepEqual(texts(restored.messages), texts(second.messages));
  });

  test("compact: false keeps every message in the log (the context is a state key over it)", async () => {
    const store = await SessionStore.memory();
    const agent = makeAgent(new ScriptedModel(["a1", "a2", "a3"]), {
      plugins: [new AgentSessionManager({ store, sessionId: "keep", compact: false })],
      conversationManager: new SlidingWindowConversationManager({ windowSize: 2 }),
    });
    for (const u of ["u1", "u2", "u3"]) await agent.invoke(u);
    const session = await store.open("keep");
    assert.equal(session.messages({ agent: "agent" }).length, 6);
    assert.ok(!(await session.history()).some((e) => e.type === "compacted"));
    const restored = makeAgent(new ScriptedModel(), { plugins: [new AgentSessionManager({ store, sessionId: "keep" })] });
    await restored.initialize();
    assert.deepEqual(texts(restored.messages), ["user:u3", "assistant:a3"]);
    assert.throws(() => new AgentSessionManager({ store, compact: "yes" }), TypeError);
  });

  test("compact: false: a message another writer stored without a trackingId is restored once, not twice", async () => {
    // The agent reloads it with a new trackingId and stores it again under that id: the context key
    // must index the log as a reader reads it (the old entry and the new one are two messages).
    const store = await SessionStore.memory();
    const make = (replies) => makeAgent(new ScriptedModel(replies), { plugins: [new AgentSessionManager({ store, sessionId: "outside", compact: false })] });
    const agent = make(["a1", "a2"]);
    await agent.invoke("u1");
    const session = await store.open("outside");
    const outside = await session.begin();
    outside.appendMessage({ role: "user", content: [{ text: "outside" }] }, { agent: "agent" });
    await outside.commit();
    await agent.invoke("u2");
    assert.deepEqual(texts(agent.messages), ["user:u1", "assistant:a1", "user:outside", "user:u2", "assistant:a2"]);
    const restored = make([]);
    await restored.initialize();
    assert.deepEqual(texts(restored.messages), texts(agent.messages));
  });
});

// ---------------------------------------------------------------------------------------------
// Live turns: each invocation forwards its stream events to the turn's live log, and a stop of the
// session (from any store) cancels the agent through the invocation's signal.

/** A model whose every stream() call runs the next script: `script(options)` yields model stream events. */
class StreamingModel extends Model {
  constructor(scripts = []) {
    super();
    this.scripts = [...scripts];
    this.calls = 0;
    this.config = { modelId: "streaming" };
  }
  updateConfig(config) {
    Object.assign(this.config, config);
  }
  getConfig() {
    return this.config;
  }
  async *stream(_messages, options) {
    this.calls++;
    const script = this.scripts.shift();
    if (script === undefined) throw new Error("StreamingModel: no script left");
    yield* script(options);
  }
}

/** A text answer streamed in `chunks`, `delayMs` apart. */
const streamedText = (chunks, delayMs = 60) =>
  async function* () {
    yield { type: "modelMessageStartEvent", role: "assistant" };
    yield { type: "modelContentBlockStartEvent" };
    for (const text of chunks) {
      await sleep(delayMs);
      yield { type: "modelContentBlockDeltaEvent", delta: { type: "textDelta", text } };
    }
    yield { type: "modelContentBlockStopEvent" };
    yield { type: "modelMessageStopEvent", stopReason: "endTurn" };
  };

/** One tool use, after `delayMs`. */
const streamedToolUse = (name, toolUseId, input, delayMs = 60) =>
  async function* () {
    await sleep(delayMs);
    yield { type: "modelMessageStartEvent", role: "assistant" };
    yield { type: "modelContentBlockStartEvent", start: { type: "toolUseStart", name, toolUseId } };
    yield { type: "modelContentBlockDeltaEvent", delta: { type: "toolUseInputDelta", input: JSON.stringify(input) } };
    yield { type: "modelContentBlockStopEvent" };
    yield { type: "modelMessageStopEvent", stopReason: "toolUse" };
  };

/** `chunks`, then a wait for the call's cancelSignal (or 3 s); what the model saw goes to `seen`. */
const stoppableText = (chunks, seen) =>
  async function* (options) {
    yield { type: "modelMessageStartEvent", role: "assistant" };
    yield { type: "modelContentBlockStartEvent" };
    for (const text of chunks) {
      await sleep(30);
      yield { type: "modelContentBlockDeltaEvent", delta: { type: "textDelta", text } };
    }
    const signal = options?.cancelSignal;
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 3000);
      signal?.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
    seen.aborted = signal?.aborted === true;
    // As a provider's fetch does when its signal aborts.
    throw Object.assign(new Error("The operation was aborted"), { name: "AbortError" });
  };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function lookupTool(calls) {
  return new FunctionTool({
    name: "lookup",
    description: "Looks a city up.",
    inputSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    callback: async (input) => {
      calls.push(input.city);
      await sleep(30);
      return `${input.city}: sunny`;
    },
  });
}

describe("AgentSessionManager: live turns", () => {
  test("agent.stream() forwards its events; a follower in another store gets them in order, then `end` committed", async () => {
    const [storeA, storeB] = await twoStores();
    const calls = [];
    const model = new StreamingModel([streamedToolUse("lookup", "tool-1", { city: "Oslo" }), streamedText(["Sunny ", "in ", "Oslo."])]);
    const agent = makeAgent(model, { tools: [lookupTool(calls)], plugins: [new AgentSessionManager({ store: storeA, sessionId: "live" })] });
    const viewer = await storeB.open("live");
    const following = followTurn(viewer);
    const streamed = [];
    for await (const event of agent.stream("Weather in Oslo?")) streamed.push(event);
    assert.deepEqual(calls, ["Oslo"]);
    const events = await following;

    const parts = events.filter((e) => e.type === "part");
    const end = events.at(-1);
    assert.equal(end.type, "end");
    assert.equal(end.outcome, "committed");
    assert.equal(end.version, 1);
    assert.deepEqual(events.slice(0, -1).map((e) => e.type), parts.map(() => "part"));
    assert.deepEqual(parts.map((p) => p.seq), parts.map((_, i) => i));
    assert.ok(parts.every((p) => p.invocation === end.invocation));
    // Exactly the wire form of what the stream yielded, for the forwarded event types, in order.
    const expected = streamed.map(streamEventPart).filter((part) => part !== undefined);
    assert.deepEqual(parts.map((p) => p.data), expected);
    assert.deepEqual(
      [...new Set(parts.map((p) => p.data.type))],
      ["modelStreamUpdateEvent", "modelMessageEvent", "toolResultEvent"],
    );
    const deltas = parts
      .filter((p) => p.data.event?.type === "modelContentBlockDeltaEvent" && p.data.event.delta.type === "textDelta")
      .map((p) => p.data.event.delta.text);
    assert.deepEqual(deltas, ["Sunny ", "in ", "Oslo."]);
    assert.deepEqual(parts.find((p) => p.data.type === "toolResultEvent").data.result, {
      toolResult: { toolUseId: "tool-1", status: "success", content: [{ text: "Oslo: sunny" }] },
    });
    // Parts are not history; the turn's messages are.
    assert.equal(viewer.version, 1);
    assert.equal(viewer.messages({ agent: agent.id }).length, 4);
    assert.ok((await viewer.history()).every((e) => e.type !== "part"));
  });

  test("invoke() forwards too; emit: false forwards nothing; a function picks the parts", async () => {
    const store = await SessionStore.memory();
    const run = async (emit, chunks) => {
      const manager = new AgentSessionManager({ store, sessionId: "live-options", ...(emit !== undefined && { emit }) });
      const agent = makeAgent(new StreamingModel([streamedText(chunks)]), { plugins: [manager] });
      const session = await manager.session();
      const following = followTurn(session);
      const result = await agent.invoke("go");
      return { events: await following, result };
    };
    const plainInvoke = await run(undefined, ["a", "b"]);
    assert.equal(plainInvoke.result.stopReason, "endTurn");
    assert.ok(plainInvoke.events.filter((e) => e.type === "part").length >= 2);
    assert.equal(plainInvoke.events.at(-1).outcome, "committed");
    const quiet = await run(false, ["c", "d"]);
    assert.deepEqual(quiet.events.filter((e) => e.type === "part"), [], "no part");
    assert.equal(quiet.events.at(-1).version, 2, "the follower still sees the commit");
    const picky = await run(
      (event) => (event.type === "modelStreamUpdateEvent" && event.event.delta?.type === "textDelta" ? { text: event.event.delta.text } : undefined),
      ["e", "f", "g"],
    );
    assert.deepEqual(picky.events.filter((e) => e.type === "part").map((e) => e.data), [{ text: "e" }, { text: "f" }, { text: "g" }]);
    assert.equal(picky.events.at(-1).outcome, "committed");
    assert.throws(() => new AgentSessionManager({ store, emit: "yes" }), TypeError);
  });

  test("an emit projection that throws fails the invocation with its error and, as a model error does, keeps nothing of it; the next invocation works", async () => {
    const store = await SessionStore.memory();
    const bug = new Error("projection bug");
    let armed = false; // throws at the third stream event of the second invocation
    let parts = 0;
    const manager = new AgentSessionManager({
      store,
      sessionId: "throwing-emit",
      emit: (event) => {
        if (event.type !== "modelStreamUpdateEvent") return undefined;
        if (armed && ++parts === 3) {
          armed = false;
          throw bug;
        }
        return { t: event.type };
      },
    });
    const agent = makeAgent(new StreamingModel([streamedText(["first"]), streamedText(["a", "b", "c"]), streamedText(["ok"])]), { plugins: [manager] });
    await agent.invoke("before");
    const session = await manager.session();
    const before = { version: session.version, messages: session.messages({ agent: agent.id }) };
    const following = followTurn(session);
    armed = true;
    await assert.rejects(agent.invoke("hi"), (error) => {
      assert.ok(error === bug || error?.cause === bug, `${error?.name}: ${error?.message} (cause ${error?.cause})`);
      return true;
    });
    const events = await following;
    assert.equal(events.at(-1).outcome, "aborted", "the follower sees the turn end aborted");
    await session.refresh();
    assert.equal(session.version, before.version, "no version for the failed invocation");
    assert.deepEqual(session.messages({ agent: agent.id }), before.messages, "nothing of it stored (no dangling user message)");
    assert.equal(agent.messages.length, before.messages.length, "the agent is back at the last commit");
    const result = await agent.invoke("again");
    assert.equal(result.stopReason, "endTurn");
    await session.refresh();
    assert.equal(session.version, before.version + 1);
  });

  for (const how of ["invoke", "stream"]) {
    test(`stop() from another store cancels the agent's ${how}() through the signal; the turn ends "stopped"`, async () => {
      const kv = memoryKv();
      const storeA = await SessionStore.kv(kv, { owner: "A" });
      const storeB = await SessionStore.kv(kv, { owner: "B" });
      const seen = {};
      const model = new StreamingModel([streamedText(["earlier answer"], 1), stoppableText(["Let me ", "think"], seen), streamedText(["ok"], 1)]);
      const agent = makeAgent(model, { plugins: [new AgentSessionManager({ store: storeA, sessionId: "stop-me" })] });
      await agent.invoke("earlier");
      const viewer = await storeB.open("stop-me");
      const following = followTurn(viewer);
      const running =
        how === "invoke"
          ? agent.invoke("take your time")
          : (async () => {
              let last;
              for await (const event of agent.stream("take your time")) if (event.type === "agentResultEvent") last = event.result;
              return last;
            })();
      await sleep(150);
      const stop = await viewer.stop({ reason: "user pressed stop" });
      assert.equal(stop.outcome, "stopped", "the holder ended the turn within the grace");
      const result = await running;
      assert.equal(seen.aborted, true, "the model call saw its cancelSignal abort");
      assert.equal(result.stopReason, "cancelled");

      const events = await following;
      const end = events.at(-1);
      assert.equal(end.type, "end");
      assert.equal(end.outcome, "stopped");
      assert.equal(end.version, stop.version);
      const deltas = events
        .filter((e) => e.type === "part" && e.data.event?.delta?.type === "textDelta")
        .map((e) => e.data.event.delta.text);
      assert.deepEqual(deltas, ["Let me ", "think"]);
      await viewer.refresh();
      const stopped = (await viewer.history()).filter((e) => e.type === "stopped");
      assert.equal(stopped.length, 1, "one stopped event");
      assert.equal(stopped[0].reason, "user pressed stop");
      assert.deepEqual(stopped[0].data, { by: "B", outcome: "stopped" });
      assert.equal(stopped[0].version, stop.version);
      assert.equal(viewer.status, "idle");
      // The turn committed what the agent held: its input and Strands' cancellation answer.
      assert.deepEqual(texts(viewer.messages({ agent: agent.id }).map(plain)).slice(2), ["user:take your time", "assistant:Cancelled by user"]);
      // The signal is detached: the next invocation runs to its end.
      const next = await agent.invoke("again");
      assert.equal(next.stopReason, "endTurn");
      assert.equal(model.calls, 3);
    });
  }

  test("stop({ graceMs: 0 }) from another store fences the agent's invoke(): it rejects with the StopRequestedError (not the LeaseLostError of its refused commit), and nothing of the turn is stored", async () => {
    const kv = memoryKv();
    const storeA = await SessionStore.kv(kv, { owner: "A" });
    const storeB = await SessionStore.kv(kv, { owner: "B" });
    const seen = {};
    const model = new StreamingModel([streamedText(["earlier answer"], 1), stoppableText(["Let me ", "think"], seen)]);
    const agent = makeAgent(model, { plugins: [new AgentSessionManager({ store: storeA, sessionId: "fence-me" })] });
    await agent.invoke("earlier");
    const viewer = await storeB.open("fence-me");
    const running = agent.invoke("take your time");
    running.catch(() => {});
    await sleep(150);
    const stop = await viewer.stop({ reason: "now", graceMs: 0 });
    assert.equal(stop.outcome, "fenced");
    await assert.rejects(running, stoppedBy("B", "now"));
    await viewer.refresh();
    assert.deepEqual(texts(viewer.messages({ agent: agent.id }).map(plain)), ["user:earlier", "assistant:earlier answer"]);
  });

  test("a stop during guard(fn) cancels the running invocation and every later one inside it; the guard commits", async () => {
    const [storeA, storeB] = await twoStores();
    const seen = {};
    const model = new StreamingModel([stoppableText(["partial"], seen)]);
    const manager = new AgentSessionManager({ store: storeA, sessionId: "guarded-stop" });
    const agent = makeAgent(model, { plugins: [manager] });
    const viewer = await storeB.open("guarded-stop");
    const following = followTurn(viewer);
    const guarded = manager.guard(async (inv) => {
      const first = await agent.invoke("one");
      assert.equal(inv.signal.aborted, true);
      const second = await agent.invoke("two");
      return [first.stopReason, second.stopReason];
    });
    await sleep(120);
    const stop = await viewer.stop({ reason: "halt" });
    assert.deepEqual(await guarded, ["cancelled", "cancelled"]);
    assert.equal(stop.outcome, "stopped");
    assert.equal(model.calls, 1, "the second invocation was cancelled before its model call");
    const events = await following;
    assert.equal(events.at(-1).outcome, "stopped");
    await viewer.refresh();
    assert.equal((await viewer.history()).filter((e) => e.type === "stopped").length, 1);
    assert.equal(viewer.version, stop.version);
  });
});

// ---------------------------------------------------------------------------------------------
// What the manager keeps between turns to save work (the JSON text of each message it serialized, the
// default forwarding's parts serialized once): never a reason to store, or forward, something else.

describe("AgentSessionManager: what it reuses between turns", () => {
  test("a message changed in place (a block replaced, a tool input edited) is stored again, not its old text", async () => {
    const [storeA, storeB] = await twoStores();
    const calls = [];
    const agent = makeAgent(new ScriptedModel([{ tool: "lookup", id: "t1", input: { city: "Oslo" } }, "a1", "a2", "a3"]), {
      plugins: [new AgentSessionManager({ store: storeA, sessionId: "in-place" })],
      conversationManager: new NullConversationManager(),
      tools: [lookupTool(calls)],
    });
    await agent.invoke("u1");
    assert.equal(agent.messages.length, 4, "u1, the call, its result, a1");
    // The same Message objects, changed under the manager: a block swapped in the content array (as
    // Strands' offloading strategies do), and the tool input object edited deep inside a block.
    agent.messages[3].content[0] = new TextBlock("a1 edited");
    agent.messages[1].content[0].input.city = "Bergen";
    await agent.invoke("u2");
    const session = await storeB.open("in-place");
    const restored = makeAgent(new ScriptedModel(), { plugins: [new AgentSessionManager({ store: storeB, sessionId: "in-place" })] });
    await restored.initialize();
    assert.deepEqual(plain(restored.messages), plain(agent.messages));
    assert.equal(restored.messages[1].content[0].input.city, "Bergen");
    assert.equal(restored.messages[3].content[0].text, "a1 edited");
    assert.deepEqual(texts(newestVersions(session.messages({ agent: agent.id }))), texts(agent.messages));
    // Unchanged again: the next turn appends only its own two messages.
    const before = session.messages({ agent: agent.id }).length;
    agent.messages[1].content[0].input.city = "Bergen"; // the same value: nothing to store
    await agent.invoke("u3");
    await session.refresh();
    assert.equal(session.messages({ agent: agent.id }).length, before + 2);
  });

  test("two managers on one store and sessionId, turn by turn: each agent reloads what the other committed", async () => {
    const store = await SessionStore.memory();
    const a = makeAgent(new ScriptedModel(["a1", "a3"]), { plugins: [new AgentSessionManager({ store, sessionId: "shared" })] });
    const b = makeAgent(new ScriptedModel(["a2", "a4"]), { plugins: [new AgentSessionManager({ store, sessionId: "shared" })] });
    await a.invoke("u1");
    await b.invoke("u2");
    assert.deepEqual(texts(b.messages), ["user:u1", "assistant:a1", "user:u2", "assistant:a2"]);
    await a.invoke("u3");
    assert.deepEqual(texts(a.messages), ["user:u1", "assistant:a1", "user:u2", "assistant:a2", "user:u3", "assistant:a3"]);
    await b.invoke("u4");
    const expected = ["user:u1", "assistant:a1", "user:u2", "assistant:a2", "user:u3", "assistant:a3", "user:u4", "assistant:a4"];
    assert.deepEqual(texts(b.messages), expected);
    const session = await store.open("shared");
    assert.deepEqual(texts(session.messages({ agent: a.id })), expected, "one message event per message");
  });

  test("the default forwarding emits exactly streamEventPart's parts, also for an event that is not plain JSON", async () => {
    const [storeA, storeB] = await twoStores();
    // A tool that streams values JSON.stringify writes as null or leaves out (which emit() refuses as
    // they are), then plain ones.
    const progress = new FunctionTool({
      name: "progress",
      description: "Reports progress.",
      inputSchema: { type: "object", properties: {} },
      callback: async function* () {
        yield { done: NaN, steps: [1, undefined, () => 2], note: undefined };
        yield { done: 1, steps: [1, 2] };
        return "finished";
      },
    });
    const model = new StreamingModel([streamedToolUse("progress", "p-1", {}), streamedText(["ok"])]);
    const agent = makeAgent(model, { tools: [progress], plugins: [new AgentSessionManager({ store: storeA, sessionId: "odd" })] });
    const viewer = await storeB.open("odd");
    const following = followTurn(viewer);
    const streamed = [];
    for await (const event of agent.stream("go")) streamed.push(event);
    const events = await following;
    assert.equal(events.at(-1).outcome, "committed");
    const parts = events.filter((e) => e.type === "part").map((e) => e.data);
    assert.deepEqual(parts, streamed.map(streamEventPart).filter((part) => part !== undefined));
    const updates = parts.filter((p) => p.type === "toolStreamUpdateEvent");
    assert.equal(updates.length, 2, JSON.stringify(parts));
    assert.match(JSON.stringify(updates[0]), /"done":null,"steps":\[1,null,null\]/, "the odd value, as JSON writes it");
  });
});

describe("AgentSessionStorage: batches", () => {
  test("a write and a delete of the same key in one batch delete the session; with another key left, it stays", async () => {
    const store = await SessionStore.memory();
    const storage = new AgentSessionStorage(store);
    const bytes = (text) => new TextEncoder().encode(text);
    await storage.write("session/s1/x", bytes('{"a":1}'));
    await Promise.all([storage.write("session/s1/x", bytes('{"a":2}')), storage.delete("session/s1/x")]);
    assert.equal(await storage.read("session/s1/x"), null);
    assert.deepEqual(await storage.list("session/s1/"), []);
    assert.equal((await store.list({ prefix: "strands/session/s1" })).sessions.length, 0, "the session is deleted");
    await storage.write("session/s2/keep", bytes('{"k":1}'));
    await Promise.all([storage.write("session/s2/x", bytes('{"a":2}')), storage.delete("session/s2/x")]);
    assert.deepEqual(await storage.list("session/s2/"), ["session/s2/keep"]);
    assert.deepEqual(await storage.read("session/s2/keep"), bytes('{"k":1}'));
  });
});

// ---------------------------------------------------------------------------------------------
// Random sequences: two Agents on one session (each with its own store over one KV, compact on or off,
// a sliding window or none) take turns, trim their context, rewrite a message in place, restore an
// older version, meet a message another writer appended without a trackingId, or are replaced by a
// new Agent. After every step a new Agent on a third store must restore exactly what the Agent that
// took the step holds.
describe("AgentSessionManager: random sequences of turns, trims, rewrites, restores and outside writes (plain, encrypted, a one-session cache)", () => {
  test("40 seeded sequences of 30 steps: a new Agent always restores what the last one holds", async () => {
    let replies = 0;
    class CountingModel extends Model {
      config = { modelId: "counting" };
      updateConfig() {}
      getConfig() {
        return this.config;
      }
      async *stream() {
        yield { type: "modelMessageStartEvent", role: "assistant" };
        yield { type: "modelContentBlockStartEvent" };
        yield { type: "modelContentBlockDeltaEvent", delta: { type: "textDelta", text: `a${++replies}` } };
        yield { type: "modelContentBlockStopEvent" };
        yield { type: "modelMessageStopEvent", stopReason: "endTurn" };
      }
    }
    const kinds = {};
    const variants = await storeVariants();
    for (let trial = 0; trial < 40; trial++) {
      let seed = 4242 + trial * 6007;
      const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      const kv = memoryKv();
      const options = variants[trial % variants.length];
      const make = async (compact = random() < 0.7) => {
        const manager = new AgentSessionManager({ store: await SessionStore.kv(kv, options), sessionId: "random", compact });
        const conversationManager =
          random() < 0.5 ? new SlidingWindowConversationManager({ windowSize: 4 + 2 * Math.floor(random() * 3) }) : new NullConversationManager();
        return { agent: makeAgent(new CountingModel(), { plugins: [manager], conversationManager }), manager };
      };
      const pool = [await make(), await make()];
      const done = [];
      for (let step = 0; step < 30; step++) {
        const at = random() < 0.5 ? 0 : 1;
        const { agent, manager } = pool[at];
        const roll = random();
        if (roll < 0.5) {
          done.push("turn");
        } else if (roll < 0.6 && agent.messages.length > 2) {
          done.push("trim");
          agent.messages.splice(0, 2);
        } else if (roll < 0.68 && agent.messages.length > 0) {
          done.push("rewrite");
          const i = Math.floor(random() * agent.messages.length);
          const old = agent.messages[i];
          agent.messages[i] = new Message({ role: old.role, content: [new TextBlock(`e${step}`)], trackingId: old.trackingId });
        } else if (roll < 0.74) {
          done.push("outside");
          const inv = await (await (await SessionStore.kv(kv, options)).open("random", { create: true })).begin();
          inv.appendMessage({ role: "user", content: [{ text: `o${step}` }] }, { agent: "agent" });
          await inv.commit();
        } else if (roll < 0.84) {
          const ids = await manager.listSnapshotIds({ target: agent });
          done.push("restore");
          if (ids.length > 1) await manager.restoreSnapshot({ target: agent, snapshotId: ids[Math.floor(random() * ids.length)] });
        } else {
          done.push("new agent");
          pool[at] = await make();
          await pool[at].agent.initialize();
        }
        kinds[done.at(-1)] = (kinds[done.at(-1)] ?? 0) + 1;
        if (done.at(-1) !== "new agent") await pool[at].agent.invoke(`u${step}`);
        const probe = makeAgent(new CountingModel(), { plugins: [new AgentSessionManager({ store: await SessionStore.kv(kv, options), sessionId: "random" })] });
        await probe.initialize();
        assert.deepEqual(texts(probe.messages), texts(pool[at].agent.messages), `trial ${trial}, step ${step}: ${done.slice(-5).join(", ")}`);
      }
    }
    for (const kind of ["turn", "trim", "rewrite", "outside", "restore", "new agent"]) assert.ok(kinds[kind] > 30, `${kind}: ${kinds[kind]}`);
  });
});

// ---------------------------------------------------------------------------------------------
// AgentSessionStorage against Strands' InMemoryStorage: seeded random writes (JSON, JSON that is not
// canonical, bytes that are not UTF-8, empty), deletes, batches of concurrent writes and deletes,
// reads and lists by prefix, the same operations on an InMemoryStorage; every read and list must
// agree, and every few steps a new AgentSessionStorage on another store over the same KV must list and
// read what the InMemoryStorage holds. (It found a session deleted with its last key and written again
// within the same millisecond served the deleted key from the store's cache.)
describe("AgentSessionStorage against InMemoryStorage, random operations", () => {
  test("30 seeded sequences of 60 steps agree with InMemoryStorage, also through a fresh store", async () => {
    const KEYS = ["a", "b", "session/s1/x", "session/s1/y/z", "session/s1/y", "session/s2/x", "session/s2/agents/a1/snap", "top/k", "top/l"];
    const PREFIXES = ["", "s", "session/", "session/s1/", "session/s1/y", "session/s2", "top", "top/", "a", "session/s3/"];
    const encode = (text) => new TextEncoder().encode(text);
    const same = (x, y) => assert.deepEqual(x === null ? null : [...x], y === null ? null : [...y]);
    for (let trial = 0; trial < 30; trial++) {
      let seed = 555 + trial * 3001;
      const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      const pick = (list) => list[Math.floor(random() * list.length)];
      const bytes = () => {
        const roll = random();
        if (roll < 0.4) return encode(JSON.stringify({ v: Math.floor(random() * 1000), s: "x".repeat(Math.floor(random() * 50)) }));
        if (roll < 0.6) return encode(`{ "spaced" : ${Math.floor(random() * 9)} }`);
        if (roll < 0.8) return Uint8Array.from({ length: 1 + Math.floor(random() * 20) }, () => Math.floor(random() * 256));
        if (roll < 0.9) return new Uint8Array(0);
        return encode("plain text ü");
      };
      const kv = memoryKv();
      const storage = new AgentSessionStorage(await SessionStore.kv(kv));
      const reference = new InMemoryStorage();
      for (let step = 0; step < 60; step++) {
        const where = `trial ${trial}, step ${step}`;
        const roll = random();
        if (roll < 0.35) {
          const [key, data] = [pick(KEYS), bytes()];
          await storage.write(key, data);
          await reference.write(key, data);
        } else if (roll < 0.45) {
          const ops = Array.from({ length: 2 + Math.floor(random() * 4) }, () => (random() < 0.75 ? ["write", pick(KEYS), bytes()] : ["delete", pick(KEYS)]));
          await Promise.all(ops.map(([op, key, data]) => (op === "write" ? storage.write(key, data) : storage.delete(key))));
          for (const [op, key, data] of ops) await (op === "write" ? reference.write(key, data) : reference.delete(key));
        } else if (roll < 0.6) {
          const key = pick(KEYS);
          await storage.delete(key);
          await reference.delete(key);
        } else if (roll < 0.8) {
          const key = pick(KEYS);
          same(await storage.read(key), await reference.read(key), `${where}: read ${key}`);
        } else {
          const prefix = pick(PREFIXES);
          assert.deepEqual(await storage.list(prefix), await reference.list(prefix), `${where}: list ${JSON.stringify(prefix)}`);
        }
        if (step % 5 === 0) {
          const fresh = new AgentSessionStorage(await SessionStore.kv(kv));
          const keys = await reference.list("");
          assert.deepEqual(await fresh.list(""), keys, `${where}: a fresh store lists`);
          for (const key of keys) same(await fresh.read(key), await reference.read(key), `${where}: a fresh store reads ${key}`);
        }
      }
    }
  });
});
