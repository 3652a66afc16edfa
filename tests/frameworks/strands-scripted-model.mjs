import { Model } from "@strands-agents/sdk";

// A scripted model: Strands 1.19.0 ships no fake model. Each stream() call takes the next reply: a
// string (one text block, endTurn), `{ tool, id, input }` (one tool use, stopReason toolUse),
// `{ text, redactInput }` (a text answer, then a guardrail redaction of the user's input), an Error
// (thrown), or an async function returning one of those (to hold the model call open). `calls` counts
// the stream() calls.

export class ScriptedModel extends Model {
  constructor(replies = []) {
    super();
    this.replies = [...replies];
    this.calls = 0;
    this.config = { modelId: "scripted" };
  }
  updateConfig(config) {
    Object.assign(this.config, config);
  }
  getConfig() {
    return this.config;
  }
  async *stream() {
    this.calls++;
    let reply = this.replies.shift();
    if (typeof reply === "function") reply = await reply();
    if (reply === undefined) throw new Error("ScriptedModel: no reply left");
    if (reply instanceof Error) throw reply;
    yield { type: "modelMessageStartEvent", role: "assistant" };
    if (typeof reply === "object" && reply.redactInput !== undefined) {
      yield { type: "modelContentBlockStartEvent" };
      yield { type: "modelContentBlockDeltaEvent", delta: { type: "textDelta", text: reply.text } };
      yield { type: "modelContentBlockStopEvent" };
      yield { type: "modelMessageStopEvent", stopReason: "endTurn" };
      yield { type: "modelRedactionEvent", inputRedaction: { replaceContent: reply.redactInput } };
      return;
    }
    if (typeof reply === "object") {
      yield { type: "modelContentBlockStartEvent", start: { type: "toolUseStart", name: reply.tool, toolUseId: reply.id } };
      yield { type: "modelContentBlockDeltaEvent", delta: { type: "toolUseInputDelta", input: JSON.stringify(reply.input) } };
      yield { type: "modelContentBlockStopEvent" };
      yield { type: "modelMessageStopEvent", stopReason: "toolUse" };
      return;
    }
    yield { type: "modelContentBlockStartEvent" };
    yield { type: "modelContentBlockDeltaEvent", delta: { type: "textDelta", text: reply } };
    yield { type: "modelContentBlockStopEvent" };
    yield { type: "modelMessageStopEvent", stopReason: "endTurn" };
  }
}
