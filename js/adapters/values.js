// What the adapters share about values and versions.

/** A version no earlier write of the key can have had: 96 random bits, base64url. */
export function newVersion() {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}

/** The bytes of a value: a Uint8Array, or a string holding them in base64 (the HostKv contract). */
export function bytesOf(value, adapter) {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
  throw new TypeError(`${adapter}: a value must be a Uint8Array or a base64 string`);
}
