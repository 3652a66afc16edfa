// The page side of the IndexedDB open-by-id benchmark (bench/open-by-id.html; bench/run-open-by-id.mjs
// drives it headless, each call in a fresh page so that each wasm memory is its own): the server loop of
// the README's examples, `store.open(id)` then one turn of 2 messages per request, against the same loop
// holding one Session object; and many distinct sessions opened, given one turn and dropped.
import { SessionStore } from "/js/entry/browser.js";
import { message } from "./message.mjs";

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const freshDatabase = (what) => `bench-open-by-id-${what}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

// A page opened by hand would otherwise keep every run's databases; a blocked delete finishes later.
const deleteDatabase = (name) => new Promise((done) => Object.assign(indexedDB.deleteDatabase(name), { onsuccess: done, onerror: done, onblocked: done }));

/** One request's turn: 2 messages of ~200 bytes of JSON (a user's, then an assistant's). */
const turn = (session, i) => session.invoke((inv) => {
  inv.appendMessage(message(2 * i));
  inv.appendMessage(message(2 * i + 1));
});

/**
 * `turns` turns on session "long" of a fresh database, `mode` "held" (one Session object) or "open"
 * (`await store.open("long")` before each turn, timed with it), after `warmup` untimed turns on another
 * session. Resolves to the medians of the first and last `window` turn times, and the wasm memory.
 */
export async function loop({ mode, turns = 5000, window = 50, warmup = 20 }) {
  const wasmStartBytes = SessionStore.memoryUsage().wasmBytes;
  const database = freshDatabase(mode);
  const store = await SessionStore.indexedDb({ database });
  try {
    const warm = await store.open("warmup");
    for (let i = 0; i < warmup; i++) await turn(warm, -1 - i);
    const held = mode === "held" ? await store.open("long") : undefined;
    const times = [];
    for (let i = 0; i < turns; i++) {
      const started = performance.now();
      await turn(held ?? (await store.open("long")), i);
      times.push(performance.now() - started);
    }
    const messages = (await store.open("long")).messages().length;
    if (messages !== 2 * turns) throw new Error(`${mode}: ${messages} messages, expected ${2 * turns}`);
    const memory = SessionStore.memoryUsage();
    return {
      mode, turns, window, warmup, messages,
      first: median(times.slice(0, window)),
      last: median(times.slice(-window)),
      wasmStartBytes, wasmBytes: memory.wasmBytes, countedBytes: memory.countedBytes, cache: store.cacheUsage(),
      userAgent: navigator.userAgent, crossOriginIsolated,
    };
  } finally {
    await store.close();
    await deleteDatabase(database);
  }
}

/**
 * `sessions` distinct sessions opened by one store with the default cache, each given one turn and
 * dropped (no reference kept, no dispose); every `every` sessions, the wasm memory, the store's cache and
 * the mean time of open + turn over the sessions since the previous sample.
 */
export async function distinct({ sessions = 10000, every = 2000 }) {
  const wasmStartBytes = SessionStore.memoryUsage().wasmBytes;
  const database = freshDatabase("distinct");
  const store = await SessionStore.indexedDb({ database });
  try {
    const samples = [];
    let since = performance.now(), from = 0;
    for (let i = 1; i <= sessions; i++) {
      await turn(await store.open(`s-${i}`), i);
      if (i % every === 0 || i === sessions) {
        const now = performance.now();
        const memory = SessionStore.memoryUsage();
        samples.push({ opened: i, wasmBytes: memory.wasmBytes, countedBytes: memory.countedBytes, cache: store.cacheUsage(), msPerSession: (now - since) / (i - from) });
        console.log(`[bench] distinct: ${i} sessions, wasm ${(memory.wasmBytes / 2 ** 20).toFixed(1)} MiB`);
        since = now;
        from = i;
      }
    }
    return { sessions, every, wasmStartBytes, samples };
  } finally {
    await store.close();
    await deleteDatabase(database);
  }
}
