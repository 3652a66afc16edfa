// Types of agent-session/openai-agents: an OpenAI Agents JS `Session` over agent-session.
// Needs @openai/agents (>=0.20.0 <1, an optional peer dependency) for the `Session` types.
import type { AgentInputItem, Session as AgentsSession } from "@openai/agents";
import type { BeginOptions, Invocation, JsonInput, ReadonlyJson, Session, SessionStore } from "../index.d.ts";

/** The state key (of the items' agent) that marks which message events are live items. */
export declare const ITEMS_KEY: "openai.items";

/** The top-level key a stored item uses to carry what JSON loses (`undefined` fields, `Uint8Array`s). */
export declare const META_KEY: "~as";

export interface AgentSessionItemsOptions {
  /** The agent whose log holds the items (default: agent-session's default agent). */
  agent?: string;
  /** For the writes made outside `guard` (default "reject": fail fast with `ConcurrencyError`). */
  onBusy?: BeginOptions["onBusy"];
}

/**
 * An OpenAI Agents `Session` whose items live in an agent-session session: one message event per
 * item, durable on any backend of the store, guarded across tabs, workers and processes by `guard`.
 */
export declare class AgentSessionItems implements AgentsSession {
  /**
   * @param store any `SessionStore` (memory, IndexedDB, KV).
   * @param sessionId the session id; omitted, the store picks a random one on first use.
   */
  constructor(store: SessionStore, sessionId?: string, options?: AgentSessionItemsOptions);

  /** The agent-session Session behind these items (opened, and created when absent, on first use). */
  session(): Promise<Session>;

  getSessionId(): Promise<string>;
  /** The newest `limit` items (all when omitted; none when `limit <= 0`), oldest first, as copies. */
  getItems(limit?: number): Promise<AgentInputItem[]>;
  /** One commit outside `guard` (fails fast with `ConcurrencyError` when the session is busy); `[]` writes nothing. */
  addItems(items: AgentInputItem[]): Promise<void>;
  /** Removes and returns the newest item; `undefined`, and nothing written, when there is none. */
  popItem(): Promise<AgentInputItem | undefined>;
  /** Starts a new epoch: no item stored so far is live any more (the events stay in history). */
  clearSession(): Promise<void>;
  /** Replaces the whole history with `items` in one commit. */
  replaceHistoryWithCompaction(items: AgentInputItem[]): Promise<void>;

  /**
   * Runs one framework turn under one invocation: begins first (a busy session rejects with
   * `ConcurrencyError` before `fn` runs), stages every write of this instance made while `fn` runs,
   * commits when `fn` resolves (after its result's `completed` when it has one, as a streamed run
   * result does), aborts and rethrows when it throws or `completed` rejects, and always releases.
   */
  guard<T>(fn: (inv: Invocation) => T | PromiseLike<T>, options?: BeginOptions): Promise<Awaited<T>>;
}

/** The stored form of an item: the item itself when JSON carries it whole. */
export declare function encodeItem(item: AgentInputItem): JsonInput;
/** A mutable copy of the item stored as `stored` (e.g. a message event's `data`). */
export declare function decodeItem(stored: ReadonlyJson): AgentInputItem;
