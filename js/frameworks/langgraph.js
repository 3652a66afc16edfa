// agent-session/langgraph: a LangGraph.js checkpoint saver over any agent-session SessionStore.
//
//   const checkpointer = new AgentSessionSaver(store);            // instead of new MemorySaver()
//   await checkpointer.guard(threadId, () => graph.invoke(input, config));   // one turn, one lease
//
// Plain JS over the public API (../index.d.ts); @langchain/langgraph-checkpoint is an optional peer.
// No AsyncLocalStorage: a guard is found through a map of the threads this saver is guarding.
//
// Layout of one thread (session `langgraph/<thread_id>`):
//   agent "default": "thread" -> thread_id; "ns/[ns]" -> { ns, agent } for every checkpoint_ns used
//   agent "ns:<checkpoint_ns>" (one per namespace, "" included):
//     "head"                   -> the largest checkpoint id (the latest checkpoint)
//     "c/[id]"                 -> { id, parent, version, c: checkpoint without channel_values, m: metadata,
//                                   src: { channel: [channel version, blob key] } }
//     "b/[channel,version,id]" -> one channel value, written by the put of checkpoint `id`
//     "t/[id]"                 -> the task ids that wrote pending writes against checkpoint `id`
//     "w/[id,task]"            -> { p: task path, w: { idx: [channel, value] } }
//   plus one message per put in the namespace's agent: { checkpoint, parent, source, step }.
// A key or name longer than agent-session's 256 bytes is replaced by a SHA-256 of it.
// Serialized values are { t: type, s: UTF-8 text } or, when the bytes are not UTF-8, { t, b: base64 }.

import {
  BaseCheckpointSaver,
  TASKS,
  WRITES_IDX_MAP,
  getCheckpointId,
  maxChannelVersion,
} from "@langchain/langgraph-checkpoint";
import { fromBase64, toBase64 } from "./base64.js";

const MAX_NAME_BYTES = 256;
const HASHED = "\u0000#";
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------------------------
// Names and keys

function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function wellFormed(s) {
  if (typeof s.isWellFormed === "function") return s.isWellFormed();
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

// SHA-256 of a string's UTF-16 code units (so lone surrogates hash distinctly), base64url. Synchronous,
// so that key derivation needs no await and works in every runtime.
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

function sha256(bytes) {
  const bitLength = bytes.length * 8;
  const padded = new Uint8Array(((bytes.length + 9 + 63) >> 6) << 6);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLength / 0x100000000));
  view.setUint32(padded.length - 4, bitLength >>> 0);
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) outView.setUint32(i * 4, h[i]);
  return out;
}

