// agent-session/langgraph: a LangGraph.js checkpoint saver over any agent-session SessionStore.
//
//   const checkpointer = new AgentSessionSaver(store);            // instead of new MemorySaver()
//   await checkpointer.guard(threadId, () => graph.invoke(input, config));   // one turn, one lease
//   await checkpointer.invoke(graph, input, config);     // the same, stoppable: signal = inv.signal
//   for await (const chunk of checkpointer.stream(graph, input, config)) ...  // + chunks -> inv.emit
//
// Plain JS over the public API (../index.d.ts); @langchain/langgraph-checkpoint is an optional peer.
// No AsyncLocalStorage: a guard is found through a map of the threads this saver is guarding. How a
// thread is stored: langgraph/layout.js.
//
// Reads go to agent-session one state value at a time (`stateValue`): the committed value of a Session
// brought to the latest commit (so they see what other stores and processes committed), or, inside a
// guard or a write, the Invocation's staged-over-committed value. A guard's turn (or one batch of
// writes), which holds the thread's lease, reads each value once and remembers what it staged (a
// KnownState, langgraph/known-state.js); what it used is carried to the thread's next invocation in
// this saver, which uses it only if the session is still at the state it left (_knownAt).

import {
  BaseCheckpointSaver,
  TASKS,
  WRITES_IDX_MAP,
  getCheckpointId,
  maxChannelVersion,
} from "@langchain/langgraph-checkpoint";
import { fromBase64, timerDelay, toBase64 } from "../runtime.js";
import {
  HASHED,
  agentFor,
  blobKey,
  cpKey,
  isCheckpointKey,
  nameFor,
  nsKey,
  tasksKey,
  writeKey,
} from "./langgraph/layout.js";
import { storedFormOf, wholeBlob } from "./langgraph/channel-values.js";
import { KnownState, UNKNOWN } from "./langgraph/known-state.js";
import { anySignal, forwarder, jsonForm, projection, stopError } from "./live-run.js";
import { SerialQueues } from "./serial-queue.js";
import { SessionHandle, hasCode } from "./session-handle.js";
import { ConcurrencyError } from "../wasm/errors.js";

/** The invocation's end at its last checkpoint (js/api.js). */
const END_AT_CHECKPOINT = Symbol.for("agent-session.endAtCheckpoint");
const BUSY_REFUSAL = Symbol.for("agent-session.busyRefusal");

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------------------------

// Strings by Unicode code point (the order of @langchain/langgraph-checkpoint 1.2's compareWritesSortKeys).
function compareCodePoints(a, b) {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i);
    const y = b.codePointAt(j);
    if (x !== y) return x < y ? -1 : 1;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

function compareWriteKeys(a, b) {
  return compareCodePoints(a[0], b[0]) || compareCodePoints(a[1], b[1]) || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0);
}

function jsonEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEqual(a[k], b[k]));
}

const hasOwn = (o, k) => o != null && Object.prototype.hasOwnProperty.call(o, k);
/** The most agents whose options objects are kept (namespaces; more start the map afresh). */
const MAX_AGENT_OPTIONS = 256;
const agentOptions = new Map(); // agent -> { agent }

/**
 * `{ agent }` for agent-session's options; undefined for the default agent. One object per agent,
 * reused: the engine reads an options object it has read before faster (a new one per call cost a
 * few microseconds of each of a turn's ~40 reads and writes).
 */
function agentOption(agent) {
  if (agent === undefined) return undefined;
  let option = agentOptions.get(agent);
  if (option === undefined) {
    if (agentOptions.size >= MAX_AGENT_OPTIONS) agentOptions.clear();
    agentOptions.set(agent, (option = { agent }));
  }
  return option;
}

/**
 * Reads of a thread from a Session (committed) or an Invocation (staged over committed). With a
 * KnownState (`known`), a value is read from the engine once and then remembered, as are the values
 * staged through it: for an invocation, which holds the thread's lease, so that nothing but its own
 * writes can change what it reads (a guard's turn, or one round of writes), or for one getTuple of a
 * Session (_getTuple).
 */
class ThreadView {
  constructor(source, known) {
    this.source = source;
    this.known = known;
  }
  get(agent, key) {
    if (this.known === undefined) return this.source.stateValue(key, agentOption(agent));
    const known = this.known.value(agent, key);
    if (known !== UNKNOWN) return known;
    const value = this.source.stateValue(key, agentOption(agent));
    this.known.setValue(agent, key, value);
    return value;
  }
  /** The whole stored form of `channel`'s value at blob `key` (deltas and rollups resolved), or
   * undefined when it is not stored or refers to a value that is not. */
  whole(agent, channel, key) {
    const known = this.known?.text(agent, channel, key);
    if (known !== undefined) return known;
    const whole = wholeBlob((k) => this.get(agent, k), this.get(agent, key));
    if (whole !== undefined) this.known?.setText(agent, channel, key, whole);
    return whole;
  }
  /** The whole state of one agent (frozen), for the reads that enumerate keys. */
  state(agent) {
    return this.source.state(agentOption(agent));
  }
}

/** The writes staged into one invocation (state keys and messages), reading what is staged. */
class Staging extends ThreadView {
  constructor(inv, known) {
    super(inv, known);
    this.count = 0;
  }
  /** Stages `value` (plain JSON, never mutated after: `known` keeps it as what the key now reads). */
  set(agent, key, value) {
    this.source.setState(key, value, agentOption(agent));
    this.count++;
    this.known.setValue(agent, key, value);
  }
  /** Stages the value of `channel` at blob `key`: `stored`, whose whole stored form is `whole`. */
  setBlob(agent, channel, key, stored, whole) {
    this.set(agent, key, stored);
    this.known.setText(agent, channel, key, whole);
  }
  message(agent, body) {
    this.source.appendMessage(body, agentOption(agent));
    this.count++;
  }
}

