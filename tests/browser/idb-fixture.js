// Helpers shared by the IndexedDB test pages (idb-tab.html) and workers (idb-worker.js): loading the
// package, running a test's function in this realm, workers driven by messages, timestamps, the
// raw IndexedDB layout, and the participant of the concurrency race.

// A timestamp comparable across the tabs and workers of one browser: ms since the epoch.
export const now = () => performance.timeOrigin + performance.now();
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const realm = typeof window !== "undefined" ? "window"
  : typeof SharedWorkerGlobalScope !== "undefined" && self instanceof SharedWorkerGlobalScope ? "shared worker"
  : "dedicated worker";

// Loads the package entry for pages and module workers; the environment a test function receives.
export async function environment() {
  const lib = await import("/js/entry/browser.js");
  return { lib, fx: await import("./idb-fixture.js"), ctx: {}, realm };
}

// What crosses postMessage and page.evaluate of an error: its class name, code and fields.
export function describeError(error) {
  if (!(error instanceof Error)) return { name: typeof error, message: String(error) };
  const out = { name: error.name, message: error.message, stack: error.stack };
  for (const field of ["code", "key", "holder", "retryAfterMs", "limit", "actual", "from", "action", "path"]) {
    if (error[field] !== undefined) out[field] = error[field];
  }
  if (error.cause !== undefined) out.cause = String(error.cause?.stack ?? error.cause);
  return out;
}

// Runs a test function, given as source text, in this realm: `fn(env, arg)`.
export async function run(env, source, arg) {
  const fn = (0, eval)(`(${source})`);
  return fn(env, arg);
}

// Polls `predicate` until it returns a truthy value; rejects after `timeoutMs` naming `what`.
export async function waitFor(predicate, what, timeoutMs = 10000) {
  const start = now();
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

// A module worker running idb-worker.js (a dedicated one, or a shared one by that name), driven by
// `run(source, arg)` like a tab. Resolves once the worker has loaded the package.
export function spawn(kind, name) {
  const url = new URL("./idb-worker.js", import.meta.url);
  let worker;
  let port;
  if (kind === "shared") {
    worker = new SharedWorker(url, { type: "module", name });
    port = worker.port;
  } else {
    worker = new Worker(url, { type: "module", name });
    port = worker;
  }
  const pending = new Map();
  let next = 0;
  return new Promise((resolve, reject) => {
    worker.onerror = (event) => {
      console.error(`[${name}] worker error: ${event.message ?? event}`);
      reject(new Error(`${kind} worker ${name} failed to start: ${event.message ?? event}`));
    };
    port.onmessage = ({ data }) => {
      if (data.log !== undefined) {
        console[data.level ?? "log"](`[${name}] ${data.log}`);
      } else if (data.ready !== undefined) {
        if (data.ready) {
          resolve({
            name,
            kind,
            run(source, arg) {
              const id = next++;
              port.postMessage({ id, source: String(source), arg });
              return new Promise((ok, fail) => pending.set(id, { ok, fail }));
            },
            terminate() {
              if (kind === "shared") port.close();
              else worker.terminate();
            },
          });
        } else {
          reject(Object.assign(new Error(`${kind} worker ${name} could not load the package: ${data.error.message}`), data.error));
        }
      } else {
        const call = pending.get(data.id);
        pending.delete(data.id);
        if (data.ok) call.ok(data.value);
        else call.fail(Object.assign(new Error(`in ${kind} worker ${name}: ${data.error.name}: ${data.error.message}`), data.error));
      }
    };
    if (kind === "shared") port.start();
  });
}

// The raw layout (see the IndexedDB backend): `<escaped id>` percent-encodes every UTF-8 byte
// outside [A-Za-z0-9_-] in uppercase hex and is followed by `~`.
export function escapeId(id) {
  let out = "";
  for (const byte of new TextEncoder().encode(id)) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
export const headKey = (id) => `h/${escapeId(id)}~`;
export const batchPrefix = (id) => `e/${escapeId(id)}~/`;
export const snapshotPrefix = (id) => `s/${escapeId(id)}~/`;

// Opens an existing database with the raw API (never creates or upgrades one).
function rawOpen(database) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(database);
    request.onupgradeneeded = () => request.transaction.abort();
    request.onsuccess = () => {
      const db = request.result;
      db.onversionchange = () => db.close();
      resolve(db);
    };
    request.onerror = () => reject(new Error(`raw open of ${database}: ${request.error}`));
  });
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

