// The graph the LangGraph benchmarks time (langgraph.mjs, langgraph-ab.mjs): a 2-node StateGraph
// (START -> agent -> tools -> END) whose nodes each append a ~200-byte message.
import { StateGraph, Annotation, START, END } from "@langchain/langgraph";

/** ~200 bytes of JSON per message, like the core bench's messages. */
export const message = (who, i) => ({ role: who, content: `${"x".repeat(150)} ${i}` });

const State = Annotation.Root({
  messages: Annotation({ reducer: (a, b) => a.concat(b), default: () => [] }),
  steps: Annotation({ reducer: (a, b) => a + b, default: () => 0 }),
});

export function graphWith(checkpointer) {
  return new StateGraph(State)
    .addNode("agent", async (s) => ({ messages: [message("assistant", s.messages.length)], steps: 1 }))
    .addNode("tools", async (s) => ({ messages: [message("tool", s.messages.length)], steps: 1 }))
    .addEdge(START, "agent")
    .addEdge("agent", "tools")
    .addEdge("tools", END)
    .compile({ checkpointer });
}
