// Types of agent-session/adapters: the adapters that turn a host's KV client into a `HostKv`.
//
// Each `*Like` type is structural and names only what its adapter calls, so a real client (Deno.Kv,
// @deno/kv, node-redis, ioredis, @upstash/redis, DurableObjectStorage, KVNamespace) fits without this package
// depending on the client's own type package. Like ../index.d.ts, this file type-checks with
// `lib: ["es2022"]` alone.

import type { HostKv } from "../index.d.ts";

/**
 * The HostKv value rule, which the engine and every adapter below hold (HostKv is declared in
 * ../index.d.ts; tests/js/adapters/contract.mjs checks the rule on every adapter):
 *
 * - A value is bytes, given as a `Uint8Array` of any realm (the bytes of its view only; a Node `Buffer`,
 *   and one made outside Jest's sandbox or in an iframe, which is not `instanceof` this realm's
 *   Uint8Array, alike: js/runtime.js `uint8View`) or as a string that is
 *   their standard base64: RFC 4648 section 4, alphabet `A-Z a-z 0-9 + /`, padded with `=` to a
 *   multiple of 4 characters, nothing else in it (no whitespace, no line breaks, not base64url).
 *   The string means the bytes it decodes to, never the text itself (the engine decodes it with
 *   `fromBase64` of js/runtime.js; non-zero pad bits are ignored, as `atob` does).
 * - `get(key)` resolves to `{ value, version }` with `value` in either form, the two meaning the
 *   same bytes. The adapters of this package always return a `Uint8Array` of the stored bytes.
 * - `put(key, value, options)` takes either form and stores the bytes: a get then returns those
 *   bytes, whichever form the put was given.
 * - Any other value given to `put` (a string that is not standard base64, or anything that is not a
 *   `Uint8Array` or a string) is refused with a `TypeError` whose `code` is `"INVALID_INPUT"` (the
 *   promise rejects; the adapter factories throw the same for what they are given), and it never
 *   writes anything. The compare-and-set condition comes first: when `expectedVersion` does not
 *   hold, the put resolves to `null` (or `{ current }` when asked by `reportCurrent`) as any refused
 *   put does, without looking at the value; only a put whose condition holds, or that has none,
 *   rejects with the `TypeError`. For such a put the condition may be decided by a plain read of
 *   the key, since nothing is written after it.
 */
export type { HostKv, HostKvEntry, HostKvPutOptions, HostKvCapabilities, HostKvWrite } from "../index.d.ts";

/** Options of the adapters that have a per-value size limit (any other name is refused with the
 * `TypeError` of code `"INVALID_INPUT"`, as a `maxValueBytes` below 64 or not an integer is). */
export interface AdapterOptions {
  /** The largest value the backend takes; the store splits larger records into chunks of this size. */
  maxValueBytes?: number;
}

// ---------------------------------------------------------------------------------------------
// memoryKv

/** A new, empty, in-process `HostKv` (atomic; no `commit`); stores built on the same object share its
 * sessions. */
export declare function memoryKv(): HostKv;

// ---------------------------------------------------------------------------------------------
// denoKv

/** A Deno KV key as `denoKv` writes it: `["agent-session", key]`. */
export type DenoKvKeyLike = readonly string[];

/** What `denoKv` calls on an atomic operation (`Deno.AtomicOperation`). */
export interface DenoAtomicOperationLike {
  check(...checks: { key: DenoKvKeyLike; versionstamp: string | null }[]): DenoAtomicOperationLike;
  set(key: DenoKvKeyLike, value: unknown, options?: { expireIn?: number }): DenoAtomicOperationLike;
  delete(key: DenoKvKeyLike): DenoAtomicOperationLike;
  commit(): Promise<{ ok: true; versionstamp: string } | { ok: false }>;
}

/** What `denoKv` calls on a Deno KV database (`Deno.Kv` of `Deno.openKv()`, or `@deno/kv`'s `openKv()`). */
export interface DenoKvLike {
  get(key: DenoKvKeyLike): Promise<{ value: unknown; versionstamp: string | null }>;
  list(
    selector: { start: DenoKvKeyLike; end: DenoKvKeyLike },
    options?: { limit?: number },
  ): AsyncIterable<{ key: readonly unknown[]; value: unknown }>;
  atomic(): DenoAtomicOperationLike;
}

