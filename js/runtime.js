// What the engine needs from the JS host, the same in every runtime: randomness, timers and base64.
// The one base64 helper of the package: the adapters and the framework drop-ins import it from here
// too. It stays in this file, importing nothing, because wasm-bindgen copies the modules the Rust code
// imports (this one, for fromBase64) into its output one by one, and a copy cannot import a sibling
// that was not copied with it.

// Random bytes for ids and tokens, drawn from a pool the platform's generator fills 4 KiB at a time: a
// getRandomValues call cost about 0.01 ms of a Chromium turn (one invocation id), a copy from the pool
// a few nanoseconds. Bytes leave the pool once and are zeroed there.
const pool = new Uint8Array(4096);
let poolAt = pool.length;

export function fillRandom(bytes) {
  if (bytes.length > 256) {
    globalThis.crypto.getRandomValues(bytes);
    return;
  }
  if (poolAt + bytes.length > pool.length) {
    globalThis.crypto.getRandomValues(pool);
    poolAt = 0;
  }
  const end = poolAt + bytes.length;
  bytes.set(pool.subarray(poolAt, end));
  pool.fill(0, poolAt, end);
  poolAt = end;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, timerDelay(ms)));
}

/** The deepest nesting of a stored value (js/json.js refuses deeper ones). */
export const MAX_JSON_DEPTH = 512;

/** The longest delay a timer takes (2**31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2147483647;

/**
 * `ms` as a timer's delay: longer ones wake early, at the longest a timer takes. A host handed a
 * longer delay (a `stopPollMs` or `liveFlushMs` of 2**32 meant as "never") runs it after 1 ms
 * instead, and again and again for an interval: every waiter here checks again when it wakes.
 */
export function timerDelay(ms) {
  return Math.min(Math.max(0, ms), MAX_TIMER_MS);
}

// Intervals (the heartbeats of open invocations) share one timer, armed for the earliest of them: an
// invocation opens and ends every turn, and a setInterval plus clearInterval each time cost about
// 0.04 ms of a 1.4 ms IndexedDB turn in Chromium. Stopping one only forgets it; a timer that finds
// nothing due re-arms for what is left, or stays idle.
const intervals = new Set(); // { tick, ms, due }
let timer = null;
let timerDue = Infinity;

function arm(due) {
  if (timer !== null && timerDue <= due) return;
  if (timer !== null) clearTimeout(timer);
  timerDue = due;
  timer = setTimeout(fire, timerDelay(due - Date.now()));
  // Node: the timer must not keep the process alive.
  if (typeof timer === "object" && timer !== null && typeof timer.unref === "function") timer.unref();
}

function fire() {
  timer = null;
  timerDue = Infinity;
  const now = Date.now();
  let next = Infinity;
  for (const interval of [...intervals]) {
    if (!intervals.has(interval)) continue; // stopped by a tick before it
    if (interval.due <= now) {
      interval.due = now + interval.ms;
      interval.tick();
    }
    if (intervals.has(interval)) next = Math.min(next, interval.due);
  }
  if (next !== Infinity) arm(next);
}

/** Calls `tick` every `ms` (or a little later) without keeping a Node process alive for it. */
export function startInterval(tick, ms) {
  const interval = { tick, ms, due: Date.now() + ms };
  intervals.add(interval);
  arm(interval.due);
  return interval;
}

export function stopInterval(interval) {
  intervals.delete(interval);
}

