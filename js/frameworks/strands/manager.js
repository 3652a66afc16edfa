// AgentSessionManager: a Strands `Plugin` that replaces SessionManager. One agent-session invocation
// per agent invocation (begin at BeforeInvocationEvent, commit at AfterInvocationEvent), one message
// event per message, app state as agent-session state, and fail-fast ConcurrencyError when the session
// is busy in any process. Each invocation is a live turn: a stop of the session (`inv.signal`) cancels
// the agent (`agent.cancel()`, which aborts the model call's `cancelSignal`), and the agent's stream
// events are forwarded to the turn's live log with `inv.emit()` (hooks, so invoke() and stream() alike).
import {
  InitializedEvent,
  BeforeInvocationEvent,
  MessageAddedEvent,
  BeforeModelCallEvent,
  AfterModelCallEvent,
  ModelStreamUpdateEvent,
  ContentBlockEvent,
  ModelMessageEvent,
  BeforeToolsEvent,
  AfterToolsEvent,
  BeforeToolCallEvent,
  AfterToolCallEvent,
  ToolStreamUpdateEvent,
  ToolResultEvent,
  InterruptEvent,
  AfterInvocationEvent,
  HookOrder,
  SNAPSHOT_SCHEMA_VERSION,
} from "@strands-agents/sdk";
import { forwarder, jsonForm, projection, stopError } from "../live-run.js";
import { sessionIdFor } from "../names.js";
import { SessionHandle, hasCode } from "../session-handle.js";
import { compactLog } from "./compaction.js";
import { CONTEXT, FIELDS, INTERNAL, appKey, clone, encodeContext, readAgent } from "./stored-agent.js";

const FIRST = HookOrder.SDK_FIRST - 1; // BeforeInvocationEvent: take the lease before any other hook acts
const LAST = HookOrder.SDK_LAST + 1; // After* events: decide after every other hook (the conversation
//                                       manager's trim, retry strategies) has run

/** The stream events of an invocation that the `emit` option sees (hooks, in the order Strands fires them). */
const LIVE_EVENTS = [
  BeforeModelCallEvent,
  ModelStreamUpdateEvent,
  ContentBlockEvent,
  ModelMessageEvent,
  AfterModelCallEvent,
  BeforeToolsEvent,
  BeforeToolCallEvent,
  ToolStreamUpdateEvent,
  ToolResultEvent,
  AfterToolCallEvent,
  AfterToolsEvent,
  MessageAddedEvent,
  InterruptEvent,
];

/** The events forwarded by default: the data of the turn as it streams, not the lifecycle around it. */
const FORWARDED = new Set([
  "modelStreamUpdateEvent",
  "modelMessageEvent",
  "toolStreamUpdateEvent",
  "toolResultEvent",
  "interruptEvent",
]);

/** The hooks the default projection needs: the classes of the events in FORWARDED (the others would
 * only be projected to undefined). */
const FORWARDED_EVENTS = [ModelStreamUpdateEvent, ModelMessageEvent, ToolStreamUpdateEvent, ToolResultEvent, InterruptEvent];

const NONE = new Set();

/** The invocation's stop callback (js/api.js). */
const ON_STOP = Symbol.for("agent-session.onStop");

/** The key of a log entry (stored-agent.js logKey) from the message's trackingId and its log index. */
const keyOf = (id, index) => (typeof id === "string" ? id : `#${index}`);

/**
 * Message -> `{ text, value }`: the JSON text its toJSON() had when last serialized, and a private
 * copy of that value (JSON.parse(text)). Only a hint: a text is reused when the message's toJSON()
 * is now equal to that copy, so a message changed in place (its content array, a block, metadata
 * edited) is serialized again.
 */
const TEXTS = new WeakMap();

/** JSON.stringify(value), for `value` = message.toJSON(), without serializing an unchanged message again. */
function messageText(message, value) {
  const known = TEXTS.get(message);
  if (known !== undefined) {
    try {
      if (sameJson(value, known.value)) return known.text;
    } catch {
      // a getter that throws: JSON.stringify says what to do
    }
  }
  const text = JSON.stringify(value);
  if (typeof text === "string") TEXTS.set(message, { text, value: JSON.parse(text) });
  return text;
}

