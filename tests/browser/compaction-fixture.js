// Helpers of the compaction test page (compaction-tab.html): loading the package, running a test's
// function in the tab, describing errors across page.evaluate, and reading a session's raw IndexedDB
// records (what the store keeps of it: keys and record sizes) without going through the package.

export async function environment() {
  const lib = await import("/js/entry/browser.js");
  return { lib, fx: await import("./compaction-fixture.js"), ctx: {} };
}

// Runs a test function, given as source text, in this tab: `fn(env, arg)`.
export async function run(env, source, arg) {
  const fn = (0, eval)(`(${source})`);
  return fn(env, arg);
}

// What crosses page.evaluate of an error: its class name, code and fields.
export function describeError(error) {
  if (!(error instanceof Error)) return { name: typeof error, message: String(error) };
  const out = { name: error.name, message: error.message };
  for (const field of ["code", "key", "holder", "retryAfterMs", "limit", "actual", "from", "action", "path"]) {
    if (error[field] !== undefined) out[field] = error[field];
  }
  return out;
}

// The rejection of `promise` described, or { fulfilled: value } when it fulfils.
export async function settle(promise) {
  try {
    const value = await promise;
    return { fulfilled: value === undefined ? null : JSON.parse(JSON.stringify(value)) };
  } catch (error) {
    return describeError(error);
  }
}

// The error `fn()` throws described, or { returned } when it returns.
export function throws(fn) {
  try {
    return { returned: fn() ?? null };
  } catch (error) {
    return describeError(error);
  }
}

// The escaped form of a session id in record keys (docs/storage-layout.md): every byte outside
// [A-Za-z0-9_-] percent-encoded, then "~".
export function escapeId(id) {
  let out = "";
  for (const byte of new TextEncoder().encode(id)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return `${out}~`;
}

// Every record of session `id` in the database's `records` object store, read by a raw IndexedDB
// connection: { key, bytes } where bytes is the key's length plus the stored record bytes (`v`).
export async function sessionRecords(database, id) {
  const escaped = escapeId(id);
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open(database);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  try {
    return await new Promise((resolve, reject) => {
      const out = [];
      const tx = db.transaction("records", "readonly");
      const request = tx.objectStore("records").openCursor();
      request.onsuccess = () => {
        const cursor = request.result;
        if (!cursor) return;
        const key = String(cursor.key);
        if (key.split("/")[1] === escaped) {
          const value = cursor.value;
          const size = value?.v?.byteLength ?? 0;
          out.push({ key, bytes: key.length + size });
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

// Totals of sessionRecords(): records, bytes, and the snapshot part (keys "s/" and "g/").
export function totals(records) {
  const snap = records.filter((r) => r.key.startsWith("s/") || r.key.startsWith("g/"));
  return {
    records: records.length,
    bytes: records.reduce((sum, r) => sum + r.bytes, 0),
    snapshotRecords: snap.length,
    snapshotBytes: snap.reduce((sum, r) => sum + r.bytes, 0),
  };
}