/** Resolves in a later macrotask, once the microtasks queued until now (and those they queue) have run. */
function nextTask() {
  return new Promise((resolve) => {
    if (typeof setImmediate === "function") setImmediate(resolve);
    else if (typeof MessageChannel === "function") {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        channel.port1.close();
        resolve();
      };
      channel.port2.postMessage(null);
    } else setTimeout(resolve, 0);
  });
}

/** A batch takes in at most this many writes (a bound on one commit's work; more start a new batch). */
const MAX_BATCH = 64;

/** Resolves or rejects `write`'s caller as `promise` settles. */
function settle(write, promise) {
  return promise.then(write.resolve, write.reject);
}

/**
 * The reads `_tuple` makes of one agent, from a view or from a state object already read whole:
 * `get(key)`, and `whole(channel, key)`, the whole stored form of a channel's value (ThreadView.whole).
 */
const readerOf = (view, agent) => ({ get: (key) => view.get(agent, key), whole: (channel, key) => view.whole(agent, channel, key) });
function readerOfState(state) {
  const get = (key) => (hasOwn(state, key) ? state[key] : undefined);
  return { get, whole: (channel, key) => wholeBlob(get, get(key)) };
}

/**
 * The guard's invocation as `fn` sees it: writes the caller stages on it mark the turn dirty, so that
 * the guard commits them even when they come after the last put; a part it emits marks the turn live,
 * so that the guard ends it with a commit (followers then see it end `committed`, not `aborted`).
 */
function userInvocation(guard) {
  const staging = new Set(["setState", "deleteState", "appendMessage"]);
  return new Proxy(guard.inv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "emit") {
        return (...args) => {
          const seq = value.apply(target, args);
          guard.live = true;
          return seq;
        };
      }
      if (!staging.has(prop)) {
        return (...args) => {
          // A checkpoint or any other call of the caller's may move the version on: read it from
          // the session from now on.
          guard.versionKnown = false;
          return value.apply(target, args);
        };
      }
      return (...args) => {
        // What the caller stages may be a key the saver reads: its reads go to the engine again.
        guard.cache.clear();
        const result = value.apply(target, args);
        guard.dirty = true;
        guard.userDirty = true;
        return result;
      };
    },
  });
}

// ---------------------------------------------------------------------------------------------

export class AgentSessionSaver extends BaseCheckpointSaver {
  /**
   * @param {import("../index.js").SessionStore} store any agent-session store
   * @param {import("./langgraph.d.ts").AgentSessionSaverOptions} [options] prefix, serde, open, cacheThreads
   */
  constructor(store, options = {}) {
    super(options.serde);
    if (!store || typeof store.open !== "function") throw new TypeError("AgentSessionSaver needs a SessionStore");
    this.store = store;
    this.prefix = options.prefix ?? "langgraph/";
    this.openOptions = options.open;
    this.cacheThreads = options.cacheThreads ?? 1024;
    this._threads = new Map(); // session id -> SessionHandle (least recently used first)
    this._queues = new SerialQueues(); // per session id: the writes, reads and guard steps of this saver
    this._guards = new Map(); // session id -> the guard running for it in this saver
    this._gathering = new Map(); // session id -> the batch of writes still taking in new ones
    // session id -> what its thread's last invocation knew (_carry), least recently carried first, at
    // most MAX_CARRIED_THREADS; `_carriedUnits` counts their text, at most `_carryLimit` UTF-16 units
    // (MAX_CARRIED_UNITS). Kept by session id, not with the thread's handle: a server's turns go over
    // more threads than it keeps handles for.
    this._carried = new Map();
    this._carriedUnits = 0;
    this._carryLimit = MAX_CARRIED_UNITS;
  }

  /** The agent-session session id of a LangGraph thread. No thread id (undefined or null) is a
   * TypeError: as the thread "undefined", a caller's bug would guard or delete a real thread. */
  sessionId(threadId) {
    if (threadId === undefined || threadId === null) {
      throw new TypeError(`AgentSessionSaver: the thread id is ${threadId}; pass the thread_id of the config`);
    }
    return nameFor(this.prefix, String(threadId), this.prefix + HASHED);
  }

  /** The agent-session agent name of a checkpoint namespace ("" is the root graph). */
  agentName(checkpointNs = "") {
    return agentFor(checkpointNs);
  }

  // ---- sessions ----------------------------------------------------------------------------

  /** The SessionHandle of a thread's session. Handles of the threads used last are kept, so that a
   * write begins on an open Session instead of opening it first (one round trip less on a KV store). */
  _thread(sid) {
    let handle = this._threads.get(sid);
    if (handle !== undefined) this._threads.delete(sid);
    else handle = new SessionHandle(this.store, sid, { open: this.openOptions });
    this._threads.set(sid, handle);
    if (this._threads.size > this.cacheThreads) this._threads.delete(this._threads.keys().next().value);
    return handle;
  }

  /**
   * A KnownState for reads of `source` (an invocation just begun, or a Session), the thread of session
   * `sid` being at state `id` (SessionHandle.stateId): it falls back to what the thread's last
   * invocation in this saver knew when that one ended at the same state id and the head it knew is
   * still the head. (A session deleted and created again within the millisecond of its creation time
   * may reach the same version again; its head is then another checkpoint. A handle made again for
   * the thread starts at generation 0, and so matches only a state its predecessor left at 0.)
   */
  _knownAt(sid, source, id) {
    const known = new KnownState();
    const carried = this._carried.get(sid);
    if (carried === undefined || carried.id !== id) return known;
    if (new ThreadView(source, known).get(carried.agent, "head") === carried.head) known.carried = carried.known;
    return known;
  }