/** `value` (a promise or not) as a promise that rejects if it has not settled within `ms`. */
export function withTimeout(value, ms, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), timerDelay(ms));
    Promise.resolve(value).then(
      (result) => {
        clearTimeout(timer);
        resolve(result);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Bytes -> standard base64 (padded). */
export function toBase64(bytes) {
  let binary = "";
  // In slices: String.fromCharCode takes its bytes as arguments, and argument lists are bounded.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Bytes -> base64url without padding, for names and versions. */
export function toBase64Url(bytes) {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Standard base64 -> bytes, or undefined when `text` is not base64. */
export function fromBase64(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// Bytes from another realm. A Uint8Array made in an iframe, a `vm` context, or outside Jest's sandbox
// (every Node Buffer there: Jest gives its tests the outer realm's Buffer) is not `instanceof` this
// realm's Uint8Array, yet it is bytes. These getters of this realm's prototypes read the internal slots,
// so they tell bytes from an object that only looks like them, whatever realm made either.
const TYPED_ARRAY = Object.getPrototypeOf(Uint8Array.prototype);
const getter = (prototype, name) => Object.getOwnPropertyDescriptor(prototype, name).get;
const typedArrayName = getter(TYPED_ARRAY, Symbol.toStringTag);
const viewBuffer = getter(TYPED_ARRAY, "buffer");
const viewOffset = getter(TYPED_ARRAY, "byteOffset");
const viewLength = getter(TYPED_ARRAY, "byteLength");
const bufferLength = getter(ArrayBuffer.prototype, "byteLength");

/** `value` when it is a Uint8Array of this realm (a Buffer included); a Uint8Array of this realm over the
 * same bytes when it is one of another realm; undefined for anything else. Never throws. */
export function uint8View(value) {
  if (value instanceof Uint8Array) return value;
  if (typeof value !== "object" || value === null) return undefined;
  try {
    if (typedArrayName.call(value) !== "Uint8Array") return undefined;
    const length = viewLength.call(value);
    // A detached buffer has no bytes, and a view of it cannot be made.
    return length === 0 ? new Uint8Array(0) : new Uint8Array(viewBuffer.call(value), viewOffset.call(value), length);
  } catch {
    return undefined;
  }
}

/** The bytes of `value` as a Uint8Array of this realm when it is a Uint8Array or an ArrayBuffer of any
 * realm (what a HostKv's get may return besides base64); undefined for anything else. Never throws. */
export function bytesIn(value) {
  const view = uint8View(value);
  if (view !== undefined) return view;
  if (typeof value !== "object" || value === null) return undefined;
  try {
    const length = bufferLength.call(value); // throws unless `value` is an ArrayBuffer (not a shared one)
    return length === 0 ? new Uint8Array(0) : new Uint8Array(value);
  } catch {
    return undefined;
  }
}

// Encryption at rest (encryptionKey): AES-GCM through the host's WebCrypto, which every runtime of the
// package has (browsers, workers, Node 20+, workerd, Deno). A fresh 96-bit IV per record, stored first.

/** Whether `key` is a CryptoKey for AES-GCM with both encrypt and decrypt usages, of any realm (a key
 * made in an iframe is usable here): read through this realm's getters, which check that it is one. */
export function isAesGcmKey(key) {
  const CryptoKey = globalThis.CryptoKey;
  if (typeof CryptoKey !== "function" || typeof key !== "object" || key === null) return false;
  // A runtime whose keys carry these as own properties (no getter to borrow) is asked by instanceof.
  const read = (name) => {
    const get = Object.getOwnPropertyDescriptor(CryptoKey.prototype, name)?.get;
    return get !== undefined ? get.call(key) : key instanceof CryptoKey ? key[name] : undefined;
  };
  try {
    const algorithm = read("algorithm");
    const usages = read("usages");
    return algorithm?.name === "AES-GCM" && Array.isArray(usages) && usages.includes("encrypt") && usages.includes("decrypt");
  } catch {
    return false;
  }
}

/** `plain` sealed under `key` with `aad` as additional data: the IV, then the ciphertext and tag. Never
 * rejects (resolves to the error instead): the library may drop a sealing it no longer needs, and a
 * rejection nobody awaits would be reported as unhandled (in Node, fatal). */
export async function sealBytes(key, aad, plain) {
  try {
    const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
    const sealed = await globalThis.crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, plain);
    const out = new Uint8Array(12 + sealed.byteLength);
    out.set(iv);
    out.set(new Uint8Array(sealed), 12);
    return out;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** What sealBytes sealed, or null when `key` or `aad` is not the one it was sealed with (never
 * rejects, for the reason above). */
export async function openBytes(key, aad, sealed) {
  try {
    // Views, not copies: WebCrypto copies its inputs before it returns (they may be views of wasm memory).
    const algorithm = { name: "AES-GCM", iv: sealed.subarray(0, 12), additionalData: aad };
    return new Uint8Array(await globalThis.crypto.subtle.decrypt(algorithm, key, sealed.subarray(12)));
  } catch {
    return null;
  }
}

/** The UTF-8 length of `text` (a lone surrogate counts as the 3 bytes of U+FFFD), without encoding it. */
export function utf8Length(text) {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) bytes += 1;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a pair: 4 bytes for 2 units
      i++;
    } else bytes += 2;
  }
  return bytes;
}

// Calls that may throw, without wasm-bindgen's `catch` imports: with those, each throw left one slot
// of the instance's externref table allocated (the slot of the return value, taken before the
// exception is looked at; wasm-bindgen 0.2.130), so about eight million caught errors (a server's
// callbacks that throw, values it passes that JSON cannot carry) took the table past V8's limit and
// the instance trapped. Here the throw is caught in JavaScript: the call returns undefined, and
// `takeThrown()` gives the error (undefined when the last call did not throw).
let thrown;
let didThrow = false;

/** What `body()` returns; a throw is kept for takeThrown(), and undefined returned. */
function attempt(body) {
  try {
    return body();
  } catch (error) {
    keepThrown(error);
    return undefined;
  }
}

/** `fn.call(thisArg, ...args)`. */
export function callCatching(fn, thisArg, ...args) {
  return attempt(() => Reflect.apply(fn, thisArg, args));
}

/**
 * A listener's call (onEvent, onChange): what it throws is ignored, and so is what the promise of an
 * async listener rejects with (left unhandled, such a rejection ends a Node process by default). Never
 * throws: the engine calls it in the middle of its steps.
 */
export function callListener(fn, arg) {
  try {
    const result = Reflect.apply(fn, undefined, [arg]);
    // A promise only (an async listener's): any other thenable's `then` may start work (a lazy query
    // builder runs when it is called), which the listener did not ask for.
    if (result instanceof Promise) result.then(undefined, ignoreRejection);
  } catch {
    // Ignored, as documented: a listener cannot fail the operation it hears about.
  }
}

function ignoreRejection() {}

/** `object[name](...args)`. */
export function methodCatching(object, name, ...args) {
  return attempt(() => object[name](...args));
}

/** `Reflect.get(object, key)` (a getter, a proxy trap or a non-object may throw). */
export function getCatching(object, key) {
  return attempt(() => Reflect.get(object, key));
}

/** `Reflect.ownKeys(object)`. */
export function ownKeysCatching(object) {
  return attempt(() => Reflect.ownKeys(object));
}

/** `Reflect.getPrototypeOf(object)`. */
export function prototypeCatching(object) {
  return attempt(() => Reflect.getPrototypeOf(object));
}

/** Keeps `error` for takeThrown(). */
export function keepThrown(error) {
  thrown = error;
  didThrow = true;
}

/** Whether the last call through these helpers threw. */
export function threw() {
  return didThrow;
}

/** The error the last call threw (and forgets it). */
export function takeThrown() {
  const error = thrown;
  thrown = undefined;
  didThrow = false;
  return error;
}
