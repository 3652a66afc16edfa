// HostKv over Deno KV: `Deno.openKv()` in Deno and on Deno Deploy, or `openKv()` of the `@deno/kv`
// npm package (SQLite file, in-memory or remote) in Node. Only get, list and atomic() are called.
//
// Layout: each string key is ONE key part, under a namespace part: ["agent-session", key], and its
// value is the bytes, a Uint8Array (a base64 string given to put is decoded first). Deno KV's own
// `prefix` lists match whole key parts (["agent-session", "h/a~"] is not under the prefix
// ["agent-session", "h/"]), so a string prefix is listed as the range [prefix, prefix + U+10FFFF)
// of the second part, which holds exactly the strings starting with the prefix.
//
// Versions are Deno's versionstamps: set by the database on every commit, increasing across the
// whole database, so a key deleted and written again never gets an old one back. Compare-and-set
// is one atomic operation, `atomic().check({ key, versionstamp }).set(...).commit()`; a
// versionstamp of null checks that the key does not exist. A session commit (`commit(records,
// head, deletes)`) is one atomic operation too: the head's check, the deletes, a set of each record,
// then of the head.
//
// TTL: `expireIn`. Deno KV deletes an expired key late (the SQLite backend sweeps once a minute)
// and `get` returns it until then, which is why the store keeps each head's expiry in the head.
//
// Deno KV refuses a value over 64 KiB; maxValueBytes defaults to that and the store chunks larger
// records.
//
// Two handles on one SQLite file (two `openKv(path)`, as two isolates or processes would have):
// when both write at once, @deno/kv's SQLite backend fails the commit with "database is locked"
// (SQLITE_BUSY) instead of waiting for the other writer. Such a commit wrote nothing (checked in
// tests/js/adapters/deno-kv.test.mjs), so it is retried, with a short random backoff, for up to
// BUSY_RETRY_MS.

import { bytesOf, commitByPuts, corruptRecord, holds, invalidArgument, maxValueBytesOf, notAValue } from "./values.js";

/** The first key part of every key this adapter writes. */
const NAMESPACE = "agent-session";
/** Deno KV's value limit. */
const DEFAULT_MAX_VALUE_BYTES = 65536;
/** Sorts after every character that a key can hold, so [prefix, prefix + END) is the string prefix. */
const END = "\u{10FFFF}";
/** What a versionstamp looks like; anything else cannot be the current version of a key. */
const VERSIONSTAMP = /^[0-9a-f]{20}$/;
/** One atomic operation takes at most this many mutations and bytes of keys and values (Deno KV's
 * limits, 1000 and 800 KiB, with room for the key parts' encoding); a larger session commit is the
 * records' own operations, then the head's, then the deletes. */
const MAX_ATOMIC_MUTATIONS = 1000;
const MAX_ATOMIC_BYTES = 800 * 1024 - 16 * 1024;
/** How long a commit that SQLite reports busy is retried. */
const BUSY_RETRY_MS = 2000;

/** `op().commit()`, again while the SQLite backend says the database is locked by another handle. */
async function commit(op) {
  const start = Date.now();
  for (;;) {
    try {
      return await op().commit();
    } catch (error) {
      if (!/database is locked/.test(String(error?.message)) || Date.now() - start > BUSY_RETRY_MS) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 10));
    }
  }
}

/**
 * A `HostKv` over a Deno KV database (`await Deno.openKv()`, or `openKv()` of `@deno/kv`).
 * @param {object} kv an open `Deno.Kv`
 * @param {{ maxValueBytes?: number }} [options] larger values are chunked by the store; default 64 KiB
 */
