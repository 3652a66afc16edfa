// The stores the frameworks' random comparisons run on, by trial (not a test file): plain, encrypted at
// rest, and with a cache of one small session (every other read evicts and reloads).

/** Store options for `SessionStore.kv(kv, options)`: [plain, encrypted, a one-session cache]. */
export async function storeVariants() {
  const encryptionKey = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  return [{}, { encryptionKey }, { cache: { maxSessions: 1, maxBytes: 4096 } }];
}
