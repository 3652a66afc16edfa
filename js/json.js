// JS values <-> JSON text, with JSON.stringify's rules made strict: what JSON cannot carry without
// loss is a ValidationError naming the path to it, instead of being dropped or turned into null.
import { ValidationError } from "./errors.js";
import { MAX_JSON_DEPTH as MAX_DEPTH, keepThrown } from "./runtime.js";

function fail(at, what, cause) {
  const path = pathOf(at);
  return new ValidationError(`${path} ${what}; only JSON values can be stored (null, booleans, finite numbers, strings, arrays, plain objects)`, cause === undefined ? { path } : { path, cause });
}

// Where a value is, as the caller's path string or { up, key } (an object property) or { up, index }
// (an array element): the path text is built only for an error, not for every property of every value
// stored (a regular expression and two string concatenations per key were most of the walk's time).
function pathOf(at) {
  if (typeof at === "string") return at;
  const up = pathOf(at.up);
  if (at.key === undefined) return `${up}[${at.index}]`;
  return /^[A-Za-z_$][\w$]*$/.test(at.key) ? `${up}.${at.key}` : `${up}[${JSON.stringify(at.key)}]`;
}

/**
 * Why JSON cannot carry the object `value` (after toJSON) though JSON.stringify writes it without an
 * error, or undefined: a boxed non-finite number (written as null), a boxed BigInt (JSON.stringify
 * throws, and the walk would copy it as `{}`), and the built-in objects whose data JSON.stringify
 * drops, writing `{}` (a Map's or a Set's entries, an ArrayBuffer's bytes, a RegExp's pattern, an
 * Error's message). Other objects are written as JSON.stringify writes them (a class instance as its
 * own enumerable properties, a typed array as an object of index keys: API.md "Values follow JSON").
 * An object of another realm (an iframe's, a worker's `vm` context's) is no `instanceof` of this
 * realm's classes: its kind is read from its built-in tag and confirmed by a brand check.
 */
function lossy(value) {
  if (!(value instanceof Object)) return lossyForeign(value);
  if (value instanceof Number) return lossyNumber(value.valueOf());
  if (typeof BigInt === "function" && value instanceof BigInt) return BIGINT;
  for (const { type, why } of DROPPED) if (typeof type === "function" && value instanceof type) return why;
  return undefined;
}

const lossyNumber = (number) => (Number.isFinite(number) ? undefined : `is a Number object of ${number}, which JSON cannot represent`);
const BIGINT = "is a BigInt object; convert it to a string or number first";
const BINARY = "is binary data, which JSON writes as {} (its bytes lost); store it as a base64 string or an array of numbers";
const dropped = (what) => `is ${what}, which JSON writes as {}; store what you need of it as plain data`;

/**
 * A kind of built-in object whose data JSON.stringify drops: its name (its built-in tag), this realm's
 * class of that name (absent in some runtimes: a page that is not cross-origin isolated has no
 * SharedArrayBuffer), what to do instead, and `brand(value, type)`, which tells whether another
 * realm's object whose tag names the kind is one: a built-in method or getter works on a value of any
 * realm and throws unless it has that kind's internal slots.
 */
const kind = (name, why, brand) => ({ name, type: globalThis[name], why, brand });
const viaHas = (value, type) => (type.prototype.has.call(value), true);
const viaByteLength = (value, type) => (Object.getOwnPropertyDescriptor(type.prototype, "byteLength").get.call(value), true);

