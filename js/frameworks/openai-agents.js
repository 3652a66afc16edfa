// OpenAI Agents JS: a `Session` (the runner's conversation history) over an agent-session session,
// `guard(fn)`, which runs one `run()` under one invocation, and `run(agent, input)`, which does that
// with the invocation's `signal` as the run's abort signal and its stream events forwarded to the
// turn's live log (@openai/agents 0.20.0, agents-core dist/memory/session.d.ts, dist/events.d.ts).
// Plain JS over the public API: it imports neither agent-session nor @openai/agents (`run` loads the
// SDK's `run` on first use, unless given a runner), so the core package works without the framework
// installed.
//
// Layout in the session (one agent's log, the default agent unless `options.agent`):
// - every item is one message event, in order;
// - the state key `openai.items` says which of those events are live: `{ start, kept }`, where the
//   live items are the events of the ranges `kept` (`[from, to)`, ascending, all below `start`)
//   followed by every event from `start` on. Absent, it means `{ start: 0, kept: [] }`, so
//   `addItems` never writes it: `popItem` does (it moves `start` past the popped event, or shortens
//   the last kept range), and so do the two calls below when they rebase it.
// - `clearSession` and `replaceHistoryWithCompaction` compact the log (`inv.compact`, the default): the
//   events they drop leave `messages()` and stay in `history()` with a `compacted` event, and the
//   view is rebased onto the compacted log (deleted when every event is live again). With
//   `compact: false` they only move the view (`start` = the log's length: a new epoch). `popItem`
//   removes the newest item, a suffix, which compaction (a prefix) cannot express: it keeps the view.
import { MAX_JSON_DEPTH, fromBase64, toBase64, uint8View } from "../runtime.js";
import { anySignal, forwarder, jsonForm, projection, stopError } from "./live-run.js";
import { sessionIdFor } from "./names.js";
import { SerialQueues } from "./serial-queue.js";
import { SessionHandle, hasCode } from "./session-handle.js";

/** The state key that marks which message events of the log are live items. */
export const ITEMS_KEY = "openai.items";

/**
 * The top-level key of a stored item that carries what JSON would lose (absent from most items):
 * `u`, the paths of `undefined` properties and array elements; `b`, the paths of `Uint8Array`s,
 * stored as base64; `k`, the item's own value of this key when it had one.
 */
export const META_KEY = "~as";

/**
 * An OpenAI Agents `Session` whose items live in an agent-session session: durable on any backend
 * of `store`, and guarded across tabs, workers and processes with `guard(fn)`.
 */
export class AgentSessionItems {
  #agent;
  #onBusy;
  /** Whether clearSession and replaceHistoryWithCompaction compact the log (inv.compact). */
  #compact;
  /** The Session, opened on first use (and again if it was deleted since). */
  #handle;
  /** The session id given, if any (its agent-session id is hashed when too long for one: names.js). */
  #sessionId;
  /** The invocation of the running `guard`, which every call of this instance joins. */
  #inv = null;
  /** The writes of this instance made outside a guard, one after another (`#write`). */
  #writes = new SerialQueues();

  /**
   * @param store any `SessionStore` (memory, IndexedDB, KV).
   * @param sessionId the agent-session session id (an empty one, or one over 256 UTF-8 bytes, is kept under a hashed id);
   *   omitted, the store picks a random one on first use.
   * @param options `agent`: the agent whose log holds the items (default: agent-session's default
   *   agent); `onBusy`: for the writes made outside `guard` (default "reject": fail fast); `compact`:
   *   `false` keeps every event in `messages()` (clearSession and replaceHistoryWithCompaction then
   *   only move the live view, as before compaction existed; default true).
   */
  constructor(store, sessionId, options = {}) {
    if (!store || typeof store.open !== "function") {
      throw new TypeError("AgentSessionItems needs a SessionStore as its first argument");
    }
    this.#sessionId = sessionId;
    this.#handle = new SessionHandle(store, sessionIdFor(sessionId));
    this.#agent = options.agent === undefined ? undefined : { agent: options.agent };
    this.#onBusy = options.onBusy;
    if (options.compact !== undefined && typeof options.compact !== "boolean") {
      throw new TypeError("AgentSessionItems: `compact` must be a boolean");
    }
    this.#compact = options.compact ?? true;
  }

