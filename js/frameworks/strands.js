// agent-session/strands: session backends for Strands Agents TS (@strands-agents/sdk ^1.19), written
// on the public agent-session API only (SessionStore, Session, Invocation).
//
// - AgentSessionStorage: a Strands `Storage` (write/read/delete/list of bytes) over any SessionStore, for
//   Strands' own SessionManager and anything else that takes a Storage. Durable and atomic per write,
//   but it cannot guard a turn: Storage never sees one.
// - AgentSessionManager: a Strands `Plugin` that replaces SessionManager. One agent-session invocation
//   per agent invocation (begin at BeforeInvocationEvent, commit at AfterInvocationEvent), one message
//   event per message, app state as agent-session state, and fail-fast ConcurrencyError when the session
//   is busy in any process.
import {
  InitializedEvent,
  BeforeInvocationEvent,
  MessageAddedEvent,
  AfterModelCallEvent,
  AfterInvocationEvent,
  HookOrder,
  SNAPSHOT_SCHEMA_VERSION,
} from "@strands-agents/sdk";
import { fromBase64, toBase64 } from "./base64.js";

// ---------------------------------------------------------------------------------------------
// AgentSessionStorage

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();


// Bytes -> a JSON state value. Canonical JSON text (what JSON.stringify writes: every Strands snapshot)
// is stored as structured data, `{ json }`, readable through the agent-session API; anything else as
// `{ base64 }`. Either way decodeBytes gives back the same bytes.
function encodeBytes(bytes) {
  let text;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { base64: toBase64(bytes) };
  }
  // agent-session drops an own "__proto__" key of a stored object, so such text stays opaque.
  if (!text.includes('"__proto__"')) {
    try {
      const json = JSON.parse(text);
      if (JSON.stringify(json) === text) return { json };
    } catch {
      // not JSON
    }
  }
  return { base64: toBase64(bytes) };
}

function decodeBytes(value, key) {
  if (value !== null && typeof value === "object") {
    if ("json" in value) return utf8Encoder.encode(JSON.stringify(value.json));
    if (typeof value.base64 === "string") return fromBase64(value.base64);
  }
  throw new Error(`agent-session/strands: the value stored under '${key}' is not a storage record`);
}

function asBase64(value) {
  return "json" in value ? { base64: toBase64(utf8Encoder.encode(JSON.stringify(value.json))) } : value;
}

// State keys: "__proto__" cannot be a state key (agent-session drops it), so "~" escapes it.
const escapeKey = (key) => (key === "__proto__" || key.startsWith("~") ? `~${key}` : key);
const unescapeKey = (key) => (key.startsWith("~") ? key.slice(1) : key);

const isCode = (error, ...codes) => error !== null && typeof error === "object" && codes.includes(error.code);

/**
 * A Strands `Storage` over a SessionStore. A key `a/b/rest` lives in the agent-session session
 * `<prefix>a/b` under the state key `rest` (so Strands' `session/<sessionId>/...` keys give one
 * agent-session session per Strands session); keys with fewer than two `/` live in the session
 * `<prefix>` itself. Writes and deletes of one session made while another is in flight are applied
 * together in one invocation; a session whose last key is deleted is deleted with its history.
 */
export class AgentSessionStorage {
  #store;
  #prefix;
  #begin;
  #sessions = new Map();
  #queues = new Map();

  constructor(store, options = {}) {
    if (store === null || typeof store !== "object" || typeof store.open !== "function") {
      throw new TypeError("AgentSessionStorage: the first argument must be a SessionStore");
    }
    const prefix = options.prefix ?? "strands/";
    if (typeof prefix !== "string" || prefix === "") {
      throw new TypeError("AgentSessionStorage: prefix must be a non-empty string");
    }
    this.#store = store;
    this.#prefix = prefix;
    this.#begin = { onBusy: options.onBusy ?? { waitMs: 10000 } };
  }

  /** The SessionStore this storage writes to. */
  get store() {
    return this.#store;
  }

  async write(key, data) {
    const { sid, skey } = this.#locate(key);
    if (!(data instanceof Uint8Array)) throw new TypeError("AgentSessionStorage.write: data must be a Uint8Array");
    const value = encodeBytes(data);
    await this.#enqueue(sid, { skey, value });
  }

  async read(key) {
    const { sid, skey } = this.#locate(key);
    const state = await this.#state(sid);
    if (state === null || !Object.hasOwn(state, skey)) return null;
    return decodeBytes(state[skey], key);
  }