/** The built-in objects JSON.stringify writes as `{}`, dropping what they hold, and what to do instead. */
const DROPPED = [
  kind("Map", "is a Map, which JSON writes as {} (its entries lost); convert it first, with Object.fromEntries(map) or [...map]", viaHas),
  kind("Set", "is a Set, which JSON writes as {} (its elements lost); convert it to an array first, with [...set]", viaHas),
  kind("ArrayBuffer", BINARY, viaByteLength),
  kind("SharedArrayBuffer", BINARY, viaByteLength),
  kind("DataView", BINARY, viaByteLength),
  kind("WeakMap", dropped("a WeakMap"), viaHas),
  kind("WeakSet", dropped("a WeakSet"), viaHas),
  kind("WeakRef", dropped("a WeakRef"), (value, type) => (type.prototype.deref.call(value), true)),
  // No check reads a Promise without side effects: one with a then() is taken for one.
  kind("Promise", dropped("a Promise (await it first)"), (value) => typeof value.then === "function"),
  kind("RegExp", dropped("a RegExp"), (value, type) => (Object.getOwnPropertyDescriptor(type.prototype, "global").get.call(value), true)),
  // An Error's tag comes from its internal slot unless a Symbol.toStringTag says otherwise.
  kind("Error", dropped("an Error"), (value) => value[Symbol.toStringTag] === undefined),
];

/** `read()`, or `fallback` when it throws (a getter or a proxy trap of the caller's, a failed brand check). */
function orElse(read, fallback) {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/** lossy() for an object that is no `instanceof Object` here: another realm's, or one without prototype. */
function lossyForeign(value) {
  const tag = tagOf(value);
  if (tag === "Number") {
    const number = orElse(() => Number.prototype.valueOf.call(value), 0);
    return lossyNumber(number);
  }
  if (tag === "BigInt") return orElse(() => (BigInt.prototype.valueOf.call(value), BIGINT), undefined);
  const found = DROPPED.find(({ name }) => name === tag);
  return found !== undefined && orElse(() => found.brand(value, found.type), false) ? found.why : undefined;
}

/** The primitive a boxed number, string or boolean of any realm holds (JSON.stringify writes that), or `value`. */
function unboxed(value) {
  if (value instanceof Object) {
    return value instanceof Number || value instanceof String || value instanceof Boolean ? value.valueOf() : value;
  }
  const tag = tagOf(value);
  const type = Object.hasOwn(BOXES, tag) ? BOXES[tag] : undefined;
  return type === undefined ? value : orElse(() => type.prototype.valueOf.call(value), value);
}

const BOXES = { Number, String, Boolean };

/** The built-in tag Object.prototype.toString gives `value` ("Map" for a Map of any realm); "" when reading it throws. */
function tagOf(value) {
  return orElse(() => Object.prototype.toString.call(value).slice(8, -1), "");
}

function normalize(value, key, at, ancestors, depth) {
  try {
    if (value !== null && (typeof value === "object" || typeof value === "bigint") && typeof value.toJSON === "function") {
      value = value.toJSON(key);
    }
  } catch (cause) {
    throw fail(at, "has a toJSON() that threw", cause);
  }
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) throw fail(at, `is ${value}, which JSON cannot represent`);
      return value;
    case "bigint":
      throw fail(at, "is a BigInt; convert it to a string or number first");
    case "undefined":
      throw fail(at, "is undefined");
    case "function":
      throw fail(at, "is a function");
    case "symbol":
      throw fail(at, "is a symbol");
  }
  if (value === null) return null;
  let why;
  try {
    why = lossy(value);
  } catch (cause) {
    throw fail(at, "cannot be read", cause);
  }
  if (why !== undefined) throw fail(at, why);
  const primitive = unboxed(value);
  if (primitive !== value) return primitive;
  if (depth >= MAX_DEPTH) throw fail(at, `is nested deeper than ${MAX_DEPTH} levels`);
  if (ancestors.has(value)) throw fail(at, "is a cycle (it contains itself)");
  ancestors.add(value);
  try {
    let out;
    if (Array.isArray(value)) {
      out = new Array(value.length);
      for (let i = 0; i < value.length; i++) {
        const child = { up: at, key: undefined, index: i };
        out[i] = normalize(read(value, i, child), String(i), child, ancestors, depth + 1);
      }
    } else {
      out = Object.create(null); // so that an own "__proto__" key stays a key, as in JSON.parse
      let keys;
      try {
        keys = Object.keys(value);
      } catch (cause) {
        throw fail(at, "cannot be enumerated", cause);
      }
      for (const name of keys) {
        const child = { up: at, key: name, index: 0 };
        const childValue = read(value, name, child);
        if (childValue === undefined) continue; // as JSON.stringify does
        out[name] = normalize(childValue, name, child, ancestors, depth + 1);
      }
    }
    return out;
  } finally {
    ancestors.delete(value);
  }
}