// Every record of the database: { key: { v: hex of the bytes, n, x } }, read in one transaction.
export async function rawDump(database) {
  const db = await rawOpen(database);
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction("records", "readonly");
      const store = tx.objectStore("records");
      const keys = store.getAllKeys();
      const values = store.getAll();
      tx.oncomplete = () => {
        const out = {};
        keys.result.forEach((key, i) => {
          const value = values.result[i];
          out[key] = { v: value.v instanceof Uint8Array ? hex(value.v) : `not a Uint8Array: ${Object.prototype.toString.call(value.v)}`, n: value.n, x: value.x };
        });
        resolve(out);
      };
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// Flips every bit of one byte in the middle of the record bytes `v` of `key`, in place.
/** Puts `value` under `key` as other code of the origin could (a value of another shape). */
export async function rawPut(database, key, value) {
  const db = await rawOpen(database);
  try {
    await new Promise((resolve, reject) => {
      const tx = db.transaction("records", "readwrite");
      tx.objectStore("records").put(value, key);
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

export async function rawFlipByte(database, key) {
  const db = await rawOpen(database);
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction("records", "readwrite");
      const store = tx.objectStore("records");
      const get = store.get(key);
      let at;
      get.onsuccess = () => {
        const value = get.result;
        if (!value || !(value.v instanceof Uint8Array)) {
          tx.abort();
          reject(new Error(`no record with bytes at ${key}`));
          return;
        }
        const bytes = new Uint8Array(value.v);
        at = bytes.length >> 1;
        bytes[at] ^= 0xff;
        store.put({ ...value, v: bytes }, key);
      };
      tx.oncomplete = () => resolve({ key, at });
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// One participant of the race: `attempts` times, begin; on success append a unique message, wait a
// short random time and commit; a refused begin is caught and logged, then a random pause. Every step is logged with its
// timestamp, so that the test can check the holders' intervals against each other:
//   beginAt      just before begin() was called
//   acquiredAt   just after begin() resolved (the lease was taken before this)
//   commitAt     just before commit() was called (the lease is released after this)
//   committedAt  just after commit() resolved
//   deniedAt     just after begin() rejected
export async function raceParticipant(lib, { database, session: id, attempts, label, startAt, maxHoldMs, maxBackoffMs, leaseMs }) {
  const store = await lib.SessionStore.indexedDb({ database, owner: label, leaseMs });
  try {
    const session = await store.open(id, { create: false });
    const log = [];
    await sleep(Math.max(0, startAt - Date.now()));
    for (let attempt = 0; attempt < attempts; attempt++) {
      const text = `${label}/${attempt}`;
      const entry = { label, realm, attempt, text, beginAt: now() };
      log.push(entry);
      let inv;
      try {
        inv = await session.begin();
      } catch (error) {
        entry.deniedAt = now();
        entry.kind = "denied";
        entry.error = describeError(error);
        entry.isConcurrencyError = error instanceof lib.ConcurrencyError;
        entry.isAgentSessionError = error instanceof lib.AgentSessionError;
        await sleep(Math.random() * maxBackoffMs);
        continue;
      }
      entry.acquiredAt = now();
      entry.token = inv.token;
      entry.baseVersion = inv.session.version;
      try {
        inv.appendMessage({ text, label, attempt });
        await sleep(Math.random() * maxHoldMs);
        entry.commitAt = now();
        entry.version = await inv.commit();
        entry.committedAt = now();
        entry.kind = "commit";
      } catch (error) {
        entry.failedAt = now();
        entry.kind = "commit failed";
        entry.error = describeError(error);
      }
    }
    return log;
  } finally {
    await store.close();
  }
}