/** Deno KV (`Deno.openKv()` or `@deno/kv`): versionstamps as versions, `expireIn` TTL; `maxValueBytes`
 * defaults to 64 KiB. `commit` is one atomic operation up to 1000 writes and deletes and ~784 KiB; a
 * larger one is the records' operations, then the head's, then the deletes. */
export declare function denoKv(kv: DenoKvLike, options?: AdapterOptions): HostKv;

// ---------------------------------------------------------------------------------------------
// redisKv

/** An ioredis 5+ client (`new Redis()`) or cluster client (`new Redis.Cluster()`). */
export interface IoRedisLike {
  callBuffer(...args: any[]): Promise<unknown>;
  readonly isCluster?: boolean;
  nodes?(role?: any): IoRedisLike[];
}

/** A node-redis 4+ client (`createClient()`, connected). */
export interface NodeRedisClientLike {
  sendCommand(...args: any[]): Promise<unknown>;
}

/** A node-redis 4+ cluster client (`createCluster()`, connected). */
export interface NodeRedisClusterLike {
  sendCommand(...args: any[]): Promise<unknown>;
  nodeClient(node: any): unknown;
}

/** An Upstash REST client (`new Redis({ url, token })` of @upstash/redis, any `responseEncoding` and
 * `automaticDeserialization`): told apart by having `evalsha` and no `sendCommand` / `callBuffer`. */
export interface UpstashRedisLike {
  evalsha(...args: any[]): Promise<unknown>;
  eval(...args: any[]): Promise<unknown>;
  pipeline?(): any;
}

/** A Redis client: node-redis 4+ or ioredis 5+ (connected; single node or cluster), or Upstash's REST client. */
export type RedisClientLike = IoRedisLike | NodeRedisClientLike | NodeRedisClusterLike | UpstashRedisLike;

/**
 * Redis: compare-and-set by one Lua script, TTL by PEXPIRE, list by SCAN. The caller owns the client
 * (closing the store does not close it). All keys of a session share one cluster hash slot, and
 * `commit` is one script over them (keys outside the head's slot: the records' puts, then the head's).
 *
 * With an Upstash REST client every operation is a Lua script, values go as base64 that the script
 * decodes (and come back base64-encoded by it), so the data in Redis is the same as through node-redis
 * or ioredis and one database can be shared by both. `maxValueBytes` defaults to 512 KiB there (a
 * value's base64 stays under a 1 MB request); a commit carrying more than `maxValueBytes` of values is
 * the records' puts, then the head's. Other clients: no limit unless told.
 */
export declare function redisKv(client: RedisClientLike, options?: AdapterOptions): HostKv;

// ---------------------------------------------------------------------------------------------
// durableObjectKv

/** What `durableObjectKv` calls on Durable Object storage (`ctx.storage`, KV- or SQLite-backed). */
export interface DurableObjectStorageLike {
  get(keys: string[]): Promise<Map<string, unknown>>;
  put(entries: Record<string, unknown>): Promise<void>;
  delete(keys: string[]): Promise<number>;
  list(options?: { prefix?: string; limit?: number; startAfter?: string }): Promise<Map<string, unknown>>;
  transaction?<T>(closure: (txn: DurableObjectStorageLike) => Promise<T>): Promise<T>;
}

/** Durable Object storage (`ctx.storage`): atomic, `commit` in one transaction; `maxValueBytes` defaults
 * to 128 KiB. */
export declare function durableObjectKv(storage: DurableObjectStorageLike, options?: AdapterOptions): HostKv;

// ---------------------------------------------------------------------------------------------
// cloudflareKv

/** What `cloudflareKv` calls on a Workers KV namespace binding (`env.MY_KV`). */
export interface KvNamespaceLike {
  getWithMetadata(key: string, options: any): Promise<{ value: any; metadata: unknown }>;
  put(
    key: string,
    value: string | ArrayBuffer | ArrayBufferView,
    options?: { metadata?: unknown; expirationTtl?: number },
  ): Promise<void>;
  delete(key: string): Promise<void>;
  list(options?: {
    prefix?: string | null;
    limit?: number;
    cursor?: string | null;
  }): Promise<{ keys: { name: string }[]; list_complete: boolean; cursor?: string }>;
}

/**
 * Workers KV: eventually consistent, no compare-and-set, so `capabilities.atomic` is false and
 * `SessionStore.kv()` refuses it unless `allowNonAtomic: true` (best effort; use a Durable Object).
 * No `commit`.
 */
export declare function cloudflareKv(namespace: KvNamespaceLike): HostKv;
