// What the adapters share about values and versions.
import { fromBase64, toBase64Url, uint8View } from "../runtime.js";

/** A version no earlier write of the key can have had: 96 random bits, base64url. */
export function newVersion() {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return toBase64Url(bytes);
}

/**
 * The bytes of a value given to `put`, by the HostKv value rule (js/adapters/index.d.ts): a
 * Uint8Array is the bytes (of its view only), a string is their standard base64. Undefined for
 * anything else, a string that is not standard base64 included: the adapter then checks the put's
 * condition first and throws `notAValue(...)` only where it holds, writing nothing either way.
 */
export function bytesOf(value) {
  const bytes = uint8View(value); // of any realm
  if (bytes !== undefined) return bytes;
  return typeof value === "string" ? fromBase64(value) : undefined;
}

/** An adapter's refusal of what it was given: a TypeError (the HostKv contract's), with the stable
 * `code` of the package's ValidationError, so that callers can tell it by its code as they do the
 * store's own. */
export function invalidArgument(message) {
  return Object.assign(new TypeError(message), { code: "INVALID_INPUT" });
}

/** An adapter's error for a key that holds what it did not write (another program's value, a Redis key
 * of another type): its `code` CORRUPT_RECORD makes the store report a CorruptRecordError naming the
 * key, which `list()` and `sweepExpired()` leave out and go on. */
export function corruptRecord(message) {
  return Object.assign(new Error(message), { code: "CORRUPT_RECORD" });
}

/** The TypeError of a put whose value `bytesOf` refused (thrown once the put's condition has held). */
export function notAValue(adapter, key) {
  return invalidArgument(
    `${adapter}: put(${JSON.stringify(String(key))}): a value must be a Uint8Array or a standard base64 string (RFC 4648, padded)`,
  );
}

/** Whether a put or delete's `expectedVersion` holds for a key whose version is `version` (null: absent). */
export function holds(version, expectedVersion) {
  if (expectedVersion === undefined) return true;
  if (expectedVersion === null) return version === null;
  return version !== null && version === expectedVersion;
}

/** Below this SessionStore.kv refuses to chunk a record (src/store/host_kv.rs, `put`). */
const MIN_MAX_VALUE_BYTES = 64;

/** The `maxValueBytes` option of an adapter (`options`, which holds no other), `fallback` when absent. Checked here, when the adapter is
 * made, because SessionStore.kv reads 0, a negative number or NaN as "no limit", truncates a fraction,
 * and says nothing about a small limit until a commit fails with LimitExceededError. */
export function maxValueBytesOf(options, fallback, adapter) {
  // Its only option: a misspelt one would otherwise leave the backend's limit unset, found out at the
  // first large commit.
  if (options === null || typeof options !== "object") {
    throw invalidArgument(`${adapter}: options must be an object such as { maxValueBytes: 65536 }, or left out`);
  }
  for (const name of Object.keys(options)) {
    if (name !== "maxValueBytes") {
      throw invalidArgument(`${adapter}: options.${name} is not an option here (it takes maxValueBytes); leave it out or fix its name`);
    }
  }
  const max = options.maxValueBytes ?? fallback;
  if (max !== undefined && (!Number.isInteger(max) || max < MIN_MAX_VALUE_BYTES)) {
    throw invalidArgument(`${adapter}: maxValueBytes must be an integer of at least ${MIN_MAX_VALUE_BYTES}`);
  }
  return max;
}

/** A session commit as separate writes, for an adapter's `commit` that its backend cannot take in one
 * operation: the records at once, then the head's compare-and-set (what SessionStore.kv does over an
 * adapter without `commit`), then, once the head is written, the `deletes` at once. The head's new
 * version, or null. */
export async function commitByPuts(kv, records, head, deletes = []) {
  await Promise.all(records.map((record) => kv.put(record.key, record.value)));
  const version = await kv.put(head.key, head.value, { expectedVersion: head.expectedVersion, ttlMs: head.ttlMs });
  if (version !== null) await Promise.all(deletes.map((key) => kv.delete(key)));
  return version;
}
