// LangGraph.js drop-in: the validation suite (library API; its CLI is broken in 1.1.1), the saver's
// own tests, and the guard tests and the comparison with MemorySaver on a real StateGraph, against the
// repo's @langchain/langgraph-checkpoint (1.1.x).
// The spec files use global describe/it/beforeAll, hence globals: true.
import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here("../../.."),
  test: {
    globals: true,
    include: [here("./validate-*.test.mjs"), here("./saver.test.mjs"), here("./batching.test.mjs"), here("./write-cache.test.mjs"), here("./known-state.test.mjs"), here("./deltas.test.mjs"), here("./guard.test.mjs"), here("./against-memory-saver.test.mjs"), here("./hitl-against-memory-saver.test.mjs"), here("./races.test.mjs"), here("./model.test.mjs")],
    testTimeout: 20000,
    hookTimeout: 20000,
  },
});