  async delete(key) {
    const { sid, skey } = this.#locate(key);
    await this.#enqueue(sid, { skey, value: undefined });
  }

  async list(prefix = "") {
    if (typeof prefix !== "string") throw new TypeError("AgentSessionStorage.list: the query must be a string prefix");
    const keys = [];
    const first = prefix.indexOf("/");
    const second = first < 0 ? -1 : prefix.indexOf("/", first + 1);
    if (second >= 0) {
      // The prefix names one session.
      const group = prefix.slice(0, second + 1);
      const rest = prefix.slice(second + 1);
      for (const skey of await this.#keys(this.#prefix + prefix.slice(0, second))) {
        if (skey.startsWith(rest)) keys.push(group + skey);
      }
    } else {
      for (const skey of await this.#keys(this.#prefix)) {
        if (skey.startsWith(prefix)) keys.push(skey);
      }
      let cursor;
      do {
        const page = await this.#store.list({ prefix: this.#prefix + prefix, ...(cursor !== undefined && { cursor }) });
        for (const info of page.sessions) {
          const group = info.id.slice(this.#prefix.length);
          if (!group.includes("/")) continue; // the root session, or not one of ours
          for (const skey of await this.#keys(info.id)) {
            const key = `${group}/${skey}`;
            if (key.startsWith(prefix)) keys.push(key);
          }
        }
        cursor = page.cursor;
      } while (cursor !== undefined);
    }
    return keys.sort();
  }

  #locate(key) {
    if (typeof key !== "string" || key === "") throw new TypeError("AgentSessionStorage: a key must be a non-empty string");
    const first = key.indexOf("/");
    const second = first < 0 ? -1 : key.indexOf("/", first + 1);
    if (second < 0) return { sid: this.#prefix, skey: escapeKey(key) };
    const skey = key.slice(second + 1);
    if (skey === "") throw new TypeError(`AgentSessionStorage: the key '${key}' ends at a session boundary`);
    return { sid: this.#prefix + key.slice(0, second), skey: escapeKey(skey) };
  }

  async #session(sid, create) {
    const cached = this.#sessions.get(sid);
    if (cached !== undefined) return cached;
    let session;
    try {
      session = await this.#store.open(sid, { create });
    } catch (error) {
      if (!create && isCode(error, "NOT_FOUND")) return null;
      throw error;
    }
    this.#sessions.set(sid, session);
    return session;
  }

  /** The committed state of a session, refreshed (reads see other processes' writes), or null. */
  async #state(sid) {
    const session = await this.#session(sid, false);
    if (session === null) return null;
    try {
      await session.refresh();
    } catch (error) {
      if (isCode(error, "NOT_FOUND", "SESSION_EXPIRED")) {
        this.#sessions.delete(sid);
        return null;
      }
      throw error;
    }
    return session.state();
  }

  async #keys(sid) {
    const state = await this.#state(sid);
    return state === null ? [] : Object.keys(state).map(unescapeKey);
  }

  #enqueue(sid, op) {
    return new Promise((resolve, reject) => {
      let queue = this.#queues.get(sid);
      if (queue === undefined) {
        queue = [];
        this.#queues.set(sid, queue);
        queue.push({ ...op, resolve, reject });
        void this.#drain(sid, queue);
      } else {
        queue.push({ ...op, resolve, reject });
      }
    });
  }

  async #drain(sid, queue) {
    while (queue.length > 0) {
      const batch = queue.splice(0);
      try {
        await this.#apply(sid, batch);
      } catch (error) {
        for (const op of batch) op.reject(error);
      }
    }
    this.#queues.delete(sid);
  }

  /** One invocation for a batch of writes and deletes of one session. */
  async #apply(sid, batch) {
    const writes = batch.some((op) => op.value !== undefined);
    let invocation;
    for (let attempt = 0; invocation === undefined; attempt++) {
      const session = await this.#session(sid, writes);
      if (session === null) {
        for (const op of batch) op.resolve(); // deletes of keys in an absent session
        return;
      }
      try {
        invocation = await session.begin(this.#begin);
      } catch (error) {
        // Deleted (or expired) since it was opened: start it again, once.
        if (attempt > 0 || !isCode(error, "NOT_FOUND", "SESSION_EXPIRED")) throw error;
        this.#sessions.delete(sid);
        if (isCode(error, "SESSION_EXPIRED")) await this.#store.delete(sid);
      }
    }
    const applied = [];
    let changed = false;
    for (const op of batch) {
      try {
        if (op.value === undefined) {
          if (Object.hasOwn(invocation.state(), op.skey)) {
            invocation.deleteState(op.skey);
            changed = true;
          }
        } else {
          try {
            invocation.setState(op.skey, op.value);
          } catch (error) {
            // Valid JSON that agent-session will not hold as such (deeper than 512 levels): opaque.
            if (!isCode(error, "INVALID_INPUT") || !("json" in op.value)) throw error;
            invocation.setState(op.skey, asBase64(op.value));
          }
          changed = true;
        }
        applied.push(op);
      } catch (error) {
        op.reject(error);
      }
    }
    try {
      if (!changed) {
        await invocation.abort();
      } else if (Object.keys(invocation.state()).length === 0) {
        // The last key is gone: delete the session and its history, while this invocation holds the
        // lease (no other writer can commit in between).
        await this.#store.delete(sid);
        this.#sessions.delete(sid);
        await invocation.abort().catch(() => {});
      } else {
        await invocation.commit();
      }
    } catch (error) {
      await invocation.abort().catch(() => {});
      for (const op of applied) op.reject(error);
      return;
    }
    for (const op of applied) op.resolve();
  }
}

