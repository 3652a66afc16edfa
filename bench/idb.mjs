// The page logic of the IndexedDB benchmark (bench/idb.html; bench/run.mjs drives it headless): for
// sessions of several lengths, the cost of one turn (begin + 2 appended messages + commit) and of a
// cold load (a new store or connection opening the session and reading every message), for
// agent-session and, in this page and this run, the three baselines of bench/baselines.mjs.
import { SessionStore } from "/js/entry/browser.js";
import { MESSAGE_BYTES, message } from "./message.mjs";
import { dexieProtocol, idbKeyval, idbProtocol } from "./baselines.mjs";
import { seeded } from "/tests/browser/model-checks.mjs";


/** A writer over one agent-session store, shaped like the baselines' writers. */
function sessionWriter(store) {
  return async (id) => {
    const session = await store.open(id);
    const commit = async (messages) => {
      const inv = await session.begin();
      for (const m of messages) inv.appendMessage(m);
      await inv.commit();
    };
    return {
      async fill(messages) {
        for (let i = 0; i < messages.length; i += 100) await commit(messages.slice(i, i + 100));
      },
      async turn(messages) {
        const t0 = performance.now();
        const inv = await session.begin();
        const t1 = performance.now();
        for (const m of messages) inv.appendMessage(m);
        await inv.commit();
        return [t1 - t0, performance.now() - t1];
      },
    };
  };
}

/** agent-session on IndexedDB with its defaults (snapshotEvery, durability), shaped like the baselines. */
async function agentSession(database) {
  const snapshots = [];
  const store = await SessionStore.indexedDb({ database, onEvent: (event) => event.type === "snapshot" && snapshots.push(event) });
  return {
    snapshots,
    writer: sessionWriter(store),
    async load(id) {
      const reader = await SessionStore.indexedDb({ database });
      const connected = performance.now();
      const session = await reader.open(id, { create: false });
      return { count: session.messages().length, connected, close: () => reader.close() };
    },
    close: () => store.close(),
  };
}

/** agent-session on its memory store: the engine and bindings without IndexedDB (turns only). */
async function agentSessionMemory() {
  const store = await SessionStore.memory();
  return { writer: sessionWriter(store), close: () => store.close() };
}

const IMPLEMENTATIONS = { "agent-session": agentSession, idb: idbProtocol, "idb-keyval": idbKeyval, dexie: dexieProtocol, "agent-session memory": agentSessionMemory };

/** Counts IndexedDB transactions per database, to tell round trips from work; restore() undoes it. */
function countTransactions() {
  const original = IDBDatabase.prototype.transaction;
  const counts = new Map();
  IDBDatabase.prototype.transaction = function (...args) {
    counts.set(this.name, (counts.get(this.name) ?? 0) + 1);
    return original.apply(this, args);
  };
  return { of: (name) => counts.get(name) ?? 0, restore: () => (IDBDatabase.prototype.transaction = original) };
}

/**
 * Counts the records and bytes read per database through get and getAll (agent-session's values are
 * `{ v: bytes }`: their byte length; the baselines' structured-clone objects: the length of their JSON).
 * Reads through cursors are not seen (none of the loads here uses one); restore() undoes it.
 */
function countReads() {
  const originals = { get: IDBObjectStore.prototype.get, getAll: IDBObjectStore.prototype.getAll };
  const reads = new Map(); // database name -> { records, bytes }
  const sizeOf = (value) => (value?.v instanceof Uint8Array ? value.v.byteLength : JSON.stringify(value ?? null).length);
  for (const [method, original] of Object.entries(originals)) {
    IDBObjectStore.prototype[method] = function (...args) {
      const request = original.apply(this, args);
      const name = this.transaction.db.name;
      request.addEventListener("success", () => {
        const values = method === "getAll" ? request.result : request.result === undefined ? [] : [request.result];
        const seen = reads.get(name) ?? { records: 0, bytes: 0 };
        seen.records += values.length;
        for (const value of values) seen.bytes += sizeOf(value);
        reads.set(name, seen);
      });
      return request;
    };
  }
  return {
    of: (name) => ({ ...(reads.get(name) ?? { records: 0, bytes: 0 }) }),
    restore: () => Object.assign(IDBObjectStore.prototype, originals),
  };
}

function stats(samples) {
  if (!samples.length) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return {
    median: sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2,
    p99: sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)],
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
    min: sorted[0],
    max: sorted[sorted.length - 1],
    n: samples.length,
  };
}

/**
 * A cold load reads the newest snapshot and then every batch committed since; with 2-message turns
 * that is up to snapshotEvery - 1 batches whatever the session's length, which the 100-message fill of
 * the main table hides. So: ~1000 messages ending in a snapshot (50 commits of 18; 50 is the default
 * snapshotEvery), then cold loads after 0, 24 and 49 further 2-message turns; (b) for reference.
 */
