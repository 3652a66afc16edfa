// JS values <-> JSON text, with JSON.stringify's rules made strict: what JSON cannot carry without
// loss is a ValidationError naming the path to it, instead of being dropped or turned into null.
import { ValidationError } from "./errors.js";

const MAX_DEPTH = 512;

function fail(path, what, cause) {
  return new ValidationError(`${path} ${what}; only JSON values can be stored (null, booleans, finite numbers, strings, arrays, plain objects)`, cause === undefined ? { path } : { path, cause });
}

function propertyPath(path, key) {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function normalize(value, key, path, ancestors, depth) {
  try {
    if (value !== null && (typeof value === "object" || typeof value === "bigint") && typeof value.toJSON === "function") {
      value = value.toJSON(key);
    }
  } catch (cause) {
    throw fail(path, "has a toJSON() that threw", cause);
  }
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) throw fail(path, `is ${value}, which JSON cannot represent`);
      return value;
    case "bigint":
      throw fail(path, "is a BigInt; convert it to a string or number first");
    case "undefined":
      throw fail(path, "is undefined");
    case "function":
      throw fail(path, "is a function");
    case "symbol":
      throw fail(path, "is a symbol");
  }
  if (value === null) return null;
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return value.valueOf();
  if (depth >= MAX_DEPTH) throw fail(path, `is nested deeper than ${MAX_DEPTH} levels`);
  if (ancestors.has(value)) throw fail(path, "is a cycle (it contains itself)");
  ancestors.add(value);
  try {
    let out;
    if (Array.isArray(value)) {
      out = new Array(value.length);
      for (let i = 0; i < value.length; i++) {
        out[i] = normalize(read(value, i, `${path}[${i}]`), String(i), `${path}[${i}]`, ancestors, depth + 1);
      }
    } else {
      out = Object.create(null); // so that an own "__proto__" key stays a key, as in JSON.parse
      let keys;
      try {
        keys = Object.keys(value);
      } catch (cause) {
        throw fail(path, "cannot be enumerated", cause);
      }
      for (const name of keys) {
        const childPath = propertyPath(path, name);
        const child = read(value, name, childPath);
        if (child === undefined) continue; // as JSON.stringify does
        out[name] = normalize(child, name, childPath, ancestors, depth + 1);
      }
    }
    return out;
  } finally {
    ancestors.delete(value);
  }
}

function read(object, key, path) {
  try {
    return object[key];
  } catch (cause) {
    throw fail(path, "has a getter that threw", cause);
  }
}

/** The JSON text of `value`, or a ValidationError naming the path of what JSON cannot carry. */
export function toJsonText(value, path) {
  return JSON.stringify(normalize(value, "", path, new Set(), 0));
}

function deepFreeze(value) {
  if (value !== null && typeof value === "object") {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** The frozen value of stored JSON text (reads may share it, so nobody may mutate it). */
export function fromJsonText(text) {
  return deepFreeze(JSON.parse(text));
}

/**
 * Appends the values of `texts` (one JSON array text) to `items`, each deep-frozen, and returns
 * `items` frozen in a copy. One string crosses from wasm and one `JSON.parse` reads every message:
 * per-message crossings and parses cost several times more (docs/storage-layout.md).
 */
export function appendJsonTexts(items, texts) {
  for (const value of JSON.parse(texts)) items.push(deepFreeze(value));
  return Object.freeze(items.slice());
}

export function freeze(value) {
  return Object.freeze(value);
}
