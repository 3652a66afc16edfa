// Public types of agent-session: the contract of ../../shared/API.md ("Typing rules").
//
// This file must type-check in a user's project under `strict` with `skipLibCheck: false` and only
// `lib: ["es2022", "dom"]`, or `lib: ["es2022"]` alone (Node, workerd, Deno without DOM types): it
// depends on no @types package and declares what it needs from hosts structurally.

declare global {
  // `Symbol.asyncDispose` is in lib `esnext.disposable` (TypeScript 5.2+), which a user's `lib` may
  // lack. This declaration merges with it when present (same property, same unique symbol) and
  // supplies it when absent, so `Invocation[Symbol.asyncDispose]` compiles either way. The runtime
  // value is provided by every supported runtime (or by the package where it is missing).
  interface SymbolConstructor {
    readonly asyncDispose: unique symbol;
    readonly dispose: unique symbol;
  }
  // `inv.signal` is the host's AbortSignal (lib `dom`, Node, workerd and Deno all have one). This
  // declaration merges with the host's when its types are present and supplies the name when they are
  // absent. It declares no member: a host may declare `aborted` as a getter (Cloudflare's
  // workers-types), which a property here would clash with; `Invocation.signal` adds the two it uses.
  interface AbortSignal {}
}

// ---------------------------------------------------------------------------------------------
// Values

/** What is stored: plain JSON. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * What writes accept: JSON, readonly arrays and objects (so anything read back can be written again),
 * properties whose value is `undefined` (left out, as `JSON.stringify` does) and objects with a
 * `toJSON()` (a `Date` is stored as its ISO string). A `ValidationError` naming the path refuses what
 * JSON cannot carry: functions, symbols, BigInts, `NaN`/`Infinity`, cycles, and the built-in objects
 * `JSON.stringify` writes as `{}` (a `Map`, `Set`, `ArrayBuffer`, `DataView`, `RegExp`, `Error`,
 * `Promise`, `WeakMap`, `WeakSet`, `WeakRef`, from this realm or another, such as an iframe's): convert
 * them first.
 */
export type JsonInput =
  | Json
  | readonly JsonInput[]
  | { readonly [key: string]: JsonInput | undefined }
  | { toJSON(): JsonInput };

/**
 * `T` as the writes check it: `JsonInput`, and also a value typed by an `interface` (which has no
 * index signature, so is not a `JsonInput`) whose fields are: each field is checked the same way, and
 * a method, a `Map` or another value `JsonInput` refuses gives `never` at its place. `appendMessage`,
 * `setState`, `emit` and `interrupt` take `T & JsonInputOf<T>`, so `appendMessage(message)` accepts
 * `message: ChatMessage` for `interface ChatMessage { role: string; content: string }`, as the runtime
 * does. Option fields (`metadata`, `resume`, a compaction's `summary`) take `JsonInput`: declare their
 * shapes with `type`, or spread an interface-typed value into an object literal.
 */
export type JsonInputOf<T> = unknown extends T
  ? JsonInput // `unknown` (a parsed request body): refused as "not assignable to JsonInput", not to `never`
  : T extends JsonInput
  ? T
  : T extends { toJSON(): unknown }
    ? T
    : T extends (...args: never[]) => unknown
      ? never
      : T extends readonly unknown[]
        ? { readonly [I in keyof T]: JsonInputOf<T[I]> }
        : T extends object
          ? { readonly [K in keyof T]: K extends string ? JsonInputOf<T[K]> : never }
          : never;

/** What reads return: frozen JSON that may be shared between calls (clone before mutating). */
export type ReadonlyJson =
  | null
  | boolean
  | number
  | string
  | readonly ReadonlyJson[]
  | { readonly [key: string]: ReadonlyJson };

/** A session's lifecycle status. */
export type Status = "idle" | "running" | "interrupted" | "closed" | "expired";

// ---------------------------------------------------------------------------------------------
// Options

/**
 * The subset of WebCrypto's `CryptoKey` that `encryptionKey` takes, declared structurally so that the
 * types do not depend on the DOM lib. A real `CryptoKey` (AES-GCM) is assignable to it.
 */
export interface CryptoKeyLike {
  readonly type: string;
  readonly extractable: boolean;
  readonly algorithm: { readonly name: string };
  readonly usages: readonly string[];
}

/** Keys of `encryptionKey` for rotation: records are sealed with `keys[current]`, and records sealed
 * under any id of `keys` are read (a single CryptoKey has the id `"default"`). Key ids: 1 to 64 bytes. */
export interface EncryptionKeys {
  current: string;
  keys: Record<string, CryptoKeyLike>;
}

/** Size limits, in bytes of UTF-8 JSON text. */
export interface Limits {
  /** Per message (default 1 MiB). */
  maxMessageBytes?: number;
  /** Per state value, and for a session's metadata (default 1 MiB). */
  maxStateValueBytes?: number;
  /** Per commit: everything staged by one invocation between two writes (default 4 MiB), counted as
   * each event's JSON text plus its agent name and state key, an interrupt's reason, a stop's
   * reason and owner; a fork is one commit of the copied messages and state in the target store. */
  maxCommitBytes?: number;
}