async function coldLoadByTail({ impls, databases, transactions, loads, next, log }) {
  const rows = [];
  for (const name of ["agent-session", "idb"]) {
    const impl = impls[name];
    const writer = await impl.writer("tail");
    for (let i = 0; i < 50; i++) await writer.fill(Array.from({ length: 18 }, next));
    let commits = 50;
    for (const k of [0, 24, 49]) {
      for (; commits < 50 + k; commits++) await writer.turn([next(), next()]);
      const messages = 900 + 2 * k;
      // agent-session reads the batches after its newest snapshot; (b) has none and reads every batch.
      const snapshot = impl.snapshots?.filter((event) => event.session === "tail").at(-1)?.version ?? 0;
      const samples = [];
      const tx = transactions.of(databases[name]);
      for (let l = 0; l < loads; l++) {
        const t0 = performance.now();
        const loaded = await impl.load("tail");
        samples.push(performance.now() - t0);
        await loaded.close();
        if (loaded.count !== messages) throw new Error(`${name}: cold load of the tail session read ${loaded.count} messages, not ${messages}`);
      }
      const load = stats(samples);
      rows.push({ name, turnsAfter: k, messages, batches: commits - snapshot, snapshot: snapshot > 0, load, loadTransactions: (transactions.of(databases[name]) - tx) / loads });
      log(`tail, ${name}: ${k} turns after the snapshot, load median ${load.median.toFixed(3)} ms`);
    }
  }
  return rows;
}

/**
 * `list` in the order of round `round` of an interleaved run: a shuffle seeded by the round (the same
 * in every run), so that each implementation runs after each other one about equally often. (A fixed
 * order, or one rotated each round, keeps the same neighbours: agent-session always ran after Dexie's
 * and idb-keyval's writes, whose writing out and garbage landed on its turn.)
 */
