// What the saver suites build checkpoints from: one copy of the shapes LangGraph passes to a saver; and
// the two savers over one thread storage that the cache suites write through.
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionSaver } from "agent-session/langgraph";

/** The metadata of a checkpoint written at `step` by `source`. */
export const meta = (step = 0, source = "loop") => ({ source, step, parents: {} });

/** A checkpoint `id` holding `values`, each channel at version 1 unless `versions` says otherwise. */
export function checkpoint(id, values, versions = Object.fromEntries(Object.keys(values).map((k) => [k, 1]))) {
  return { v: 4, id, ts: new Date().toISOString(), channel_values: values, channel_versions: versions, versions_seen: {} };
}

/** The config naming `thread` (root namespace) and, when given, checkpoint `id`. */
export const cfg = (thread, id) => ({ configurable: { thread_id: thread, checkpoint_ns: "", ...(id ? { checkpoint_id: id } : {}) } });

/** Two stores over the same thread storage, by name: the same memory store, or two stores over one KV
 * backend; `options` are each store's. */
export const storePairs = (options = {}) => ({
  "same memory store": async () => {
    const store = await SessionStore.memory(options);
    return [store, store];
  },
  "two kv stores, one backend": async () => {
    const kv = memoryKv();
    return [await SessionStore.kv(kv, options), await SessionStore.kv(kv, options)];
  },
});

/** In a describe block: before each test, savers `a` and `b` over the two stores `makePair()` gives,
 * handed to `use({ stores, a, b })`; after it, the stores closed. */
export function twoSaversEach(makePair, use) {
  let stores;
  beforeEach(async () => {
    stores = await makePair();
    use({ stores, a: new AgentSessionSaver(stores[0]), b: new AgentSessionSaver(stores[1]) });
  });
  afterEach(async () => {
    await stores[0].close();
    if (stores[1] !== stores[0]) await stores[1].close();
  });
}