export interface StoreOptions {
  /** Who holds leases taken through this store (default: random per store). A label, not a pass. */
  owner?: string;
  /** Lease length in ms, default 30000. */
  leaseMs?: number;
  /** Renew the lease while an invocation is open, default true. */
  heartbeat?: boolean;
  /** Default for sessions: expire after this long without a commit (default: never). */
  idleTtlMs?: number;
  /** Default for sessions: expire this long after creation (default: never). */
  maxLifetimeMs?: number;
  /** Minimum commits between snapshots (default 50); the spacing grows to an eighth of the session's
   * versions once that is more, so snapshot storage stays proportional to the session's size. */
  snapshotEvery?: number;
  /** Clock in ms since the epoch, for tests (default `Date.now`). Called once when the store is made:
   * a `ValidationError` unless it returns a finite number >= 0. A later call that throws or returns
   * anything else reads as the last time it gave (the clock stands still; leases do not end early). */
  now?: () => number;
  limits?: Limits;
  /** Observability: one call per lease/commit/abort/interrupt/expiry/conflict/snapshot/corrupt record,
   * made synchronously as the event happens. What the listener throws, or its promise rejects with
   * (an async listener), is ignored: it cannot fail the operation it reports. */
  onEvent?: (event: StoreEvent) => void;
  /** Encryption at rest with AES-GCM (WebCrypto): messages, state values, metadata, interrupts, live
   * parts and snapshots are stored sealed, each record with a fresh IV and its key as additional data;
   * record keys and the guard's bookkeeping stay readable. One key (its id is `"default"`), or
   * `{ current, keys }` to rotate: new records use `current`, records under any id in `keys` are read.
   * A record that does not open is a `CorruptRecordError` naming it and the key id it needs. A key
   * that is not an AES-GCM CryptoKey with both "encrypt" and "decrypt" usages is a `ValidationError`.
   * Records written before encryption was turned on stay readable. See docs/encryption.md. */
  encryptionKey?: CryptoKeyLike | EncryptionKeys;
  /** Bounds of the store's cache of session views (one view per session id, shared by every
   * `Session` object of that id; least recently used first). */
  cache?: CacheOptions;
  /** Emitted parts are flushed this long (ms) after the first unflushed one, default 50, or at once
   * when 16 KiB are pending; `inv.flush()` forces it. */
  liveFlushMs?: number;
  /** How often (ms) a holder whose `inv.signal` is in use reads the head for a stop request on a store
   * without push (KV), default 1000; IndexedDB and the same realm are told at once. */
  stopPollMs?: number;
  /** The application's schema of its own data: sessions last committed under an older `version` are
   * shown migrated on load (`migrate[n]` turns version n - 1 into n, per agent) and persisted by the
   * next commit as `migrated` events; a newer one is a `SchemaVersionError`. */
  schema?: SchemaOptions;
}

/** `StoreOptions.schema`. */
export interface SchemaOptions {
  /** A non-negative integer: the version this application writes. */
  version: number;
  /** `migrate[n]` turns data of version n - 1 into version n (`{}` while there is no older data). */
  migrate: { readonly [version: number]: (data: MigrationInput) => MigrationOutput };
}

/** What a migration gets: one agent's messages and state (frozen). */
export interface MigrationInput {
  readonly agent: string;
  readonly messages: readonly ReadonlyJson[];
  readonly state: Readonly<Record<string, ReadonlyJson>>;
}

/** What a migration returns. */
export interface MigrationOutput {
  messages: JsonInput[];
  state: Record<string, JsonInput>;
}

/** `StoreOptions.cache`. A session evicted from the cache is loaded again by its next async use
 * (`refresh`, `begin`, `invoke`, `open`); a synchronous read (`messages()`, `state()`) of an evicted
 * session throws `LimitExceededError` saying so. A session with a running invocation is never
 * evicted. Memory the cache holds never depends on when the garbage collector runs, but for a store
 * dropped without `close()`: its cache is freed when the collector finalizes it (keep one store per
 * process, or close a store made per request). */
export interface CacheOptions {
  /** Sessions whose state is held at once, default 1000. */
  maxSessions?: number;
  /** Approximate bytes of state held at once (text plus per-entry overhead), default 64 MiB. The
   * session used last stays held even when it alone is larger. */
  maxBytes?: number;
  /** A session not used for this long is dropped from the cache, default 600000 (10 minutes): at the
   * store's next use of its cache (any open, read or turn); no timer runs while the store is idle. */
  ttlMs?: number;
}

/** `SessionStore.memoryUsage()`: the memory of the WebAssembly instance, shared by every store in
 * it. Past `ceilingBytes` of counted bytes, what would bring in more (a commit, a load, a value) is a
 * `LimitExceededError` and nothing is written; the instance and its other sessions keep working. */
export interface MemoryUsage {
  /** Size of the wasm memory (it grows and never shrinks). */
  readonly wasmBytes: number;
  /** Bytes counted as held: memory stores' stored values and every store's cached state. */
  readonly countedBytes: number;
  readonly ceilingBytes: number;
  /** Bytes of every live allocation of the instance: the counted bytes, working copies, and the Rust
   * side of `Session` and `Invocation` objects that JavaScript dropped and its garbage collector has
   * not finalized yet (under a KiB each; a loop that never lets the event loop run piles them up). */
  readonly heapBytes: number;
  /** Past this many `heapBytes` (1.5 GiB), `store.open()`, `session.begin()`, `session.invoke()`,
   * `session.at()`, `session.fork()` and `store.import()` reject, and `session.follow()` and
   * `store.export()` throw, with `LimitExceededError` instead of letting the instance run out of memory. */
  readonly heapLimitBytes: number;
}