  /**
   * Keeps what `known` knew for the thread's next invocation: its invocation ended at state `id` with
   * nothing staged left uncommitted. Without a head to check it by, nothing is kept; nor is a state
   * holding more than a quarter of the saver's bound. What the bounds have no room for is dropped, least
   * recently carried first.
   */
  _carry(sid, id, known) {
    this._uncarry(sid);
    const marker = known.marker();
    if (marker === undefined) return;
    const detached = known.detached();
    const units = detached.units();
    if (units > this._carryLimit / 4) return;
    this._carried.set(sid, { id, agent: marker.agent, head: marker.head, known: detached, units });
    this._carriedUnits += units;
    for (const oldest of this._carried.keys()) {
      if (this._carriedUnits <= this._carryLimit && this._carried.size <= MAX_CARRIED_THREADS) break;
      this._uncarry(oldest);
    }
  }

  /** Drops what is carried for the thread of session `sid`, if anything. */
  _uncarry(sid) {
    const entry = this._carried.get(sid);
    if (entry === undefined) return;
    this._carried.delete(sid);
    this._carriedUnits -= entry.units;
  }

  /** A current read view of a thread, or undefined when it does not exist. */
  async _view(sid, committed = false) {
    const guard = this._guards.get(sid);
    if (guard && !guard.done && !committed) return new ThreadView(guard.inv, guard.cache);
    return this._serial(sid, async () => {
      const session = await this._thread(sid).refreshed();
      return session === undefined ? undefined : new ThreadView(session);
    });
  }

  // ---- writes --------------------------------------------------------------------------------

  /**
   * Runs `task` in the thread's queue, after everything already queued for it. It closes the batch of
   * writes gathering for the thread: a write called after `task` must not run before it.
   */
  _serial(sid, task) {
    this._gathering.delete(sid);
    return this._queues.run(sid, task);
  }

  /**
   * Applies `apply(staging, input, version)` (synchronous) to a thread once `prepared` gives its input:
   * inside this saver's guard for the thread it is staged into the guard's invocation (a put then
   * checkpoints it); otherwise it is committed with the other writes of its batch. Writes called while
   * the thread's queue is busy gather into one batch, which runs in the queue at the place of its
   * first write; each caller resolves once the commit holding its write is durable.
   */
  _write(threadId, prepared, apply, isPut) {
    const sid = this.sessionId(threadId);
    return new Promise((resolve, reject) => {
      const write = { prepared, apply, isPut, resolve, reject, input: undefined };
      const gathering = this._gathering.get(sid);
      if (gathering !== undefined && gathering.length < MAX_BATCH) {
        gathering.push(write);
        return;
      }
      const batch = [write];
      this._gathering.set(sid, batch);
      // A failure _runBatch did not expect must not leave callers waiting (settling twice is a no-op).
      this._queues.run(sid, () => this._runBatch(sid, batch)).catch((error) => {
        for (const each of batch) each.reject(error);
      });
    });
  }

  async _runBatch(sid, batch) {
    const guard = this._guards.get(sid);
    if (guard && !guard.done) {
      const writes = await this._prepareBatch(sid, batch);
      for (const write of writes) await settle(write, this._writeGuarded(guard, write.input, write.apply, write.isPut));
      return;
    }
    // A batch of putWrites only waits for the next macrotask first: LangGraph calls the put of a step
    // right after the putWrites of the task that ended it (in microtasks), and that put joins this batch,
    // so that a step is one commit, not two. Its callers resolve when that commit is durable, as before.
    if (!batch.some((write) => write.isPut)) await nextTask();
    // Begin first: the writes called while the lease is taken join this batch.
    let inv;
    try {
      inv = await this._thread(sid).begin();
    } catch (error) {
      for (const write of await this._prepareBatch(sid, batch)) write.reject(error);
      return;
    }
    await this._commitWrites(sid, await this._prepareBatch(sid, batch), inv);
  }

  /**
   * Waits for the inputs of the batch's writes (their values go through serde asynchronously), taking
   * in the writes called meanwhile, then closes the batch. A write whose input failed is rejected and
   * left out. Returns the writes to stage, in call order.
   */
  async _prepareBatch(sid, batch) {
    let waited = 0;
    while (waited < batch.length) {
      const waiting = batch.slice(waited);
      waited = batch.length;
      const inputs = await Promise.allSettled(waiting.map((write) => write.prepared));
      inputs.forEach((outcome, i) => {
        if (outcome.status === "fulfilled") waiting[i].input = outcome.value;
        else waiting[i].failed = outcome.reason;
      });
    }
    if (this._gathering.get(sid) === batch) this._gathering.delete(sid);
    for (const write of batch) if ("failed" in write) write.reject(write.failed);
    return batch.filter((write) => !("failed" in write));
  }

  /** Commits `writes` (inputs ready) in call order, as one invocation (`inv`) unless one of them fails. */
  async _commitWrites(sid, writes, inv) {
    let rest = writes;
    let begun = inv;
    while (rest.length > 0) {
      rest = rest.slice(await this._commitRound(sid, rest, begun));
      begun = undefined;
    }
    await begun?.abort().catch(() => {}); // no write was left to stage
  }

