// Types of agent-session/openai-agents: an OpenAI Agents JS `Session` over agent-session.
// Needs @openai/agents (>=0.20.0 <1, an optional peer dependency) for the `Session` types.
import type {
  Agent,
  AgentInputItem,
  NonStreamRunOptions,
  RunResult,
  RunState,
  RunStreamEvent,
  Session as AgentsSession,
  StreamedRunResult,
  StreamRunOptions,
} from "@openai/agents";
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
  /**
   * Whether `clearSession` and `replaceHistoryWithCompaction` compact the log with `inv.compact`
   * (default `true`): the items they drop leave `session.messages()` and the snapshots, and stay in
   * `history()` and `at(version)` with a `compacted` event. `false`: they only move the live view
   * (the state key `openai.items`), and every item stays in `messages()`.
   */
  compact?: boolean;
}

/** What `AgentSessionItems.run` forwards to the turn's live log for one stream event (see `streamEventPart`). */
export type StreamEventPart =
  | {
      type: "raw_model_stream_event";
      data:
        | { type: "output_text_delta"; delta: string; itemId?: string }
        | { type: "response_started" }
        | { type: "response_done"; response: { id: string | null; usage?: JsonInput } };
    }
  | { type: "run_item_stream_event"; name: string; item: JsonInput }
  | { type: "agent_updated_stream_event"; agent: string | null };

/** The options of `AgentSessionItems.run` that are not the SDK's: the guard's, and the live turn's. */
export interface LiveRunOptions extends BeginOptions {
  /** Runs with this `Runner` (or `run` function) instead of the SDK's default `run`. */
  runner?: { run(agent: Agent<any, any>, input: any, options?: any): Promise<any> } | ((agent: Agent<any, any>, input: any, options?: any) => Promise<any>);
  /**
   * What a streamed run forwards to the live log with `inv.emit()`: `true` (default) the
   * `streamEventPart` of each event, `false` nothing, or a function giving the part of an event
   * (`undefined`: not forwarded). Parts the store refuses (not JSON, over `limits.maxMessageBytes`)
   * are left out; the run goes on.
   */
  emit?: boolean | ((event: RunStreamEvent) => JsonInput | undefined);
  /** Called with each event of a streamed run, in this process, after it was forwarded. */
  onEvent?: (event: RunStreamEvent) => void;
}

/** The SDK's run options without `session` (always this instance); `signal` is combined with the invocation's. */
type RunOptionsOf<O> = Omit<O, "session">;

/**
 * An OpenAI Agents `Session` whose items live in an agent-session session: one message event per
 * item, durable on any backend of the store, guarded across tabs, workers and processes by `guard`.
 */
export declare class AgentSessionItems implements AgentsSession {
  /**
   * @param store any `SessionStore` (memory, IndexedDB, KV).
   * @param sessionId the session id (an empty one, or one over 256 UTF-8 bytes, is kept under a hashed agent-session id;
   *   `getSessionId()` gives back this one); omitted, the store picks a random one on first use.
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
  /**
   * Removes every item in one commit: `inv.compact({ before: all, summary: [] })` (a cut after the
   * last item, which separates no tool call from its result); the items stay in `history()` with a
   * `compacted` event. With `compact: false`, a new epoch of the live view. Writes nothing on an empty log.
   */
  clearSession(): Promise<void>;
  /**
   * Replaces the whole history with `items` in one commit (the runner calls it when a turn's items
   * start with a `compaction` item): one `inv.compact` whose summary is `items` up to the last
   * compaction item (the rest are appended as messages), or, when `items` ends with items already
   * stored last, whose summary is the items before them (those stay in place).
   */
  replaceHistoryWithCompaction(items: AgentInputItem[]): Promise<void>;

  /**
   * Runs one framework turn under one invocation: begins first (a busy session rejects with
   * `ConcurrencyError` before `fn` runs), stages every write of this instance made while `fn` runs,
   * commits when `fn` resolves (after its result's `completed` when it has one, as a streamed run
   * result does), aborts and rethrows when it throws or `completed` rejects, and always releases.
   * Pass `inv.signal` to `run()` to make the turn stoppable, or use `run` below, which does that and
   * forwards a streamed run's events to the live log.
   */
  guard<T>(fn: (inv: Invocation) => T | PromiseLike<T>, options?: BeginOptions): Promise<Awaited<T>>;

  /**
   * The SDK's `run(agent, input, options)` under `guard`, as a live turn: `session` is this instance
   * and the run's abort signal is the invocation's `signal` (combined with `options.signal`), so a
   * `session.stop()` from any store aborts the model call. A non-streamed run resolves with its
   * RunResult after the commit; stopped, it rejects with the `StopRequestedError` and nothing of the
   * turn is stored. With `{ stream: true }` the stream is consumed here: each event is forwarded to the
   * live log (`live.emit`) and given to `live.onEvent`, and it resolves with the StreamedRunResult once
   * the run completed and the turn committed; stopped, the stream ends early (`result.cancelled`) and
   * the turn commits what the runner stored before the stop. Either way followers see the turn end
   * with outcome `stopped` and history gets one `stopped` event.
   */
  run<TAgent extends Agent<any, any>, TContext = undefined>(
    agent: TAgent,
    input: string | AgentInputItem[] | RunState<TContext, TAgent>,
    options: RunOptionsOf<StreamRunOptions<TContext, TAgent>>,
    live?: LiveRunOptions,
  ): Promise<StreamedRunResult<TContext, TAgent>>;
  run<TAgent extends Agent<any, any>, TContext = undefined>(
    agent: TAgent,
    input: string | AgentInputItem[] | RunState<TContext, TAgent>,
    options?: RunOptionsOf<NonStreamRunOptions<TContext, TAgent>>,
    live?: LiveRunOptions,
  ): Promise<RunResult<TContext, TAgent>>;
}

/** The part `AgentSessionItems.run` forwards for a stream event by default; `undefined`: not forwarded. */
export declare function streamEventPart(event: RunStreamEvent): StreamEventPart | undefined;

/** The stored form of an item: the item itself when JSON carries it whole. */
export declare function encodeItem(item: AgentInputItem): JsonInput;
/** A mutable copy of the item stored as `stored` (e.g. a message event's `data`). */
export declare function decodeItem(stored: ReadonlyJson): AgentInputItem;
