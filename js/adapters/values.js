// What the adapters share about values and versions.
import { fromBase64, toBase64Url } from "../runtime.js";

/** A version no earlier write of the key can have had: 96 random bits, base64url. */
export function newVersion() {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return toBase64Url(bytes);
}

/** The bytes of a value: a Uint8Array, or a string holding them in base64 (the HostKv contract). */
export function bytesOf(value, adapter) {
  if (value instanceof Uint8Array) return value;
  const bytes = typeof value === "string" ? fromBase64(value) : undefined;
  if (bytes === undefined) throw new TypeError(`${adapter}: a value must be a Uint8Array or a base64 string`);
  return bytes;
}

/** Below this SessionStore.kv refuses to chunk a record (src/store/host_kv.rs, `put`). */
const MIN_MAX_VALUE_BYTES = 64;

/** The `maxValueBytes` option of an adapter, `fallback` when absent. Checked here, when the adapter is
 * made, because SessionStore.kv reads 0, a negative number or NaN as "no limit", truncates a fraction,
 * and says nothing about a small limit until a commit fails with LimitExceededError. */
export function maxValueBytesOf(options, fallback, adapter) {
  const max = options.maxValueBytes ?? fallback;
  if (max !== undefined && (!Number.isInteger(max) || max < MIN_MAX_VALUE_BYTES)) {
    throw new TypeError(`${adapter}: maxValueBytes must be an integer of at least ${MIN_MAX_VALUE_BYTES}`);
  }
  return max;
}
