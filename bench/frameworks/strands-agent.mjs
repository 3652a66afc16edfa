// The agents the Strands benchmarks time (strands.mjs, strands-ab.mjs): a scripted model that answers
// every call with the same ~200-byte text, no network, and the prompt of turn i; and one whose model
// calls a tool once a turn before it answers.
import { Agent, Model, tool } from "@strands-agents/sdk";

/** Answers every call with the same ~200-byte text (endTurn). */
export class EchoModel extends Model {
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

/**
 * Calls the `lookup` tool once a turn, then answers: a reply to a prompt is a tool use (a fresh
 * toolUseId, ~150 bytes of input), a reply to the tool's result the ~200-byte text (endTurn). A turn
 * adds 4 messages, so the sliding window trims whole tool pairs.
 */
class ToolCallingModel extends EchoModel {
  calls = 0;
  async *stream(messages) {
    const last = messages[messages.length - 1];
    if (last?.content?.some((block) => block.type === "toolResultBlock")) {
      yield* super.stream();
      return;
    }
    const toolUseId = `tooluse_${(this.calls++).toString(36).padStart(8, "0")}`;
    yield { type: "modelMessageStartEvent", role: "assistant" };
    yield { type: "modelContentBlockStartEvent", start: { type: "toolUseStart", name: "lookup", toolUseId } };
    yield { type: "modelContentBlockDeltaEvent", delta: { type: "toolUseInputDelta", input: JSON.stringify({ q: "x".repeat(150) }) } };
    yield { type: "modelContentBlockStopEvent" };
    yield { type: "modelMessageStopEvent", stopReason: "toolUse" };
  }
}

/** The tool the tool-calling model calls: answers ~150 bytes of text. */
const lookup = tool({
  name: "lookup",
  description: "Looks a query up.",
  inputSchema: { type: "object", properties: { q: { type: "string" } }, required: ["q"] },
  callback: () => "y".repeat(150),
});

/** An Agent on the tool-calling model (a tool call and its result every turn), with `more` of Agent's options. */
export const toolAgentWith = (more) => new Agent({ model: new ToolCallingModel(), tools: [lookup], printer: false, ...more });

/** The agent maker a benchmark's command line asks for: toolAgentWith with `--tools`, else agentWith. */
export const agentMakerFromArgs = () => (process.argv.includes("--tools") ? toolAgentWith : agentWith);