  /**
   * One invocation (`inv`, or a new one) for a prefix of `writes`; returns how many of them it settled.
   * A write that throws while being staged is rejected only when it was staged first: after other
   * writes it may fail because of them (the commit's size limit), and it has left part of itself
   * staged, so the round is aborted, the writes before it are committed without it, and it is staged
   * first in the next round.
   */
  async _commitRound(sid, writes, inv) {
    const handle = this._thread(sid);
    try {
      inv ??= await handle.begin();
    } catch (error) {
      for (const write of writes) write.reject(error);
      return writes.length;
    }
    const begun = beganAt(handle, inv);
    const staging = new Staging(inv, this._knownAt(sid, inv, begun.id(begun.version)));
    const results = [];
    const version = begun.version + 1; // what this round commits as (staging does not move it)
    for (let i = 0; i < writes.length; i++) {
      try {
        results.push(writes[i].apply(staging, writes[i].input, version));
      } catch (error) {
        await inv.abort().catch(() => {});
        if (i > 0) return this._commitRound(sid, writes.slice(0, i));
        writes[0].reject(error);
        return 1;
      }
    }
    try {
      let ended = begun.version;
      if (staging.count > 0) ended = await inv.commit();
      else await inv.abort();
      this._carry(sid, begun.id(ended), staging.known);
    } catch (error) {
      await inv.abort().catch(() => {});
      for (const write of writes) write.reject(error);
      return writes.length;
    }
    writes.forEach((write, i) => write.resolve(results[i]));
    return writes.length;
  }

  async _writeGuarded(guard, input, apply, isPut) {
    // After a failed write (a lost lease, or a put that staged only part of itself) the turn is over:
    // every later write rejects with that error, and the guard aborts.
    if (guard.failed) throw guard.failed;
    try {
      const staging = new Staging(guard.inv, guard.cache);
      // The session's version, from the Session object only when the saver's own checkpoints may
      // not account for it (each `inv.session` is a new object, read across the wasm boundary).
      const version = guard.versionKnown ? guard.version : guard.inv.session.version;
      const result = apply(staging, input, version + 1);
      if (staging.count > 0) guard.dirty = true;
      if (isPut && guard.dirty) {
        guard.version = await guard.inv.checkpoint();
        guard.dirty = false;
      }
      return result;
    } catch (e) {
      if (e === PARENT_MISSING) throw e; // nothing was staged: the put starts again
      guard.failed ??= e;
      throw guard.failed;
    }
  }

  async _dump(value) {
    const [t, bytes] = await this.serde.dumpsTyped(value);
    try {
      return { t, s: strictDecoder.decode(bytes) };
    } catch {
      return { t, b: toBase64(bytes) };
    }
  }

  async _load(stored) {
    if (typeof stored.s !== "string") return this.serde.loadsTyped(stored.t, fromBase64(stored.b));
    // SerializerProtocol.loadsTyped takes text as well as bytes; JSON is handed over as the text it is,
    // saving an encode here and a decode in the serde. Other types get the bytes they were dumped as.
    return this.serde.loadsTyped(stored.t, stored.t === "json" ? stored.s : encoder.encode(stored.s));
  }

  // ---- BaseCheckpointSaver -------------------------------------------------------------------

