// How AgentSessionManager lays out one Strands agent in an agent-session session, and reading it back:
// one message event per message version (deduplicated by trackingId), the context (agent.messages) as
// runs of log indices, app state as state keys, and the agent's other fields under "strands:" keys.

// State keys of one agent: app state keys as they are, except that "" and keys starting with
// "strands:" are escaped under "strands:app:"; the adapter's own keys start with "strands:".
export const INTERNAL = "strands:";
export const APP = "strands:app:";
export const CONTEXT = "strands:context";
export const FIELDS = ["systemPrompt", "modelState", "interrupts"];
export const appKey = (key) => (key === "" || key.startsWith(INTERNAL) ? APP + key : key);

export function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

// The context (agent.messages) as runs of indices into the message log (deduplicated by trackingId):
// null = the whole log in order; [a, b] = a..b-1; [a] (last run only) = a..end of the log.
export function encodeContext(order, size) {
  if (order.length === size && order.every((index, i) => index === i)) return null;
  const runs = [];
  if (order.length === 0) return runs;
  let start = order[0];
  let end = start + 1;
  for (let i = 1; i < order.length; i++) {
    if (order[i] === end) {
      end++;
    } else {
      runs.push([start, end]);
      start = order[i];
      end = start + 1;
    }
  }
  runs.push(end === size ? [start] : [start, end]);
  return runs;
}

function expandContext(context, size) {
  if (context === undefined || context === null) return Array.from({ length: size }, (_, i) => i);
  const order = [];
  if (!Array.isArray(context)) throw new Error("agent-session/strands: corrupt context record");
  for (const run of context) {
    const start = run[0];
    const end = run.length > 1 ? run[1] : size;
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > size || start > end) {
      throw new Error("agent-session/strands: the context record points outside the message log");
    }
    for (let i = start; i < end; i++) order.push(i);
  }
  return order;
}

/** The key of the message at `index` of the log: its trackingId, or "#<index>" without one. */
export function logKey(message, index) {
  return message !== null && typeof message === "object" && typeof message.trackingId === "string"
    ? message.trackingId
    : `#${index}`;
}

/**
 * The message log of one agent deduplicated by key: `recon`, per distinct message (in order of first
 * appearance) its newest JSON text, `keys`, key -> index in `recon`, and `logKeys`, the key of each
 * log entry in log order (what compaction plans its cut from, without reading the log again); and
 * `values`, beside `recon`, the newest entry itself as the log gave it (a session's reads are frozen).
 */
export function readLog(log) {
  const logKeys = log.map((message, i) => logKey(message, i));
  const index = indexLog(logKeys, (i) => JSON.stringify(log[i]));
  const values = new Array(index.recon.length);
  for (let i = 0; i < log.length; i++) values[index.keys.get(logKeys[i])] = log[i];
  return { ...index, values };
}

/**
 * The index readLog gives for a log whose entries have the keys `logKeys` and the JSON texts
 * `textAt(i)`: the same fold (first appearance sets the index, the newest text wins).
 */
export function indexLog(logKeys, textAt) {
  const recon = [];
  const keys = new Map();
  for (let i = 0; i < logKeys.length; i++) {
    const key = logKeys[i];
    const text = textAt(i);
    const at = keys.get(key);
    if (at === undefined) {
      keys.set(key, recon.length);
      recon.push(text);
    } else {
      recon[at] = text;
    }
  }
  return { recon, keys, logKeys };
}

/** Reads one agent's log and state from a Session, SessionView or Invocation. */
export function readAgent(view, agent) {
  const log = view.messages({ agent });
  const stored = view.state({ agent });
  const { recon, keys, logKeys, values } = readLog(log);
  const app = {};
  const state = new Map(); // stored app keys -> JSON text
  const internal = {};
  for (const [key, value] of Object.entries(stored)) {
    if (key.startsWith(APP) || !key.startsWith(INTERNAL)) {
      const text = JSON.stringify(value);
      state.set(key, text);
      app[key.startsWith(APP) ? key.slice(APP.length) : key] = JSON.parse(text);
    } else {
      internal[key.slice(INTERNAL.length)] = value;
    }
  }
  const hasData = log.length > 0 || Object.keys(stored).length > 0;
  return {
    recon,
    values,
    keys,
    logKeys,
    size: log.length,
    state,
    internal,
    app,
    hasData,
    order: expandContext(internal.context, recon.length),
  };
}