// ---------------------------------------------------------------------------------------------
// AgentSessionManager

const FIRST = HookOrder.SDK_FIRST - 1; // BeforeInvocationEvent: take the lease before any other hook acts
const LAST = HookOrder.SDK_LAST + 1; // After* events: decide after every other hook (the conversation
//                                       manager's trim, retry strategies) has run

// State keys of one agent: app state keys as they are, except that "" and keys starting with
// "strands:" are escaped under "strands:app:"; the adapter's own keys start with "strands:".
const INTERNAL = "strands:";
const APP = "strands:app:";
const CONTEXT = "strands:context";
const FIELDS = ["systemPrompt", "modelState", "interrupts"];
const appKey = (key) => (key === "" || key.startsWith(INTERNAL) ? APP + key : key);

function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

// The context (agent.messages) as runs of indices into the message log (deduplicated by trackingId):
// null = the whole log in order; [a, b] = a..b-1; [a] (last run only) = a..end of the log.
function encodeContext(order, size) {
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

/** Reads one agent's log and state from a Session, SessionView or Invocation. */
function readAgent(view, agent) {
  const log = view.messages({ agent });
  const stored = view.state({ agent });
  const recon = []; // per distinct message (trackingId): its newest JSON text
  const keys = new Map(); // trackingId (or "#<log index>" without one) -> index in recon
  for (let i = 0; i < log.length; i++) {
    const message = log[i];
    const key =
      message !== null && typeof message === "object" && typeof message.trackingId === "string"
        ? message.trackingId
        : `#${i}`;
    const text = JSON.stringify(message);
    const at = keys.get(key);
    if (at === undefined) {
      keys.set(key, recon.length);
      recon.push(text);
    } else {
      recon[at] = text;
    }
  }
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
  return { recon, keys, state, internal, app, hasData, order: expandContext(internal.context, recon.length) };
}

/**
 * A Strands Plugin that keeps an Agent's conversation in an agent-session session and guards each
 * invocation with its lease. See README-strands.md for what is stored and when.
 */
export class AgentSessionManager {
  #store;
  #sessionId;
  #openOptions;
  #beginOptions;
  #agentName;
  #session = null; // Promise<Session>
  #generation = 0;
  #guard = null; // { invocation, records: Set }
  #records = new WeakMap(); // agent -> record

  constructor(config) {
    const { store, sessionId = "default-session", onBusy, traceparent, agentName, idleTtlMs, maxLifetimeMs, metadata } =
      config ?? {};
    if (store === null || typeof store !== "object" || typeof store.open !== "function") {
      throw new TypeError("AgentSessionManager: `store` must be a SessionStore");
    }
    if (typeof sessionId !== "string" || sessionId === "") {
      throw new TypeError("AgentSessionManager: `sessionId` must be a non-empty string");
    }
    if (agentName !== undefined && typeof agentName !== "function") {
      throw new TypeError("AgentSessionManager: `agentName` must be a function of the agent");
    }
    this.#store = store;
    this.#sessionId = sessionId;
    this.#openOptions = {
      ...(idleTtlMs !== undefined && { idleTtlMs }),
      ...(maxLifetimeMs !== undefined && { maxLifetimeMs }),
      ...(metadata !== undefined && { metadata }),
    };
    this.#beginOptions = { ...(onBusy !== undefined && { onBusy }), ...(traceparent !== undefined && { traceparent }) };
    this.#agentName = agentName ?? ((agent) => agent.id);
  }

  get name() {
    return "agent-session:session-manager";
  }

  get sessionId() {
    return this.#sessionId;
  }

  get store() {
    return this.#store;
  }

  /** The agent-session Session this manager writes (opened, and created, on first use). */
  session() {
    if (this.#session === null) {
      const opening = this.#store.open(this.#sessionId, this.#openOptions);
      this.#session = opening;
      opening.catch(() => {
        if (this.#session === opening) this.#session = null;
      });
    }
    return this.#session;
  }

  initAgent(agent) {
    if (this.#records.has(agent)) return;
    const record = {
      agent,
      name: this.#agentName(agent),
      initial: null, // the agent's own state before any restore (what "nothing stored" means)
      loaded: null, // "<generation>:<version>" the agent's memory reflects; null = reload at next begin
      base: null, // what the store holds for this agent, as of `loaded` plus this guard's staged writes
      pending: [], // messages added (MessageAddedEvent) since the last commit
      invocation: null,
      failed: null,
    };
    this.#records.set(agent, record);
    agent.addHook(InitializedEvent, () => this.#onInitialized(record));
    agent.addHook(BeforeInvocationEvent, () => this.#onBefore(record), { order: FIRST });
    agent.addHook(MessageAddedEvent, (event) => {
      record.pending.push(event.message);
    });
    agent.addHook(
      AfterModelCallEvent,
      (event) => {
        // A model error that no retry strategy took back ends the invocation with that error.
        if (record.invocation !== null && event.error !== undefined && !event.retry && !agent.cancelSignal?.aborted) {
          record.failed = event.error;
        }
      },
      { order: LAST },
    );
    agent.addHook(AfterInvocationEvent, () => this.#onAfter(record), { order: LAST });
  }

  /**
   * Runs `fn` under one invocation of the session: every agent invocation of this manager's agents
   * inside it joins that invocation; it commits when `fn` resolves, aborts (and puts the agents back
   * at the last committed version) when `fn` throws, and always releases. Fails fast with
   * ConcurrencyError when the session is busy anywhere. Guards do not nest.
   */
  async guard(fn, options) {
    if (typeof fn !== "function") throw new TypeError("AgentSessionManager.guard: fn must be a function");
    const session = await this.session();
    const invocation = await this.#begin(session, options ?? {});
    const guard = { invocation, records: new Set() };
    this.#guard = guard;
    let result;
    try {
      result = await fn(invocation);
    } catch (error) {
      this.#guard = null;
      await invocation.abort().catch(() => {});
      for (const record of guard.records) await this.#rollback(record);
      throw error;
    }
    this.#guard = null;
    try {
      const version = await invocation.commit();
      for (const record of guard.records) record.loaded = `${this.#generation}:${version}`;
    } catch (error) {
      await invocation.abort().catch(() => {});
      for (const record of guard.records) await this.#rollback(record);
      throw error;
    }
    return result;
  }

  /**
   * Loads `target` as of a committed version (`snapshotId`: a version number, or its decimal string;
   * default the latest). Nothing is written: the next invocation commits the restored conversation as
   * new events on top of the history. Resolves false when nothing was stored for the agent then.
   */
  async restoreSnapshot(params) {
    const record = await this.#record(params?.target);
    if (record.invocation !== null) throw new Error("AgentSessionManager.restoreSnapshot: the agent is invoking");
    const session = await this.session();
    await session.refresh();
    record.initial ??= clone(record.agent.takeSnapshot({ preset: "session" }));
    const latest = readAgent(session, record.name);
    let view = latest;
    if (params.snapshotId !== undefined) {
      const version = Number(params.snapshotId);
      if (!Number.isInteger(version) || version < 0) {
        throw new TypeError(`AgentSessionManager.restoreSnapshot: '${params.snapshotId}' is not a version`);
      }
      if (version !== session.version) view = readAgent(await session.at(version), record.name);
    }
    this.#apply(record, latest, view, `${this.#generation}:${session.version}`, false);
    return view.hasData;
  }

  /** The versions (as decimal strings, ascending) that changed `target`'s messages or state. */
  async listSnapshotIds(params) {
    const record = await this.#record(params?.target);
    const session = await this.session();
    await session.refresh();
    const after = params.startAfter === undefined ? -1 : Number(params.startAfter);
    const versions = [];
    for (const event of await session.history()) {
      if (event.agent !== record.name || event.version <= after) continue;
      if (versions[versions.length - 1] !== event.version) versions.push(event.version);
    }
    const ids = versions.map(String);
    return params.limit === undefined ? ids : ids.slice(0, Math.max(0, params.limit));
  }

  /** Deletes the session and its history. Agents attached here reload (empty) at their next invocation. */
  async deleteSession() {
    await this.#store.delete(this.#sessionId);
    this.#session = null;
    this.#generation++;
  }

  async #record(agent) {
    if (agent === null || typeof agent !== "object") throw new TypeError("AgentSessionManager: `target` must be an Agent");
    // Strands registers plugins when the agent initializes (its first invocation): do it now.
    if (!this.#records.has(agent) && typeof agent.initialize === "function") await agent.initialize();
    const record = this.#records.get(agent);
    if (record === undefined) throw new TypeError("AgentSessionManager: the target agent does not use this manager");
    return record;
  }

  async #begin(session, options) {
    try {
      return await session.begin({ ...this.#beginOptions, ...options });
    } catch (error) {
      if (!isCode(error, "NOT_FOUND")) throw error;
      // Deleted since it was opened (deleteSession, or another process): open it again.
      this.#session = null;
      this.#generation++;
      return (await this.session()).begin({ ...this.#beginOptions, ...options });
    }
  }

  async #onInitialized(record) {
    record.initial = clone(record.agent.takeSnapshot({ preset: "session" }));
    const session = await this.session();
    const data = readAgent(session, record.name);
    this.#apply(record, data, data, `${this.#generation}:${session.version}`, false, true);
  }

  async #onBefore(record) {
    if (record.initial === null) record.initial = clone(record.agent.takeSnapshot({ preset: "session" }));
    let invocation;
    const guard = this.#guard;
    if (guard !== null) {
      invocation = guard.invocation;
      guard.records.add(record);
    } else {
      invocation = await this.#begin(await this.session(), { agent: record.name }); // ConcurrencyError: nothing ran
    }
    record.invocation = invocation;
    record.failed = null;
    try {
      const loaded = `${this.#generation}:${invocation.session.version}`;
      if (record.loaded !== loaded) {
        // Another process committed since this agent last saw the session: start from its version.
        // An agent that is answering interrupts keeps its interrupt state (the answers are in it).
        const interrupts = record.agent.takeSnapshot({ include: ["interrupts"] }).data.interrupts;
        const answering = interrupts?.resumeResponses !== undefined && interrupts.resumeResponses.length > 0;
        const data = readAgent(invocation, record.name);
        this.#apply(record, data, data, loaded, answering);
      }
    } catch (error) {
      record.invocation = null;
      if (guard === null) await invocation.abort().catch(() => {});
      throw error;
    }
  }

  async #onAfter(record) {
    const invocation = record.invocation;
    if (invocation === null) return;
    record.invocation = null;
    if (this.#guard !== null && this.#guard.invocation === invocation) {
      // Inside guard(fn): stage only; guard commits or aborts by fn's outcome.
      try {
        record.base = this.#stage(record, invocation);
      } catch (error) {
        record.loaded = null; // the base may be half-updated: reload (staged writes included) next time
        throw error;
      }
      record.pending = [];
      return;
    }
    if (record.failed !== null) {
      // A model error: nothing of this invocation is kept, in the store or in the agent.
      await invocation.abort().catch(() => {});
      await this.#rollback(record);
      return; // Strands rethrows the model error after the hooks
    }
    try {
      const base = this.#stage(record, invocation);
      const version = await invocation.commit();
      record.base = base;
      record.pending = [];
      record.loaded = `${this.#generation}:${version}`;
    } catch (error) {
      await invocation.abort().catch(() => {});
      await this.#rollback(record);
      throw error;
    }
  }

  /** Puts the agent back at the session's last committed version. */
  async #rollback(record) {
    record.pending = [];
    record.loaded = null;
    try {
      const session = await this.session();
      const data = readAgent(session, record.name);
      this.#apply(record, data, data, `${this.#generation}:${session.version}`, false);
    } catch {
      // left for the next invocation's begin to reload
    }
  }

  /**
   * Loads the agent from `view` (a read of some version) and makes `latest` (a read of the version the
   * next commit builds on) the diff base.
   */
  #apply(record, latest, view, loaded, keepInterrupts, initial = false) {
    const agent = record.agent;
    const start = record.initial.data;
    if (view.hasData || !initial) {
      const data = {
        messages: view.hasData ? view.order.map((i) => JSON.parse(view.recon[i])) : clone(start.messages),
        state: view.hasData ? view.app : clone(start.state),
      };
      for (const field of FIELDS) {
        const value = field in view.internal ? view.internal[field] : start[field];
        if (value !== undefined) data[field] = clone(value);
      }
      if (keepInterrupts) delete data.interrupts;
      agent.loadSnapshot({
        scope: "agent",
        schemaVersion: SNAPSHOT_SCHEMA_VERSION,
        createdAt: new Date().toISOString(),
        data,
        appData: {},
      });
    }
    const keys = new Map();
    for (const [key, index] of latest.keys) if (!key.startsWith("#")) keys.set(key, index);
    if (view.hasData) {
      // Messages restored without a trackingId got a new one: they are the log entries they came from.
      for (let j = 0; j < agent.messages.length && j < view.order.length; j++) {
        keys.set(agent.messages[j].trackingId, view.order[j]);
      }
    }
    const internal = { context: JSON.stringify(latest.internal.context ?? null) };
    for (const field of FIELDS) {
      internal[field] = JSON.stringify(field in latest.internal ? latest.internal[field] : (start[field] ?? null));
    }
    record.base = { recon: latest.recon, keys, state: latest.state, internal };
    record.pending = [];
    record.loaded = loaded;
  }

  /**
   * Stages the agent's changes since `record.base` and returns the base the commit will establish. It
   * updates the base's log index in place (a copy would cost O(history) per turn): every path where
   * the staged events are not committed reloads the base from the store (#rollback).
   */
  #stage(record, invocation) {
    const agent = record.agent;
    const name = { agent: record.name };
    const base = record.base;
    const snapshot = agent.takeSnapshot({ preset: "session" });
    const objects = agent.messages;
    const messages = snapshot.data.messages;
    const { recon, keys } = base;
    const append = (id, json, text) => {
      invocation.appendMessage(json, name);
      keys.set(id, recon.length);
      recon.push(text);
    };
    // Messages added in this turn that are no longer in the context (trimmed before the commit).
    const present = new Set(objects.map((message) => message.trackingId));
    for (const message of record.pending) {
      if (present.has(message.trackingId) || keys.has(message.trackingId)) continue;
      const json = message.toJSON();
      append(message.trackingId, json, JSON.stringify(json));
    }
    // The context, in order: new messages are appended, changed ones appended again (same trackingId).
    const order = [];
    for (let j = 0; j < objects.length; j++) {
      const id = objects[j].trackingId;
      const text = JSON.stringify(messages[j]);
      let index = keys.get(id);
      if (index === undefined) {
        index = recon.length;
        append(id, messages[j], text);
      } else if (recon[index] !== text) {
        invocation.appendMessage(messages[j], name);
        recon[index] = text;
      }
      order.push(index);
    }
    const internal = { ...base.internal };
    const context = encodeContext(order, recon.length);
    const contextText = JSON.stringify(context);
    if (contextText !== base.internal.context) {
      if (context === null) invocation.deleteState(CONTEXT, name);
      else invocation.setState(CONTEXT, context, name);
      internal.context = contextText;
    }
    const state = new Map();
    for (const [key, value] of Object.entries(snapshot.data.state)) {
      const stored = appKey(key);
      const text = JSON.stringify(value);
      state.set(stored, text);
      if (base.state.get(stored) !== text) invocation.setState(stored, value, name);
    }
    for (const stored of base.state.keys()) if (!state.has(stored)) invocation.deleteState(stored, name);
    for (const field of FIELDS) {
      const value = snapshot.data[field] ?? null;
      const text = JSON.stringify(value);
      if (text !== base.internal[field]) {
        invocation.setState(INTERNAL + field, value, name);
        internal[field] = text;
      }
    }
    return { recon, keys, state, internal };
  }
}