/**
 * After a restore from `view` (readAgent): each restored message's stored JSON text as its messageText hint, so that the
 * turn's commit does not serialize the whole context again to find what changed (a restored agent's
 * first turn, as in a server that makes an Agent per request). The hint's value is the entry as the
 * session's read gave it, which is frozen: the message itself was loaded from a parse of its own, and
 * may share objects with that data, not with this. Nothing when the agent holds other than what was
 * loaded.
 */
function knowTexts(messages, view) {
  if (messages.length !== view.order.length) return;
  view.order.forEach((i, j) => TEXTS.set(messages[j], { text: view.recon[i], value: view.values[i] }));
}

/**
 * Whether `value` serializes as JSON.stringify(`parsed`) does, `parsed` being the JSON.parse of a
 * JSON.stringify text (plain objects, arrays, strings, finite numbers, booleans, null). Conservative:
 * anything JSON.stringify would transform (toJSON, a class instance, undefined, a non-finite number,
 * an array hole) is "not the same", so the caller serializes it.
 */
function sameJson(value, parsed) {
  if (value === null || typeof value !== "object") {
    if (value !== parsed) return false;
    return typeof value === "string" || typeof value === "boolean" || value === null || Number.isFinite(value);
  }
  if (parsed === null || typeof parsed !== "object") return false;
  if (Array.isArray(value)) {
    if (!Array.isArray(parsed) || value.length !== parsed.length) return false;
    for (let i = 0; i < value.length; i++) if (!sameJson(value[i], parsed[i])) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if ((proto !== Object.prototype && proto !== null) || Array.isArray(parsed)) return false;
  const keys = Object.keys(value);
  const stored = Object.keys(parsed);
  if (keys.length !== stored.length) return false;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (key !== stored[i] || !sameJson(value[key], parsed[key])) return false;
  }
  return true;
}

/** The fields of a session snapshot other than the messages, which #stage serializes one by one. */
const SNAPSHOT_FIELDS = ["state", ...FIELDS];

/**
 * The part AgentSessionManager forwards for a Strands stream event by default: its wire form
 * (`event.toJSON()`, as `JSON.stringify` writes it: `{ type, event }` for the model's and tools' stream
 * updates, `{ type, message, stopReason }` for a finished model message, `{ type, result }` for a tool
 * result, `{ type, interrupt }`), for the events named in FORWARDED; undefined (not forwarded) for the
 * others.
 */
export function streamEventPart(event) {
  return FORWARDED.has(event?.type) ? jsonForm(event) : undefined;
}

/**
 * forwarder(inv, streamEventPart), without building the part first: `inv.emit()` reads the event's
 * wire form itself (it applies `toJSON`, and leaves out `undefined` properties, as JSON.stringify
 * does), so the part is serialized once instead of three times. An event that emit refuses as not
 * JSON (where JSON.stringify would write null or leave a value out) is emitted as jsonForm gives it,
 * so the live log gets the same parts as with forwarder(inv, streamEventPart).
 */
function defaultForwarder(inv) {
  return (event) => {
    if (!FORWARDED.has(event?.type)) return undefined;
    try {
      return inv.emit(event);
    } catch (error) {
      if (hasCode(error, "INVALID_INPUT")) return forwarder(inv, streamEventPart)(event);
      if (hasCode(error, "LIMIT_EXCEEDED", "INVALID_TRANSITION", "LEASE_LOST")) return undefined;
      throw error;
    }
  };
}

/**
 * A Strands Plugin that keeps an Agent's conversation in an agent-session session and guards each
 * invocation with its lease. See README-strands.md for what is stored and when.
 */
export class AgentSessionManager {
  #store;
  #sessionId;
  #beginOptions;
  #agentName;
  #handle; // the SessionHandle of sessionId; its stateId tells a session deleted and created again apart
  #guard = null; // { invocation, records: Set }
  #records = new WeakMap(); // agent -> record
  #project; // the projection of stream events to live parts; null: nothing forwarded
  #forwarder; // invocation -> the function that forwards a stream event to its live log
  #compact; // whether a shrunk context compacts the message log (inv.compact) at the commit

