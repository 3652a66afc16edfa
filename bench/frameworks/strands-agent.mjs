// The agent the Strands benchmarks time (strands.mjs, strands-ab.mjs): a scripted model that answers
// every call with the same ~200-byte text, no network, and the prompt of turn i.
import { Agent, Model } from "@strands-agents/sdk";

/** Answers every call with the same ~200-byte text (endTurn). */
class EchoModel extends Model {
  config = { modelId: "echo" };
  updateConfig(config) {
    Object.assign(this.config, config);
  }
  getConfig() {
    return this.config;
  }
  async *stream() {
    yield { type: "modelMessageStartEvent", role: "assistant" };
    yield { type: "modelContentBlockStartEvent" };
    yield { type: "modelContentBlockDeltaEvent", delta: { type: "textDelta", text: "a".repeat(200) } };
    yield { type: "modelContentBlockStopEvent" };
    yield { type: "modelMessageStopEvent", stopReason: "endTurn" };
  }
}

/** An Agent on the scripted model, with `more` of Agent's options (plugins, sessionManager). */
export const agentWith = (more) => new Agent({ model: new EchoModel(), printer: false, ...more });

/** The ~200-byte prompt of turn `i`. */
export const prompt = (i) => `turn ${i}: ${"q".repeat(190)}`;
