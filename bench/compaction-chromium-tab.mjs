// The page of bench/compaction-chromium.mjs, loaded into /tests/browser/blank.html by dynamic import and
// driven through page.evaluate: writes a long session on SessionStore.indexedDb, compacts it, prunes it,
// and measures at each step what the session stores (its records in the IndexedDB object store, read by
// a raw connection) and what a cold load costs (a new store, with its own connection and cache, opening
// the session and reading every message).
import { SessionStore } from "/js/entry/browser.js";
import { MESSAGE_BYTES, message } from "./message.mjs";


const log = (text) => console.log(`[bench] ${text}`);
let database;
let writer;
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => sorted(xs)[Math.floor((xs.length - 1) / 2)];

export async function setup(options) {
  ({ database } = options);
  writer = await SessionStore.indexedDb({ database, owner: "writer" });
  return { crossOriginIsolated, userAgent: navigator.userAgent };
}

export async function close() {
  await writer?.close();
}

/** Writes `turns` turns of `perTurn` messages to session `id`; resolves to the turn times (ms). */
export async function write({ id, turns, perTurn }) {
  const session = await writer.open(id);
  const times = [];
  let n = session.messages().length;
  const started = performance.now();
  for (let t = 0; t < turns; t++) {
    const start = performance.now();
    const inv = await session.begin();
    for (let k = 0; k < perTurn; k++) inv.appendMessage(message(n++));
    await inv.commit();
    times.push(performance.now() - start);
    if ((t + 1) % 1000 === 0) log(`${id}: ${t + 1} turns, ${n} messages, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return { version: session.version, messages: session.messages().length, turnMedianMs: median(times.slice(-200)), writeMs: performance.now() - started };
}

/** One timed turn of 2 messages on `id` (the baseline of the compact and prune timings). */
async function turnMs(session, n) {
  const start = performance.now();
  const inv = await session.begin();
  inv.appendMessage(message(n));
  inv.appendMessage(message(n + 1));
  await inv.commit();
  return performance.now() - start;
}

/**
 * Compacts the first messages of `id` into one summary message so that `keep` messages remain in all,
 * as one turn; resolves to the commit's time and the median of 21 ordinary 2-message turns measured just
 * before it (then the session's last messages are the kept ones).
 */
export async function compact({ id, keep }) {
  const session = await writer.open(id);
  const turns = [];
  for (let k = 0; k < 21; k++) turns.push(await turnMs(session, session.messages().length));
  const count = session.messages().length;
  const start = performance.now();
  const inv = await session.begin();
  inv.compact({ before: count - (keep - 1), summary: [{ role: "system", content: `summary of ${count - (keep - 1)} messages`.padEnd(MESSAGE_BYTES - 30, ".") }] });
  const version = await inv.commit();
  const ms = performance.now() - start;
  return { version, messages: session.messages().length, compactMs: ms, turnMedianMs: median(turns) };
}

/** prune({ before: latest }) of `id`, timed. */
export async function prune({ id }) {
  const session = await writer.open(id);
  const start = performance.now();
  const removed = await session.prune({ before: session.version });
  return { removed, pruneMs: performance.now() - start, version: session.version };
}

/** The escaped form of a session id in record keys (docs/storage-layout.md). */
function escapeId(id) {
  let out = "";
  for (const byte of new TextEncoder().encode(id)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return `${out}~`;
}

/**
 * What session `id` stores: its records in the `records` object store (a raw read-only connection),
 * sized as the key's length plus the record's bytes (`v`), in all and for snapshots ("s/" and "g/").
 */
export async function stored({ id }) {
  const escaped = escapeId(id);
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open(database);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  try {
    return await new Promise((resolve, reject) => {
      const out = { records: 0, bytes: 0, snapshotRecords: 0, snapshotBytes: 0, batchRecords: 0, batchBytes: 0 };
      const tx = db.transaction("records", "readonly");
      const request = tx.objectStore("records").openCursor();
      request.onsuccess = () => {
        const cursor = request.result;
        if (!cursor) return;
        const key = String(cursor.key);
        if (key.split("/")[1] === escaped) {
          const size = key.length + (cursor.value?.v?.byteLength ?? 0);
          out.records++;
          out.bytes += size;
          if (key.startsWith("s/") || key.startsWith("g/")) {
            out.snapshotRecords++;
            out.snapshotBytes += size;
          } else if (key.startsWith("e/")) {
            out.batchRecords++;
            out.batchBytes += size;
          }
        }
        cursor.continue();
      };
      tx.oncomplete = () => resolve(out);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** `loads` cold loads of `id` (each a new store: connection, cache), after one untimed; times in ms. */
export async function coldLoads({ id, loads }) {
  const times = [];
  let messages;
  for (let k = 0; k <= loads; k++) {
    const start = performance.now();
    const store = await SessionStore.indexedDb({ database, owner: `reader-${k}` });
    const session = await store.open(id, { create: false });
    messages = session.messages().length;
    const ms = performance.now() - start;
    await store.close();
    if (k > 0) times.push(ms);
  }
  return { times, medianMs: median(times), messages };
}