  constructor(config) {
    const {
      store,
      sessionId = "default-session",
      onBusy,
      traceparent,
      agentName,
      idleTtlMs,
      maxLifetimeMs,
      metadata,
      emit,
      compact = true,
    } = config ?? {};
    if (store === null || typeof store !== "object" || typeof store.open !== "function") {
      throw new TypeError("AgentSessionManager: `store` must be a SessionStore");
    }
    if (typeof sessionId !== "string" || sessionId === "") {
      throw new TypeError("AgentSessionManager: `sessionId` must be a non-empty string");
    }
    if (agentName !== undefined && typeof agentName !== "function") {
      throw new TypeError("AgentSessionManager: `agentName` must be a function of the agent");
    }
    if (typeof compact !== "boolean") throw new TypeError("AgentSessionManager: `compact` must be a boolean");
    this.#store = store;
    this.#sessionId = sessionId;
    const open = {
      ...(idleTtlMs !== undefined && { idleTtlMs }),
      ...(maxLifetimeMs !== undefined && { maxLifetimeMs }),
      ...(metadata !== undefined && { metadata }),
    };
    this.#handle = new SessionHandle(store, sessionIdFor(sessionId), { open });
    this.#beginOptions = { ...(onBusy !== undefined && { onBusy }), ...(traceparent !== undefined && { traceparent }) };
    this.#agentName = agentName ?? ((agent) => agent.id);
    this.#project = projection(emit, streamEventPart);
    // The default projection forwards through defaultForwarder (the same parts, serialized once).
    this.#forwarder = this.#project === streamEventPart ? defaultForwarder : (inv) => forwarder(inv, this.#project);
    this.#compact = compact;
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
    return this.#handle.session();
  }

  initAgent(agent) {
    if (this.#records.has(agent)) return;
    const name = this.#agentName(agent);
    const record = {
      agent,
      name,
      as: { agent: name }, // the options of the engine calls for this agent
      initial: null, // the agent's own state before any restore (what "nothing stored" means)
      loaded: null, // the handle's stateId of what the agent's memory reflects; null = reload at next begin
      base: null, // what the store holds for this agent, as of `loaded` plus this guard's staged writes
      pending: [], // messages added (MessageAddedEvent) since the last commit
      invocation: null,
      failed: null,
      forward: null, // forwards a stream event to the invocation's live log
      unlink: null, // detaches the invocation's signal from agent.cancel()
      leftover: null, // the end of an invocation Strands ended without AfterInvocationEvent (#endLeftovers)
      answers: [], // the interruptResponse blocks the agent's current stream() was called with (#keepAnswers)
    };
    this.#records.set(agent, record);
    this.#endLeftovers(record);
    this.#keepAnswers(record);
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
    if (this.#project !== null) {
      for (const Event of this.#project === streamEventPart ? FORWARDED_EVENTS : LIVE_EVENTS) {
        agent.addHook(Event, (event) => {
          try {
            record.forward?.(event);
          } catch (error) {
            // The `emit` projection threw: the invocation fails with its error (Strands rethrows it),
            // and, as after a model error, nothing of it is kept (AfterInvocationEvent, which fires
            // anyway, cannot tell: it carries no error).
            if (record.invocation !== null) record.failed ??= error;
            throw error;
          }
        });
      }
    }
  }

  /**
   * Runs `fn` under one invocation of the session: every agent invocation of this manager's agents
   * inside it joins that invocation; it commits when `fn` resolves, aborts (and puts the agents back
   * at the last committed version) when `fn` throws, and always releases. Fails fast with
   * ConcurrencyError when the session is busy anywhere. Guards do not nest.
   */
  async guard(fn, options) {
    if (typeof fn !== "function") throw new TypeError("AgentSessionManager.guard: fn must be a function");
    const invocation = await this.#begin(options ?? {});
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
      for (const record of guard.records) record.loaded = this.#loadedId(invocation.session, version);
    } catch (error) {
      const thrown = stopError(error, invocation.signal);
      await invocation.abort().catch(() => {});
      for (const record of guard.records) await this.#rollback(record);
      throw thrown;
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
    const loaded = this.#loadedId(session); // before the read of `at` lets a commit move the session
    let view = latest;
    if (params.snapshotId !== undefined) {
      // An id that is no version of the session, or one above it or pruned: nothing to restore, the
      // agent unchanged, as Strands' SessionManager answers an id it does not have.
      const id = String(params.snapshotId);
      if (!/^(0|[1-9][0-9]*)$/.test(id)) return false;
      const version = Number(id);
      if (version !== session.version) {
        let at;
        try {
          at = await session.at(version);
        } catch (error) {
          if (hasCode(error, "NOT_FOUND")) return false;
          throw error;
        }
        view = readAgent(at, record.name);
      }
    }
    this.#apply(record, latest, view, loaded, false);
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
    await this.#store.delete(sessionIdFor(this.#sessionId));
    this.#handle.forget();
  }

  async #record(agent) {
    if (agent === null || typeof agent !== "object") throw new TypeError("AgentSessionManager: `target` must be an Agent");
    // Strands registers plugins when the agent initializes (its first invocation): do it now.
    if (!this.#records.has(agent) && typeof agent.initialize === "function") await agent.initialize();
    const record = this.#records.get(agent);
    if (record === undefined) throw new TypeError("AgentSessionManager: the target agent does not use this manager");
    return record;
  }

  /** Begins on the session, opened (and created) again if it was deleted since (generation + 1). */
  #begin(options) {
    return this.#handle.begin({ ...this.#beginOptions, ...options });
  }

