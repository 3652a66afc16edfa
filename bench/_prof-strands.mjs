import { Agent, Model } from "@strands-agents/sdk";
import { SessionStore } from "agent-session";
import { AgentSessionManager } from "agent-session/strands";
class EchoModel extends Model {
  config = { modelId: "echo" };
  updateConfig(c) { Object.assign(this.config, c); }
  getConfig() { return this.config; }
  async *stream() {
    yield { type: "modelMessageStartEvent", role: "assistant" };
    yield { type: "modelContentBlockStartEvent" };
    yield { type: "modelContentBlockDeltaEvent", delta: { type: "textDelta", text: "a".repeat(200) } };
    yield { type: "modelContentBlockStopEvent" };
    yield { type: "modelMessageStopEvent", stopReason: "endTurn" };
  }
}
const store = await SessionStore.memory();
const mode = process.argv[2] ?? "mgr";
const agent = mode === "none" ? new Agent({ model: new EchoModel(), printer: false }) : new Agent({ model: new EchoModel(), printer: false, plugins: [new AgentSessionManager({ store, sessionId: "bench" })] });
const N = Number(process.argv[3] ?? 3000);
const t0 = performance.now();
for (let i = 0; i < N; i++) await agent.invoke(`turn ${i}: ${"q".repeat(190)}`);
console.log(mode, ((performance.now() - t0) / N).toFixed(3), "ms/turn");
console.log("waitLive calls per turn", globalThis.__waits / N);
