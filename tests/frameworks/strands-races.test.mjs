// AgentSessionManager against a session deleted and created again by another store, and against a
// restoreSnapshot racing a commit of the same store. Deterministic: a KV read is held where a
// network KV would be slow by chance. Found by strands-model.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Agent, Model, BeforeInvocationEvent } from "@strands-agents/sdk";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionManager } from "agent-session/strands";

const text = (m) => m.content.map((b) => b.text).join("");

/** Answers "re:<last message>", and records what it was sent. */
class Echo extends Model {
  config = { modelId: "echo" };
  sent = [];
  updateConfig() {}
  getConfig() {
    return this.config;
  }
  async *stream(messages) {
    this.sent.push(messages.map(text));
    yield { type: "modelMessageStartEvent", role: "assistant" };
    yield { type: "modelContentBlockStartEvent" };
    yield { type: "modelContentBlockDeltaEvent", delta: { type: "textDelta", text: `re:${text(messages.at(-1))}` } };
    yield { type: "modelContentBlockStopEvent" };
    yield { type: "modelMessageStopEvent", stopReason: "endTurn" };
  }
}

function agentOn(store, { countTurns = false } = {}) {
  const manager = new AgentSessionManager({ store, sessionId: "chat" });
  const agent = new Agent({ model: new Echo(), printer: false, retryStrategy: null, plugins: [manager] });
  if (countTurns) {
    agent.addHook(BeforeInvocationEvent, (e) => e.agent.appState.set("turns", (e.agent.appState.get("turns") ?? 0) + 1));
  }
  return { agent, manager };
}

async function freshLoad(kv) {
  const { agent } = agentOn(await SessionStore.kv(kv, { owner: "reader" }));
  await agent.initialize();
  return agent;
}

test("an Agent whose session another store deleted and created again is reloaded before its turn", async () => {
  const kv = memoryKv();
  const serverA = await SessionStore.kv(kv, { owner: "A" });
  const serverB = await SessionStore.kv(kv, { owner: "B" });
  const tab = agentOn(serverA, { countTurns: true }).agent; // a long-lived Agent on server A
  await tab.invoke("secret"); // version 1
  await new AgentSessionManager({ store: serverB, sessionId: "chat" }).deleteSession();
  await agentOn(serverB).agent.invoke("fresh"); // a new conversation, at version 1 again
  await tab.invoke("next");
  assert.deepEqual(tab.model.sent.at(-1), ["fresh", "re:fresh", "next"], "the model is sent the new conversation");
  assert.deepEqual(tab.messages.map(text), ["fresh", "re:fresh", "next", "re:next"]);
  const reader = await freshLoad(kv);
  assert.deepEqual(reader.messages.map(text), ["fresh", "re:fresh", "next", "re:next"]);
  assert.deepEqual(reader.appState.getAll(), { turns: 1 }, "no state counted on the deleted conversation");
});

test("restoreSnapshot racing a commit of the same store: what is stored is what the Agent holds", async () => {
  // A memoryKv whose reads of version 1's records wait while `hold` is set (a slow network read).
  const base = memoryKv();
  let hold = false;
  const waiting = [];
  const kv = {
    capabilities: base.capabilities,
    get: async (key) => {
      if (hold && key.includes("/0000000000000001/")) await new Promise((resolve) => waiting.push(resolve));
      return base.get(key);
    },
    put: base.put,
    delete: base.delete,
    list: base.list,
  };
  const server = await SessionStore.kv(kv, { owner: "server" });
  await agentOn(server).agent.invoke("u1"); // version 1
  await agentOn(server).agent.invoke("u2"); // version 2
  const rewind = agentOn(server); // request R: "rewind to version 1, then continue"
  await rewind.agent.initialize();
  hold = true;
  const restoring = rewind.manager.restoreSnapshot({ target: rewind.agent, snapshotId: "1" });
  while (waiting.length === 0) await new Promise((resolve) => setImmediate(resolve)); // R is inside at(1)
  await agentOn(server).agent.invoke("w"); // request W commits version 3 meanwhile
  hold = false;
  waiting.forEach((resolve) => resolve());
  await restoring;
  await rewind.agent.invoke("after-rewind");
  const reader = await freshLoad(kv);
  assert.deepEqual(reader.messages.map(text), rewind.agent.messages.map(text));
});