/** `store.cacheUsage()`. */
export interface CacheUsage {
  readonly sessions: number;
  readonly bytes: number;
}

/** Options of `SessionStore.indexedDb`. */
export interface IndexedDbStoreOptions extends StoreOptions {
  /** The IndexedDB database of the store's records (one of its own). A database of that name that
   * something else made (without the object store "records") is a `ValidationError` (path
   * `options.database`); nothing is written to it. */
  database?: string;
  durability?: "relaxed" | "strict";
}

/** Options of `SessionStore.kv`. */
export interface KvStoreOptions extends StoreOptions {
  /** Prefix of every key this store writes. */
  prefix?: string;
  /** Accept a `HostKv` without atomic compare-and-set (unsafe: the guard cannot be enforced). */
  allowNonAtomic?: boolean;
  /** How long one HostKv call may take before it fails with `StorageError` (default 10000 ms). */
  timeoutMs?: number;
}

export interface OpenOptions {
  /** Create the session when absent (default true); `false` makes an absent id a `NotFoundError`. */
  create?: boolean;
  /** Per-session idle TTL, applied when the session is created. */
  idleTtlMs?: number;
  /** Per-session maximum lifetime, applied when the session is created. */
  maxLifetimeMs?: number;
  /** Kept with the session when it is created; at most `limits.maxStateValueBytes` of JSON (it is written
   * again with every lease and commit), else a `LimitExceededError`. */
  metadata?: JsonInput;
}

export interface BeginOptions {
  /** Default agent id for this invocation's writes and reads (multi-agent sessions). */
  agent?: string;
  /** Required when the status is "interrupted": the answer to the interrupt. */
  resume?: JsonInput;
  /** Default "reject" (fail fast with `ConcurrencyError`). */
  onBusy?: "reject" | { waitMs: number };
  /** W3C trace context, recorded on the invocation's events. */
  traceparent?: string;
}

/** Selects one agent's messages and state (default: the agent "default", or the invocation's agent). */
export interface AgentOptions {
  agent?: string;
}

export interface ListOptions {
  prefix?: string;
  limit?: number;
  /** The `cursor` of the page before (opaque; any other string is a ValidationError); "" or none: the first page. */
  cursor?: string;
}

export interface ListResult {
  /** Made for this call (not frozen, shared with nothing). */
  sessions: SessionInfo[];
  /** Present when there may be more: pass it back as `cursor`. */
  cursor?: string;
}

export interface HistoryOptions {
  /** First version, inclusive (default 0). */
  from?: number;
  /** Last version, inclusive (default: the current one). */
  to?: number;
}

export interface ForkOptions {
  /** Id of the new session (default: a new random id). */
  id?: string;
  /** Version to fork from (default: the latest). */
  at?: number;
}

export interface SweepOptions {
  limit?: number;
}

// ---------------------------------------------------------------------------------------------
// Read shapes

export interface SessionInfo {
  id: string;
  version: number;
  status: Status;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
}

/** A change reported by `SessionStore.onChange`. */
export interface StoreChange {
  readonly id: string;
  readonly version: number;
  readonly status: Status;
}

/** A change reported by `Session.onChange`. */
export interface SessionChange {
  readonly version: number;
  readonly status: Status;
}

export interface PendingInterrupt {
  readonly reason: string;
  /** `null` when `interrupt()` was given no payload. */
  readonly payload: ReadonlyJson;
}

/** Read-only state as of one version (`Session.at`). */
export interface SessionView {
  readonly id: string;
  readonly version: number;
  readonly status: Status;
  messages(options?: AgentOptions): readonly ReadonlyJson[];
  state(options?: AgentOptions): Readonly<Record<string, ReadonlyJson>>;
}

// ---------------------------------------------------------------------------------------------
// Session events (history): a union discriminated on `type`

interface SessionEventBase {
  /** The commit that carried it (0 for `created`). */
  readonly version: number;
  /** Ms since the epoch, from the store's clock. */
  readonly at: number;
  /** Id of the invocation that committed it. */
  readonly invocation: string;
  readonly traceparent?: string;
}

export interface SessionCreatedEvent extends SessionEventBase {
  readonly type: "created";
  readonly agent?: string;
  readonly key?: undefined;
  readonly reason?: undefined;
  /** The session's metadata (`open(id, { metadata })`), frozen; absent when it has none. */
  readonly data?: ReadonlyJson;
}

export interface SessionMessageEvent extends SessionEventBase {
  readonly type: "message";
  readonly agent: string;
  readonly key?: undefined;
  readonly reason?: undefined;
  /** The message body. */
  readonly data: ReadonlyJson;
}

export interface SessionStateSetEvent extends SessionEventBase {
  readonly type: "state.set";
  readonly agent: string;
  readonly key: string;
  readonly reason?: undefined;
  /** The state value. */
  readonly data: ReadonlyJson;
}

export interface SessionStateDeleteEvent extends SessionEventBase {
  readonly type: "state.delete";
  readonly agent: string;
  readonly key: string;
  readonly reason?: undefined;
  readonly data?: undefined;
}

export interface SessionInterruptEvent extends SessionEventBase {
  readonly type: "interrupt";
  readonly agent?: string;
  readonly key?: undefined;
  readonly reason: string;
  /** The interrupt payload (`null` when none). */
  readonly data: ReadonlyJson;
}

export interface SessionResumeEvent extends SessionEventBase {
  readonly type: "resume";
  readonly agent?: string;
  readonly key?: undefined;
  readonly reason?: undefined;
  /** The answer given to `begin({ resume })`. */
  readonly data: ReadonlyJson;
}

