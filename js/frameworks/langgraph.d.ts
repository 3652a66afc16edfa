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
import type { BeginOptions, Invocation, OpenOptions, SessionStore } from "../index.d.ts";

export interface AgentSessionSaverOptions {
  /** Prefix of the session ids of threads (default `"langgraph/"`): thread `t` is session `langgraph/t`. */
  prefix?: string;
  /** Serializer of checkpoints, metadata, channel values and writes (default LangGraph's JsonPlusSerializer). */
  serde?: SerializerProtocol;
  /** Options for the sessions this saver creates (TTLs, metadata). */
  open?: Omit<OpenOptions, "create">;
  /**
   * How many threads keep their `Session` open (default 64, least recently used dropped). A write to a
   * thread not kept opens its session first: one more round trip on a KV store. Their state is held by
   * the store's cache (`StoreOptions.cache`), not by the saver.
   */
  cacheThreads?: number;
}

/** Options of `guard`: those of `Session.begin` (default `onBusy: "reject"`, fail fast). */
export type GuardOptions = BeginOptions;

/**
 * A LangGraph checkpointer that stores each thread as an agent-session session (one agent per
 * checkpoint namespace) in any `SessionStore`: memory, IndexedDB, or a host KV.
 */
export declare class AgentSessionSaver extends BaseCheckpointSaver<number> {
  constructor(store: SessionStore, options?: AgentSessionSaverOptions);
  readonly store: SessionStore;
  readonly prefix: string;
  readonly cacheThreads: number;

  /** The session id of a thread (a hashed form when `prefix + threadId` exceeds 256 UTF-8 bytes). */
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
   * `ConcurrencyError` when the thread is held anywhere (another process, tab or guard). While `fn`
   * runs, every put/putWrites of that thread through this saver joins the invocation and each put
   * (one per LangGraph step) is persisted with `checkpoint()`; resolves after the commit when `fn`
   * resolves; aborts (keeping the steps already checkpointed) and rethrows when it rejects; always
   * releases the lease. A put/putWrites after the lease was taken over rejects with `LeaseLostError`
   * and stores nothing; any put/putWrites that fails inside `fn` ends the turn (later ones reject
   * with the same error, and the guard aborts and rethrows it even if `fn` resolves). `fn` receives
   * the invocation: writes staged on it (e.g. app state under another agent) commit with the turn;
   * do not commit or abort it yourself.
   */
  guard<T>(threadId: string, fn: (invocation: Invocation) => T | Promise<T>, options?: GuardOptions): Promise<T>;
}
