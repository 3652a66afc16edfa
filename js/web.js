// Cross-realm facilities: Web Locks (is a lease holder's tab or worker still alive?), BroadcastChannel
// (commits reach every tab and worker of the origin), and the wake-ups of live turns (below).

import { timerDelay } from "./runtime.js";

/** Asks for the Web Lock `name` and holds it until the returned release function is called. Does not
 * wait for the grant (a round trip of about 0.5 ms): a request still pending counts as held for
 * isLockHeld, and nobody looks for this lock before a lease of this store is written, an IndexedDB
 * write issued after the request. Returns null where Web Locks are not available (liveness then
 * falls back to lease expiry). */
export function holdLock(name) {
  const locks = globalThis.navigator?.locks;
  if (typeof locks?.request !== "function") return null;
  let release;
  const released = new Promise((resolve) => (release = resolve));
  try {
    locks.request(name, () => released).catch(() => {});
  } catch {
    return null; // called from inside the engine: never throw (see openChannel)
  }
  return release;
}

export function releaseLock(release) {
  if (typeof release === "function") release();
}

/** true / false: whether some realm of the origin holds or has asked for lock `name`; undefined
 * when unknown. */
export async function isLockHeld(name) {
  const locks = globalThis.navigator?.locks;
  if (typeof locks?.query !== "function") return undefined;
  try {
    const { held = [], pending = [] } = await locks.query();
    return held.some((lock) => lock.name === name) || pending.some((lock) => lock.name === name);
  } catch {
    return undefined;
  }
}

// The commit channels of browser-shared stores. One BroadcastChannel per name per realm (creating one
// costs about 0.2 ms), shared by the stores of that realm, which also hear each other through it.
//
// A message costs about 0.1 ms of the main thread in Chromium (a trip through the browser process),
// once a commit: a tenth of a turn. So a realm posts only while it knows of another realm on the
// channel. A realm says "open" when it joins (the others answer "here") and "bye" when it leaves. A
// realm that joins reads the store only after it said "open", so the only commits it could miss are
// those another realm made, alone, after that: when a realm learns of a peer it posts again the
// notices it kept back since the peer's "open" (with a second's margin for the clocks of two realms
// of one browser), and a replay reaches a realm only if it is newer than what that realm heard.
const commitChannels = new Map(); // name -> shared channel (below)
const REPLAY_MARGIN_MS = 1000;
const EARLIER_VERSION = "a realm of an earlier version";
const REMEMBERED = 1000; // sessions whose newest version a realm remembers having heard

/** 16 random bytes in hex: a realm's name on a channel. (Not crypto.randomUUID, which a page served over
 * plain http does not have; IndexedDB and BroadcastChannel it has.) */
function realmId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Joins the channel `name`; `onMessage` gets what the other members (of any realm) post. */
export function openChannel(name, onMessage) {
  if (typeof globalThis.BroadcastChannel !== "function") return null;
  let shared = commitChannels.get(name);
  if (!shared) {
    // What this calls from inside the engine must not throw (an exception would unwind through the
    // wasm and leave its call pending): a realm that cannot open a channel has none.
    let channel;
    try {
      channel = new BroadcastChannel(name);
    } catch {
      return null;
    }
    const self = realmId();
    shared = {
      channel,
      self,
      members: new Set(),
      peers: new Set(), // the other realms on the channel, as far as this one knows
      keptBack: [], // [notice, Date.now()] of the commits made lately with no peer, oldest first
      heard: new Map(), // session id -> the newest version it heard of
    };
    channel.onmessage = (event) => hear(shared, event.data);
    channel.postMessage({ presence: "open", from: self, at: Date.now() });
    commitChannels.set(name, shared);
  }
  const member = { name, shared, onMessage };
  shared.members.add(member);
  return member;
}

function hear(shared, data) {
  if (typeof data?.presence === "string") {
    if (data.presence === "bye") {
      shared.peers.delete(data.from);
      return;
    }
    if (data.presence === "open") shared.channel.postMessage({ presence: "here", from: shared.self, to: data.from });
    shared.peers.add(data.from);
    // A "here" to this realm answers its own "open": everything it kept back came after that. (A
    // "here" to another realm: that realm's "open" has been, or will be, heard here.)
    if (data.presence === "here" && data.to !== shared.self) return;
    const since = data.presence === "open" ? Number(data.at) - REPLAY_MARGIN_MS : -Infinity;
    for (const [notice, at] of shared.keptBack.splice(0)) {
      if (!(at < since)) shared.channel.postMessage({ ...notice, from: shared.self, replay: true });
    }
    return;
  }
  // A notice without a sender comes from a realm running a version of this package from before
  // presence (a tab not yet reloaded after an upgrade): it never says "open", so it counts as a peer for
  // good, and this realm posts every commit as that version expects.
  if (data?.from === undefined) shared.peers.add(EARLIER_VERSION);
  const heard = shared.heard.get(data?.id);
  if (data?.replay === true && heard !== undefined && heard >= data.version) return;
  remember(shared.heard, data?.id, data?.version);
  for (const member of shared.members) tell(member, data);
}

