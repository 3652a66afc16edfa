// Initializers for @langchain/langgraph-checkpoint-validation: each createCheckpointer() returns a
// fresh, empty AgentSessionSaver over a new store (the list tests count everything in the saver).
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionSaver } from "agent-session/langgraph";

function initializer(checkpointerName, makeStore) {
  return {
    checkpointerName,
    async createCheckpointer() {
      return new AgentSessionSaver(await makeStore());
    },
    async destroyCheckpointer(saver) {
      await saver.store.close();
    },
  };
}

export const memoryInitializer = initializer("AgentSessionSaver over SessionStore.memory()", () =>
  SessionStore.memory(),
);
export const kvInitializer = initializer("AgentSessionSaver over SessionStore.kv(memoryKv())", () =>
  SessionStore.kv(memoryKv()),
);
