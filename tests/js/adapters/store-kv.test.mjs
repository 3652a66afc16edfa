// SessionStore.kv over memoryKv, as a user would import it: two stores over one memoryKv exclude
// each other; round trips per begin and commit counted by a wrapping adapter; values over
// maxValueBytes chunked and a missing chunk a CorruptRecordError; bad hosts give StorageError.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  SessionStore,
  ConcurrencyError,
  CorruptRecordError,
  LeaseLostError,
  StorageError,
  UnsafeStoreError,
} from "agent-session";
import { memoryKv } from "agent-session/adapters";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The rejection of `promise`, failing when it fulfils. */
async function rejection(promise) {
  try {
    const value = await promise;
    assert.fail(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    return error;
  }
}

/** `base` with every call recorded as [method, key]. */
function counting(base, capabilities = base.capabilities) {
  const calls = [];
  return {
    calls,
    /** The calls since the last take(). */
    take: () => calls.splice(0),
    kv: {
      capabilities,
      get: (key) => (calls.push(["get", key]), base.get(key)),
      put: (key, value, options) => (calls.push(["put", key]), base.put(key, value, options)),
      delete: (key, options) => (calls.push(["delete", key]), base.delete(key, options)),
      list: (prefix, options) => (calls.push(["list", prefix]), base.list(prefix, options)),
    },
  };
}

describe("two stores over one memoryKv", () => {
  test("different owners exclude each other, and each sees the other's commits", async () => {
    const kv = memoryKv();
    const a = await SessionStore.kv(kv, { owner: "alice" });
    const b = await SessionStore.kv(kv, { owner: "bob" });
    const sa = await a.open("shared");
    const sb = await b.open("shared");
    const inv = await sa.begin();
    inv.appendMessage({ from: "alice" });
    const denied = await rejection(sb.begin());
    assert.ok(denied instanceof ConcurrencyError, `got ${denied}`);
    assert.equal(denied.holder, "alice");
    assert.ok(denied.retryAfterMs > 0);
    assert.equal(await inv.commit(), 1);
    const invB = await sb.begin();
    assert.deepEqual(invB.messages(), [{ from: "alice" }], "begin starts from the latest commit");
    invB.appendMessage({ from: "bob" });
    assert.equal(await invB.commit(), 2);
    await sa.refresh();
    assert.deepEqual(sa.messages(), [{ from: "alice" }, { from: "bob" }]);
    // Two stores with the same owner name still exclude each other.
    const c = await SessionStore.kv(kv, { owner: "alice" });
    const held = await sa.begin();
    assert.ok((await rejection((await c.open("shared")).begin())) instanceof ConcurrencyError);
    await held.abort();
  });

  test("two memoryKv() are two worlds", async () => {
    const a = await SessionStore.kv(memoryKv(), { owner: "a" });
    const b = await SessionStore.kv(memoryKv(), { owner: "b" });
    const inv = await (await a.open("s")).begin();
    inv.appendMessage("only in a");
    await inv.commit();
    assert.deepEqual((await b.open("s")).messages(), []);
  });

  test("a stale holder's commit is LeaseLostError and changes nothing visible", async () => {
    const kv = memoryKv();
    const stale = await SessionStore.kv(kv, { owner: "stale", leaseMs: 100, heartbeat: false });
    const fresh = await SessionStore.kv(kv, { owner: "fresh" });
    const old = await (await stale.open("s")).begin();
    old.appendMessage("late");
    await sleep(150);
    const inv = await (await fresh.open("s")).begin();
    assert.ok(inv.token > old.token);
    inv.appendMessage("on time");
    await inv.commit();
    const before = new Map();
    for (const key of (await kv.list("")).keys) before.set(key, (await kv.get(key)).version);
    assert.ok((await rejection(old.commit())) instanceof LeaseLostError);
    for (const [key, version] of before) assert.equal((await kv.get(key))?.version, version, `${key} changed`);
    const reader = await SessionStore.kv(kv, { owner: "reader" });
    const session = await reader.open("s");
    assert.deepEqual(session.messages(), ["on time"]);
    assert.equal(session.version, 1);
  });

  test("SessionStore.kv refuses a non-atomic adapter with UnsafeStoreError unless allowNonAtomic", async () => {
    const base = memoryKv();
    const kv = { ...counting(base).kv, capabilities: { atomic: false } };
    const error = await rejection(SessionStore.kv(kv));
    assert.ok(error instanceof UnsafeStoreError, `got ${error}`);
    const store = await SessionStore.kv(kv, { allowNonAtomic: true });
    assert.equal((await store.open("s")).version, 0);
  });
});

describe("round trips per invocation (a wrapping adapter counts HostKv calls)", () => {
  test("begin: 1 call with a current cache; commit: 2 calls; again after its own commit", async () => {
    const { kv, take } = counting(memoryKv());
    const store = await SessionStore.kv(kv, { owner: "a" });
    const session = await store.open("s");
    take();
    let inv = await session.begin();
    assert.deepEqual(take(), [["put", "h/s~"]], "begin right after open");
    inv.appendMessage("one");
    await inv.commit();
    const commit = take();
    assert.equal(commit.length, 2, JSON.stringify(commit));
    assert.deepEqual(commit.map(([method]) => method), ["put", "put"]);
    inv = await session.begin();
    assert.equal(take().length, 1, "a second begin on the same Session after its own commit");
    inv.appendMessage("two");
    await inv.commit();
    assert.ok(take().length <= 2);
    assert.deepEqual(session.messages(), ["one", "two"]);
  });

  // Begin is one compare-and-set against the cached head; when another store made that cache stale,
  // the refused put reports the current head (the `reportCurrent` option, which memoryKv honours), so
  // begin decides again on it and writes once more: 2 calls on the head, plus the new batches.
  test("begin on a Session whose cache another store made stale: two compare-and-sets of the head, no read", async () => {
    const base = memoryKv();
    const { kv, take } = counting(base);
    const a = await SessionStore.kv(kv, { owner: "a" });
    const b = await SessionStore.kv(base, { owner: "b" });
    const sa = await a.open("s");
    const sb = await b.open("s");
    const other = await sb.begin();
    other.appendMessage("from b");
    await other.commit();
    take();
    const inv = await sa.begin();
    const calls = take();
    assert.deepEqual(inv.messages(), ["from b"]);
    const head = calls.filter(([, key]) => key === "h/s~");
    const rest = calls.filter(([, key]) => key !== "h/s~");
    assert.deepEqual(head.map(([method]) => method), ["put", "put"], `begin's calls on the head: ${JSON.stringify(calls)}`);
    assert.ok(rest.every(([method]) => method === "get") && rest.length <= 1, `besides the head, one get of the new batch: ${JSON.stringify(rest)}`);
    await inv.abort();
  });

  test("a denied begin: at most 2 calls", async () => {
    const base = memoryKv();
    const { kv, take } = counting(base);
    const a = await SessionStore.kv(kv, { owner: "a" });
    const b = await SessionStore.kv(base, { owner: "b" });
    const sa = await a.open("s");
    const held = await (await b.open("s")).begin();
    take();
    assert.ok((await rejection(sa.begin())) instanceof ConcurrencyError);
    const calls = take();
    assert.ok(calls.length <= 2, `a denied begin made ${calls.length} calls: ${JSON.stringify(calls)}`);
    await held.abort();
  });

  test("maxValueBytes 1024: a 5 KB message is chunked (commit = 2 calls + 1 per chunk) and reassembled", async () => {
    const base = memoryKv();
    const { kv, take } = counting(base, { atomic: true, maxValueBytes: 1024 });
    const store = await SessionStore.kv(kv, { owner: "a" });
    const session = await store.open("big");
    const message = { text: "x".repeat(5000), bytes: [...Array(64).keys()] };
    const inv = await session.begin();
    inv.appendMessage(message);
    take();
    await inv.commit();
    const calls = take();
    const chunks = calls.filter(([, key]) => key.includes("#"));
    assert.ok(chunks.length >= 5, `${chunks.length} chunks for a 5 KB batch`);
    assert.ok(calls.length <= 2 + chunks.length, JSON.stringify(calls));
    assert.ok(calls.every(([method]) => method === "put"));
    for (const key of (await base.list("")).keys) {
      const { value } = await base.get(key);
      assert.ok(value.length <= 1024, `${key} holds ${value.length} bytes`);
    }
    const reader = await SessionStore.kv(counting(base, { atomic: true, maxValueBytes: 1024 }).kv, { owner: "r" });
    assert.deepEqual((await reader.open("big")).messages(), [message]);
  });

  test("a deleted chunk makes the record a CorruptRecordError naming the key", async () => {
    const base = memoryKv();
    const kv = counting(base, { atomic: true, maxValueBytes: 1024 }).kv;
    const store = await SessionStore.kv(kv, { owner: "a" });
    const inv = await (await store.open("big")).begin();
    inv.appendMessage("y".repeat(5000));
    await inv.commit();
    const chunk = (await base.list("e/")).keys.find((key) => key.includes("#"));
    assert.ok(chunk, "there are chunk keys");
    assert.equal(await base.delete(chunk), true);
    const reader = await SessionStore.kv(kv, { owner: "r" });
    const error = await rejection(reader.open("big"));
    assert.ok(error instanceof CorruptRecordError, `got ${error}`);
    assert.equal(error.code, "CORRUPT_RECORD");
    assert.ok(error.key.startsWith("e/big~/"), error.key);
  });
});

describe("chunked records leave no chunk behind", () => {
  /** The keys of `base`, and those of them that are chunks whose record is gone. */
  async function keysOf(base) {
    const keys = (await base.list("")).keys;
    const all = new Set(keys);
    return { keys, orphans: keys.filter((key) => key.includes("#") && !all.has(key.slice(0, key.indexOf("#")))) };
  }
  const chunking = (base) => counting(base, { atomic: true, maxValueBytes: 1024 }).kv;

  test("prune deletes the chunks of the records it deletes, and counts records, not chunks", async () => {
    const base = memoryKv();
    const store = await SessionStore.kv(chunking(base), { owner: "a" });
    const session = await store.open("pruned");
    for (let i = 0; i < 6; i++) await session.invoke((inv) => inv.appendMessage(`${i} ${"p".repeat(3000)}`));
    assert.ok((await keysOf(base)).keys.some((key) => key.includes("#")), "the batches are chunked");
    const before = (await keysOf(base)).keys.filter((key) => !key.includes("#"));
    const pruned = await session.prune({ before: session.version });
    const after = await keysOf(base);
    assert.deepEqual(after.orphans, [], "no chunk of a deleted record is left");
    const gone = before.filter((key) => !after.keys.includes(key));
    assert.ok(gone.length >= 5, `records deleted: ${gone}`);
    assert.equal(pruned, gone.length, "prune counts the records it deleted, not their chunks");
    const reader = await SessionStore.kv(chunking(base), { owner: "r" });
    assert.equal((await reader.open("pruned")).messages().length, 6);
  });

  test("the next turn deletes a chunked live log whole: its chunks too, turn after turn", async () => {
    const base = memoryKv();
    const store = await SessionStore.kv(chunking(base), { owner: "a" });
    const session = await store.open("streamed");
    for (let turn = 0; turn < 4; turn++) {
      const inv = await session.begin();
      inv.emit({ text: "t".repeat(5000) });
      await inv.flush();
      inv.appendMessage(turn);
      await inv.commit();
    }
    const { keys, orphans } = await keysOf(base);
    assert.deepEqual(orphans, [], "no chunk of a deleted flush is left");
    const tokens = new Set(keys.filter((key) => key.startsWith("t/")).map((key) => key.split("/")[2]));
    assert.equal(tokens.size, 1, `only the last turn's live log is stored: ${[...tokens]}`);
  });

  test("an interrupt whose head would be over the value limit is refused and writes nothing", async () => {
    const base = memoryKv();
    const store = await SessionStore.kv(chunking(base), { owner: "a" });
    const session = await store.open("asked");
    await session.invoke((inv) => inv.appendMessage("kept"));
    const before = (await keysOf(base)).keys;
    const inv = await session.begin();
    inv.appendMessage("staged");
    const error = await rejection(inv.interrupt("approve?", { payload: "z".repeat(2000) }));
    assert.equal(error.code, "LIMIT_EXCEEDED", String(error));
    assert.equal(error.limit, 1024);
    await inv.abort();
    assert.deepEqual((await keysOf(base)).keys.filter((key) => !key.startsWith("h/")), before.filter((key) => !key.startsWith("h/")));
  });
});

describe("bad hosts: StorageError with the cause, and what was committed stays readable", () => {
  /** A memoryKv whose `get` misbehaves while `mode` says so. */
  function flaky(base) {
    const state = { mode: "healthy", failPut: undefined };
    const boom = new Error("host KV broke");
    const malformed = { value: 42, version: { not: "a string" } };
    const kv = {
      capabilities: base.capabilities,
      get(key) {
        switch (state.mode) {
          case "throws":
            throw boom;
          case "rejects":
            return Promise.reject(boom);
          case "malformed":
            return Promise.resolve(malformed);
          case "hangs":
            return new Promise(() => {});
          default:
            return base.get(key);
        }
      },
      put(key, value, options) {
        if (state.failPut?.(key)) return Promise.reject(boom);
        return base.put(key, value, options);
      },
      delete: (key, options) => base.delete(key, options),
      list: (prefix, options) => base.list(prefix, options),
    };
    return { kv, state, boom, malformed };
  }

  /** A store over `base` with one committed message in session "s". */
  async function committed(base) {
    const store = await SessionStore.kv(base, { owner: "writer" });
    const inv = await (await store.open("s")).begin();
    inv.appendMessage("kept");
    await inv.commit();
  }

  for (const mode of ["throws", "rejects", "malformed", "hangs"]) {
    test(`get ${mode}: StorageError with cause; a healthy adapter still reads the commit`, async () => {
      const base = memoryKv();
      await committed(base);
      const { kv, state, boom, malformed } = flaky(base);
      const store = await SessionStore.kv(kv, { owner: "bad", timeoutMs: 200 });
      state.mode = mode;
      const error = await rejection(store.open("s"));
      assert.ok(error instanceof StorageError, `got ${error?.name}: ${error?.message}`);
      assert.equal(error.code, "STORAGE");
      if (mode === "throws" || mode === "rejects") assert.equal(error.cause, boom);
      if (mode === "malformed") assert.equal(error.cause, malformed);
      if (mode === "hangs") {
        // The adapter's get never settles, so only the store's timeout can have produced this error.
        assert.ok(error.cause instanceof Error, `cause ${error.cause}`);
        assert.match(error.cause.message, /did not answer within 200 ms/);
      }
      const healthy = await SessionStore.kv(base, { owner: "reader" });
      const session = await healthy.open("s");
      assert.deepEqual(session.messages(), ["kept"]);
      assert.equal(session.version, 1);
      state.mode = "healthy";
      assert.deepEqual((await store.open("s")).messages(), ["kept"], "the same store recovers");
    });
  }

  test("a detached buffer from get, a keys array whose getter throws from list: errors of the call, not exceptions through the engine", async () => {
    const base = memoryKv();
    await committed(base);
    const detached = (bytes) => {
      const copy = new Uint8Array(bytes);
      structuredClone(copy.buffer, { transfer: [copy.buffer] }); // detaches copy's buffer
      return copy;
    };
    const kv = {
      ...base,
      capabilities: base.capabilities,
      get: async (key) => {
        const entry = await base.get(key);
        return entry && { ...entry, value: detached(entry.value) };
      },
      list: async () => ({ keys: Object.defineProperty([], 0, { get() { throw new Error("getter"); }, enumerable: true }) }),
    };
    const store = await SessionStore.kv(kv, { owner: "odd" });
    const read = await rejection(store.open("s"));
    assert.ok(read instanceof CorruptRecordError, `got ${read?.name}: ${read?.message}`);
    const listed = await rejection(store.list());
    assert.ok(listed instanceof StorageError, `got ${listed?.name}: ${listed?.message}`);
    // The instance goes on: a healthy adapter reads the commit.
    assert.deepEqual((await (await SessionStore.kv(base)).open("s")).messages(), ["kept"]);
  });

  test("a crash between the batch write and the head compare-and-set: previous version whole, retry commits once", async () => {
    const base = memoryKv();
    await committed(base);
    const { kv, state, boom } = flaky(base);
    const store = await SessionStore.kv(kv, { owner: "bad" });
    const session = await store.open("s");
    const inv = await session.begin();
    inv.appendMessage("second");
    state.failPut = (key) => key.startsWith("h/");
    const error = await rejection(inv.commit());
    assert.ok(error instanceof StorageError, `got ${error}`);
    assert.equal(error.cause, boom);
    const reader = await SessionStore.kv(base, { owner: "reader" });
    const view = await reader.open("s");
    assert.deepEqual(view.messages(), ["kept"]);
    assert.equal(view.version, 1);
    state.failPut = undefined;
    assert.equal(await inv.commit(), 2, "the invocation stayed open; the retry commits");
    await view.refresh();
    assert.deepEqual(view.messages(), ["kept", "second"]);
    assert.deepEqual((await view.history()).filter((event) => event.type === "message").map((event) => event.data), ["kept", "second"]);
  });
});

describe("round trips with an adapter that cannot report the current value", () => {
  test("a stale cache costs the refused compare-and-set, one read and one write", async () => {
    const base = memoryKv();
    const { kv, take } = counting(base);
    // The same adapter without `reportCurrent`: a refused put answers null, as the HostKv contract allows.
    const plain = { ...kv, put: (key, value, options = {}) => kv.put(key, value, { ...options, reportCurrent: undefined }) };
    const a = await SessionStore.kv(plain, { owner: "a" });
    const b = await SessionStore.kv(base, { owner: "b" });
    const sa = await a.open("s");
    await (await b.open("s")).invoke((inv) => inv.appendMessage("from b"));
    take();
    const inv = await sa.begin();
    const head = take().filter(([, key]) => key === "h/s~");
    assert.deepEqual(head.map(([method]) => method), ["put", "get", "put"]);
    assert.deepEqual(inv.messages(), ["from b"]);
    await inv.abort();
  });
});

describe("hand-written adapters that bend the HostKv contract", () => {
  /** A HostKv over a Map with a counter for versions, given as numbers where `numbers` says. */
  function counterKv({ numbers }) {
    const entries = new Map();
    let next = 0;
    return {
      capabilities: { atomic: true },
      async get(key) {
        const entry = entries.get(key);
        return entry === undefined ? null : { value: entry.value, version: numbers ? entry.version : String(entry.version) };
      },
      async put(key, value, options = {}) {
        const entry = entries.get(key);
        const expected = options.expectedVersion;
        if (expected === null && entry !== undefined) return null;
        if (expected !== undefined && expected !== null && (entry === undefined || String(entry.version) !== String(expected))) return null;
        entries.set(key, { value: value.slice(), version: ++next });
        return numbers ? next : String(next);
      },
      async delete(key) {
        return entries.delete(key);
      },
      async list(prefix) {
        return { keys: [...entries.keys()].filter((key) => key.startsWith(prefix)).sort() };
      },
    };
  }

  test("versions given as numbers work as their decimal strings (they had thrown out of the engine)", async () => {
    const kv = counterKv({ numbers: true });
    const store = await SessionStore.kv(kv);
    const session = await store.open("numbers");
    await session.invoke((inv) => inv.appendMessage("hi"));
    await session.invoke((inv) => inv.appendMessage("again"));
    const fresh = await (await SessionStore.kv(kv)).open("numbers", { create: false });
    assert.deepEqual([...fresh.messages()], ["hi", "again"]);
    assert.equal(fresh.version, 2);
  });

  test("a put that resolves undefined is a StorageError, not a refused compare-and-set", async () => {
    const base = memoryKv();
    const kv = { ...counting(base).kv, put: async (key, value, options) => void (await base.put(key, value, options)) };
    const store = await SessionStore.kv(kv, { owner: "me" });
    const error = await rejection(store.open("undefined-put"));
    assert.ok(error instanceof StorageError, `got ${error}`);
    assert.match(error.message, /malformed/);
  });

  test("a list that gives back the cursor it was given is a StorageError, not a loop for ever", async () => {
    const base = memoryKv();
    const store = await SessionStore.kv(base);
    await (await store.open("listed")).invoke((inv) => inv.appendMessage(1));
    const looping = { ...counting(base).kv, list: async () => ({ keys: [], cursor: "same" }) };
    const other = await SessionStore.kv(looping);
    for (const call of [() => other.delete("listed"), () => other.sweepExpired()]) {
      const error = await rejection(call());
      assert.ok(error instanceof StorageError, `got ${error}`);
    }
    const page = await other.list();
    assert.equal(typeof page.cursor, "string", "a page whose cursor moves on is given");
    const error = await rejection(other.list({ cursor: page.cursor }));
    assert.ok(error instanceof StorageError, `got ${error}`);
  });
});
