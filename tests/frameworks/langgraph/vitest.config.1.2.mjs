// The same validation files against @langchain/langgraph-checkpoint 1.2.x (taskPath, pendingWrites in
// compareWritesSortKeys order, no task-id sort in the default getDeltaChannelHistory walk).
// 1.2.2 is installed into ../langgraph-1.2/node_modules by ../langgraph-1.2/install.sh; every import of
// "@langchain/langgraph-checkpoint" (the saver's, the validation suite's, version.1.2.test's) is
// aliased to it, and the validation package is inlined so that the alias applies to it too.
// @langchain/core still comes from the repo (one copy).
import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const checkpoint12 = here("../langgraph-1.2/node_modules/@langchain/langgraph-checkpoint/dist/index.js");

export default defineConfig({
  root: here("../../.."),
  resolve: {
    alias: [{ find: /^@langchain\/langgraph-checkpoint$/, replacement: checkpoint12 }],
  },
  test: {
    globals: true,
    include: [here("./validate-*.test.mjs"), here("./saver.test.mjs"), here("./batching.test.mjs"), here("./write-cache.test.mjs"), here("./known-state.test.mjs"), here("./deltas.test.mjs"), here("./version-1.2.test.mjs")],
    server: { deps: { inline: [/@langchain\/langgraph-checkpoint-validation/] } },
    testTimeout: 20000,
    hookTimeout: 20000,
  },
});
