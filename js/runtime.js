// What the engine needs from the JS host: randomness and timers, the same in every runtime.

export function fillRandom(bytes) {
  globalThis.crypto.getRandomValues(bytes);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Calls `tick` every `ms` without keeping a Node process alive for it. */
export function startInterval(tick, ms) {
  const handle = setInterval(tick, ms);
  if (typeof handle === "object" && handle !== null && typeof handle.unref === "function") handle.unref();
  return handle;
}

export function stopInterval(handle) {
  clearInterval(handle);
}