  async put(config, checkpoint, metadata, newVersions) {
    const configurable = config?.configurable;
    if (configurable === undefined) throw new Error('AgentSessionSaver.put: the config has no "configurable"');
    const threadId = configurable.thread_id;
    if (threadId === undefined || threadId === null) {
      throw new Error('AgentSessionSaver.put: the config has no "thread_id" in "configurable"');
    }
    const ns = configurable.checkpoint_ns ?? "";
    const parent = configurable.checkpoint_id || undefined;
    const id = checkpoint.id;
    const versions = newVersions ?? {};
    const values = checkpoint.channel_values ?? {};
    const { channel_values: _values, ...skeleton } = checkpoint;
    skeleton.channel_values = {};

    const channelVersions = checkpoint.channel_versions ?? {};
    // `whole`: every channel with a value is stored, not only the new ones (the parent to carry the
    // others over from is not stored: a deleteThread raced the turn, or the config named a checkpoint
    // this saver never stored), as MemorySaver keeps every channel it is given.
    const prepare = async (whole) => {
      const stored = Object.keys(whole ? values : versions).filter((ch) => {
        const at = hasOwn(versions, ch) ? versions[ch] : channelVersions[ch];
        return at !== undefined && hasOwn(values, ch) && values[ch] !== undefined;
      });
      const [c, m, ...blobs] = await Promise.all([
        this._dump(skeleton),
        this._dump(metadata),
        ...stored.map((ch) => this._dump(values[ch])),
      ]);
      return { c, m, blobs: stored.map((ch, i) => [ch, blobs[i]]), whole };
    };
    const carried = Object.keys(channelVersions).some(
      (ch) => !hasOwn(versions, ch) && hasOwn(values, ch) && values[ch] !== undefined,
    );

    const apply = (tx, { c, m, blobs, whole }, version) => {
      const agent = agentFor(ns);
      const parentRecord = parent === undefined ? undefined : tx.get(agent, cpKey(parent));
      // Before anything is staged: the put starts again with every channel's value.
      if (!whole && carried && parent !== undefined && parentRecord === undefined) throw PARENT_MISSING;
      const src = {};
      const read = (key) => tx.get(agent, key);
      // The head is the largest checkpoint id stored in the namespace: a checkpoint newer than it is
      // not stored, nor is any value it writes (its blob keys need not be read below).
      const head = tx.get(agent, "head");
      const fresh = typeof head === "string" && id > head;
      for (const [ch, blob] of blobs) {
        const at = hasOwn(versions, ch) ? versions[ch] : channelVersions[ch];
        const key = blobKey(ch, at, id);
        const previous = parentRecord?.src?.[ch];
        let stored =
          Array.isArray(previous) && typeof previous[1] === "string"
            ? storedFormOf(read, previous[1], blob, (k) => tx.whole(agent, ch, k))
            : blob;
        // A put of a checkpoint already stored keeps its values whole: deltas and rollups may read
        // them (channel-values.js).
        if (stored !== blob && !fresh && read(key) !== undefined) stored = blob;
        tx.setBlob(agent, ch, key, stored, blob);
        src[ch] = [at, key];
      }
      // Channels this put does not store are carried over from the parent, at the same version.
      for (const [ch, at] of Object.entries(channelVersions)) {
        if (hasOwn(versions, ch) || hasOwn(src, ch)) continue;
        const inherited = parentRecord?.src?.[ch];
        if (inherited && inherited[0] === at) src[ch] = inherited;
      }
      tx.set(agent, cpKey(id), { id, parent: parent ?? null, version, c, m, src });
      if (typeof head !== "string" || fresh) tx.set(agent, "head", id);
      // The put that wrote the parent checkpoint (in this namespace) wrote these two keys already.
      if (parentRecord === undefined) {
        if (tx.get(undefined, "thread") === undefined) tx.set(undefined, "thread", String(threadId));
        if (tx.get(undefined, nsKey(ns)) === undefined) tx.set(undefined, nsKey(ns), { ns, agent });
      }
      const note = { checkpoint: id, parent: parent ?? null };
      if (typeof metadata?.source === "string") note.source = metadata.source;
      if (typeof metadata?.step === "number" && Number.isFinite(metadata.step)) note.step = metadata.step;
      tx.message(agent, note);
    };
    try {
      await this._write(threadId, prepare(false), apply, true);
    } catch (error) {
      if (error !== PARENT_MISSING) throw error;
      await this._write(threadId, prepare(true), apply, true);
    }
    return { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: id } };
  }

  async putWrites(config, writes, taskId, taskPath) {
    const configurable = config?.configurable ?? {};
    const threadId = configurable.thread_id;
    const checkpointId = configurable.checkpoint_id;
    if (threadId === undefined || threadId === null) {
      throw new Error('AgentSessionSaver.putWrites: the config has no "thread_id" in "configurable"');
    }
    if (checkpointId === undefined || checkpointId === null || checkpointId === "") {
      throw new Error('AgentSessionSaver.putWrites: the config has no "checkpoint_id" in "configurable"');
    }
    const ns = configurable.checkpoint_ns ?? "";
    const prepared = Promise.all(writes.map(([channel, value]) => this._dump(value)));
    await this._write(
      threadId,
      prepared,
      (tx, dumped) => {
        const agent = agentFor(ns);
        const key = writeKey(checkpointId, taskId);
        // A task's record is listed in the checkpoint's tasks from its first write on (readers find it
        // there): a task not listed has none, and its key need not be read.
        const tasks = tx.get(agent, tasksKey(checkpointId)) ?? [];
        const listed = tasks.includes(String(taskId));
        const existing = listed ? tx.get(agent, key) : undefined;
        const record = { p: existing?.p ?? "", w: { ...(existing?.w ?? {}) } };
        // The task's regular writes already stored, each matched at most once below.
        const stored = existing ? Object.entries(existing.w).filter(([idx]) => Number(idx) >= 0) : [];
        let changed = false;
        writes.forEach(([channel], i) => {
          const special = WRITES_IDX_MAP[channel];
          if (special === undefined) {
            // A regular write this task already stored is that write, wherever it stands in this
            // call: when a run ends under `durability: "exit"`, LangGraph puts again the pending
            // writes getTuple gave, in that order ((task_path, task_id, idx), special channels
            // first), where MemorySaver gives them as put; by position alone the write would be
            // stored twice (a duplicate in the channel's value after each failed retry).
            const same = stored.findIndex(([, [ch, value]]) => ch === channel && jsonEqual(value, dumped[i]));
            if (same >= 0) {
              stored.splice(same, 1);
              return;
            }
          }
          const idx = special ?? i;
          // Regular writes are idempotent (the first one wins); the special channels overwrite.
          if (idx >= 0 && hasOwn(existing?.w, idx)) return;
          record.w[idx] = [channel, dumped[i]];
          changed = true;
        });
        if (!record.p && taskPath) {
          record.p = String(taskPath);
          changed = true;
        }
        if (changed) tx.set(agent, key, record);
        if (!listed) tx.set(agent, tasksKey(checkpointId), [...tasks, String(taskId)]);
      },
      false,
    );
  }

  async getTuple(config) {
    const threadId = config?.configurable?.thread_id;
    if (threadId === undefined || threadId === null) return undefined;
    try {
      return await this._getTuple(config, threadId, false);
    } catch (error) {
      // Read through a guard's invocation that ended or lost its lease: read what is committed.
      if (!hasCode(error, "INVALID_TRANSITION")) throw error;
      return this._getTuple(config, threadId, true);
    }
  }

  async _getTuple(config, threadId, committed) {
    const ns = config.configurable.checkpoint_ns ?? "";
    const sid = this.sessionId(threadId);
    const view = await this._view(sid, committed);
    if (!view) return undefined;
    if (view.known === undefined) {
      // A committed view reads through what this saver's last invocation of the thread knew, if the
      // session is at the state that one ended at: checked here, in the synchronous run of the reads
      // below (the session may move on at any await; the reads a v < 4 checkpoint makes after one
      // then see the state of the checkpoint's own reads for the keys they share).
      const handle = this._thread(sid);
      view.known = this._knownAt(sid, view.source, handle.stateId(view.source));
    }
    const agent = agentFor(ns);
    const id = getCheckpointId(config) || view.get(agent, "head");
    if (typeof id !== "string") return undefined;
    const record = view.get(agent, cpKey(id));
    if (!record) return undefined;
    return this._tuple(readerOf(view, agent), String(threadId), ns, record);
  }

  async *list(config, options = {}) {
    const { before, limit, filter } = options ?? {};
    const configurable = config?.configurable ?? {};
    const threadId = configurable.thread_id;
    const nsFilter = configurable.checkpoint_ns;
    const idFilter = getCheckpointId(config ?? {});
    const beforeId = before?.configurable?.checkpoint_id;

    // Each namespace's state is read whole, once, as soon as its thread's view is taken: listing
    // enumerates its keys anyway, and the tuples are then built from what was read, whatever the
    // cache of the store does meanwhile, or a guard of this saver whose view it was ends.
    const candidates = [];
    const collect = (thread, view) => {
      const namespaces = [];
      if (nsFilter !== undefined) namespaces.push([nsFilter, agentFor(nsFilter)]);
      else {
        for (const [key, entry] of Object.entries(view.state(undefined))) {
          if (!key.startsWith("ns/") && !key.startsWith("ns#")) continue;
          if (entry && typeof entry.ns === "string") namespaces.push([entry.ns, entry.agent]);
        }
      }
      for (const [ns, agent] of namespaces) {
        const state = view.state(agent);
        for (const [key, record] of Object.entries(state)) {
          if (!isCheckpointKey(key)) continue;
          if (!record || typeof record.id !== "string") continue;
          if (idFilter && record.id !== idFilter) continue;
          if (beforeId && !(record.id < beforeId)) continue;
          candidates.push({ thread, ns, state, record });
        }
      }
    };
    // `thread`: the thread id, or undefined to read it from the view (a session found by listing).
    const take = async (sid, thread) => {
      for (let attempt = 0; ; attempt++) {
        const view = await this._view(sid, attempt > 0);
        if (!view) return;
        try {
          const name = thread ?? view.get(undefined, "thread");
          if (typeof name === "string" && this.sessionId(name) === sid) collect(name, view);
          return;
        } catch (error) {
          // The view was a guard's invocation, which ended or lost its lease before it was read:
          // read what is committed.
          if (attempt > 0 || !hasCode(error, "INVALID_TRANSITION")) throw error;
        }
      }
    };
    if (threadId !== undefined && threadId !== null) {
      await take(this.sessionId(threadId), String(threadId));
    } else {
      let cursor;
      do {
        const page = await this.store.list({ prefix: this.prefix, cursor });
        for (const info of page.sessions) await take(info.id, undefined);
        cursor = page.cursor;
      } while (cursor);
    }
    // Newest first: uuid6 checkpoint ids sort by time.
    candidates.sort((a, b) => (a.record.id < b.record.id ? 1 : a.record.id > b.record.id ? -1 : 0));

    let remaining = limit;
    for (const { thread, ns, state, record } of candidates) {
      if (remaining !== undefined && remaining <= 0) return;
      let metadata;
      if (filter && Object.keys(filter).length > 0) {
        metadata = await this._load(record.m);
        if (!Object.entries(filter).every(([k, v]) => jsonEqual(metadata?.[k], v))) continue;
      }
      if (remaining !== undefined) remaining -= 1;
      yield await this._tuple(readerOfState(state), thread, ns, record, metadata);
    }
  }

  async deleteThread(threadId) {
    const sid = this.sessionId(threadId);
    await this._serial(sid, async () => {
      this._threads.delete(sid);
      this._uncarry(sid);
      await this.store.delete(sid);
    });
  }

  // ---- reading one checkpoint ------------------------------------------------------------------

  _pendingWrites(reader, checkpointId) {
    const tasks = reader.get(tasksKey(checkpointId)) ?? [];
    const entries = [];
    for (const task of tasks) {
      const record = reader.get(writeKey(checkpointId, task));
      if (!record) continue;
      for (const [idx, [channel, value]] of Object.entries(record.w)) {
        entries.push({ key: [record.p ?? "", task, Number(idx)], channel, value });
      }
    }
    // (task_path, task_id, idx) in code-point order: compareWritesSortKeys of checkpoint 1.2.
    entries.sort((a, b) => compareWriteKeys(a.key, b.key));
    return entries;
  }

  /** The CheckpointTuple of `record`, reading the agent's other keys through `reader` (readerOf). */
  async _tuple(reader, threadId, ns, record, metadata) {
    const writes = this._pendingWrites(reader, record.id);
    const channels = Object.entries(record.src ?? {});
    const [checkpoint, meta, pendingWrites, values] = await Promise.all([
      this._load(record.c),
      metadata === undefined ? this._load(record.m) : metadata,
      Promise.all(writes.map(async (w) => [w.key[1], w.channel, await this._load(w.value)])),
      Promise.all(
        channels.map(async ([channel, [, key]]) => {
          const whole = reader.whole(channel, key);
          if (whole !== undefined) return this._load(whole);
          if (reader.get(key) === undefined) return undefined;
          throw new Error(`AgentSessionSaver: the stored value ${key} refers to a missing value`);
        }),
      ),
    ]);
    const channelValues = {};
    channels.forEach(([ch], i) => {
      if (values[i] !== undefined) channelValues[ch] = values[i];
    });
    checkpoint.channel_values = channelValues;
    if (checkpoint.v < 4 && record.parent) await this._migratePendingSends(reader, record.parent, checkpoint);
    const tuple = {
      config: { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: record.id } },
      checkpoint,
      metadata: meta,
      pendingWrites,
    };
    if (record.parent) {
      tuple.parentConfig = { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: record.parent } };
    }
    return tuple;
  }

  // Checkpoints of format v < 4 kept pending sends as TASKS writes of their parent.
  async _migratePendingSends(reader, parentId, checkpoint) {
    const sends = this._pendingWrites(reader, parentId).filter((w) => w.channel === TASKS);
    checkpoint.channel_values ??= {};
    checkpoint.channel_values[TASKS] = await Promise.all(sends.map((w) => this._load(w.value)));
    checkpoint.channel_versions ??= {};
    const versions = Object.values(checkpoint.channel_versions);
    checkpoint.channel_versions[TASKS] =
      versions.length > 0 ? maxChannelVersion(...versions) : this.getNextVersion(undefined);
  }

  // ---- the guard -----------------------------------------------------------------------------

  /**
   * Runs one graph turn on `threadId` under one agent-session invocation: fails fast with
   * ConcurrencyError when the thread is busy anywhere; every put/putWrites of that thread through
   * this saver while `fn` runs is staged into the invocation, and each put checkpoints it (a crash
   * loses only the step in progress); commits when `fn` resolves; when it rejects, ends the turn as
   * _endGuard says and rethrows; always releases the lease.
   */
  async guard(threadId, fn, options = {}) {
    if (typeof fn !== "function") throw new TypeError("AgentSessionSaver.guard(threadId, fn): fn must be a function");
    const sid = this.sessionId(threadId);
    const guard = await this._beginGuard(sid, options);
    let result;
    try {
      result = await fn(userInvocation(guard));
    } catch (e) {
      await this._endGuard(sid, guard, false);
      throw e;
    }
    await this._endGuard(sid, guard, true);
    return result;
  }

  /**
   * `graph.invoke(input, config)` under `guard(config.configurable.thread_id)`, with the invocation's
   * `signal` as the run's abort signal (combined with `config.signal`): a `session.stop()` from
   * anywhere aborts the run, which then rejects with the `StopRequestedError` (the turn aborts, keeping
   * the steps already checkpointed, and ends `stopped`).
   */
  async invoke(graph, input, config, options = {}) {
    const threadId = threadOf(config, "invoke");
    return this.guard(
      threadId,
      async (inv) => {
        try {
          return await graph.invoke(input, { ...config, signal: anySignal(config?.signal, inv.signal) });
        } catch (e) {
          throw stopError(e, inv.signal);
        }
      },
      options,
    );
  }

  /**
   * `graph.stream(input, config)` under `guard(config.configurable.thread_id)`, as an async generator
   * of the graph's chunks (in `config.streamMode`, as `graph.stream` yields them). The run's abort
   * signal is the invocation's `signal` (combined with `config.signal`), and each chunk is forwarded to
   * the turn's live log with `inv.emit()` before it is yielded: its JSON form by default (`JSON.stringify`
   * of it, LangChain messages in their serialized form), or `options.emit(chunk)` (`undefined`: not
   * forwarded), or nothing with `emit: false`. The turn commits after the last chunk; an error, a stop
   * (the generator then throws the `StopRequestedError`) or leaving the loop early aborts it, keeping
   * the steps already checkpointed. The guard is taken on the first `next()`.
   */
  async *stream(graph, input, config, options = {}) {
    const threadId = threadOf(config, "stream");
    const { emit, ...beginOptions } = options ?? {};
    const project = projection(emit, jsonForm);
    const sid = this.sessionId(threadId);
    const guard = await this._beginGuard(sid, beginOptions);
    const inv = guard.inv;
    let ok = false;
    try {
      const forward = forwarder(inv, project);
      try {
        const chunks = await graph.stream(input, { ...config, signal: anySignal(config?.signal, inv.signal) });
        for await (const chunk of chunks) {
          if (forward(chunk) !== undefined) guard.live = true;
          yield chunk;
        }
      } catch (e) {
        throw stopError(e, inv.signal);
      }
      ok = true;
    } finally {
      await this._endGuard(sid, guard, ok);
    }
  }

  /** The guard of this saver running on a thread, if any. */
  _running(sid) {
    const guard = this._guards.get(sid);
    return guard !== undefined && !guard.done ? guard : undefined;
  }

  /**
   * Takes the lease of a thread's session for a guard (behind the writes already queued for it). A
   * second guard of the same thread in another process fails with the store's ConcurrencyError, the
   * lease being held. In this saver, it fails (or waits, with `onBusy: { waitMs }`) while the first
   * one runs, even if that one's lease was lost (a deleteThread elsewhere): the thread's writes carry
   * no mark of the turn that made them, so a second guard would take in the first one's. Waiting for
   * a guard of this saver is done outside the thread's queue, which the running turn's writes need.
   */
  async _beginGuard(sid, options = {}) {
    const waitMs = options?.onBusy?.waitMs;
    const deadline = typeof waitMs === "number" ? Date.now() + waitMs : undefined;
    for (;;) {
      const running = this._running(sid);
      if (running !== undefined) {
        const left = deadline === undefined ? 0 : deadline - Date.now();
        if (left <= 0) throw busyHere(running.inv);
        let timer;
        await Promise.race([running.ended, new Promise((resolve) => (timer = setTimeout(resolve, timerDelay(left))))]);
        clearTimeout(timer);
        continue;
      }
      const left = deadline === undefined ? options : { ...options, onBusy: { waitMs: Math.max(0, deadline - Date.now()) } };
      const entry = await this._serial(sid, () => (this._running(sid) === undefined ? this._leaseGuard(sid, left) : undefined));
      if (entry !== undefined) return entry;
    }
  }

  /** Begins the invocation of a guard and makes it the thread's running guard (in the thread's queue). */
  async _leaseGuard(sid, options) {
    const handle = this._thread(sid);
    const inv = await handle.begin(options);
    const begun = beganAt(handle, inv);
    // cache: what the turn's reads and writes saw of the thread (a KnownState, see ThreadView).
    // version: the session's version as of the saver's last checkpoint in this guard (versionKnown:
    // while the caller has made no call that may change it).
    const entry = {
      inv,
      begun,
      cache: this._knownAt(sid, inv, begun.id(begun.version)),
      version: begun.version,
      versionKnown: true,
      dirty: false,
      userDirty: false, // whether the caller staged writes of its own on the invocation
      live: false,
      failed: undefined,
      done: false,
      ended: undefined, // resolves once the guard ended (a waiting guard of this saver goes on)
      end: undefined,
    };
    entry.ended = new Promise((resolve) => (entry.end = resolve));
    this._guards.set(sid, entry);
    return entry;
  }

  /**
   * Ends a guard: with `ok`, commits what is staged (a put or putWrites that failed inside it is
   * rethrown instead, and the turn aborted). Without (`fn` rejected), commits what LangGraph was told
   * is saved since the last put (the failed step's pending writes: its errors and its finished tasks'
   * writes), as any checkpointer keeps it, so that a retry runs only the tasks that did not finish;
   * aborts instead when `fn` staged writes of its own on the invocation (they go with the failed turn)
   * or a write failed, or when that commit fails. Always releases the lease.
   */
  async _endGuard(sid, guard, ok) {
    // Commit: after `fn` resolved, what is staged (or a turn that emitted parts: its followers must see
    // it end `committed`); after it rejected, what LangGraph was told is saved since the last put,
    // unless `fn` staged writes of its own. Otherwise release without writing an empty version.
    // After a rejected `fn`, LangGraph may still be making the turn's last writes (under durability
    // "exit", the final put follows the run's rejection): they join the turn, not a commit of their
    // own after it (which could create again a thread that a delete took the turn's lease with).
    if (!ok) await nextTask();
    const commits = ok ? guard.dirty || guard.live : guard.dirty && !guard.userDirty;
    try {
      await this._serial(sid, async () => {
        if (guard.failed) throw guard.failed;
        guard.done = true;
        if (commits) this._carry(sid, guard.begun.id(await guard.inv.commit()), guard.cache);
        else {
          // A turn that succeeded with nothing left to write ends at its last checkpoint: followers
          // see it `committed`, not `aborted`.
          const endAt = ok && !guard.dirty ? guard.inv[END_AT_CHECKPOINT] : undefined;
          await (typeof endAt === "function" ? endAt.call(guard.inv) : guard.inv.abort());
          // Nothing staged was discarded: the turn ended at its last checkpoint's state.
          if (!guard.dirty && guard.versionKnown) this._carry(sid, guard.begun.id(guard.version), guard.cache);
        }
      });
    } catch (e) {
      await this._serial(sid, async () => {
        guard.done = true;
        await guard.inv.abort().catch(() => {});
      });
      if (ok) throw e; // after a rejected `fn`, its error is the one the caller gets
    } finally {
      guard.done = true;
      if (this._guards.get(sid) === guard) this._guards.delete(sid);
      guard.end();
    }
  }
}

