// Types of agent-session/langgraph: a LangGraph.js checkpoint saver over an agent-session store.
// Needs the optional peer @langchain/langgraph-checkpoint (^1.1.4; 1.2.x adds putWrites' taskPath) and
// its peer @langchain/core.
import { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import type {
  ChannelVersions,
  Checkpoint,
  CheckpointListOptions,
  CheckpointMetadata,
  CheckpointTuple,
  PendingWrite,
  SerializerProtocol,
} from "@langchain/langgraph-checkpoint";
import type { RunnableConfig } from "@langchain/core/runnables";
import type { BeginOptions, Invocation, JsonInput, OpenOptions, SessionStore } from "../index.d.ts";

export interface AgentSessionSaverOptions {
  /** Prefix of the session ids of threads (default `"langgraph/"`): thread `t` is session `langgraph/t`. */
  prefix?: string;
  /** Serializer of checkpoints, metadata, channel values and writes (default LangGraph's JsonPlusSerializer). */
  serde?: SerializerProtocol;
  /** Options for the sessions this saver creates (TTLs, metadata). */
  open?: Omit<OpenOptions, "create">;
  /**
   * How many threads keep their `Session` open (default 1024, least recently used dropped). A write to a
   * thread not kept opens its session first: one more round trip on a KV store. Their state is held by
   * the store's cache (`StoreOptions.cache`, 1,000 sessions by default); a `Session` object alone is small. Apart from them, the saver keeps for each thread it wrote
   * what its last turn (or batch of writes) read and wrote and the latest value of each channel of the
   * namespaces it used (about the size of its latest checkpoint, a few times over at most), so that the
   * next turn does not read them again while the session is still at the state that turn left: for at
   * most 1,024 threads and 16 MiB of text over all of them (least recently used dropped first), none for
   * a thread whose turn holds more than 4 MiB.
   */
  cacheThreads?: number;
}

/** Options of `guard`: those of `Session.begin` (default `onBusy: "reject"`, fail fast). */
export type GuardOptions = BeginOptions;

/** Options of `stream`: the guard's, and what each chunk forwards to the turn's live log. */
export interface StreamGuardOptions extends GuardOptions {
  /**
   * `true` (default): each chunk's JSON form (`JSON.stringify` of it; LangChain messages in their
   * serialized form); `false`: nothing; a function: the part of a chunk (`undefined`: not forwarded).
   * Parts the store refuses (not JSON, over `limits.maxMessageBytes`) are left out; the run goes on.
   */
  emit?: boolean | ((chunk: any) => JsonInput | undefined);
}

/** What the guarded helpers need of a compiled graph (a `CompiledStateGraph`, any `Pregel`). */
export interface GuardedGraph<Input, Output, Chunk> {
  invoke(input: Input, config?: any): Promise<Output>;
  stream(input: Input, config?: any): Promise<AsyncIterable<Chunk>>;
}

/** A graph run's config for the guarded helpers (passed on to the graph): `configurable.thread_id` is required. */
export interface ThreadConfig {
  configurable: { thread_id: string; [key: string]: unknown };
  /** Combined with the invocation's signal. */
  signal?: AbortSignal;
  [key: string]: unknown;
}

/**
 * A LangGraph checkpointer that stores each thread as an agent-session session (one agent per
 * checkpoint namespace) in any `SessionStore`: memory, IndexedDB, or a host KV.
 */
export declare class AgentSessionSaver extends BaseCheckpointSaver<number> {
  constructor(store: SessionStore, options?: AgentSessionSaverOptions);
  readonly store: SessionStore;
  readonly prefix: string;
  readonly cacheThreads: number;

  /** The session id of a thread (a hashed form when `prefix + threadId` exceeds 256 UTF-8 bytes).
   * An undefined or null thread id is a `TypeError` here and in every method that takes one
   * (`guard`, `deleteThread`, `invoke`, `stream`), not the thread "undefined". */
  sessionId(threadId: string): string;
  /** The agent name of a checkpoint namespace: `"ns:" + ns` (a hashed form when too long). */
  agentName(checkpointNs?: string): string;

  getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined>;
  /** Newest first; across every thread of this saver's prefix when `thread_id` is undefined. */
  list(config: RunnableConfig, options?: CheckpointListOptions): AsyncGenerator<CheckpointTuple>;
  put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig>;
  putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void>;
  /** Deletes the thread's session (every namespace, checkpoint and write). */
  deleteThread(threadId: string): Promise<void>;

  /**
   * Runs one graph turn on `threadId` under one agent-session invocation. Rejects at once with
   * `ConcurrencyError` when the thread is held anywhere (another process, tab or guard), or (with
   * `onBusy: { waitMs }`) waits for it. A guard of this same saver on the thread holds it until it
   * ends, even after a `deleteThread` elsewhere took its lease: the thread's writes carry no mark of
   * the turn that made them (the `ConcurrencyError` then has the `holder` and `retryAfterMs` of that
   * guard's lease, as another process's guard gets, and a waiting guard waits by the wall clock). While `fn`
   * runs, every put/putWrites of that thread through this saver joins the invocation and each put
   * (one per LangGraph step) is persisted with `checkpoint()`; resolves after the commit when `fn`
   * resolves; when it rejects, commits what LangGraph was told is saved of the failed step (its
   * errors and its finished tasks' writes, as any checkpointer keeps them) and rethrows, or aborts
   * (keeping the steps already checkpointed) when `fn` staged writes of its own since the last put
   * (the writes LangGraph makes within a macrotask after `fn` rejected, such as the last put of a run
   * under durability "exit", join the turn first);
   * always releases the lease. A put/putWrites after the lease was taken over rejects with `LeaseLostError`
   * and stores nothing; any put/putWrites that fails inside `fn` ends the turn (later ones reject
   * with the same error, and the guard aborts and rethrows it even if `fn` resolves). `fn` receives
   * the invocation: writes staged on it (e.g. app state under another agent) commit with the turn;
   * do not commit or abort it yourself. Pass its `signal` to the graph (`config.signal`) to make the
   * turn stoppable (`invoke`/`stream` below do that); a turn that emitted parts (`invocation.emit`)
   * ends with a commit even when nothing was staged after its last put, so that followers see it
   * end `committed`; one without parts that succeeded ends at its last put, without an empty
   * version, and followers see it end `committed` too. When `fn` threw, the turn commits the failed
   * step's pending writes (its error and its finished tasks' writes, as any checkpointer keeps them,
   * so that a retry runs only what did not finish) and followers see it end `committed`; with
   * nothing to keep, or writes `fn` staged itself, it is aborted and they see `aborted`. The
   * caller's rejection is what tells a failed turn.
   */
  guard<T>(threadId: string, fn: (invocation: Invocation) => T | PromiseLike<T>, options?: GuardOptions): Promise<Awaited<T>>;

  /**
   * `graph.invoke(input, config)` under `guard(config.configurable.thread_id)`, with the invocation's
   * `signal` as the run's abort signal (combined with `config.signal`). A `session.stop()` from any
   * store aborts the run: it rejects with the `StopRequestedError`, the turn is aborted (the steps
   * already checkpointed stay) and ends with outcome `stopped`, with one `stopped` history event.
   */
  invoke<Input, Output>(
    graph: Pick<GuardedGraph<Input, Output, unknown>, "invoke">,
    input: Input,
    config: ThreadConfig,
    options?: GuardOptions,
  ): Promise<Output>;

  /**
   * `graph.stream(input, config)` under `guard(config.configurable.thread_id)`: yields the graph's
   * chunks (`config.streamMode` as given) and forwards each one to the turn's live log with
   * `inv.emit()` (`options.emit`) before yielding it, so `session.follow()` anywhere shows them. The
   * run's abort signal is the invocation's `signal` (combined with `config.signal`). The turn commits
   * after the last chunk; an error, a stop (the generator throws the `StopRequestedError`) or leaving
   * the loop early aborts it, keeping the steps already checkpointed. The guard is taken on the first
   * `next()` (a busy thread throws `ConcurrencyError` there).
   */
  stream<Input, Chunk>(
    graph: Pick<GuardedGraph<Input, unknown, Chunk>, "stream">,
    input: Input,
    config: ThreadConfig,
    options?: StreamGuardOptions,
  ): AsyncGenerator<Chunk, void, undefined>;
}
