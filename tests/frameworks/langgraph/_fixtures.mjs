// What the saver suites build checkpoints from: one copy of the shapes LangGraph passes to a saver.

/** The metadata of a checkpoint written at `step` by `source`. */
export const meta = (step = 0, source = "loop") => ({ source, step, parents: {} });

/** A checkpoint `id` holding `values`, each channel at version 1 unless `versions` says otherwise. */
export function checkpoint(id, values, versions = Object.fromEntries(Object.keys(values).map((k) => [k, 1]))) {
  return { v: 4, id, ts: new Date().toISOString(), channel_values: values, channel_versions: versions, versions_seen: {} };
}

/** The config naming `thread` (root namespace) and, when given, checkpoint `id`. */
export const cfg = (thread, id) => ({ configurable: { thread_id: thread, checkpoint_ns: "", ...(id ? { checkpoint_id: id } : {}) } });