/**
 * The session version an invocation `inv` (of the thread of `handle`) began at, and `id(version)`,
 * the state id of a version of that session (SessionHandle.stateId). Read once: each `inv.session`
 * crosses into wasm.
 */
function beganAt(handle, inv) {
  const session = inv.session;
  const began = { createdAt: session.createdAt, version: session.version };
  return { version: began.version, id: (version) => handle.stateId(began, version) };
}

/**
 * The most text (UTF-16 units of stored values' strings, KnownState.units) the saver carries from turns
 * to their threads' next turns, over all its threads: 8 Mi units, 16 MiB as JavaScript holds them.
 */
const MAX_CARRIED_UNITS = 8 * 1024 * 1024;
/** The most threads the saver carries a turn's state for (a bound on the map, whatever their text). */
const MAX_CARRIED_THREADS = 1024;

/** Thrown by a put's staging, before it stages anything, when the parent to carry channels over from
 * is not stored: the put is made again with every channel's value (never reaches a caller). */
const PARENT_MISSING = Object.freeze(new Error("AgentSessionSaver: the parent checkpoint is not stored"));

/**
 * The ConcurrencyError of a guard refused because a guard of the same saver runs on the thread (`inv`):
 * what another process's guard gets (the lease's owner, the time until it ends: API.md), from the engine.
 */
function busyHere(inv) {
  const refusal = inv[BUSY_REFUSAL];
  if (typeof refusal === "function") return refusal.call(inv);
  return new ConcurrencyError(
    "another guard of this AgentSessionSaver is running on the thread; retry once it ends, or pass onBusy: { waitMs }",
    { holder: "this AgentSessionSaver", retryAfterMs: 0 },
  );
}

/** The thread id of a graph run's config (`configurable.thread_id`), which the guarded helpers need. */
function threadOf(config, method) {
  const threadId = config?.configurable?.thread_id;
  if (threadId === undefined || threadId === null) {
    throw new TypeError(`AgentSessionSaver.${method}(graph, input, config): config.configurable.thread_id is required`);
  }
  return threadId;
}