export interface SessionClosedEvent extends SessionEventBase {
  readonly type: "closed";
  readonly agent?: string;
  readonly key?: undefined;
  readonly reason?: undefined;
  readonly data?: undefined;
}

export interface SessionForkedEvent extends SessionEventBase {
  readonly type: "forked";
  readonly agent?: string;
  readonly key?: undefined;
  readonly reason?: undefined;
  /** The source session and the version the fork was taken at. */
  readonly data: { readonly from: string; readonly version: number };
}

export interface SessionStoppedEvent extends SessionEventBase {
  readonly type: "stopped";
  readonly agent?: undefined;
  readonly key?: undefined;
  /** The reason given to `session.stop()`. */
  readonly reason: string;
  /** Who stopped it (the stopper store's owner) and how the turn ended: by its holder (`stopped`) or
   * fenced after the grace (`fenced`). */
  readonly data: { readonly by: string; readonly outcome: "stopped" | "fenced" };
}

export interface SessionCompactedEvent extends SessionEventBase {
  readonly type: "compacted";
  /** The agent whose messages were compacted. */
  readonly agent: string;
  readonly key?: undefined;
  readonly reason?: undefined;
  /** How many of the agent's messages (as the fold had them) the summary replaced. */
  readonly before: number;
  /** The summary messages. */
  readonly data: readonly ReadonlyJson[];
}

export interface SessionMigratedEvent extends SessionEventBase {
  readonly type: "migrated";
  /** The agent whose data was migrated. */
  readonly agent: string;
  readonly key?: undefined;
  readonly reason?: undefined;
  /** The agent's data as migrated, and the schema versions it went from and to. */
  readonly data: {
    readonly from: number;
    readonly to: number;
    readonly messages: readonly ReadonlyJson[];
    readonly state: Readonly<Record<string, ReadonlyJson>>;
  };
}

export type SessionEvent =
  | SessionCreatedEvent
  | SessionMessageEvent
  | SessionStateSetEvent
  | SessionStateDeleteEvent
  | SessionInterruptEvent
  | SessionResumeEvent
  | SessionClosedEvent
  | SessionForkedEvent
  | SessionStoppedEvent
  | SessionCompactedEvent
  | SessionMigratedEvent;

export type SessionEventType = SessionEvent["type"];

// ---------------------------------------------------------------------------------------------
// Store events (onEvent): a union discriminated on `type`

interface StoreEventBase {
  /** Id of the session concerned. */
  readonly session: string;
  readonly version?: number;
  /** Fencing token of the lease concerned. */
  readonly token?: number;
  /** Owner name of the lease concerned (for "lease.denied": the holder). */
  readonly owner?: string;
  readonly durationMs?: number;
  readonly traceparent?: string;
  readonly key?: string;
}

export interface LeaseAcquiredStoreEvent extends StoreEventBase {
  readonly type: "lease.acquired";
  /** The version the invocation begins from. */
  readonly version: number;
  readonly token: number;
  readonly owner: string;
}

export interface LeaseDeniedStoreEvent extends StoreEventBase {
  readonly type: "lease.denied";
  /** The owner that holds the session. */
  readonly owner: string;
}

export interface LeaseRenewedStoreEvent extends StoreEventBase {
  readonly type: "lease.renewed";
  readonly token: number;
  readonly owner: string;
}

export interface LeaseLostStoreEvent extends StoreEventBase {
  readonly type: "lease.lost";
  readonly token: number;
  readonly owner: string;
}

export interface LeaseReleasedStoreEvent extends StoreEventBase {
  readonly type: "lease.released";
  readonly token: number;
  readonly owner: string;
}

export interface CommitStoreEvent extends StoreEventBase {
  readonly type: "commit";
  /** The version written. */
  readonly version: number;
  readonly token: number;
  readonly owner: string;
}

export interface AbortStoreEvent extends StoreEventBase {
  readonly type: "abort";
  readonly token: number;
  readonly owner: string;
  /** From the begin to the abort, by the store's clock. */
  readonly durationMs: number;
}

export interface InterruptStoreEvent extends StoreEventBase {
  readonly type: "interrupt";
  /** The version written. */
  readonly version: number;
  readonly token: number;
  readonly owner: string;
  /** From the begin to the interrupt, by the store's clock. */
  readonly durationMs: number;
}

/** `sweepExpired()` deleted an expired session. (A session that expires by the clock alone reports
 * nothing: its status reads "expired" and `begin()` refuses it.) */
export interface ExpireStoreEvent extends StoreEventBase {
  readonly type: "expire";
  /** The session's last version. */
  readonly version: number;
}

/** A compare-and-set on the session's head was refused because it was written since this store's
 * operation read it (by another store, a tab, a process, or by another operation of this store: a
 * `stop()`'s fence, a racing `begin()`); the operation decides again on the fresh head. */
export interface ConflictStoreEvent extends StoreEventBase {
  readonly type: "conflict";
}

export interface SnapshotStoreEvent extends StoreEventBase {
  readonly type: "snapshot";
  /** The version the snapshot is of. */
  readonly version: number;
  /** The lease of the commit that wrote it. */
  readonly token: number;
  readonly owner: string;
}

export interface CorruptStoreEvent extends StoreEventBase {
  readonly type: "corrupt";
  /** The record that could not be decoded. */
  readonly key: string;
}

