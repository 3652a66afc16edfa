// The full @langchain/langgraph-checkpoint-validation 1.1.1 suite (718 tests) and its opt-in
// getDeltaChannelHistory suite (8 tests) on SessionStore.kv(memoryKv()).
import { validate, deltaChannelHistoryTests } from "@langchain/langgraph-checkpoint-validation";
import { kvInitializer } from "./initializers.mjs";

validate(kvInitializer);
deltaChannelHistoryTests(kvInitializer);
