// Types of agent-session/strands (js/frameworks/strands.js). Peer: @strands-agents/sdk ^1.19.
import type { AgentStreamEvent, LocalAgent, Plugin, Storage } from "@strands-agents/sdk";
import type { BeginOptions, Invocation, JsonInput, Session, SessionStore } from "agent-session";

export interface AgentSessionStorageOptions {
  /** Prefix of the agent-session session ids this storage uses (default "strands/"). */
  prefix?: string;
  /** What a write does when another writer holds the session (default `{ waitMs: 10000 }`). */
  onBusy?: BeginOptions["onBusy"];
}

/**
 * A Strands `Storage` over a SessionStore: bytes round-trip exactly, writes are atomic and durable on
 * the store's backend. A key `a/b/rest` lives in the session `<prefix>a/b` under the state key `rest`;
 * shorter keys in the session `<prefix>`. It does not guard an agent turn (Storage never sees one):
 * use AgentSessionManager for that.
 */
export declare class AgentSessionStorage implements Storage {
  constructor(store: SessionStore, options?: AgentSessionStorageOptions);
  readonly store: SessionStore;
  write(key: string, data: Uint8Array): Promise<void>;
  read(key: string): Promise<Uint8Array | null>;
  delete(key: string): Promise<void>;
  /** Prefix match, full keys, sorted ascending. */
  list(prefix: string): Promise<string[]>;
}

export interface AgentSessionManagerConfig {
  store: SessionStore;
  /** The agent-session session id (default "default-session", as Strands' SessionManager); one over 256
   * UTF-8 bytes is kept under a hashed id (`session().id`). */
  sessionId?: string;
  /** What begin does when the session is busy (default "reject": fail fast with ConcurrencyError). */
  onBusy?: BeginOptions["onBusy"];
  /** W3C trace context recorded on every invocation's events. */
  traceparent?: string;
  /** The agent-session agent an Agent writes as (default `agent.id`). */
  agentName?: (agent: LocalAgent) => string;
  /** Applied when the session is created. */
  idleTtlMs?: number;
  maxLifetimeMs?: number;
  metadata?: JsonInput;
  /**
   * What each invocation forwards to the turn's live log with `inv.emit()`, for `session.follow()`:
   * `true` (default) the `streamEventPart` of each event (model stream updates, finished model
   * messages, tool stream updates, tool results, interrupts), `false` nothing, or a function giving
   * the part of an event (`undefined`: not forwarded). The function sees the events Strands fires
   * between BeforeInvocationEvent and AfterInvocationEvent: BeforeModelCallEvent, ModelStreamUpdateEvent,
   * ContentBlockEvent, ModelMessageEvent, AfterModelCallEvent, BeforeToolsEvent, BeforeToolCallEvent,
   * ToolStreamUpdateEvent, ToolResultEvent, AfterToolCallEvent, AfterToolsEvent, MessageAddedEvent and
   * InterruptEvent. Parts the store refuses (not JSON, over `limits.maxMessageBytes`) are left out; the
   * invocation goes on. A function that throws fails the invocation with its error, and nothing of
   * the invocation is kept (as after a model error).
   */
  emit?: boolean | ((event: AgentStreamEvent) => JsonInput | undefined);
  /**
   * Whether the commit of a turn compacts the agent's message log (`inv.compact`) when the
   * conversation manager shrank `agent.messages` from the front (default `true`): the trimmed or
   * summarized messages leave `session.messages()` and the snapshots and stay in `history()` with a
   * `compacted` event, whose summary is the head of the context (a SummarizingConversationManager's
   * summary message). `false`: every message stays in the log; the context is a state key over it.
   */
  compact?: boolean;
}

/** The part forwarded for a Strands stream event by default: its wire form (`event.toJSON()`). */
export type StreamEventPart =
  | { type: "modelStreamUpdateEvent"; event: JsonInput }
  | { type: "modelMessageEvent"; message: JsonInput; stopReason: string }
  | { type: "toolStreamUpdateEvent"; event: JsonInput }
  | { type: "toolResultEvent"; result: JsonInput }
  | { type: "interruptEvent"; interrupt: JsonInput };

/**
 * The default projection of `AgentSessionManagerConfig.emit`: the wire form (`toJSON()`) of the
 * events listed in `StreamEventPart`; undefined (not forwarded) for every other event.
 */
export declare function streamEventPart(event: AgentStreamEvent): StreamEventPart | undefined;

/**
 * A Strands Plugin that replaces SessionManager: `plugins: [new AgentSessionManager({ store, sessionId })]`.
 * BeforeInvocationEvent begins an agent-session invocation (ConcurrencyError when the session is busy
 * in any process; nothing runs or is saved), each added message is one message event, app state is
 * agent-session state, AfterInvocationEvent commits; a model error aborts and puts the agent back at the
 * last committed version.
 *
 * Each invocation is a live turn, for `invoke()` and `stream()` alike: its stream events are forwarded
 * to the live log (`emit`), and the invocation's `signal` cancels the agent (`agent.cancel()`, which
 * aborts the model call's `cancelSignal`), so a `session.stop()` from any store ends the invocation
 * with stopReason "cancelled"; the turn commits what the agent holds then (its input, and Strands'
 * "Cancelled by user" answer) and ends with outcome `stopped`, one `stopped` event in history.
 */
export declare class AgentSessionManager implements Plugin {
  constructor(config: AgentSessionManagerConfig);
  readonly name: string;
  readonly sessionId: string;
  readonly store: SessionStore;
  initAgent(agent: LocalAgent): void;
  /** The agent-session Session this manager writes (opened, and created, on first use). */
  session(): Promise<Session>;
  /**
   * Runs `fn` under one invocation: the invocations of this manager's agents inside it join it; commit
   * when `fn` resolves, abort (agents back at the last committed version) when it throws, always
   * release. ConcurrencyError when the session is busy anywhere. Guards do not nest.
   */
  guard<T>(fn: (invocation: Invocation) => T | PromiseLike<T>, options?: BeginOptions): Promise<Awaited<T>>;
  /**
   * Loads `target` as of a committed version (default: the latest); writes nothing. `false`, the agent
   * unchanged, for an id that is no version of the session (above the latest, pruned, not a number).
   */
  restoreSnapshot(params: { target: LocalAgent; snapshotId?: string | number }): Promise<boolean>;
  /** Versions (decimal strings, ascending) that changed `target`'s messages or state. */
  listSnapshotIds(params: { target: LocalAgent; limit?: number; startAfter?: string | number }): Promise<string[]>;
  /** Deletes the session and its history. */
  deleteSession(): Promise<void>;
}