export function denoKv(kv, options = {}) {
  for (const method of ["get", "list", "atomic"]) {
    if (typeof kv?.[method] !== "function") {
      throw invalidArgument(`denoKv: kv has no ${method}() method; pass the result of Deno.openKv()`);
    }
  }
  const maxValueBytes = maxValueBytesOf(options, DEFAULT_MAX_VALUE_BYTES, "denoKv");
  const keyOf = (key) => [NAMESPACE, String(key)];

  const adapter = {
    capabilities: Object.freeze({ atomic: true, maxValueBytes }),

    async get(key) {
      const entry = await kv.get(keyOf(key));
      if (entry.versionstamp === null) return null;
      const value = bytesOf(entry.value);
      if (value === undefined) {
        throw corruptRecord(`denoKv: the value at ${JSON.stringify(String(key))} is not bytes; was it written by something else?`);
      }
      return { value, version: entry.versionstamp };
    },

    async put(key, value, options = {}) {
      const { expectedVersion, ttlMs } = options;
      if (typeof expectedVersion === "string" && !VERSIONSTAMP.test(expectedVersion)) return null;
      const bytes = bytesOf(value);
      if (bytes === undefined) {
        // Not a value, so nothing is written: a refused condition still answers null (one read
        // decides it), and only a condition that holds meets the TypeError.
        if (expectedVersion !== undefined && !holds((await kv.get(keyOf(key))).versionstamp, expectedVersion)) return null;
        throw notAValue("denoKv", key);
      }
      const result = await commit(() => {
        const op = kv.atomic();
        if (expectedVersion !== undefined) op.check({ key: keyOf(key), versionstamp: expectedVersion });
        return op.set(keyOf(key), bytes, ttlMs > 0 ? { expireIn: Math.ceil(ttlMs) } : undefined);
      });
      return result.ok ? result.versionstamp : null;
    },

    async commit(records, head, deletes = []) {
      const expected = head.expectedVersion;
      if (typeof expected === "string" && !VERSIONSTAMP.test(expected)) return null;
      const writes = [...records, head].map((write) => {
        const bytes = bytesOf(write.value);
        if (bytes === undefined) throw notAValue("denoKv", write.key); // before anything is written
        return [keyOf(write.key), bytes];
      });
      const size = writes.reduce((sum, [key, bytes]) => sum + key[1].length * 3 + bytes.length, 0);
      if (writes.length + deletes.length > MAX_ATOMIC_MUTATIONS || size > MAX_ATOMIC_BYTES) {
        return commitByPuts(adapter, records, head, deletes);
      }
      const result = await commit(() => {
        const op = kv.atomic();
        if (expected !== undefined) op.check({ key: keyOf(head.key), versionstamp: expected });
        for (const key of deletes) op.delete(keyOf(key));
        for (const [key, bytes] of writes.slice(0, -1)) op.set(key, bytes);
        return op.set(...writes[writes.length - 1], head.ttlMs > 0 ? { expireIn: Math.ceil(head.ttlMs) } : undefined);
      });
      return result.ok ? result.versionstamp : null;
    },

    async delete(key, options = {}) {
      const expected = options.expectedVersion;
      if (expected === null || (typeof expected === "string" && !VERSIONSTAMP.test(expected))) return false;
      // With no expected version, delete what is there, telling whether something was: compare-and-
      // delete the version just read, again if a write came between.
      for (;;) {
        let version = expected;
        if (version === undefined) {
          version = (await kv.get(keyOf(key))).versionstamp;
          if (version === null) return false;
        }
        const result = await commit(() => kv.atomic().check({ key: keyOf(key), versionstamp: version }).delete(keyOf(key)));
        if (result.ok || expected !== undefined) return result.ok;
      }
    },

    async list(prefix, options = {}) {
      prefix = String(prefix);
      const after = options.cursor || undefined;
      const limit = options.limit > 0 ? Math.floor(options.limit) : undefined;
      if (after !== undefined && after > prefix && !after.startsWith(prefix)) return { keys: [] };
      // The cursor is the last key returned; the next key is at least that key + NUL.
      const start = after !== undefined && after >= prefix ? `${after}\0` : prefix;
      const keys = [];
      // One more than asked, to know whether there is a next page.
      const entries = kv.list(
        { start: keyOf(start), end: keyOf(prefix + END) },
        limit === undefined ? {} : { limit: limit + 1 },
      );
      for await (const entry of entries) {
        const key = entry.key[1];
        if (entry.key.length === 2 && typeof key === "string" && key.startsWith(prefix)) keys.push(key);
      }
      if (limit === undefined || keys.length <= limit) return { keys };
      keys.length = limit;
      return { keys, cursor: keys[limit - 1] };
    },
  };
  return adapter;
}