export type StoreEvent =
  | LeaseAcquiredStoreEvent
  | LeaseDeniedStoreEvent
  | LeaseRenewedStoreEvent
  | LeaseLostStoreEvent
  | LeaseReleasedStoreEvent
  | CommitStoreEvent
  | AbortStoreEvent
  | InterruptStoreEvent
  | ExpireStoreEvent
  | ConflictStoreEvent
  | SnapshotStoreEvent
  | CorruptStoreEvent;

export type StoreEventType = StoreEvent["type"];

// ---------------------------------------------------------------------------------------------
// Host KV (what an edge host supplies; see agent-session/adapters)

export interface HostKvEntry {
  value: Uint8Array | string;
  version: string;
}

export interface HostKvPutOptions {
  /** Compare-and-set: the version the key must have; `null` means "must not exist". */
  expectedVersion?: string | null;
  ttlMs?: number;
  /** When the condition fails, answer `{ current }` instead of `null` if that costs no extra round trip. */
  reportCurrent?: boolean;
}

export interface HostKvCapabilities {
  /** Whether `put` with `expectedVersion` is an atomic compare-and-set. */
  atomic: boolean;
  maxValueBytes?: number;
  minTtlMs?: number;
}

/** A key -> bytes store with compare-and-set on one key. A value is bytes, given as a `Uint8Array`
 * or as a string that is their standard base64 (RFC 4648, padded), both ways; `put` checks its
 * condition first, and a value of any other form is a `TypeError` that writes nothing (the whole
 * rule: `HostKv` in `agent-session/adapters`). */
export interface HostKv {
  /** The value (bytes, or their base64) and version under `key`, or `null`. An adapter that finds
   * there what it did not write (a Redis key of another type) rejects with an error whose `code` is
   * `"CORRUPT_RECORD"`: the store reports a `CorruptRecordError` naming the key. */
  get(key: string): Promise<HostKvEntry | null>;
  /** The new version; `null` when `expectedVersion` did not hold, or, when the store passed
   * `reportCurrent: true` and the adapter can say it cheaply, `{ current }`: what the key holds. */
  put(
    key: string,
    value: Uint8Array | string,
    options: HostKvPutOptions & { reportCurrent: true },
  ): Promise<string | null | { current: { value: Uint8Array | string; version: string } | null }>;
  put(key: string, value: Uint8Array | string, options?: HostKvPutOptions): Promise<string | null>;
  delete(key: string, options?: { expectedVersion?: string }): Promise<boolean>;
  list(prefix: string, options?: { cursor?: string; limit?: number }): Promise<{ keys: string[]; cursor?: string }>;
  /** Optional: a session commit in one call. Writes every record (new keys, unconditionally, no TTL),
   * then `head` if its `expectedVersion` holds (`ttlMs` as for `put`), and then deletes the keys in
   * `deletes` (records of the head's session that no head names any more: the live log of the turn
   * before); resolves to the head's new version, or `null` with the head unchanged. Records written
   * for a refused head are harmless (no head names them); the adapters of this package write and
   * delete nothing for one, in one atomic operation, wherever the backend takes the commit in one (see
   * agent-session/adapters). A value that is not bytes is a `TypeError` and nothing is written. An
   * adapter that ignores `deletes` leaves those records until the session is deleted. Without
   * `commit` the store makes one `put` per record (at once), then the head's `put`, and deletes the
   * stale keys beside them; so it does for a commit of more than 64 records and deletes (an import) or
   * with a record over `maxValueBytes`. */
  commit?(
    records: HostKvWrite[],
    head: HostKvWrite & Pick<HostKvPutOptions, "expectedVersion" | "ttlMs">,
    deletes: string[],
  ): Promise<string | null>;
  readonly capabilities?: HostKvCapabilities;
}

/** One write of a `HostKv.commit`. */
export interface HostKvWrite {
  key: string;
  value: Uint8Array | string;
}

// ---------------------------------------------------------------------------------------------
// Live turns

/** `inv.compact()` options. */
export interface CompactOptions {
  /** How many of the agent's first messages (as the invocation sees them) the summary replaces. */
  before: number;
  /** Zero or more messages that take their place. */
  summary: readonly JsonInput[];
  agent?: string;
  /** Cut even between a tool call and its result. */
  force?: boolean;
}

/** What `session.export()` gives and `store.import()` takes: plain JSON (`JSON.stringify` of it is
 * the file format). An export of an encrypted store is plaintext: protect the file. */
export interface SessionExport {
  format: "agent-session.export/1";
  id: string;
  version: number;
  status: Status;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  metadata: Json;
  /** The application schema its events were written under (the `schema` store option; 0 without).
   * Optional on import (0). */
  schema?: number;
  /** A pruned session's oldest kept version (absent when nothing was pruned; an export without it
   * keeps from its first event's version). */
  retained?: number;
  /** A pruned session's messages and state as of its oldest kept version (`retained`), as the
   * `message` and `state.set` events that set them, each at that version: an import writes them as a
   * snapshot of it. Absent when nothing was pruned (an export written before this field gives them in
   * `events`, at `retained`). */
  base?: SessionEvent[];
  /** The whole retained history, in commit order, as `session.history()` gives it. */
  events: SessionEvent[];
}