  /**
   * What names the session's state an agent holds (`record.loaded`), for its next begin to tell
   * whether another process committed since: the handle's state id and the time of that version's
   * commit. The version alone is not enough: a session restored from a backup (deleted, imported with
   * its creation time) that another process then moved past the backup reaches a version this agent
   * saw before, with other content. `session` is at `version` (a commit's session is).
   */
  #loadedId(session, version = session.version) {
    return `${this.#handle.stateId(session, version)}:${session.updatedAt}`;
  }

  async #onInitialized(record) {
    record.initial = clone(record.agent.takeSnapshot({ preset: "session" }));
    const session = await this.session();
    const data = readAgent(session, record.name);
    this.#apply(record, data, data, this.#loadedId(session), false, true);
  }

  /**
   * Keeps the interruptResponse blocks of each call of the agent's `stream()` (which `invoke()` calls)
   * in `record.answers`: Strands gives them to its interrupt state before BeforeInvocationEvent, and an
   * agent that had not seen the interrupt (another process raised it) drops them, so #onBefore gives
   * them to the interrupt it reloads. A plain function around `stream()`, not a generator: nothing is
   * added per event.
   */
  #keepAnswers(record) {
    const agent = record.agent;
    const stream = agent.stream;
    if (typeof stream !== "function") return;
    agent.stream = function (args, ...rest) {
      record.answers = Array.isArray(args) ? args.filter(isAnswer) : [];
      return stream.call(this, args, ...rest);
    };
  }

  /**
   * Strands ends some invocations without an AfterInvocationEvent: a BeforeInvocationEvent hook that
   * throws, a consumer that leaves `stream()` at its first event, an AfterInvocationEvent hook that
   * throws before this manager's. Their invocation would hold the lease for as long as the process
   * lives (the heartbeat renews it). So when the agent's stream ends with the invocation still open,
   * the invocation ends as AfterInvocationEvent would end it (committed as the agent holds it, or
   * aborted after a model error), or is aborted when the agent added no message (nothing ran).
   * The end is seen at the agent's `_isInvoking`, which Strands clears in the stream's last `finally`
   * (this manager is set up inside the first stream, so the first end is seen only there). Should a
   * Strands version not have that field, the agent's `stream()` (which `invoke()` calls) is wrapped
   * instead: an extra generator around each event, about 7% of a turn (bench/frameworks/strands-ab.mjs),
   * and it misses the first stream's end.
   */
  #endLeftovers(record) {
    const agent = record.agent;
    const end = () => {
      if (record.invocation !== null) record.leftover = this.#endLeftover(record);
    };
    const field = Object.getOwnPropertyDescriptor(agent, "_isInvoking");
    if (field?.writable && field.configurable && typeof field.value === "boolean") {
      let invoking = field.value;
      Object.defineProperty(agent, "_isInvoking", {
        configurable: true,
        enumerable: field.enumerable,
        get: () => invoking,
        set: (value) => {
          invoking = value;
          if (value === false) end();
        },
      });
      return;
    }
    const stream = agent.stream;
    if (typeof stream !== "function") return;
    agent.stream = async function* (...args) {
      try {
        return yield* stream.apply(this, args);
      } finally {
        end();
        await record.leftover;
      }
    };
  }

  async #endLeftover(record) {
    try {
      if (record.pending.length > 0 || record.failed !== null) {
        await this.#onAfter(record);
        return;
      }
      const invocation = record.invocation;
      record.invocation = null;
      detach(record);
      if (this.#guard !== null && this.#guard.invocation === invocation) return; // guard(fn) ends it
      await invocation.abort().catch(() => {});
      await this.#rollback(record);
    } catch {
      // The invocation was aborted (#onAfter aborts when its commit fails); the stream's own outcome
      // is what its caller gets.
    }
  }

  async #onBefore(record) {
    if (record.leftover !== null) {
      // The end of an invocation Strands left open, still writing (a new invoke can start meanwhile).
      await record.leftover;
      record.leftover = null;
    }
    if (record.initial === null) record.initial = clone(record.agent.takeSnapshot({ preset: "session" }));
    let invocation;
    const guard = this.#guard;
    if (guard !== null) {
      invocation = guard.invocation;
      guard.records.add(record);
    } else {
      invocation = await this.#begin({ agent: record.name }); // ConcurrencyError: nothing ran
    }
    record.invocation = invocation;
    record.failed = null;
    record.forward = this.#forwarder(invocation);
    record.unlink = linkStop(invocation, record.agent);
    try {
      const loaded = this.#loadedId(invocation.session);
      if (record.loaded !== loaded) {
        // Another process committed since this agent last saw the session: start from its version.
        // An agent that is answering interrupts keeps its interrupt state (the answers are in it); one
        // that never saw the interrupt (another process raised it) dropped the answers it was invoked
        // with, which go to the interrupt reloaded.
        const interrupts = record.agent.takeSnapshot({ include: ["interrupts"] }).data.interrupts;
        const answering = interrupts?.resumeResponses !== undefined && interrupts.resumeResponses.length > 0;
        const data = readAgent(invocation, record.name);
        this.#apply(record, data, data, loaded, answering, false, answering ? [] : record.answers);
      }
    } catch (error) {
      record.invocation = null;
      detach(record);
      if (guard === null) await invocation.abort().catch(() => {});
      throw error;
    }
  }

  async #onAfter(record) {
    const invocation = record.invocation;
    if (invocation === null) return;
    record.invocation = null;
    // Before the commit: the invocation's signal also aborts when it ends, and must not cancel the agent.
    detach(record);
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
      record.loaded = this.#loadedId(invocation.session, version);
    } catch (error) {
      const thrown = stopError(error, invocation.signal);
      await invocation.abort().catch(() => {});
      await this.#rollback(record);
      throw thrown;
    }
  }

  /** Puts the agent back at the session's last committed version. */
  async #rollback(record) {
    record.pending = [];
    record.loaded = null;
    try {
      const session = await this.session();
      const data = readAgent(session, record.name);
      this.#apply(record, data, data, this.#loadedId(session), false);
    } catch {
      // left for the next invocation's begin to reload
    }
  }

  /**
   * Loads the agent from `view` (a read of some version) and makes `latest` (a read of the version the
   * next commit builds on) the diff base.
   */
  #apply(record, latest, view, loaded, keepInterrupts, initial = false, answers = []) {
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
      else answerInterrupts(data, answers);
      agent.loadSnapshot({
        scope: "agent",
        schemaVersion: SNAPSHOT_SCHEMA_VERSION,
        createdAt: new Date().toISOString(),
        data,
        appData: {},
      });
      if (view.hasData) knowTexts(agent.messages, view);
    }
    // The agent's messages are found in the log by trackingId (a restored message keeps its own). One
    // stored without a trackingId got a new one when restored: #stage stores it again under that id, a
    // message of its own as readLog reads it. (Taking it for the entry it came from, as the manager once
    // did, made this index, and the context key written from it, disagree with the log; so did taking a
    // message restored from an older version (`restoreSnapshot`) for the entry at its index there.)
    const keys = new Map();
    for (const [key, index] of latest.keys) if (!key.startsWith("#")) keys.set(key, index);
    const internal = { context: JSON.stringify(latest.internal.context ?? null) };
    for (const field of FIELDS) {
      internal[field] = JSON.stringify(field in latest.internal ? latest.internal[field] : (start[field] ?? null));
    }
    record.base = { recon: latest.recon, keys, logKeys: latest.logKeys, state: latest.state, internal };
    record.pending = [];
    record.loaded = loaded;
  }

  /**
   * Stages the agent's changes since `record.base` and returns the base the commit will establish. It
   * updates the base's log index in place (a copy would cost O(history) per turn): every path where
   * the staged events are not committed reloads the base from the store (#rollback). When the context
   * no longer holds a prefix of the log (the conversation manager trimmed or summarized it), it stages
   * an `inv.compact` of that prefix first (compaction.js), and continues on the compacted log.
   */
  #stage(record, invocation) {
    const agent = record.agent;
    const name = record.as;
    const base = record.base;
    // The messages are serialized here one by one (their text is what tells a changed one), so the
    // snapshot takes the other fields only.
    const snapshot = agent.takeSnapshot({ include: SNAPSHOT_FIELDS });
    const objects = agent.messages;
    const count = objects.length;
    let { recon, keys, logKeys } = base;
    const ids = new Array(count);
    const texts = new Array(count);
    const jsons = new Array(count); // as takeSnapshot serializes the messages
    for (let j = 0; j < count; j++) {
      const message = objects[j];
      ids[j] = message.trackingId;
      jsons[j] = message.toJSON();
      texts[j] = messageText(message, jsons[j]);
    }
    const append = (id, value, text) => {
      invocation.appendMessage(value, name);
      keys.set(id, recon.length);
      recon.push(text);
      logKeys.push(keyOf(id, logKeys.length));
    };
    // Messages added in this turn that are no longer in the context (trimmed before the commit).
    let added = NONE;
    if (record.pending.length > 0) {
      const present = new Set(ids);
      added = new Set();
      for (const message of record.pending) {
        added.add(message.trackingId);
        if (present.has(message.trackingId) || keys.has(message.trackingId)) continue;
        const value = message.toJSON();
        append(message.trackingId, value, JSON.stringify(value));
      }
    }
    if (this.#compact) {
      const context = { ids, texts, jsons };
      const compacted = compactLog(invocation, record.name, context, { recon, keys, logKeys }, added);
      if (compacted !== undefined) ({ recon, keys, logKeys } = compacted);
    }
    // The context, in order: new messages are appended, changed ones appended again (same trackingId).
    const order = new Array(count);
    for (let j = 0; j < count; j++) {
      const id = ids[j];
      const text = texts[j];
      let index = keys.get(id);
      if (index === undefined) {
        index = recon.length;
        append(id, jsons[j], text);
      } else if (recon[index] !== text) {
        invocation.appendMessage(jsons[j], name);
        recon[index] = text;
        logKeys.push(keyOf(id, logKeys.length));
      }
      order[j] = index;
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
    return { recon, keys, logKeys, state, internal };
  }
}

