// The reference HostKv: an in-process Map. Every other adapter is tested against the same contract
// suite as this one (tests/js/adapters/contract.mjs).
//
// Each call of memoryKv() is a new, empty world; two SessionStore.kv() over the same object share
// its sessions and contend through it like two isolates over one database. Every method does its
// whole check-and-write synchronously before its promise settles, so compare-and-set is atomic. It has
// no `commit`: in process a call costs nothing, and a store over it (or over a wrapper that spreads it
// and replaces `put`) writes every record and head through `put`.
//
// Versions are a counter shared by every memoryKv of the realm: a key deleted and written again
// never gets a version it had before. Values are copied in and out, so nobody can change stored
// bytes through a reference. A key put with `ttlMs` is absent from the moment it expires.

import { bytesOf, holds, notAValue } from "./values.js";

/** Versions: one counter for the realm, so none repeats for any key of any memoryKv. */
let lastVersion = 0;

function newVersion() {
  lastVersion += 1;
  return lastVersion.toString(36);
}

/**
 * A new, empty, in-process `HostKv` (atomic compare-and-set, no size limit).
 * @returns {import("./index.js").HostKv}
 */
export function memoryKv() {
  /** key -> { value: Uint8Array, version: string, expiresAt: number | undefined } */
  const entries = new Map();
  // The keys in order, for `list`: a page is a binary search and a walk, where sorting every key for
  // each page made a walk over n keys O(n^2 log n) (a sweepExpired over tens of thousands of
  // sessions took seconds, audit52). `sorted` may still hold keys deleted since (skipped, and dropped
  // at the next merge); keys written since the last `list` wait in `added`, merged in by the next
  // one, so that a write costs no more than before.
  let sorted = [];
  let added = [];
  const indexed = new Set(); // the keys in `sorted` or `added`

  /** `sorted` with `added` merged in and the deleted keys left out. */
  function merge() {
    added.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const merged = [];
    let i = 0;
    let j = 0;
    while (i < sorted.length || j < added.length) {
      const key = j >= added.length || (i < sorted.length && sorted[i] < added[j]) ? sorted[i++] : added[j++];
      if (entries.has(key)) merged.push(key);
      else indexed.delete(key);
    }
    sorted = merged;
    added = [];
  }

  /** The position of the first key of `sorted` >= `key` (> `key` when `after`). */
  function position(key, after = false) {
    let low = 0;
    let high = sorted.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (sorted[mid] < key || (after && sorted[mid] === key)) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** The live entry of `key`, dropping it when its TTL has passed. */
  function live(key) {
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  }

  const matches = (entry, expected) => holds(entry === undefined ? null : entry.version, expected);

  return {
    capabilities: Object.freeze({ atomic: true }),

    async get(key) {
      const entry = live(String(key));
      return entry === undefined ? null : { value: entry.value.slice(), version: entry.version };
    },

    async put(key, value, options = {}) {
      key = String(key);
      const bytes = bytesOf(value);
      const current = live(key);
      if (!matches(current, options.expectedVersion)) {
        // `reportCurrent`: say what is there instead, which saves the store a read after a lost race.
        if (!options.reportCurrent) return null;
        return { current: current === undefined ? null : { value: current.value.slice(), version: current.version } };
      }
      if (bytes === undefined) throw notAValue("memoryKv", key);
      const version = newVersion();
      const ttl = options.ttlMs;
      const expiresAt = typeof ttl === "number" && ttl > 0 ? Date.now() + ttl : undefined;
      if (!indexed.has(key)) {
        indexed.add(key);
        added.push(key);
      }
      entries.set(key, { value: bytes.slice(), version, expiresAt });
      return version;
    },

    async delete(key, options = {}) {
      key = String(key);
      const entry = live(key);
      if (entry === undefined || !matches(entry, options.expectedVersion)) return false;
      entries.delete(key);
      return true;
    },

    async list(prefix, options = {}) {
      prefix = String(prefix);
      const after = options.cursor || undefined;
      const limit = options.limit > 0 ? Math.floor(options.limit) : Infinity;
      if (added.length > 0) merge();
      const keys = [];
      // The keys with the prefix are one run of `sorted`, from the first key >= prefix.
      const from = position(prefix);
      for (let at = after === undefined ? from : Math.max(from, position(after, true)); at < sorted.length; at++) {
        const key = sorted[at];
        if (!key.startsWith(prefix) || keys.length > limit) break;
        if (live(key) !== undefined) keys.push(key);
      }
      if (keys.length <= limit) return { keys };
      const page = keys.slice(0, limit);
      return { keys: page, cursor: page[page.length - 1] };
    },
  };
}