/** `store.import()` options. */
export interface ImportOptions {
  /** Import under this id instead of the export's own. */
  id?: string;
  /** The restored session's idle TTL (ms), as `open()` gives one: counted from its last commit (the
   * export's `updatedAt`) and extended by each commit. With this or `maxLifetimeMs`, the one not given
   * is the store's default and the export's `expiresAt` is not used; with neither, `expiresAt` stays
   * as a fixed time that commits do not move. An expired session stays expired either way. */
  idleTtlMs?: number;
  /** The restored session's maximum lifetime (ms), counted from the export's `createdAt`. */
  maxLifetimeMs?: number;
}

/** `store.export()` options. */
export interface ExportOptions {
  /** Only the sessions whose id starts with this. */
  prefix?: string;
}

/** `session.prune()` options. */
export interface PruneOptions {
  /** The versions from this one on stay readable and unchanged; older ones may go. */
  before: number;
}

/** `session.follow()` options. */
export interface FollowOptions {
  /** Resume after a reload: skip that invocation's parts with seq <= `seq`. */
  after?: { invocation: string; seq: number };
  /** Ends the iteration (it finishes, `done: true`, rather than throwing). */
  signal?: AbortSignal;
}

/** A part a running turn emitted. */
export interface LivePartEvent {
  readonly type: "part";
  readonly invocation: string;
  readonly seq: number;
  readonly data: ReadonlyJson;
}

/** A followed turn ended. `lost`: its holder went away (lease taken over or run out). */
export interface LiveEndEvent {
  readonly type: "end";
  readonly invocation: string;
  readonly outcome: "committed" | "interrupted" | "aborted" | "stopped" | "lost";
  readonly version: number;
  readonly status: Status;
}

/** A version committed by a checkpoint, or by a turn whose parts this follower did not see begin. */
export interface LiveCommitEvent {
  readonly type: "commit";
  readonly version: number;
  readonly status: Status;
}

export type LiveEvent = LivePartEvent | LiveEndEvent | LiveCommitEvent;

/** `session.stop()` options. */
export interface StopOptions {
  /** Recorded in the `stopped` history event and given to the holder (default "stop requested"); at
   * most 4096 UTF-8 bytes (a ValidationError at `options.reason` beyond). */
  reason?: string;
  /** How long (ms) the holder may take to end the turn before it is fenced: a non-negative integer,
   * default 5000 (0 fences at once). */
  graceMs?: number;
}

/** How `session.stop()` ended: `stopped` by the holder, `fenced` after the grace, `idle` when nothing ran. */
export interface StopResult {
  readonly outcome: "idle" | "stopped" | "fenced";
  readonly invocation?: string;
  readonly version: number;
}

// ---------------------------------------------------------------------------------------------
// Classes (no public constructors: the static factories and methods create them)

export declare class SessionStore {
  private constructor();
  /** An in-process store; two memory stores share nothing. */
  static memory(options?: StoreOptions): Promise<SessionStore>;
  /** IndexedDB, shared by every tab and worker of the origin. */
  static indexedDb(options?: IndexedDbStoreOptions): Promise<SessionStore>;
  /** A host-supplied KV store; rejects with `UnsafeStoreError` when it is not atomic, unless `allowNonAtomic`. */
  static kv(kv: HostKv, options?: KvStoreOptions): Promise<SessionStore>;
  /** Memory of the WebAssembly instance (shared by every store in it). */
  static memoryUsage(): MemoryUsage;

  /** Creates the session when absent unless `create: false` (then `NotFoundError`); no id: a new random id. */
  open(id?: string, options?: OpenOptions): Promise<Session>;
  list(options?: ListOptions): Promise<ListResult>;
  /**
   * `true` when the session existed. The head goes first, then the other records; when a backend
   * failure stops that part-way (`StorageError`), the next `delete(id)` resolves `false` and deletes
   * what was left.
   */
  delete(id: string): Promise<boolean>;
  /** Deletes expired sessions; resolves to how many. */
  sweepExpired(options?: SweepOptions): Promise<number>;
  /**
   * Every commit, and an `import` (one change, at the imported version); returns the unsubscribe
   * function. Heard: the commits of this store; on IndexedDB, those of every store of the origin (other
   * tabs and workers); on a HostKv, those of every store of this realm over the same HostKv object and
   * prefix (another process's or isolate's commits are not reported: a KV host has no channel). What
   * the listener throws, or its promise rejects with, is ignored.
   */
  onChange(listener: (change: StoreChange) => void): () => void;
  /** What the cache holds now (bytes approximate). */
  cacheUsage(): CacheUsage;
  /** Writes an export as a new session: same versions, history, messages, state, status and pending
   * interrupt, never a lease. An existing id is a `ValidationError` (path `id`); a malformed export a
   * `ValidationError` or `LimitExceededError` naming the path, with nothing written. */
  import(data: SessionExport, options?: ImportOptions): Promise<Session>;
  /** Every session (whose id starts with `prefix`), one export at a time: a backup. A session whose
   * head cannot be decoded rejects the iteration with `CorruptRecordError` (it is not skipped). */
  export(options?: ExportOptions): AsyncIterableIterator<SessionExport>;
  /** Refuses further use and frees every cached session view at once (and a memory store's sessions,
   * which nothing can reach again). An invocation still open stops
   * renewing its lease (its commit is refused, its `signal` aborts with a `StoreClosedError`): the
   * session is free once the lease runs out (`leaseMs`), or at once after its `abort()`; on IndexedDB
   * at once, as closing releases the tab's Web Lock that holds the lease. */
  close(): Promise<void>;
}