/** Whether `block` is an interruptResponse content block (Strands' `isInterruptResponseContent`). */
function isAnswer(block) {
  const answer = block !== null && typeof block === "object" ? block.interruptResponse : undefined;
  return answer !== null && typeof answer === "object" && "interruptId" in answer;
}

/**
 * Puts `answers` (interruptResponse blocks) on the interrupt state of the snapshot `data` about to be
 * loaded, as Strands' `InterruptState.resume` does: each answered interrupt gets its response.
 */
function answerInterrupts(data, answers) {
  const interrupts = data.interrupts;
  if (answers.length === 0 || !interrupts?.activated) return;
  for (const { interruptResponse } of answers) {
    const interrupt = interrupts.interrupts?.[interruptResponse.interruptId];
    if (interrupt !== undefined) interrupt.response = clone(interruptResponse.response);
  }
  interrupts.resumeResponses = answers.map((block) => clone(block));
}

/**
 * Cancels `agent` (its current invocation) on a stop of the session or a lost lease, as
 * `invocation.signal` aborting would tell. Strands then ends the invocation at its next cancellation
 * point with stopReason "cancelled" (the model call sees its `cancelSignal` abort), and
 * AfterInvocationEvent commits what the agent holds. Through the invocation's stop callback (js/api.js)
 * where it has one: an AbortSignal and its listener cost a turn about a tenth of its time.
 * Returns the function that detaches it.
 */
function linkStop(invocation, agent) {
  let linked = true;
  const cancel = () => {
    if (linked) agent.cancel();
  };
  if (typeof invocation[ON_STOP] === "function") invocation[ON_STOP](cancel);
  else {
    const signal = invocation.signal;
    if (signal === undefined || signal === null) return null;
    if (signal.aborted) {
      cancel();
      return null;
    }
    signal.addEventListener("abort", cancel, { once: true });
  }
  return () => {
    linked = false;
  };
}

function detach(record) {
  record.unlink?.();
  record.unlink = null;
  record.forward = null;
}