/** Gives `message` to `member`. A member whose store was collected without close() (its callback is
 * gone: it throws) leaves the channel, so that the members after it still hear every notice. */
function tell(member, message) {
  try {
    member.onMessage(message);
  } catch {
    closeChannel(member);
  }
}

/** Keeps `notice` back for a replay, and forgets what no replay can send any more: a newcomer's "open"
 * is later than now, and only what came after it, less the margin on each realm's clock, is replayed. */
function keepBack(shared, notice) {
  const now = Date.now();
  shared.keptBack.push([notice, now]);
  while (shared.keptBack[0][1] < now - 2 * REPLAY_MARGIN_MS) shared.keptBack.shift();
}

/** Keeps `value` under `key` as the newest entry, dropping the oldest beyond REMEMBERED. */
function remember(map, key, value) {
  if (typeof key !== "string") return;
  map.delete(key);
  map.set(key, value);
  if (map.size > REMEMBERED) map.delete(map.keys().next().value);
}

// Commits are posted after the current task, not from inside it, which the caller's `await commit()`
// would otherwise wait for. The others hear of it one task later, in order.
const outbox = [];

/** Posts the notice of a commit of this realm: `{ id, version, status, token }` (built here, in one
 * call; the token, when known, tells two sessions created under one id apart). */
export function postChange(member, id, version, status, token) {
  postMessage(member, token === undefined ? { id, version, status } : { id, version, status, token });
}

export function postMessage(member, message) {
  if (!member) return;
  const shared = member.shared;
  if (shared.peers.size === 0 && shared.members.size === 1 && outbox.length === 0) {
    // Nobody to tell, here or elsewhere: kept back at once, without a timer.
    deliver(member, message);
    return;
  }
  if (outbox.push([member, message]) === 1) setTimeout(postOutbox, 0);
}

/** Posts `message` of `member` to the other realms (or keeps it back) and to the realm's other members. */
function deliver(member, message) {
  const shared = member.shared;
  remember(shared.heard, message?.id, message?.version);
  if (shared.peers.size > 0) shared.channel.postMessage({ ...message, from: shared.self });
  else keepBack(shared, message);
  for (const other of shared.members) if (other !== member) tell(other, message);
}

function postOutbox(only) {
  const kept = [];
  for (const [member, message] of outbox.splice(0)) {
    if (only && member !== only) {
      kept.push([member, message]);
      continue;
    }
    deliver(member, message);
  }
  outbox.push(...kept);
}

export function closeChannel(member) {
  if (!member || !member.shared.members.has(member)) return;
  postOutbox(member); // what this store committed still reaches the others
  member.shared.members.delete(member);
  if (member.shared.members.size === 0) {
    member.shared.channel.postMessage({ presence: "bye", from: member.shared.self });
    member.shared.channel.close();
    commitChannels.delete(member.name);
  }
}

// The stores of this realm over one HostKv object (and prefix) hear each other's commits: a KV host has
// no channel between realms, but within one the `onChange` of a store hears every commit made here
// (API.md). A store joins once something listens to it (`onChange` of the store or of a session), so
// the commits of a realm where nobody listens cost nothing more. Keyed by the HostKv object, weakly:
// the entries go with it.
const realmChannels = new WeakMap(); // HostKv object -> Map(prefix -> Set of members)

/** Joins the stores over `kv` and `prefix` in this realm; `onMessage` gets the others' commits. */
export function openRealmChannel(kv, prefix, onMessage) {
  let byPrefix = realmChannels.get(kv);
  if (!byPrefix) realmChannels.set(kv, (byPrefix = new Map()));
  let members = byPrefix.get(prefix);
  if (!members) byPrefix.set(prefix, (members = new Set()));
  const member = { members, byPrefix, prefix, onMessage };
  members.add(member);
  return member;
}

/** Tells the members over `kv` and `prefix` other than `from` of a commit: `{ id, version, status, token }`. */
export function postRealmChange(kv, prefix, from, id, version, status, token) {
  const members = realmChannels.get(kv)?.get(prefix);
  if (!members) return;
  const notice = token === undefined ? { id, version, status } : { id, version, status, token };
  for (const member of members) {
    if (member === from) continue;
    try {
      member.onMessage(notice);
    } catch {
      closeRealmChannel(member); // its store was collected without close(): its callback is gone
    }
  }
}

export function closeRealmChannel(member) {
  if (!member?.members.delete(member)) return;
  if (member.members.size === 0) member.byPrefix.delete(member.prefix);
}

// Wake-ups for live turns: whoever waits on a session (a follower, a holder watching for a stop, a
// stopper) in this realm, and through a BroadcastChannel in the other tabs and workers of the origin
// that share an IndexedDB store. Only wake-ups travel here; what happened is always read from the
// store, so a lost or duplicated message costs a read, never a wrong answer.

const waiting = new Map(); // session id -> Set of wake functions
const channels = new Map(); // channel name -> BroadcastChannel
let wakes = 0; // wake-ups delivered here, of any session (a holder that saw none needs no stop check)

