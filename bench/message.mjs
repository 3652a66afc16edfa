// The chat message every IndexedDB benchmark writes (bench/idb.mjs, bench/compaction-chromium-tab.mjs,
// bench/encryption-chromium.mjs): its JSON is MESSAGE_BYTES long and numbered, so that no two are alike.
export const MESSAGE_BYTES = 200;
const FILLER = "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. ".repeat(4);

/** The i-th message: `{ role, content }`, alternating user and assistant. */
export function message(i) {
  const role = i % 2 ? "assistant" : "user";
  const head = `#${i} `;
  const room = MESSAGE_BYTES - JSON.stringify({ role, content: head }).length;
  return { role, content: head + FILLER.slice(0, room) };
}