function read(object, key, at) {
  try {
    return object[key];
  } catch (cause) {
    throw fail(at, "has a getter that threw", cause);
  }
}

/**
 * Whether JSON.stringify writes `value` as it is: strings, booleans, finite numbers, null, and arrays
 * and objects of them (an object's undefined properties left out, as JSON.stringify does), with no
 * toJSON, no cycle (`open`: the objects being walked) and at most MAX_DEPTH levels. A getter or proxy
 * trap that throws throws here too (the caller then takes the checked path, which names it).
 */
function isPlain(value, open) {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value);
    case "object":
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (open.length >= MAX_DEPTH || typeof value.toJSON === "function" || open.includes(value)) return false;
  // A class instance of this realm (a framework's event classes) is written as JSON.stringify writes
  // it, unless it is a built-in whose data JSON drops: the replacer's path names those, and checks
  // other realms' objects (lossy()).
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== Array.prototype && proto !== null && !isInstance(value)) return false;
  open.push(value);
  let plain = true;
  if (Array.isArray(value)) {
    for (let i = 0; plain && i < value.length; i++) plain = isPlain(value[i], open);
  } else {
    const keys = Object.keys(value);
    for (let i = 0; plain && i < keys.length; i++) {
      const child = value[keys[i]];
      plain = child === undefined || isPlain(child, open);
    }
  }
  open.pop();
  return plain;
}

/** Whether JSON.stringify writes `value`, an object with a prototype of its own, as it is: an
 * instance of this realm's classes that is not lossy() (it writes a class instance as its own
 * enumerable properties, and a boxed finite number, string or boolean as the primitive). */
function isInstance(value) {
  return value instanceof Object && lossy(value) === undefined;
}

/** Thrown by the fast path's replacer at anything it does not pass through as it is. */
const NOT_PLAIN = Symbol("not plain JSON");

/**
 * The JSON text of `value`, or a ValidationError naming the path of what JSON cannot carry: `path`, or
 * `path[key]` when a `key` is given (its text is built only for an error).
 */
/** toJsonText, its ValidationError kept for takeThrown() (runtime.js: no `catch` import) and undefined returned. */
export function toJsonTextCaught(value, path, key) {
  try {
    return toJsonText(value, path, key);
  } catch (error) {
    keepThrown(error);
    return undefined;
  }
}

export function toJsonText(value, path, key) {
  // One JSON.stringify whose replacer checks each value as it is written; anything it would not pass
  // through unchanged (a non-finite number, undefined in an array, a function, a cycle, too deep, a
  // toJSON or getter that threw) sends the value to the walk below, which makes a checked copy or
  // throws the ValidationError with its path. The copy cost about twice the fast path's time on every
  // appendMessage and setState (bench/json-validate.mjs).
  let text;
  try {
    // Plain data (what is nearly always passed) is checked by a walk that copies nothing, and then
    // written by JSON.stringify without a replacer, which V8 serializes several times faster than
    // with one; anything else goes through the replacer, which sees values after toJSON.
    if (isPlain(value, [])) text = JSON.stringify(value);
    else {
      // An object with a toJSON (a framework's event class) is written as its result, as
      // JSON.stringify writes it; when that result is plain data, without the replacer. Otherwise
      // the replacer's path writes the object (calling its toJSON again).
      const own = value !== null && typeof value === "object" && typeof value.toJSON === "function" ? value.toJSON("") : value;
      text = own !== value && isPlain(own, []) ? JSON.stringify(own) : JSON.stringify(value, plainOnly());
    }
  } catch {
    text = undefined;
  }
  if (text !== undefined) return text;
  const at = key === undefined ? path : `${path}[${JSON.stringify(key)}]`;
  const checked = normalize(value, "", at, new Set(), 0);
  try {
    return JSON.stringify(checked);
  } catch (cause) {
    // RangeError: the text is longer than a JS string can be (V8: 2^29 - 24 units).
    throw fail(at, "is too large: its JSON text is longer than a JavaScript string can be; store large data elsewhere and keep a reference", cause);
  }
}

