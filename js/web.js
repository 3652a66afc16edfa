// Cross-realm browser facilities for the IndexedDB store: Web Locks (is a lease holder's tab or
// worker still alive?) and BroadcastChannel (commits reach every tab and worker of the origin).

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