  /** The agent-session Session behind these items (opened, and created when absent, on first use). */
  session() {
    return this.#handle.session();
  }

  /** The id given (as MemorySession gives its own), else the one the store picked. */
  async getSessionId() {
    return this.#sessionId ?? (await this.session()).id;
  }

  /** The newest `limit` items (all when omitted) in chronological order, as copies. */
  async getItems(limit) {
    const log = await this.#read();
    if (limit !== undefined && limit <= 0) return [];
    const indexes = liveIndexes(log.view, log.messages.length);
    // As MemorySession: a limit that is not a number (NaN) gives every item.
    const from = limit === undefined || Number.isNaN(indexes.length - limit) ? 0 : Math.max(indexes.length - limit, 0);
    const picked = [];
    for (let i = Math.trunc(from); i < indexes.length; i++) picked.push(log.messages[indexes[i]]);
    // One structuredClone of the whole slice costs less than one per item.
    return structuredClone(picked).map(restoreItem);
  }

  async addItems(items) {
    if (items.length === 0) return;
    // Encoded before the lease is taken, so that the lease covers only the staging and the commit.
    const encoded = items.map(encodeItem);
    await this.#write((inv) => {
      for (const item of encoded) inv.appendMessage(item, this.#agent);
      return { changed: true };
    });
  }

  /** Removes and returns the newest item; `undefined` (and nothing written) when there is none. */
  async popItem() {
    return this.#write((inv) => {
      const messages = inv.messages(this.#agent);
      const view = readView(inv.state(this.#agent));
      const popped = popView(view, messages.length);
      if (!popped) return { changed: false, value: undefined };
      inv.setState(ITEMS_KEY, popped.view, this.#agent);
      return { changed: true, value: decodeItem(messages[popped.index]) };
    });
  }

  /**
   * Removes every item. By default one `inv.compact({ before: all, summary: [] })`: the items leave
   * `messages()` (and the snapshots), and stay in `history()` and `at(version)` with a `compacted`
   * event. A cut after the last event separates no tool call from its result, so it needs no `force`.
   * With `compact: false` it starts a new epoch of the live view instead (the events stay in
   * `messages()`). Writes nothing when the log is empty.
   */
  async clearSession() {
    await this.#write((inv) => {
      const length = inv.messages(this.#agent).length;
      const state = inv.state(this.#agent);
      if (!this.#compact) {
        if (liveCount(readView(state), length) === 0) return { changed: false };
        inv.setState(ITEMS_KEY, { start: length, kept: [] }, this.#agent);
        return { changed: true };
      }
      if (length === 0 && state[ITEMS_KEY] === undefined) return { changed: false };
      if (length > 0) inv.compact({ before: length, summary: [], ...this.#agent });
      writeView(inv, state, [], 0, this.#agent);
      return { changed: true };
    });
  }

  /**
   * Replaces the whole history with `items` in one commit. The runner calls it when the items of a
   * turn start with a `compaction` item (a model that compacts server-side); without it the runner
   * clears and re-adds. By default it is one `inv.compact`: the items that end both the old history and
   * `items` stay where they are, the ones before them are replaced by `items`' leading ones (the
   * compaction item), and when nothing is kept, the items after the last compaction item are appended
   * as messages of their own. So `history()` shows the compaction as a `compacted` event whose summary
   * is the compaction item, followed by the turn's new items. With `compact: false` the live view
   * starts a new epoch and every item is appended.
   */
  async replaceHistoryWithCompaction(items) {
    const encoded = items.map(encodeItem);
    await this.#write((inv) => {
      const messages = inv.messages(this.#agent);
      const state = inv.state(this.#agent);
      if (!this.#compact) {
        inv.setState(ITEMS_KEY, { start: messages.length, kept: [] }, this.#agent);
        for (const item of encoded) inv.appendMessage(item, this.#agent);
        return { changed: true };
      }
      const live = liveIndexes(readView(state), messages.length);
      const kept = commonSuffix(encoded, live.map((i) => messages[i]));
      if (kept > 0) {
        // Keep the shared tail in place: the items before it replace every event before it.
        const before = live[live.length - kept];
        const summary = encoded.slice(0, encoded.length - kept);
        try {
          if (before > 0 || summary.length > 0) inv.compact({ before, summary, ...this.#agent });
          const shift = summary.length - before;
          const positions = [];
          for (let i = 0; i < summary.length; i++) positions.push(i);
          for (const index of live.slice(live.length - kept)) positions.push(index + shift);
          writeView(inv, state, positions, messages.length + shift, this.#agent);
          return { changed: true };
        } catch (error) {
          // A cut between a tool call and its result: replace everything instead (below), which
          // keeps no event after the cut, so that nothing the SDK keeps can be separated.
          if (!hasCode(error, "INVALID_INPUT") || error.path !== "before") throw error;
        }
      }
      // Nothing stored yet: nothing to compact, every item is a message of its own.
      let summarized = 0;
      if (messages.length > 0) {
        const last = lastIndexWhere(items, (item) => item?.type === "compaction");
        summarized = last >= 0 ? last + 1 : encoded.length;
        inv.compact({ before: messages.length, summary: encoded.slice(0, summarized), ...this.#agent });
      }
      for (const item of encoded.slice(summarized)) inv.appendMessage(item, this.#agent);
      writeView(inv, state, [], 0, this.#agent);
      return { changed: true };
    });
  }

  /**
   * Runs one framework turn, usually `run(agent, input, { session: items })`, under one invocation.
   * The lease is taken first, so a session busy anywhere fails with `ConcurrencyError` before the
   * model is called. Every write of this instance while `fn` runs is staged into that invocation
   * (reads see committed + staged); on success it commits once; if `fn` throws, or its result's
   * `completed` rejects, it aborts (nothing of the turn is stored) and rethrows; it always releases.
   * When `fn` resolves to a streamed result (it has a `completed` promise), the commit waits for
   * `completed`: consume the stream inside `fn`, or let it run in the background until it ends.
   * `fn` receives the Invocation, e.g. to store `result.state.toString()` under a state key.
   */
  async guard(fn, options) {
    // A guard already running on this instance holds the lease, so this begin rejects: `#inv` is free.
    const inv = await this.#handle.begin(this.#agent ? { ...options, ...this.#agent } : options);
    this.#inv = inv;
    try {
      const result = await fn(inv);
      if (result !== null && typeof result === "object" && isThenable(result.completed)) {
        await result.completed;
      }
      await inv.commit();
      return result;
    } catch (error) {
      const thrown = stopError(error, inv.signal);
      await inv.abort().catch(() => {});
      throw thrown;
    } finally {
      if (this.#inv === inv) this.#inv = null;
    }
  }

  /**
   * `run(agent, input, options)` of the SDK under `guard`, as a live turn: the run's `session` is this
   * instance and its `signal` is the invocation's (combined with `options.signal` when given), so a
   * `session.stop()` from anywhere aborts the model call and the turn ends `stopped`. With
   * `{ stream: true }` it consumes the stream itself, forwards each event to the live log with
   * `inv.emit()` (`streamEventPart` by default; `live.emit` a function of the event, or `false`),
   * hands each event to `live.onEvent`, and resolves with the StreamedRunResult once the run completed
   * and the turn committed. A non-streamed run resolves with the RunResult.
   *
   * A stop: the SDK rejects a non-streamed run (the turn is aborted, and this rejects with the
   * `StopRequestedError`); it ends a streamed run early (`result.cancelled`), and the turn commits what
   * the runner stored before the stop (the user input), as `MemorySession` would keep it.
   *
   * @param live `runner`: a `Runner` (or its `run` function) instead of the SDK's default `run`;
   *   `emit`, `onEvent`; and the BeginOptions of `guard` (`onBusy`, `traceparent`).
   */
  async run(agent, input, options = {}, live = {}) {
    const { runner, emit, onEvent, ...beginOptions } = live ?? {};
    const project = projection(emit, streamEventPart);
    if (onEvent !== undefined && typeof onEvent !== "function") throw new TypeError("`onEvent` must be a function");
    const runWith = await resolveRun(runner);
    return this.guard(async (inv) => {
      const signal = anySignal(options?.signal, inv.signal);
      let result;
      try {
        result = await runWith(agent, input, { ...options, session: this, signal });
      } catch (error) {
        throw stopError(error, inv.signal);
      }
      if (!options?.stream) return result;
      const forward = forwarder(inv, project);
      try {
        for await (const event of result) {
          forward(event);
          onEvent?.(event);
        }
      } catch (error) {
        // Leaving the loop cancelled the run: let it settle, so that no write of it lands after the guard.
        await Promise.resolve(result.completed).catch(() => {});
        throw stopError(error, inv.signal);
      }
      try {
        await result.completed;
      } catch (error) {
        throw stopError(error, inv.signal);
      }
      return result;
    }, beginOptions);
  }

  /** The log and its live view: of the running guard (committed + staged), else the latest commit. */
  async #read() {
    const inv = this.#inv;
    if (inv) return { messages: inv.messages(this.#agent), view: readView(inv.state(this.#agent)) };
    // Another store over the same backend may have committed since this Session was loaded.
    const session = await this.#handle.refreshed({ create: true });
    // Deleted elsewhere since it was opened: no items until a write creates it again.
    if (session === undefined) return { messages: [], view: readView({}) };
    return { messages: session.messages(this.#agent), view: readView(session.state(this.#agent)) };
  }

  /**
   * Runs `change(inv)` in the running guard's invocation, or else in an invocation of its own that
   * commits only when it `changed` something (a no-op releases without a new version). Writes of this
   * instance outside a guard go one after another, as on `MemorySession` two runs sharing one session
   * object both store their items: begun at once, the second would only meet the first one's lease.
   */
  async #write(change) {
    if (this.#inv) return change(this.#inv).value;
    return this.#writes.run(0, () => (this.#inv ? change(this.#inv).value : this.#writeAlone(change)));
  }

  async #writeAlone(change) {
    const inv = await this.#handle.begin(this.#onBusy === undefined ? this.#agent : { ...this.#agent, onBusy: this.#onBusy });
    try {
      const { changed, value } = change(inv);
      if (changed) await inv.commit();
      else await inv.abort();
      return value;
    } catch (error) {
      await inv.abort().catch(() => {});
      throw error;
    }
  }
}

/** The `run(agent, input, options)` function a `runner` option gives (default: the SDK's `run`). */
async function resolveRun(runner) {
  if (typeof runner === "function") return runner;
  if (runner !== undefined && runner !== null) {
    if (typeof runner.run !== "function") throw new TypeError("`runner` must be a Runner or a run function");
    return (agent, input, options) => runner.run(agent, input, options);
  }
  const sdk = await import("@openai/agents");
  return sdk.run;
}

/**
 * The part `run` forwards for one stream event of the runner (`RunStreamEvent`), small and JSON:
 * - `raw_model_stream_event`: `{ type, data }` with `data` one of `{ type: "output_text_delta", delta,
 *   itemId? }`, `{ type: "response_started" }`, `{ type: "response_done", response: { id, usage } }`;
 *   the provider's own events (`data.type` "model") repeat these and are left out (undefined);
 * - `run_item_stream_event`: `{ type, name, item }`, `item` the JSON form of the run item's `rawItem`
 *   (the message, tool call, tool output, handoff or reasoning item as the session stores it);
 * - `agent_updated_stream_event`: `{ type, agent }`, the new agent's name.
 * Anything else: undefined (not forwarded).
 */
export function streamEventPart(event) {
  switch (event?.type) {
    case "raw_model_stream_event": {
      const data = event.data ?? {};
      if (data.type === "output_text_delta") {
        return { type: event.type, data: { type: data.type, delta: data.delta, ...(typeof data.itemId === "string" && { itemId: data.itemId }) } };
      }
      if (data.type === "response_started") return { type: event.type, data: { type: data.type } };
      if (data.type === "response_done") {
        const response = { id: data.response?.id ?? null };
        const usage = jsonForm(data.response?.usage);
        if (usage !== undefined) response.usage = usage;
        return { type: event.type, data: { type: data.type, response } };
      }
      return undefined;
    }
    case "run_item_stream_event": {
      const item = jsonForm(event.item?.rawItem);
      return { type: event.type, name: event.name, item: item === undefined ? null : item };
    }
    case "agent_updated_stream_event":
      return { type: event.type, agent: event.agent?.name ?? null };
    default:
      return undefined;
  }
}

function isThenable(value) {
  return value !== null && (typeof value === "object" || typeof value === "function") && typeof value.then === "function";
}

// ---------------------------------------------------------------------------------------------
// The live view over the append-only log

function readView(state) {
  const view = state[ITEMS_KEY];
  return view && typeof view === "object" ? view : { start: 0, kept: [] };
}

function liveCount(view, length) {
  let count = Math.max(length - view.start, 0);
  for (const [from, to] of view.kept) count += to - from;
  return count;
}

/** The log positions of the live items, oldest first. */
function liveIndexes(view, length) {
  const indexes = [];
  for (const [from, to] of view.kept) for (let i = from; i < to; i++) indexes.push(i);
  for (let i = view.start; i < length; i++) indexes.push(i);
  return indexes;
}

/**
 * Writes the view whose live events are `positions` (ascending) of a log of `length` events, plus every
 * event from `length` on (those appended after this call). The default view (every event live) is
 * the key's absence, so it deletes a key that is there.
 */
function writeView(inv, state, positions, length, agent) {
  let start = length;
  let i = positions.length;
  while (i > 0 && positions[i - 1] === start - 1) {
    start--;
    i--;
  }
  const kept = [];
  for (let j = 0; j < i; j++) {
    const last = kept[kept.length - 1];
    if (last !== undefined && last[1] === positions[j]) last[1]++;
    else kept.push([positions[j], positions[j] + 1]);
  }
  if (start === 0 && kept.length === 0) {
    if (state[ITEMS_KEY] !== undefined) inv.deleteState(ITEMS_KEY, agent);
  } else {
    inv.setState(ITEMS_KEY, { start, kept }, agent);
  }
}

/** How many items end both `items` (stored forms) and `stored` (stored events), compared as JSON text. */
function commonSuffix(items, stored) {
  let n = 0;
  while (n < items.length && n < stored.length) {
    if (JSON.stringify(items[items.length - 1 - n]) !== JSON.stringify(stored[stored.length - 1 - n])) break;
    n++;
  }
  return n;
}

function lastIndexWhere(list, predicate) {
  for (let i = list.length - 1; i >= 0; i--) if (predicate(list[i])) return i;
  return -1;
}

/** The view without its newest item, and that item's log position; null when nothing is live. */
function popView(view, length) {
  if (length > view.start) {
    const index = length - 1;
    const kept = view.start < index ? [...view.kept, [view.start, index]] : [...view.kept];
    return { index, view: { start: length, kept } };
  }
  if (view.kept.length === 0) return null;
  const kept = view.kept.map(([from, to]) => [from, to]);
  const last = kept[kept.length - 1];
  const index = last[1] - 1;
  if (last[0] === index) kept.pop();
  else last[1] = index;
  return { index, view: { start: view.start, kept } };
}

// ---------------------------------------------------------------------------------------------
// Item codec: agent-session stores JSON, so an `undefined` property would vanish and a Uint8Array
// would become an object of indexes. Items come back exactly as given (`structuredClone` equal, as
// MemorySession keeps them); an item with neither is stored unchanged.

function isPlainObject(value) {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The stored form of `item` (the item itself when JSON carries it whole). */
export function encodeItem(item) {
  if (!isPlainObject(item)) return item;
  const meta = { u: [], b: [] };
  let stripped;
  try {
    stripped = strip(item, [], meta, []);
  } catch {
    // A getter or proxy trap that throws: the item goes to agent-session as it is, which refuses it
    // with a ValidationError naming the path (the thrown error its cause), as it refuses a cycle.
    return item;
  }
  const own = Object.prototype.hasOwnProperty.call(item, META_KEY);
  if (stripped === item && !own) return item;
  const out = stripped === item ? { ...item } : stripped;
  const record = {};
  // An own `undefined` under the key is already one of the `u` paths; any other value moves to `k`.
  if (own && item[META_KEY] !== undefined) record.k = out[META_KEY];
  if (meta.u.length) record.u = meta.u;
  if (meta.b.length) record.b = meta.b;
  out[META_KEY] = record;
  return out;
}

/** A mutable copy of the item stored as `stored`. */
export function decodeItem(stored) {
  return restoreItem(structuredClone(stored));
}

/** `item`, a mutable copy of a stored item, with what `encodeItem` recorded put back. */
function restoreItem(item) {
  if (!isPlainObject(item) || !Object.prototype.hasOwnProperty.call(item, META_KEY)) return item;
  const meta = item[META_KEY];
  delete item[META_KEY];
  if ("k" in meta) item[META_KEY] = meta.k;
  for (const path of meta.b ?? []) setPath(item, path, fromBase64(getPath(item, path)));
  for (const path of meta.u ?? []) setPath(item, path, undefined);
  return item;
}

/**
 * `value` with what JSON loses replaced (recorded in `meta`); the same object when nothing is. `open`:
 * the objects being walked. A cycle or a nesting deeper than agent-session stores is left as it is,
 * for agent-session to refuse with its path.
 */
function strip(value, path, meta, open) {
  const bytes = uint8View(value); // of any realm
  if (bytes !== undefined) {
    meta.b.push(path.slice());
    return toBase64(bytes);
  }
  if (value === null || typeof value !== "object" || open.length >= MAX_JSON_DEPTH || open.includes(value)) return value;
  open.push(value);
  const stripped = stripEntries(value, path, meta, open);
  open.pop();
  return stripped;
}

/** `strip` of an array's or a plain object's entries. */
function stripEntries(value, path, meta, open) {
  if (Array.isArray(value)) {
    let copy = null;
    for (let i = 0; i < value.length; i++) {
      const entry = value[i];
      path.push(i);
      let next;
      if (entry === undefined) {
        meta.u.push(path.slice());
        next = null;
      } else {
        next = strip(entry, path, meta, open);
      }
      path.pop();
      if (next !== entry && !copy) copy = value.slice(0, i);
      if (copy) copy.push(next);
    }
    return copy ?? value;
  }
  if (!isPlainObject(value)) return value;
  let copy = null;
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const entry = value[key];
    path.push(key);
    let next;
    if (entry === undefined) {
      meta.u.push(path.slice());
      next = undefined;
    } else {
      next = strip(entry, path, meta, open);
    }
    path.pop();
    if ((next !== entry || entry === undefined) && !copy) {
      copy = {};
      for (let j = 0; j < i; j++) define(copy, keys[j], value[keys[j]]);
    }
    if (copy && next !== undefined) define(copy, key, next);
  }
  return copy ?? value;
}

/** Sets an own property, also one named `__proto__` (an assignment would change the prototype). */
function define(object, key, value) {
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
}

function getPath(root, path) {
  let node = root;
  for (const key of path) node = Object.prototype.hasOwnProperty.call(node, key) ? node[key] : undefined;
  return node;
}

function setPath(root, path, value) {
  define(getPath(root, path.slice(0, -1)), path[path.length - 1], value);
}