/**
 * A JSON.stringify replacer that returns each value unchanged when JSON carries it without loss and
 * throws NOT_PLAIN otherwise. It sees values after toJSON, depth first, with the holder as `this`:
 * `open` holds the objects being written (root first), which gives the depth and finds cycles.
 */
function plainOnly() {
  const open = [];
  return function (key, value) {
    while (open.length > 0 && open[open.length - 1] !== this) open.pop();
    switch (typeof value) {
      case "string":
      case "boolean":
        return value;
      case "number":
        if (Number.isFinite(value)) return value;
        throw NOT_PLAIN;
      case "undefined":
        // Skipped as a property that is undefined itself (as JSON.stringify does); not in an array,
        // at the top, or when a toJSON made it.
        if (open.length > 0 && !Array.isArray(this) && this[key] === undefined) return value;
        throw NOT_PLAIN;
      case "object":
        if (value === null) return value;
        if (open.length >= MAX_DEPTH || open.includes(value) || lossy(value) !== undefined) throw NOT_PLAIN;
        open.push(value);
        return value;
      default:
        throw NOT_PLAIN;
    }
  };
}

function deepFreeze(value) {
  if (value !== null && typeof value === "object") {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

// The helpers below are called by the engine only, and keep what they throw for takeThrown()
// (runtime.js: no `catch` import) and return undefined.

/** The frozen value of stored JSON text (reads may share it, so nobody may mutate it). */
export function fromJsonText(text) {
  try {
    return deepFreeze(JSON.parse(text));
  } catch (error) {
    keepThrown(error);
    return undefined;
  }
}

/**
 * Appends the values of `texts` (one JSON array text) to `items`, each deep-frozen, and returns
 * `items` frozen in a copy. One string crosses from wasm and one `JSON.parse` reads every message:
 * per-message crossings and parses cost several times more (docs/storage-layout.md).
 */
export function appendJsonTexts(items, texts) {
  try {
    for (const value of JSON.parse(texts)) items.push(deepFreeze(value));
    return Object.freeze(items.slice());
  } catch (error) {
    keepThrown(error);
    return undefined;
  }
}

export function freeze(value) {
  return Object.freeze(value);
}

/** A deep copy of `value` (frozen or not) that is not frozen anywhere: what the caller owns, as an
 * export (API.md: plain JSON, which a test or a tool may edit before importing it). */
export function thawed(value) {
  return structuredClone(value);
}

// Walking what a caller passed: a getter or proxy trap that throws must come back to the engine as an
// error value, not as an exception through the WebAssembly frames (that would leave the call's promise
// pending forever). The engine reads callers' arrays and objects through these, never element by
// element with its own imports.

/** The elements of the array `value`, read once into a plain array; a ValidationError at `path` when
 * reading one throws. */
export function arrayItems(value, path) {
  try {
    const length = value.length;
    const items = new Array(length);
    for (let i = 0; i < length; i++) items[i] = value[i];
    return items;
  } catch (cause) {
    keepThrown(new ValidationError(`${path} could not be read: ${cause?.message ?? cause}`, { path, cause }));
    return undefined;
  }
}

/** `Object.entries(value)` as plain [key, value] arrays; a ValidationError at `path` when reading throws. */
export function objectEntries(value, path) {
  try {
    return Object.entries(value);
  } catch (cause) {
    keepThrown(new ValidationError(`${path} could not be read: ${cause?.message ?? cause}`, { path, cause }));
    return undefined;
  }
}