function wakeHere(id) {
  wakes++;
  const wakers = waiting.get(id);
  if (!wakers) return;
  waiting.delete(id);
  for (const wake of wakers) wake();
}

function channel(name) {
  let opened = channels.get(name);
  if (!opened && typeof globalThis.BroadcastChannel === "function") {
    try {
      opened = new BroadcastChannel(name);
    } catch {
      return undefined; // no wake-ups across realms here; waiters still wake on their timers
    }
    opened.onmessage = (event) => {
      if (typeof event.data === "string") wakeHere(event.data);
    };
    // Node: an open channel must not keep the process alive.
    opened.unref?.();
    channels.set(name, opened);
  }
  return opened;
}

/** Starts listening on `name` (so that this realm hears other realms' wake-ups from now on). */
export function listenLive(name) {
  channel(name);
}

/** Wakes the waiters on session `id` here and, when `name` is given, in the other realms. */
export function wakeLive(name, id) {
  wakeHere(id);
  if (name) channel(name)?.postMessage(id);
}

/** How many wake-ups this realm has delivered (its own and other realms'), of any session. */
export function wakeCount() {
  return wakes;
}

/** Resolves after `ms`, on a wake of `id`, or once Web Lock `lockName` (a lease holder's) is free. */
export function waitLive(id, ms, lockName) {
  return new Promise((resolve) => {
    let wakers = waiting.get(id);
    if (!wakers) waiting.set(id, (wakers = new Set()));
    const locks = lockName ? globalThis.navigator?.locks : undefined;
    const cancel = typeof locks?.request === "function" ? new AbortController() : undefined;
    const wake = () => {
      clearTimeout(timer);
      const left = waiting.get(id);
      left?.delete(wake);
      // The last waiter of an id takes its entry: a server following many sessions once each
      // would otherwise keep one per id it ever followed.
      if (left?.size === 0) waiting.delete(id);
      cancel?.abort();
      resolve();
    };
    wakers.add(wake);
    const timer = setTimeout(wake, timerDelay(ms));
    if (cancel) {
      // Granted only once the holder's realm is gone (it holds the lock for its life).
      locks.request(lockName, { signal: cancel.signal }, () => wake()).catch(() => {});
    }
  });
}

// The reason `inv.signal` aborts with when its invocation simply ends: one AbortError per realm. Aborting
// without a reason makes the runtime build a new DOMException, stack and all, on every turn whose
// signal was read (about 25 µs a turn in Node, the framework drop-ins' case).
let endedReason;

export function invocationEnded() {
  endedReason ??= new DOMException("the invocation ended (commit, abort or interrupt)", "AbortError");
  return endedReason;
}

/** A new AbortController (the invocation's `signal`). */
export function newAbortController() {
  return new AbortController();
}

// IndexedDB's open, request and transaction promises, for src/store/idb.rs. Their callbacks are
// JavaScript functions, not Rust closures: a Rust closure holding the transaction (or the request)
// keeps it in the instance's externref table, a root of the collector, and the transaction keeps the
// closure as its handler: a cycle through the table that nothing ever freed, three slots and a
// transaction for every transaction (about 28 slots a chat turn, a million a day for an idle tab
// following a session; at about eight million the instance traps). Between JavaScript objects alone
// the collector takes such a cycle.
// (Here, not in a module of their own: one more module in the glue's imports made
// wasm-bindgen-test's dedicated-worker runner miss its start, in 2 of 3 runs.)

/**
 * A promise of the database `name`: an existing one opened at whatever version it has (another tab
 * may have upgraded it), a new one created at version 1 with the object store `records` and its
 * non-unique index `index` on `keyPath`; null (the connection closed) for an existing database
 * without `records`, which something else made; undefined, creating nothing, for a database that
 * does not exist when `create` is false. It rejects with the request's error (or what `open` threw).
 */
export function openDatabase(factory, name, records, index, keyPath, create) {
  return new Promise((resolve, reject) => {
    const request = factory.open(name);
    let absent = false;
    request.onupgradeneeded = (event) => {
      if (!create && event.oldVersion === 0) {
        // Aborting the upgrade of a database that did not exist leaves none; the request then fails.
        absent = true;
        return request.transaction.abort();
      }
      // Version 1 is the only schema: upgrading means creating it from nothing.
      request.result.createObjectStore(records).createIndex(index, keyPath, { unique: false });
    };
    request.onsuccess = () => {
      const db = request.result;
      if (db.objectStoreNames.contains(records)) return resolve(db);
      db.close();
      resolve(null);
    };
    request.onerror = () => (absent ? resolve(undefined) : reject(request.error));
  });
}

/**
 * `[done, settle]`: `done` resolves when `tx` completes, or when `settle()` is called (a read-only
 * transaction whose reads all had their result: final then), and rejects with the transaction's
 * error when it aborts (a quota error arrives so).
 */
export function transactionDone(tx) {
  let settle;
  const done = new Promise((resolve, reject) => {
    settle = resolve;
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error);
  });
  return [done, settle];
}
