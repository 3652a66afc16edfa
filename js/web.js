// Cross-realm facilities: Web Locks (is a lease holder's tab or worker still alive?), BroadcastChannel
// (commits reach every tab and worker of the origin), and the wake-ups of live turns (below).

/** Holds the Web Lock `name` until the returned release function is called; resolves once it is
 * granted, so that nobody can see this store's lock as missing while the store is in use. Resolves
 * to null where Web Locks are not available (liveness then falls back to lease expiry). */
export async function holdLock(name) {
  const locks = globalThis.navigator?.locks;
  if (typeof locks?.request !== "function") return null;
  let release;
  const released = new Promise((resolve) => (release = resolve));
  await new Promise((granted) => {
    locks.request(name, () => {
      granted();
      return released;
    });
  });
  return release;
}

export function releaseLock(release) {
  if (typeof release === "function") release();
}

/** true / false: whether some realm of the origin holds lock `name`; undefined when unknown. */
export async function isLockHeld(name) {
  const locks = globalThis.navigator?.locks;
  if (typeof locks?.query !== "function") return undefined;
  try {
    const { held = [] } = await locks.query();
    return held.some((lock) => lock.name === name);
  } catch {
    return undefined;
  }
}

export function openChannel(name, onMessage) {
  if (typeof globalThis.BroadcastChannel !== "function") return null;
  const channel = new BroadcastChannel(name);
  channel.onmessage = (event) => onMessage(event.data);
  return channel;
}

export function postMessage(channel, message) {
  channel?.postMessage(message);
}

export function closeChannel(channel) {
  channel?.close();
}

// Wake-ups for live turns: whoever waits on a session (a follower, a holder watching for a stop, a
// stopper) in this realm, and through a BroadcastChannel in the other tabs and workers of the origin
// that share an IndexedDB store. Only wake-ups travel here; what happened is always read from the
// store, so a lost or duplicated message costs a read, never a wrong answer.

const waiting = new Map(); // session id -> Set of wake functions
const channels = new Map(); // channel name -> BroadcastChannel

function wakeHere(id) {
  const wakers = waiting.get(id);
  if (!wakers) return;
  waiting.delete(id);
  for (const wake of wakers) wake();
}

function channel(name) {
  let opened = channels.get(name);
  if (!opened && typeof globalThis.BroadcastChannel === "function") {
    opened = new BroadcastChannel(name);
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

/** Resolves after `ms`, on a wake of `id`, or once Web Lock `lockName` (a lease holder's) is free. */
export function waitLive(id, ms, lockName) {
  return new Promise((resolve) => {
    let wakers = waiting.get(id);
    if (!wakers) waiting.set(id, (wakers = new Set()));
    const locks = lockName ? globalThis.navigator?.locks : undefined;
    const cancel = typeof locks?.request === "function" ? new AbortController() : undefined;
    const wake = () => {
      clearTimeout(timer);
      waiting.get(id)?.delete(wake);
      cancel?.abort();
      resolve();
    };
    wakers.add(wake);
    const timer = setTimeout(wake, ms);
    if (cancel) {
      // Granted only once the holder's realm is gone (it holds the lock for its life).
      locks.request(lockName, { signal: cancel.signal }, () => wake()).catch(() => {});
    }
  });
}

/** A new AbortController (the invocation's `signal`). */
export function newAbortController() {
  return new AbortController();
}