function inRoundOrder(list, round) {
  const order = [...list];
  // Seeds spread over the generator's range: consecutive seeds would start it in step.
  const random = seeded(((round + 1) * 0x9e3779b1) % 2147483648);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * The turn's tail with the two protocols alone. The main turns interleave five implementations in one
 * page, and a stall of one (idb-keyval rewriting 2 MB a turn at 10,000 messages, Dexie's) lands on
 * whichever turn runs next: the p99 of 300 turns there says as much about the page as about the
 * protocol. Here only agent-session and (b) write, on fresh databases, after the main run's stores are
 * closed: the same sizes, fills and turns, interleaved. Resolves to one row per size.
 */
async function twoAlone({ sizes, turns, warmup, next, log }) {
  const tag = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const databases = { "agent-session": `bench-alone-as-${tag}`, idb: `bench-alone-idb-${tag}` };
  const impls = { "agent-session": await agentSession(databases["agent-session"]), idb: await idbProtocol(databases.idb) };
  for (const impl of Object.values(impls)) {
    const writer = await impl.writer("warmup");
    await writer.fill(Array.from({ length: 10 }, next));
    for (let i = 0; i < warmup; i++) await writer.turn([next(), next()]);
  }
  const rows = [];
  for (const size of sizes) {
    const writers = {};
    for (const [name, impl] of Object.entries(impls)) {
      writers[name] = await impl.writer(`alone-${size}`);
      await writers[name].fill(Array.from({ length: size }, next));
    }
    const samples = { "agent-session": [], idb: [] };
    let snapshotTurns = 0;
    for (let i = 0; i < turns; i++) {
      for (const name of inRoundOrder(Object.keys(impls), i)) {
        const before = impls[name].snapshots?.length;
        const [a, b] = await writers[name].turn([next(), next()]);
        samples[name].push(a + b);
        if (impls[name].snapshots && impls[name].snapshots.length !== before) snapshotTurns++;
      }
    }
    const row = { size, as: stats(samples["agent-session"]), idb: stats(samples.idb), snapshotTurns };
    log(`alone, ${size} messages: p99 ${row.as.p99.toFixed(3)} ms against ${row.idb.p99.toFixed(3)} ms`);
    rows.push(row);
  }
  for (const impl of Object.values(impls)) await impl.close();
  await Promise.all(Object.values(databases).map((name) => new Promise((done) => Object.assign(indexedDB.deleteDatabase(name), { onsuccess: done, onerror: done, onblocked: done }))));
  return rows;
}

/**
 * Runs every size through every implementation: pre-fill untimed, then the cold loads (so that they
 * read exactly `size` messages), then the turns, loads and turns interleaved across implementations.
 * Resolves to plain data for bench/table.mjs.
 */
// 300 turns: the p99 of 100 is their second-worst turn, one stall of the machine away from any figure.
export async function run({ sizes = [10, 100, 1000, 10000], turns = 300, loads = 10, warmup = 20, log = (s) => console.log(`[bench] ${s}`) } = {}) {
  const tag = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const transactions = countTransactions();
  const reads = countReads();
  const impls = {};
  const databases = {};
  for (const [name, make] of Object.entries(IMPLEMENTATIONS)) {
    databases[name] = `bench-${name.replace(/ /g, "-")}-${tag}`;
    impls[name] = await make(databases[name]);
  }
  let n = 0;
  const pair = () => [message(n++), message(n++)];

  // Warm the JIT, the wasm and each database's connection on a session that is not measured.
  for (const impl of Object.values(impls)) {
    const writer = await impl.writer("warmup");
    await writer.fill(Array.from({ length: 10 }, () => message(n++)));
    for (let i = 0; i < warmup; i++) await writer.turn(pair());
    if (impl.load) await (await impl.load("warmup")).close();
  }

  // Two passes over every size, the first not reported: whichever size ran first used to come out up to
  // 40% slower for every implementation (the browser's IndexedDB backend and the JITs warming up).
  const out = [];
  for (const pass of [0, 1])
  for (const size of sizes) {
    const id = `session-${size}-${pass}`;
    const row = { size, impls: {} };
    const entries = Object.entries(impls);
    const runs = {};
    for (const [name, impl] of entries) {
      const t = performance.now();
      const writer = await impl.writer(id);
      await writer.fill(Array.from({ length: size }, () => message(n++)));
      runs[name] = { writer, fillMs: performance.now() - t, load: [], connect: [], read: [], loadTx: 0, loadRecords: 0, loadBytes: 0,
        turn: [], first: [], second: [], snapshotTurns: [], turnTx: 0 };
    }
    // Interleaved, one load or turn of each implementation in turn, so that a slow phase of the browser
    // (its IndexedDB backend writing out, a garbage collection) falls on all of them alike; each round
    // in its own order, so that none always runs right after the same other one (after idb-keyval's
    // 2 MB write at 10,000 messages, say, whose writing out and garbage land on the next turn).
    for (let i = 0; i < loads; i++) {
      for (const [name, impl] of inRoundOrder(entries, i)) {
        if (!impl.load) continue;
        const r = runs[name];
        const tx = transactions.of(databases[name]);
        const readBefore = reads.of(databases[name]);
        const t0 = performance.now();
        const loaded = await impl.load(id);
        const t1 = performance.now();
        r.load.push(t1 - t0);
        r.connect.push(loaded.connected - t0);
        r.read.push(t1 - loaded.connected);
        await loaded.close();
        r.loadTx += transactions.of(databases[name]) - tx;
        const readAfter = reads.of(databases[name]);
        r.loadRecords += readAfter.records - readBefore.records;
        r.loadBytes += readAfter.bytes - readBefore.bytes;
        if (loaded.count !== size) throw new Error(`${name}: cold load of ${id} read ${loaded.count} messages, not ${size}`);
      }
    }
    for (let i = 0; i < turns; i++) {
      for (const [name, impl] of inRoundOrder(entries, i)) {
        const r = runs[name];
        const tx = transactions.of(databases[name]);
        const before = impl.snapshots?.length;
        const [a, b] = await r.writer.turn(pair());
        r.first.push(a);
        r.second.push(b);
        r.turn.push(a + b);
        r.turnTx += transactions.of(databases[name]) - tx;
        if (impl.snapshots && impl.snapshots.length !== before) r.snapshotTurns.push(a + b);
      }
    }
    for (const [name, impl] of entries) {
      const r = runs[name];
      row.impls[name] = {
        turn: stats(r.turn), begin: stats(r.first), commit: stats(r.second), turnTransactions: r.turnTx / turns,
        snapshotTurns: r.snapshotTurns, load: stats(r.load), connect: stats(r.connect), read: stats(r.read),
        loadTransactions: impl.load ? r.loadTx / loads : undefined, fillMs: r.fillMs,
        loadRecords: impl.load ? r.loadRecords / loads : undefined, loadBytes: impl.load ? r.loadBytes / loads : undefined,
      };
      log(`${size} messages, ${name}: fill ${r.fillMs.toFixed(0)} ms, turn median ${row.impls[name].turn.median.toFixed(3)} ms` +
        (impl.load ? `, load median ${row.impls[name].load.median.toFixed(3)} ms` : ""));
    }
    if (pass === 1) out.push(row);
  }
  const tail = await coldLoadByTail({ impls, databases, transactions, loads, next: () => message(n++), log });

  for (const impl of Object.values(impls)) await impl.close();
  transactions.restore();
  reads.restore();
  const alone = await twoAlone({ sizes, turns, warmup, next: () => message(n++), log });
  // A page opened by hand would otherwise keep every run's databases; a blocked delete finishes later.
  await Promise.all(Object.values(databases).map((name) => new Promise((done) => Object.assign(indexedDB.deleteDatabase(name), { onsuccess: done, onerror: done, onblocked: done }))));
  return { sizes: out, tail, alone, turns, loads, messageBytes: MESSAGE_BYTES, userAgent: navigator.userAgent, crossOriginIsolated };
}
