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
