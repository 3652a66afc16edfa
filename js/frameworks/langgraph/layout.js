// How a LangGraph thread is laid out in an agent-session session (session `langgraph/<thread_id>`):
//   agent "default": "thread" -> thread_id; "ns/[ns]" -> { ns, agent } for every checkpoint_ns used
//   agent "ns:<checkpoint_ns>" (one per namespace, "" included):
//     "head"                   -> the largest checkpoint id (the latest checkpoint)
//     "c/[id]"                 -> { id, parent, version, c: checkpoint without channel_values, m: metadata,
//                                   src: { channel: [channel version, blob key] } }
//     "b/[channel,version,id]" -> one channel value, written by the put of checkpoint `id`: whole, or a
//                                 delta { t, base, at, tail, n } of the value at key `base` (the parent's
//                                 value of that channel), read as text(base).slice(0, at) + tail, n <= 16
//                                 deltas down to a whole value or a rollup { t, p, o, x }, read as the
//                                 regions p of other values then x (channel-values.js). Threads written
//                                 before deltas hold whole values only, before rollups whole values and
//                                 deltas.
//     "t/[id]"                 -> the task ids that wrote pending writes against checkpoint `id`
//     "w/[id,task]"            -> { p: task path, w: { idx: [channel, value] } }
//   plus one message per put in the namespace's agent: { checkpoint, parent, source, step }.
// Serialized values are { t: type, s: UTF-8 text } or, when the bytes are not UTF-8, { t, b: base64 }.
//
// Names: agent-session takes session ids, agent names and state keys of 1 to 256 UTF-8 bytes and
// refuses longer ones (ValidationError). LangGraph puts no bound on thread ids, namespaces, channels or
// task ids, and sessionId()/agentName() answer synchronously, so the saver cannot leave the check to
// the engine: a name that would be longer (or not well-formed UTF-16, which would not round-trip) is
// replaced by a SHA-256 of it, and both the writer and every reader derive the same name.
import { utf8Length } from "../../runtime.js";
import { MAX_NAME_BYTES, hashString, nameFor } from "../names.js";

export { HASHED, nameFor } from "../names.js";

/** A state key: `kind/` + the JSON of its parts, hashed when longer than 256 bytes. */
function stateKey(kind, parts) {
  const json = JSON.stringify(parts);
  const raw = `${kind}/${json}`;
  return utf8Length(raw) <= MAX_NAME_BYTES ? raw : `${kind}#${hashString(json)}`;
}

export const cpKey = (id) => stateKey("c", [id]);
export const blobKey = (channel, version, writer) => stateKey("b", [channel, version, writer]);
export const tasksKey = (id) => stateKey("t", [id]);
export const writeKey = (id, task) => stateKey("w", [id, task]);
export const nsKey = (ns) => stateKey("ns", [ns]);
export const agentFor = (ns) => nameFor("ns:", ns, "ns#");
export const isCheckpointKey = (key) => key.startsWith("c/") || key.startsWith("c#");