/** A read view of the last committed version of a session; reads never need the guard. */
export declare class Session {
  private constructor();
  readonly id: string;
  /** 0 for a new session, +1 per commit. */
  readonly version: number;
  /** By the store's clock: a running session whose lease lapsed reads "idle". */
  readonly status: Status;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly expiresAt: number | null;

  messages(options?: AgentOptions): readonly ReadonlyJson[];
  state(options?: AgentOptions): Readonly<Record<string, ReadonlyJson>>;
  /** One committed state value, or `undefined`: reads that one value without building the others. */
  stateValue(key: string, options?: AgentOptions): ReadonlyJson | undefined;
  pendingInterrupt(): PendingInterrupt | null;
  /** Reloads the latest committed version; resolves to this same object. */
  refresh(): Promise<this>;

  /** Takes the guard; fails fast with `ConcurrencyError` unless `onBusy: { waitMs }`. */
  begin(options?: BeginOptions): Promise<Invocation>;
  /** begin, run fn, commit; aborts and rethrows if fn throws; always releases. */
  invoke<T>(fn: (inv: Invocation) => T | PromiseLike<T>, options?: BeginOptions): Promise<Awaited<T>>;
  history(options?: HistoryOptions): Promise<readonly SessionEvent[]>;
  /** Read-only state as of a version. */
  at(version: number): Promise<SessionView>;
  /** A new session (version 1, idle) holding this one's messages and state as of `at`, its history
   * `created`, `forked` (`{ from, version }`), then the copies. It keeps the metadata; its TTLs are
   * the store's defaults (not this session's), and a pending interrupt is not copied. Written whole, in one commit, or not at
   * all; an existing id is a `ValidationError` (path `id`); copies over `limits.maxCommitBytes` a
   * `LimitExceededError` (fork at an earlier version, or compact first). */
  fork(options?: ForkOptions): Promise<Session>;
  /** This session's commits, from the stores `SessionStore.onChange` hears; the view has caught up when it is called. */
  onChange(listener: (change: SessionChange) => void): () => void;
  /** Terminal; takes the guard like `begin`. */
  close(): Promise<void>;
  /** A live view: the parts of the running turn (replayed from its start, or after `after`), then
   * new parts as they are flushed, an `end` per turn, and the same for every later turn, until the
   * caller breaks out, `signal` aborts, or the session is closed, expired or deleted. Throws
   * `ValidationError` for bad options, `StoreClosedError` once the store was closed. */
  follow(options?: FollowOptions): AsyncIterableIterator<LiveEvent>;
  /** Asks the running turn to stop (without taking the lease); resolves once it ended. */
  stop(options?: StopOptions): Promise<StopResult>;
  /** Takes the guard; deletes the batches and snapshots only versions below `before` need (with
   * `before` the latest version, after writing a snapshot of it); resolves to how many records went.
   * `at()` and `history()` of a pruned version are a `NotFoundError` saying so. A closed session can
   * be pruned (it stays closed); `before` past the latest version is a `NotFoundError`, and one with
   * nothing to prune resolves to 0, both without taking the guard. */
  prune(options: PruneOptions): Promise<number>;
  /** The session's retained history and facts as plain JSON (`agent-session.export/1`). */
  export(): Promise<SessionExport>;
  /** Frees the store's cached view of this session now (a running invocation keeps it); every
   * `Session` object of the id loads it again on its next async use. Same as `dispose()`. */
  [Symbol.dispose](): void;
  dispose(): void;
}

/** Holds the guard; the only way to change a session. */
export declare class Invocation {
  private constructor();
  readonly id: string;
  /** Fencing token of this invocation's lease. */
  readonly token: number;
  readonly session: Session;
  /** Aborts when `session.stop()` is called (reason: a `StopRequestedError`), when the lease is lost
   * (a `LeaseLostError`), when its store is closed while nothing is being written (a
   * `StoreClosedError`) and when the invocation ends (an `AbortError` DOMException). */
  readonly signal: AbortSignal & { readonly aborted: boolean; readonly reason: any };

  /** Appends a part to the turn's live log (not history); validated now like a message; returns
   * its seq (0, 1, 2, ...). Throws `InvalidTransitionError` once the invocation ended. */
  emit<T>(part: T & JsonInputOf<T>): number;
  /** Resolves once every emitted part is durable and visible to followers. */
  flush(): Promise<void>;
  /** Staged like `appendMessage`, committed with the turn: the agent's first `before` messages are
   * replaced by `summary` in `messages()`; `history()` keeps the originals and adds a `compacted`
   * event. A cut between a tool call and its result is a `ValidationError` naming the call id
   * (path `before`) unless `force`. */
  compact(options: CompactOptions): void;

