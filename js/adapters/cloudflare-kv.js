// HostKv over a Workers KV namespace. Workers KV is eventually consistent (a write can take 60 s or
// more to reach other locations) and has no compare-and-set, so this adapter declares
// `atomic: false` and `SessionStore.kv()` refuses it unless given `allowNonAtomic: true`. With that
// option the guard is best effort: the "compare" below is a read followed by a write, and two
// isolates (or two locations) can both pass it. Keep sessions in a Durable Object to have the guard.
//
// The version lives in the key's metadata (`{ v }`), written with the value in one put.

import { bytesOf, holds, invalidArgument, newVersion, notAValue } from "./values.js";

/** Workers KV refuses an `expirationTtl` under 60 seconds. */
const MIN_TTL_MS = 60_000;
/** Workers KV's value limit. */
const MAX_VALUE_BYTES = 25 * 1024 * 1024;
/** Workers KV's largest list page. */
const MAX_LIST = 1000;

/**
 * A best-effort `HostKv` over a Workers KV namespace binding (`env.MY_KV`): `atomic: false`.
 * @param {object} namespace a `KVNamespace`
 */
export function cloudflareKv(namespace) {
  for (const method of ["getWithMetadata", "put", "delete", "list"]) {
    if (typeof namespace?.[method] !== "function") {
      throw invalidArgument(`cloudflareKv: namespace has no ${method}() method; pass a KV namespace binding`);
    }
  }

  /** The current version of `key`, or null when absent, reading the metadata without the value. */
  async function currentVersion(key) {
    const { value, metadata } = await namespace.getWithMetadata(key, { type: "stream" });
    if (value === null) return null;
    await value.cancel();
    return typeof metadata?.v === "string" ? metadata.v : "";
  }

  return {
    capabilities: { atomic: false, maxValueBytes: MAX_VALUE_BYTES, minTtlMs: MIN_TTL_MS },

    async get(key) {
      const { value, metadata } = await namespace.getWithMetadata(key, { type: "arrayBuffer" });
      if (value === null) return null;
      // A value written by something other than this adapter has no version; "" never equals a real one.
      return { value: new Uint8Array(value), version: typeof metadata?.v === "string" ? metadata.v : "" };
    },

    async put(key, value, { expectedVersion, ttlMs } = {}) {
      const bytes = bytesOf(value);
      if (expectedVersion !== undefined && !holds(await currentVersion(key), expectedVersion)) return null;
      if (bytes === undefined) throw notAValue("cloudflareKv", key);
      const version = newVersion();
      const options = { metadata: { v: version } };
      if (ttlMs !== undefined) options.expirationTtl = Math.ceil(Math.max(ttlMs, MIN_TTL_MS) / 1000);
      await namespace.put(key, bytes, options);
      return version;
    },

    async delete(key, { expectedVersion } = {}) {
      const current = await currentVersion(key);
      if (current === null || !holds(current, expectedVersion)) return false;
      await namespace.delete(key);
      return true;
    },

    async list(prefix, { cursor, limit } = {}) {
      const keys = [];
      let next = cursor;
      for (;;) {
        const page = await namespace.list({ prefix, limit: Math.min(limit ?? MAX_LIST, MAX_LIST), ...(next ? { cursor: next } : {}) });
        for (const { name } of page.keys) keys.push(name);
        if (page.list_complete) return { keys };
        next = page.cursor;
        // With a limit the caller pages on; without one, read them all.
        if (limit !== undefined) return { keys, cursor: next };
      }
    },
  };
}
