// HostKv over Durable Object storage (`ctx.storage`), KV-backed or SQLite-backed: only get, put,
// delete, list and (when present) transaction are called, which both backends have.
//
// Each record is two keys, written and deleted together in one multi-key call (atomic on both
// backends): the bytes at `key`, as they are, and the version string at VERSION + `key`. The bytes
// stay alone in their value because the KV-backed storage refuses a serialized value larger than
// 128 KiB + 34 bytes: a 128 KiB Uint8Array fits, a 128 KiB Uint8Array inside a wrapper object with
// its version does not, and the store writes chunks of exactly `maxValueBytes`.
//
// Compare-and-set is a read then a write with nothing else awaited between them. Inside a Durable
// Object the input gate delivers no other event while a storage call is in flight, so no other
// request runs between the two; but two promise chains of one request (or of two stores in one
// object) can, so every write of every adapter on one storage object also waits its turn in a queue
// kept for that object, and runs in `transaction()` where the storage has it. A session commit
// (`commit(records, head, deletes)`) is the head's read, then the records and the head (last) written,
// then the deletes, in one such turn.
//
// TTL: Durable Object storage has none, so `ttlMs` is not used. The store keeps each session's expiry
// in its own records and `sweepExpired()` deletes expired sessions; the backend TTL is only clean-up.

import { SerialQueues } from "../frameworks/serial-queue.js";
import { bytesOf, corruptRecord, holds, invalidArgument, maxValueBytesOf, newVersion, notAValue } from "./values.js";

/** Keys of the version records: U+10FFFF sorts after every other key, so they never interleave. */
const VERSION = "\u{10FFFF}agent-session:version\u{10FFFF}";
/** The KV-backed storage's value limit (the SQLite-backed one allows 2 MB). */
const DEFAULT_MAX_VALUE_BYTES = 128 * 1024;
/** Keys per list call (`list()` also loads the values, and a value may be 128 KiB), and per put call
 * (storage's limit). */
const PAGE = 128;

/** The queue of writes per storage object, shared by every adapter over it. */
const writeQueues = new SerialQueues();

/** `value` as storage should keep it (a view of a larger buffer is copied, or the whole buffer would
 * be stored), or undefined when it is not a value (see `bytesOf`). */
function ownBytes(value) {
  const bytes = bytesOf(value);
  if (bytes === undefined) return undefined;
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/**
 * A `HostKv` over Durable Object storage, for `SessionStore.kv()` inside a Durable Object.
 * @param {object} storage `ctx.storage` (or a transaction object from it)
 * @param {{ maxValueBytes?: number }} [options] larger values are chunked by the store; default 128 KiB
 */
export function durableObjectKv(storage, options = {}) {
  for (const method of ["get", "put", "delete", "list"]) {
    if (typeof storage?.[method] !== "function") {
      throw invalidArgument(`durableObjectKv: storage has no ${method}() method; pass ctx.storage`);
    }
  }
  const maxValueBytes = maxValueBytesOf(options, DEFAULT_MAX_VALUE_BYTES, "durableObjectKv");
  /** `fn(txn)` alone among the writes to `storage`, in a transaction where there is one. */
  const atomically = (fn) =>
    writeQueues.run(storage, () => (typeof storage.transaction === "function" ? storage.transaction(fn) : fn(storage)));

  /** The record at `key` as `{ value, version }`, or null. */
  async function read(txn, key) {
    const found = await txn.get([key, VERSION + key]);
    const value = found.get(key);
    if (value === undefined) return null;
    const version = found.get(VERSION + key);
    // The adapter writes both keys at once, and only bytes: anything else is another program's.
    if (typeof version !== "string") {
      throw corruptRecord(`durableObjectKv: the value at ${JSON.stringify(key)} has no version; was it written by something else?`);
    }
    if (bytesOf(value) === undefined) {
      throw corruptRecord(`durableObjectKv: the value at ${JSON.stringify(key)} is not bytes; was it written by something else?`);
    }
    return { value, version };
  }

  const matches = (current, expected) => holds(current === null ? null : current.version, expected);

  return {
    capabilities: { atomic: true, maxValueBytes },

    async get(key) {
      return read(storage, key);
    },

    async put(key, value, { expectedVersion, reportCurrent } = {}) {
      const bytes = ownBytes(value);
      const version = newVersion();
      return atomically(async (txn) => {
        if (expectedVersion !== undefined) {
          const current = await read(txn, key);
          // `reportCurrent`: say what is there instead of null, which saves the store a read.
          if (!matches(current, expectedVersion)) return reportCurrent ? { current } : null;
        }
        // Not a value: only a condition that holds (or none) meets the TypeError; nothing is written.
        if (bytes === undefined) throw notAValue("durableObjectKv", key);
        await txn.put({ [key]: bytes, [VERSION + key]: version });
        return version;
      });
    },

    async commit(records, head, deletes = []) {
      const writes = [...records, head].map((write) => [String(write.key), ownBytes(write.value)]);
      const version = newVersion();
      return atomically(async (txn) => {
        if (head.expectedVersion !== undefined && !matches(await read(txn, String(head.key)), head.expectedVersion)) return null;
        const invalid = writes.find(([, bytes]) => bytes === undefined);
        if (invalid !== undefined) throw notAValue("durableObjectKv", invalid[0]);
        // Each record with its version, the head last; storage.put takes at most PAGE pairs at a time.
        const pairs = writes.flatMap(([key, bytes], i) => [
          [key, bytes],
          [VERSION + key, i === writes.length - 1 ? version : newVersion()],
        ]);
        for (let i = 0; i < pairs.length; i += PAGE) await txn.put(Object.fromEntries(pairs.slice(i, i + PAGE)));
        const gone = deletes.flatMap((key) => [String(key), VERSION + key]);
        for (let i = 0; i < gone.length; i += PAGE) await txn.delete(gone.slice(i, i + PAGE));
        return version;
      });
    },

    async delete(key, { expectedVersion } = {}) {
      return atomically(async (txn) => {
        const current = await read(txn, key);
        if (current === null || !matches(current, expectedVersion)) return false;
        await txn.delete([key, VERSION + key]);
        return true;
      });
    },

    async list(prefix, { cursor, limit } = {}) {
      if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
        throw invalidArgument("durableObjectKv: list limit must be a positive integer");
      }
      const keys = [];
      let after = cursor;
      for (;;) {
        const want = Math.min(PAGE, limit ?? PAGE);
        const page = await storage.list({ prefix, limit: want, ...(after === undefined ? {} : { startAfter: after }) });
        for (const key of page.keys()) {
          if (!key.startsWith(VERSION)) keys.push(key);
          after = key;
        }
        if (page.size < want) return { keys };
        // A full page: there may be more. With a limit the caller pages on; without one, read them all.
        if (limit !== undefined) return { keys, cursor: after };
      }
    },
  };
}