function hashString(s) {
  const bytes = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    bytes[2 * i] = c & 0xff;
    bytes[2 * i + 1] = c >> 8;
  }
  return toBase64(sha256(bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** `prefix + value` when that is a valid agent-session name (1..256 UTF-8 bytes), else a hashed form. */
function nameFor(prefix, value, hashedPrefix) {
  const raw = prefix + value;
  if (utf8Length(raw) <= MAX_NAME_BYTES && wellFormed(raw) && !value.startsWith(HASHED)) return raw;
  return hashedPrefix + hashString(value);
}

/** A state key: `kind/` + the JSON of its parts, hashed when longer than 256 bytes. */
function stateKey(kind, parts) {
  const json = JSON.stringify(parts);
  const raw = `${kind}/${json}`;
  return utf8Length(raw) <= MAX_NAME_BYTES ? raw : `${kind}#${hashString(json)}`;
}

const cpKey = (id) => stateKey("c", [id]);
const blobKey = (channel, version, writer) => stateKey("b", [channel, version, writer]);
const tasksKey = (id) => stateKey("t", [id]);
const writeKey = (id, task) => stateKey("w", [id, task]);
const nsKey = (ns) => stateKey("ns", [ns]);
const agentFor = (ns) => nameFor("ns:", ns, "ns#");
const isCheckpointKey = (key) => key.startsWith("c/") || key.startsWith("c#");

// ---------------------------------------------------------------------------------------------
// Bytes


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
const errorCode = (e) => (e && typeof e === "object" ? e.code : undefined);

// ---------------------------------------------------------------------------------------------
// Reading a thread. `Session.state({ agent })` builds the whole agent's state as JS values whenever the
// version changed, and `Invocation.state()` copies it on every call, so neither can sit on the path of
// every put. Each thread keeps a mirror: one Map per agent, loaded from `state()` once, kept current
// with this saver's own commits and checkpoints (it knows what it wrote), and dropped when the
// session's version moved by a commit from elsewhere (then reloaded once, lazily, per agent).

class ThreadCache {
  constructor() {
    this.session = undefined; // Promise<Session>
    this.version = -1; // the session version the loaded agents reflect
    this.createdAt = undefined;
    this.agents = new Map(); // agent (undefined = default) -> Map key -> stored value
  }
  /** Drops the loaded agents unless they reflect `session`'s current version. */
  sync(session) {
    if (this.version !== session.version || this.createdAt !== session.createdAt) {
      this.agents.clear();
      this.version = session.version;
      this.createdAt = session.createdAt;
    }
  }
  agent(session, agent) {
    let map = this.agents.get(agent);
    if (map === undefined) {
      map = new Map(Object.entries(agent === undefined ? session.state() : session.state({ agent })));
      this.agents.set(agent, map);
    }
    return map;
  }
  /** After a commit or checkpoint of `overlay` that wrote `version`. */
  committed(session, overlay, version) {
    if (version !== this.version + 1 || this.createdAt !== session.createdAt) {
      this.agents.clear();
      this.version = session.version;
      this.createdAt = session.createdAt;
      return;
    }
    for (const [agent, staged] of overlay) {
      const map = this.agents.get(agent);
      if (map) for (const [key, value] of staged) map.set(key, value);
    }
    this.version = version;
  }
}

/** The committed state of a thread plus, inside an invocation, what is staged and not yet written. */
class ThreadView {
  constructor(cache, session, overlay) {
    this.cache = cache;
    this.session = session;
    this.overlay = overlay; // Map agent -> Map key -> value, or undefined
  }
  get(agent, key) {
    const staged = this.overlay?.get(agent);
    if (staged?.has(key)) return staged.get(key);
    return this.cache.agent(this.session, agent).get(key);
  }
  keys(agent) {
    const keys = [...this.cache.agent(this.session, agent).keys()];
    const staged = this.overlay?.get(agent);
    if (staged) for (const k of staged.keys()) if (!keys.includes(k)) keys.push(k);
    return keys;
  }
}

/** The writes staged into one invocation: state keys as a read-through overlay, and messages. */
class Staging {
  constructor(inv, view) {
    this.inv = inv;
    this.view = view;
    this.count = 0;
  }
  get(agent, key) {
    return this.view.get(agent, key);
  }
  set(agent, key, value) {
    if (agent === undefined) this.inv.setState(key, value);
    else this.inv.setState(key, value, { agent });
    let staged = this.view.overlay.get(agent);
    if (!staged) this.view.overlay.set(agent, (staged = new Map()));
    staged.set(key, value);
    this.count++;
  }
  message(agent, body) {
    this.inv.appendMessage(body, { agent });
    this.count++;
  }
}

/**
 * The guard's invocation as `fn` sees it: writes the caller stages on it mark the turn dirty, so that
 * the guard commits them even when they come after the last put.
 */
function userInvocation(guard) {
  const staging = new Set(["setState", "deleteState", "appendMessage"]);
  return new Proxy(guard.inv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (!staging.has(prop)) return value.bind(target);
      return (...args) => {
        const result = value.apply(target, args);
        guard.dirty = true;
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
    this.cacheThreads = options.cacheThreads ?? 64;
    this._threads = new Map(); // session id -> ThreadCache (least recently used first)
    this._queues = new Map(); // session id -> tail of the writes queued for it
    this._guards = new Map(); // session id -> the guard running for it in this saver
  }

  /** The agent-session session id of a LangGraph thread. */
  sessionId(threadId) {
    return nameFor(this.prefix, String(threadId), this.prefix + HASHED);
  }

  /** The agent-session agent name of a checkpoint namespace ("" is the root graph). */
  agentName(checkpointNs = "") {
    return agentFor(checkpointNs);
  }

  // ---- sessions ----------------------------------------------------------------------------

  _thread(sid) {
    let cache = this._threads.get(sid);
    if (cache !== undefined) this._threads.delete(sid);
    else cache = new ThreadCache();
    this._threads.set(sid, cache);
    if (this._threads.size > this.cacheThreads) {
      for (const [id] of this._threads) {
        if (this._threads.size <= this.cacheThreads) break;
        if (id !== sid && !this._guards.has(id)) this._threads.delete(id);
      }
    }
    return cache;
  }

  async _session(cache, sid, create) {
    if (cache.session === undefined) {
      const p = this.store.open(sid, create ? { ...this.openOptions, create: true } : { create: false });
      cache.session = p;
      p.catch(() => {
        if (cache.session === p) cache.session = undefined;
      });
    }
    return cache.session;
  }

  _forget(sid) {
    this._threads.delete(sid);
  }

  /** A current read view of a thread, or undefined when it does not exist. */
  async _view(sid) {
    const guard = this._guards.get(sid);
    if (guard && !guard.done) return new ThreadView(guard.cache, guard.session, guard.overlay);
    return this._serial(sid, async () => {
      const cache = this._thread(sid);
      let session;
      try {
        session = await this._session(cache, sid, false);
        await session.refresh();
      } catch (e) {
        if (errorCode(e) === "NOT_FOUND") {
          this._forget(sid);
          return undefined;
        }
        throw e;
      }
      cache.sync(session);
      return new ThreadView(cache, session, undefined);
    });
  }

  // ---- writes --------------------------------------------------------------------------------

  /** Runs `task` after every write queued before it for the same session (FIFO, per session). */
  _serial(sid, task) {
    const previous = this._queues.get(sid) ?? Promise.resolve();
    const run = previous.then(task);
    const tail = run.then(
      () => {},
      () => {},
    );
    this._queues.set(sid, tail);
    tail.then(() => {
      if (this._queues.get(sid) === tail) this._queues.delete(sid);
    });
    return run;
  }

  /**
   * Applies `apply(staging)` (synchronous) to a thread: inside this saver's guard for the thread it is
   * staged into the guard's invocation (a put then checkpoints it); otherwise it is one invocation.
   */
  _write(threadId, prepared, apply, isPut) {
    const sid = this.sessionId(threadId);
    return this._serial(sid, async () => {
      const input = await prepared;
      const guard = this._guards.get(sid);
      if (guard && !guard.done) return this._writeGuarded(guard, input, apply, isPut);
      return this._writeOnce(sid, input, apply);
    });
  }

  async _writeOnce(sid, input, apply) {
    for (let attempt = 0; ; attempt++) {
      const cache = this._thread(sid);
      const session = await this._session(cache, sid, true);
      let inv;
      try {
        inv = await session.begin();
      } catch (e) {
        // The cached session was deleted (deleteThread elsewhere): open it again, once.
        if (errorCode(e) === "NOT_FOUND" && attempt === 0) {
          this._forget(sid);
          continue;
        }
        throw e;
      }
      try {
        cache.sync(session); // begin brought the session to the latest version
        const overlay = new Map();
        const staging = new Staging(inv, new ThreadView(cache, session, overlay));
        const result = apply(staging, input, session.version + 1);
        if (staging.count > 0) cache.committed(session, overlay, await inv.commit());
        else await inv.abort();
        return result;
      } catch (e) {
        await inv.abort().catch(() => {});
        throw e;
      }
    }
  }

  async _writeGuarded(guard, input, apply, isPut) {
    // After a failed write (a lost lease, or a put that staged only part of itself) the turn is over:
    // every later write rejects with that error, and the guard aborts.
    if (guard.failed) throw guard.failed;
    try {
      const staging = new Staging(guard.inv, new ThreadView(guard.cache, guard.session, guard.overlay));
      const result = apply(staging, input, guard.session.version + 1);
      if (staging.count > 0) guard.dirty = true;
      if (isPut && guard.dirty) {
        guard.cache.committed(guard.session, guard.overlay, await guard.inv.checkpoint());
        guard.overlay.clear();
        guard.dirty = false;
      }
      return result;
    } catch (e) {
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
    const bytes = typeof stored.s === "string" ? encoder.encode(stored.s) : fromBase64(stored.b);
    return this.serde.loadsTyped(stored.t, bytes);
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

    const prepared = (async () => {
      const newChannels = Object.keys(versions).filter((ch) => hasOwn(values, ch) && values[ch] !== undefined);
      const [c, m, ...blobs] = await Promise.all([
        this._dump(skeleton),
        this._dump(metadata),
        ...newChannels.map((ch) => this._dump(values[ch])),
      ]);
      return { c, m, blobs: newChannels.map((ch, i) => [ch, blobs[i]]) };
    })();

    await this._write(
      threadId,
      prepared,
      (tx, { c, m, blobs }, version) => {
        const agent = agentFor(ns);
        const parentRecord = parent === undefined ? undefined : tx.get(agent, cpKey(parent));
        const src = {};
        for (const [ch, blob] of blobs) {
          const key = blobKey(ch, versions[ch], id);
          tx.set(agent, key, blob);
          src[ch] = [versions[ch], key];
        }
        // Channels this put does not store are carried over from the parent, at the same version.
        for (const [ch, version] of Object.entries(checkpoint.channel_versions ?? {})) {
          if (hasOwn(versions, ch) || hasOwn(src, ch)) continue;
          const inherited = parentRecord?.src?.[ch];
          if (inherited && inherited[0] === version) src[ch] = inherited;
        }
        tx.set(agent, cpKey(id), { id, parent: parent ?? null, version, c, m, src });
        const head = tx.get(agent, "head");
        if (typeof head !== "string" || id > head) tx.set(agent, "head", id);
        if (tx.get(undefined, "thread") === undefined) tx.set(undefined, "thread", String(threadId));
        if (tx.get(undefined, nsKey(ns)) === undefined) tx.set(undefined, nsKey(ns), { ns, agent });
        const note = { checkpoint: id, parent: parent ?? null };
        if (typeof metadata?.source === "string") note.source = metadata.source;
        if (typeof metadata?.step === "number" && Number.isFinite(metadata.step)) note.step = metadata.step;
        tx.message(agent, note);
      },
      true,
    );
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
        const existing = tx.get(agent, key);
        const record = { p: existing?.p ?? "", w: { ...(existing?.w ?? {}) } };
        let changed = false;
        writes.forEach(([channel], i) => {
          const idx = WRITES_IDX_MAP[channel] ?? i;
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
        if (existing === undefined) {
          const tasks = tx.get(agent, tasksKey(checkpointId)) ?? [];
          tx.set(agent, tasksKey(checkpointId), [...tasks, String(taskId)]);
        }
      },
      false,
    );
  }

  async getTuple(config) {
    const configurable = config?.configurable ?? {};
    const threadId = configurable.thread_id;
    if (threadId === undefined || threadId === null) return undefined;
    const ns = configurable.checkpoint_ns ?? "";
    const view = await this._view(this.sessionId(threadId));
    if (!view) return undefined;
    const agent = agentFor(ns);
    const id = getCheckpointId(config) || view.get(agent, "head");
    if (typeof id !== "string") return undefined;
    const record = view.get(agent, cpKey(id));
    if (!record) return undefined;
    return this._tuple(view, String(threadId), ns, agent, record);
  }

  async *list(config, options = {}) {
    const { before, limit, filter } = options ?? {};
    const configurable = config?.configurable ?? {};
    const threadId = configurable.thread_id;
    const nsFilter = configurable.checkpoint_ns;
    const idFilter = getCheckpointId(config ?? {});
    const beforeId = before?.configurable?.checkpoint_id;

    const views = [];
    if (threadId !== undefined && threadId !== null) {
      const view = await this._view(this.sessionId(threadId));
      if (view) views.push([String(threadId), view]);
    } else {
      let cursor;
      do {
        const page = await this.store.list({ prefix: this.prefix, cursor });
        for (const info of page.sessions) {
          const view = await this._view(info.id);
          const thread = view?.get(undefined, "thread");
          if (typeof thread === "string" && this.sessionId(thread) === info.id) views.push([thread, view]);
        }
        cursor = page.cursor;
      } while (cursor);
    }

    const candidates = [];
    for (const [thread, view] of views) {
      const namespaces = [];
      if (nsFilter !== undefined) namespaces.push([nsFilter, agentFor(nsFilter)]);
      else {
        for (const key of view.keys(undefined)) {
          if (!key.startsWith("ns/") && !key.startsWith("ns#")) continue;
          const entry = view.get(undefined, key);
          if (entry && typeof entry.ns === "string") namespaces.push([entry.ns, entry.agent]);
        }
      }
      for (const [ns, agent] of namespaces) {
        for (const key of view.keys(agent)) {
          if (!isCheckpointKey(key)) continue;
          const record = view.get(agent, key);
          if (!record || typeof record.id !== "string") continue;
          if (idFilter && record.id !== idFilter) continue;
          if (beforeId && !(record.id < beforeId)) continue;
          candidates.push({ thread, ns, agent, view, record });
        }
      }
    }
    // Newest first: uuid6 checkpoint ids sort by time.
    candidates.sort((a, b) => (a.record.id < b.record.id ? 1 : a.record.id > b.record.id ? -1 : 0));

    let remaining = limit;
    for (const { thread, ns, agent, view, record } of candidates) {
      if (remaining !== undefined && remaining <= 0) return;
      let metadata;
      if (filter && Object.keys(filter).length > 0) {
        metadata = await this._load(record.m);
        if (!Object.entries(filter).every(([k, v]) => jsonEqual(metadata?.[k], v))) continue;
      }
      if (remaining !== undefined) remaining -= 1;
      yield await this._tuple(view, thread, ns, agent, record, metadata);
    }
  }

  async deleteThread(threadId) {
    const sid = this.sessionId(threadId);
    await this._serial(sid, async () => {
      this._forget(sid);
      await this.store.delete(sid);
    });
  }

  // ---- reading one checkpoint ------------------------------------------------------------------

  _pendingWrites(view, agent, checkpointId) {
    const tasks = view.get(agent, tasksKey(checkpointId)) ?? [];
    const entries = [];
    for (const task of tasks) {
      const record = view.get(agent, writeKey(checkpointId, task));
      if (!record) continue;
      for (const [idx, [channel, value]] of Object.entries(record.w)) {
        entries.push({ key: [record.p ?? "", task, Number(idx)], channel, value });
      }
    }
    // (task_path, task_id, idx) in code-point order: compareWritesSortKeys of checkpoint 1.2.
    entries.sort((a, b) => compareWriteKeys(a.key, b.key));
    return entries;
  }

  async _tuple(view, threadId, ns, agent, record, metadata) {
    const writes = this._pendingWrites(view, agent, record.id);
    const channels = Object.entries(record.src ?? {});
    const [checkpoint, meta, pendingWrites, values] = await Promise.all([
      this._load(record.c),
      metadata === undefined ? this._load(record.m) : metadata,
      Promise.all(writes.map(async (w) => [w.key[1], w.channel, await this._load(w.value)])),
      Promise.all(
        channels.map(async ([, [, key]]) => {
          const blob = view.get(agent, key);
          return blob === undefined ? undefined : this._load(blob);
        }),
      ),
    ]);
    const channelValues = {};
    channels.forEach(([ch], i) => {
      if (values[i] !== undefined) channelValues[ch] = values[i];
    });
    checkpoint.channel_values = channelValues;
    if (checkpoint.v < 4 && record.parent) await this._migratePendingSends(view, agent, record.parent, checkpoint);
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
  async _migratePendingSends(view, agent, parentId, checkpoint) {
    const sends = this._pendingWrites(view, agent, parentId).filter((w) => w.channel === TASKS);
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
   * loses only the step in progress); commits when `fn` resolves, aborts and rethrows when it
   * rejects, and always releases the lease.
   */
  async guard(threadId, fn, options = {}) {
    if (typeof fn !== "function") throw new TypeError("AgentSessionSaver.guard(threadId, fn): fn must be a function");
    const sid = this.sessionId(threadId);
    // Begin behind the writes already queued for this thread (they commit as their own invocations).
    // A second guard of the same thread, here or in any other process, fails here with the store's
    // ConcurrencyError, because this invocation holds the lease.
    const guard = await this._serial(sid, async () => {
      for (let attempt = 0; ; attempt++) {
        const cache = this._thread(sid);
        const session = await this._session(cache, sid, true);
        let inv;
        try {
          inv = await session.begin(options);
        } catch (e) {
          if (errorCode(e) === "NOT_FOUND" && attempt === 0) {
            this._forget(sid);
            continue;
          }
          throw e;
        }
        cache.sync(session);
        const entry = { cache, session, inv, overlay: new Map(), dirty: false, failed: undefined, done: false };
        this._guards.set(sid, entry);
        return entry;
      }
    });
    try {
      const result = await fn(userInvocation(guard));
      await this._serial(sid, async () => {
        if (guard.failed) throw guard.failed;
        guard.done = true;
        // Nothing staged since the last checkpoint: release without writing an empty version.
        if (guard.dirty) guard.cache.committed(guard.session, guard.overlay, await guard.inv.commit());
        else await guard.inv.abort();
      });
      return result;
    } catch (e) {
      await this._serial(sid, async () => {
        guard.done = true;
        await guard.inv.abort().catch(() => {});
      });
      throw e;
    } finally {
      guard.done = true;
      if (this._guards.get(sid) === guard) this._guards.delete(sid);
    }
  }
}
