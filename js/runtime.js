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

/** `value` (a promise or not) as a promise that rejects if it has not settled within `ms`. */
export function withTimeout(value, ms, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
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

/** Standard base64 -> bytes, or undefined when `text` is not base64. */
export function fromBase64(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