  /** Staged, validated now (throws `ValidationError` / `LimitExceededError`). */
  appendMessage<T>(message: T & JsonInputOf<T>, options?: AgentOptions): void;
  setState<T>(key: string, value: T & JsonInputOf<T>, options?: AgentOptions): void;
  deleteState(key: string, options?: AgentOptions): void;
  /** Committed + staged (read your writes). */
  messages(options?: AgentOptions): readonly ReadonlyJson[];
  state(options?: AgentOptions): Readonly<Record<string, ReadonlyJson>>;
  /** One state value as this invocation sees it (what it staged over what is committed), or `undefined`. */
  stateValue(key: string, options?: AgentOptions): ReadonlyJson | undefined;
  renew(): Promise<void>;
  /** Writes the staged events as a new version and keeps the lease; resolves to the new version.
   * While it writes, the invocation stays open: reads see what it writes, and staging and `emit()` go
   * on (a framework's next step runs meanwhile); what is staged then goes to the next commit or
   * checkpoint, counted with what this one writes against `limits.maxCommitBytes` (a retry after it
   * fails writes them together). A `commit()`, `checkpoint()`, `interrupt()` or `abort()` called
   * before it settles is an InvalidTransitionError (`from: "committing"`): await it first. */
  checkpoint(): Promise<number>;
  /** Writes the staged events as a new version and releases; resolves to the new version. */
  commit(): Promise<number>;
  /** Discards the staged events and releases. */
  abort(): Promise<void>;
  /** Commits the staged events and the interrupt, releases; the status becomes "interrupted". The
   * reason is at most 4096 UTF-8 bytes (a ValidationError beyond). */
  interrupt<T>(reason: string, payload?: T & JsonInputOf<T>): Promise<number>;
  /** Aborts if neither committed nor aborted; a no-op afterwards. */
  [Symbol.asyncDispose](): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Errors

export type ErrorCode =
  | "CONCURRENT_INVOCATION"
  | "LEASE_LOST"
  | "VERSION_CONFLICT"
  | "INVALID_TRANSITION"
  | "NOT_FOUND"
  | "SESSION_EXPIRED"
  | "SESSION_CLOSED"
  | "INVALID_INPUT"
  | "LIMIT_EXCEEDED"
  | "CORRUPT_RECORD"
  | "STORAGE"
  | "UNSAFE_STORE"
  | "STORE_CLOSED"
  | "STOP_REQUESTED"
  | "SCHEMA_VERSION"
  | "MIGRATION_FAILED";

/** Where a refused move started from: a session status or an invocation phase. */
export type TransitionFrom = Status | "committing" | "committed" | "aborted" | "lease-lost";

export declare class AgentSessionError extends Error {
  constructor(message?: string, options?: { cause?: unknown });
  /** Stable, for programs; never match on the message. */
  readonly code: string;
}

/** Another invocation holds the session. */
export declare class ConcurrencyError extends AgentSessionError {
  readonly code: "CONCURRENT_INVOCATION";
  /** Owner name of the store whose lease holds the session. */
  readonly holder: string;
  /** Time until that lease ends, by the store's clock. */
  readonly retryAfterMs: number;
}

/** This invocation's lease expired or was taken (or its session was deleted); nothing staged since its
 * last checkpoint is visible. */
export declare class LeaseLostError extends AgentSessionError {
  readonly code: "LEASE_LOST";
}

/** The head changed under a compare-and-set that was not about a lease. */
export declare class ConflictError extends AgentSessionError {
  readonly code: "VERSION_CONFLICT";
}

/** A lifecycle move that the current status or invocation phase does not allow. */
export declare class InvalidTransitionError extends AgentSessionError {
  readonly code: "INVALID_TRANSITION" | "SESSION_CLOSED" | "SESSION_EXPIRED";
  readonly from: TransitionFrom;
  readonly action: string;
}

export declare class SessionClosedError extends InvalidTransitionError {
  readonly code: "SESSION_CLOSED";
}

export declare class SessionExpiredError extends InvalidTransitionError {
  readonly code: "SESSION_EXPIRED";
}

/** Open with `create: false`, or `at()` / `history()` of a version that does not exist. */
export declare class NotFoundError extends AgentSessionError {
  readonly code: "NOT_FOUND";
}

/** Bad id, non-JSON value, bad option. */
export declare class ValidationError extends AgentSessionError {
  readonly code: "INVALID_INPUT";
  /** Path to the offending part of a value. */
  readonly path?: string;
}

/** A configured size limit. */
export declare class LimitExceededError extends AgentSessionError {
  readonly code: "LIMIT_EXCEEDED";
  readonly limit: number;
  readonly actual: number;
}

/** A stored record cannot be decoded. */
export declare class CorruptRecordError extends AgentSessionError {
  readonly code: "CORRUPT_RECORD";
  readonly key: string;
}

/** The backing store failed (including a quota error). */
export declare class StorageError extends AgentSessionError {
  readonly code: "STORAGE";
  readonly cause: unknown;
}

/** Guarded use of a store without atomic compare-and-set. */
export declare class UnsafeStoreError extends AgentSessionError {
  readonly code: "UNSAFE_STORE";
}

/** The `SessionStore` was closed: every further call through it (`onChange` and `follow()` included),
 * and reads of its sessions' messages and state (close() freed its cached views), are refused;
 * `cacheUsage()` still answers (zero: what close() freed), and a session's `id`, `version`, `status`. */
export declare class StoreClosedError extends AgentSessionError {
  readonly code: "STORE_CLOSED";
}

/** The reason of `inv.signal` when `session.stop()` was called. */
export declare class StopRequestedError extends AgentSessionError {
  readonly code: "STOP_REQUESTED";
  /** The reason given to `stop()`. */
  readonly reason: string;
  /** The owner name of the store that called `stop()`. */
  readonly by: string;
}

/** A session stored under a newer application schema than this store's `schema.version`. */
export declare class SchemaVersionError extends AgentSessionError {
  readonly code: "SCHEMA_VERSION";
  readonly stored: number;
  readonly supported: number;
}

/** A schema migration threw, returned what is not JSON, or is missing; nothing was written. */
export declare class MigrationError extends AgentSessionError {
  readonly code: "MIGRATION_FAILED";
  readonly from: number;
  readonly to: number;
  readonly cause: unknown;
}
