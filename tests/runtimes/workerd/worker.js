// The Worker that tests/js/workerd.test.mjs bundles with esbuild (the package's "workerd" export
// condition, as wrangler would) and runs in workerd through miniflare. It imports the package the
// way a user's Worker does; nothing here loads the wasm by hand.
//
// Routes (each answers JSON):
//   POST /turn?session=ID&text=T&delay=MS&pad=N  a turn in the session's Durable Object: begin, append
//                                          {text} (with N bytes of padding), wait MS on a timer (the input gate opens, as during
//                                          an LLM call), commit. 409 {code, holder, retryAfterMs} when busy.
//   GET  /largest-value?session=ID         the size of the largest value in the object's storage
//   GET  /messages?session=ID              {version, status, messages, history: [{type, version}]}
//   GET  /two-stores?session=ID            two stores over one ctx.storage contend for one session
//   GET  /kv-check?backend=kv|sqlite&plain=0|1  a fixed run of HostKv operations on durableObjectKv
//   GET  /cloudflare-kv/refused            SessionStore.kv(cloudflareKv(env.KV)) without the opt-out
//   POST /cloudflare-kv/turn?session=ID    a turn on cloudflareKv with allowNonAtomic: true
//   GET  /cloudflare-kv/ttl                what expirations cloudflareKv gives Workers KV for ttlMs
//   GET  /foreign                          heads rewritten by another program (no version record; a
//                                          value that is not bytes): what get, open, list and sweep say
//   POST /kv-rpc?backend=kv|sqlite|cloudflare  {method, args} -> {result}: one HostKv call on the
//                                          adapter, so that the adapter contract suite (Node) can
//                                          drive it; bytes travel as {$bytes: base64}, in commit's
//                                          writes too
//   POST /history-model?backend=kv|sqlite  {trials}: the history model (tests/browser/history-model-
//                                          fixture.mjs) on durableObjectKv, stores under a prefix each
//   POST /encryption?session=ID            {markers, key: hex of an AES-GCM key or null}: a session
//                                          with a marker in every kind of data (encryptionKey when
//                                          key is given), the object's whole storage dumped raw
//                                          mid-turn and after, and what a new store reads back
import { SessionStore, ConcurrencyError, UnsafeStoreError } from "agent-session";
import { durableObjectKv, cloudflareKv } from "agent-session/adapters";
import { LIMITS, runTrial } from "../../browser/history-model-fixture.mjs";

const json = (body, status = 200) => Response.json(body, { status });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const errorBody = (error) => ({ name: error?.name, code: error?.code, message: String(error?.message ?? error) });

export class Sessions {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
    this.owner = `durable-object ${ctx.id}`;
  }

  /** One store per object instance, made on first use. */
  store() {
    this.ready ??= SessionStore.kv(durableObjectKv(this.ctx.storage), { owner: this.owner });
    return this.ready;
  }

  async fetch(request) {
    const url = new URL(request.url);
    const id = url.searchParams.get("session");
    try {
      switch (`${request.method} ${url.pathname}`) {
        case "POST /turn":
          return await this.turn(id, url.searchParams.get("text"), Number(url.searchParams.get("delay") ?? 0), Number(url.searchParams.get("pad") ?? 0));
        case "GET /largest-value":
          return json(await largestValue(this.ctx.storage));
        case "GET /messages":
          return await this.messages(id);
        case "GET /two-stores":
          return await this.twoStores(id);
        case "POST /kv-rpc":
          return json(await kvRpc(durableObjectKv(this.ctx.storage), await request.json()));
        case "POST /history-model":
          return json(await historyModel(durableObjectKv(this.ctx.storage), await request.json()));
        case "POST /encryption":
          return json(await this.encryption(id, await request.json()));
        case "GET /foreign":
          return json(await this.foreign());
        case "GET /kv-check":
          // plain=1: a storage-like object with only get/put/delete/list (no transaction()).
          return json(await kvCheck(url.searchParams.get("plain") === "1" ? plain(this.ctx.storage) : this.ctx.storage));
        default:
          return json({ error: "no such route" }, 404);
      }
    } catch (error) {
      return json(errorBody(error), 500);
    }
  }

  async turn(id, text, delay, pad) {
    const store = await this.store();
    const session = await store.open(id);
    let inv;
    try {
      inv = await session.begin();
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      return json({ name: error.name, code: error.code, holder: error.holder, retryAfterMs: error.retryAfterMs }, 409);
    }
    inv.appendMessage(pad > 0 ? { text, pad: "x".repeat(pad) } : { text });
    await sleep(delay);
    const version = await inv.commit();
    return json({ version, text, owner: this.owner });
  }

  async messages(id) {
    const store = await this.store();
    const session = await store.open(id, { create: false });
    const history = await session.history();
    return json({
      version: session.version,
      status: session.status,
      messages: session.messages(),
      history: history.map((event) => ({ type: event.type, version: event.version })),
    });
  }

  /** Heads another program rewrote: one without its version record, one not bytes (with a version). */
  async foreign() {
    const prefix = `foreign-${crypto.randomUUID()}/`;
    const kv = durableObjectKv(this.ctx.storage);
    const corrupt = [];
    const store = await SessionStore.kv(kv, { prefix, onEvent: (event) => event.type === "corrupt" && corrupt.push(event.key) });
    for (const id of ["unversioned", "object", "fine"]) await (await store.open(id)).invoke((inv) => inv.appendMessage(id));
    const heads = [...(await this.ctx.storage.list({ prefix })).keys()].filter((key) => key.endsWith("~"));
    const headOf = (id) => heads.find((key) => key.includes(id));
    const version = "\u{10FFFF}agent-session:version\u{10FFFF}";
    await this.ctx.storage.delete(version + headOf("unversioned"));
    await this.ctx.storage.put(headOf("object"), { some: "object" });
    const out = { heads, get: {}, open: {} };
    for (const id of ["unversioned", "object"]) {
      out.get[id] = await kv.get(headOf(id)).then(() => "resolved", errorBody);
      out.open[id] = await (await SessionStore.kv(kv, { prefix })).open(id).then(() => "resolved", (error) => ({ ...errorBody(error), key: error.key }));
    }
    out.listed = (await store.list()).sessions.map((session) => session.id);
    out.swept = await store.sweepExpired();
    out.fine = (await store.open("fine")).messages();
    out.objectAfter = await this.ctx.storage.get(headOf("object"));
    out.corrupt = corrupt.sort();
    await store.close();
    return out;
  }

  /** Two stores on one ctx.storage are two owners: while one holds the session the other is refused. */
  async twoStores(id) {
    const a = await SessionStore.kv(durableObjectKv(this.ctx.storage), { owner: "store-a" });
    const b = await SessionStore.kv(durableObjectKv(this.ctx.storage), { owner: "store-b" });
    const inA = await (await a.open(id)).begin();
    inA.appendMessage({ text: "from a" });
    let refused = null;
    try {
      await (await b.open(id)).begin();
    } catch (error) {
      refused = { name: error.name, code: error.code, holder: error.holder };
    }
    const committedA = await inA.commit();
    const sessionB = await b.open(id);
    const inB = await sessionB.begin();
    const seenByB = inB.messages();
    inB.appendMessage({ text: "from b" });
    const committedB = await inB.commit();
    const final = await (await a.open(id)).refresh();
    const messages = final.messages();
    // close() frees the stores' cached views at once: read before it.
    await a.close();
    await b.close();
    return json({ refused, committedA, committedB, seenByB, messages });
  }
}

/** The application data of a session, with a marker in each kind, through a store with or without a key. */
Sessions.prototype.encryption = async function encryption(id, { markers: M, key: keyHex }) {
  const storage = this.ctx.storage;
  const encryptionKey = keyHex
    ? await crypto.subtle.importKey("raw", Uint8Array.from(keyHex.match(/../g), (h) => parseInt(h, 16)), "AES-GCM", false, ["encrypt", "decrypt"])
    : undefined;
  const withKey = encryptionKey ? { encryptionKey } : {};
  const writer = await SessionStore.kv(durableObjectKv(storage), { ...withKey, snapshotEvery: 5, owner: "encryption-writer" });
  const metadata = { owner: M.metadata };
  const session = await writer.open(id, { metadata });
  const messages = [];
  for (let i = 1; i <= 7; i++) {
    await session.invoke((inv) => {
      const message = { content: `${M.message}:${i}`, [M.messageKey]: i };
      inv.appendMessage(message);
      messages.push(message);
      inv.setState(M.stateKey, { text: `${M.state}:${i}` });
    });
  }
  const inv = await session.begin();
  inv.emit({ delta: `${M.live}:0` });
  inv.emit([`${M.live}:1`]);
  await inv.flush();
  const mid = await rawStorage(storage);
  const interrupt = { reason: `${M.reason} approve?`, payload: { question: M.payload } };
  const version = await inv.interrupt(interrupt.reason, interrupt.payload);
  const history = await session.history();
  await writer.close();
  const end = await rawStorage(storage);
  const reader = await SessionStore.kv(durableObjectKv(storage), { ...withKey, owner: "encryption-reader" });
  const again = await reader.open(id, { create: false });
  const read = {
    version: again.version,
    messages: again.messages(),
    state: again.state(),
    interrupt: again.pendingInterrupt(),
    metadata: (await again.export()).metadata,
    history: await again.history(),
  };
  await reader.close();
  return { mid, end, read, expected: { version, messages, state: { [M.stateKey]: { text: `${M.state}:7` } }, interrupt, metadata, history } };
};

/** Every entry of `storage` as [key, text]: bytes as latin1 text, anything else as JSON with its bytes as text. */
async function rawStorage(storage) {
  const latin1 = (bytes) => {
    let out = "";
    for (let i = 0; i < bytes.length; i += 0x8000) out += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return out;
  };
  const ser = (value) => {
    if (value instanceof ArrayBuffer) return { bytes: latin1(new Uint8Array(value)) };
    if (ArrayBuffer.isView(value)) return { bytes: latin1(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) };
    if (Array.isArray(value)) return value.map(ser);
    if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, ser(v)]));
    return value;
  };
  return [...(await storage.list()).entries()].map(([key, value]) => [key, JSON.stringify(ser(value))]);
}

function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
const decode = (arg) => (arg !== null && typeof arg === "object" && "$bytes" in arg ? Uint8Array.from(atob(arg.$bytes), (c) => c.charCodeAt(0)) : arg);

/** An entry of get (or the `current` of a refused put) with a Uint8Array value as `{ $bytes }`; a string value as it is. */
const encodeEntry = (entry) =>
  entry === null || !(entry.value instanceof Uint8Array) ? entry : { ...entry, value: { $bytes: toBase64(entry.value) } };

/** One HostKv call, `{ method, args }`, on `kv`; a Uint8Array value is sent back as `{ $bytes }`. */
async function kvRpc(kv, { method, args }) {
  if (method === "capabilities") return { result: kv.capabilities };
  if (method === "commit") {
    const decodeWrite = (write) => ({ ...write, value: decode(write.value) });
    return { result: await kv.commit(args[0].map(decodeWrite), decodeWrite(args[1]), args[2] ?? []) };
  }
  if (!["get", "put", "delete", "list"].includes(method)) throw new Error(`no HostKv method ${method}`);
  const result = await kv[method](...args.map(decode));
  if (method === "get") return { result: encodeEntry(result) };
  if (method === "put" && result !== null && typeof result === "object") return { result: { current: encodeEntry(result.current) } };
  return { result };
}

/** The largest value in the object's storage, in bytes (the KV-backed storage refuses more than 128 KiB). */
async function largestValue(storage) {
  let bytes = 0;
  let keys = 0;
  for (const value of (await storage.list()).values()) {
    keys += 1;
    bytes = Math.max(bytes, typeof value === "string" ? new TextEncoder().encode(value).length : (value.byteLength ?? 0));
  }
  return { bytes, keys };
}

/** `storage` reduced to the four methods of a storage-like object. */
function plain(storage) {
  return {
    get: (...args) => storage.get(...args),
    put: (...args) => storage.put(...args),
    delete: (...args) => storage.delete(...args),
    list: (...args) => storage.list(...args),
  };
}

/** A fixed run of HostKv operations; the test checks each step's result. */
async function kvCheck(storage) {
  const kv = durableObjectKv(storage);
  const bytes = (value) => (value ? Array.from(value.value) : null);
  const out = { capabilities: kv.capabilities, custom: durableObjectKv(storage, { maxValueBytes: 1000 }).capabilities };
  const k = `check/${crypto.randomUUID()}`;
  out.missing = await kv.get(k);
  out.v1 = await kv.put(k, new Uint8Array([0, 1, 2, 255]), { expectedVersion: null });
  out.createAgain = await kv.put(k, new Uint8Array([9]), { expectedVersion: null });
  const got = await kv.get(k);
  out.got = { value: bytes(got), version: got.version, isBytes: got.value instanceof Uint8Array };
  out.wrongVersion = await kv.put(k, new Uint8Array([9]), { expectedVersion: "not-a-version" });
  out.v2 = await kv.put(k, new Uint8Array([3]), { expectedVersion: out.v1 });
  out.stale = await kv.put(k, new Uint8Array([9]), { expectedVersion: out.v1 });
  out.afterStale = bytes(await kv.get(k));
  out.deleteStale = await kv.delete(k, { expectedVersion: out.v1 });
  out.afterDeleteStale = bytes(await kv.get(k));
  out.deleteCurrent = await kv.delete(k, { expectedVersion: out.v2 });
  out.afterDelete = await kv.get(k);
  out.deleteMissing = await kv.delete(k);
  out.deleteMissingExpected = await kv.delete(k, { expectedVersion: out.v2 });
  out.casOnMissing = await kv.put(k, new Uint8Array([9]), { expectedVersion: out.v2 });
  out.v3 = await kv.put(k, new Uint8Array([4]), { expectedVersion: null });
  out.v4 = await kv.put(k, new Uint8Array([5]));
  out.afterUnconditional = bytes(await kv.get(k));
  out.deleteUnconditional = await kv.delete(k);

  // Two compare-and-sets from the same version in one tick: exactly one wins.
  const race = `race/${crypto.randomUUID()}`;
  const base = await kv.put(race, new Uint8Array([0]));
  out.race = await Promise.all([1, 2, 3].map((n) => kv.put(race, new Uint8Array([n]), { expectedVersion: base })));
  out.raceValue = bytes(await kv.get(race));
  const raceCreate = `race-create/${crypto.randomUUID()}`;
  out.raceCreate = await Promise.all([1, 2].map((n) => kv.put(raceCreate, new Uint8Array([n]), { expectedVersion: null })));

  // Every byte value, a value of exactly maxValueBytes, and a view into a larger buffer.
  const all = new Uint8Array(256).map((_, i) => i);
  await kv.put(`bin/${k}`, all);
  out.allBytes = bytes(await kv.get(`bin/${k}`));
  const big = new Uint8Array(kv.capabilities.maxValueBytes).map((_, i) => (i * 7) % 251);
  await kv.put(`big/${k}`, big);
  const bigBack = (await kv.get(`big/${k}`)).value;
  out.bigRoundTrip = bigBack.length === big.length && bigBack.every((b, i) => b === big[i]);
  const outer = new Uint8Array(4096).fill(7);
  outer.set([1, 2, 3], 100);
  await kv.put(`view/${k}`, outer.subarray(100, 103));
  const view = (await kv.get(`view/${k}`)).value;
  out.view = { value: Array.from(view), bufferBytes: view.buffer.byteLength };

  // Listing: ascending, complete across pages, nothing outside the prefix, no internal keys.
  const p = `list-${crypto.randomUUID()}/`;
  const names = ["b", "a", "c/1", "c", "d", "e", "f", "g"];
  for (const name of names) await kv.put(p + name, new Uint8Array([1]));
  await kv.put(p.slice(0, -1), new Uint8Array([1]));
  await kv.put(`${p.slice(0, -1)}0`, new Uint8Array([1]));
  out.listExpected = names.map((n) => p + n).sort();
  out.listAll = (await kv.list(p)).keys;
  out.pages = [];
  let cursor;
  do {
    const page = await kv.list(p, { limit: 3, ...(cursor ? { cursor } : {}) });
    out.pages.push(page.keys);
    cursor = page.cursor;
    if (out.pages.length > 10) break;
  } while (cursor);
  out.everything = (await kv.list("")).keys;
  out.storedKeys = [...(await storage.list()).keys()].length;
  return out;
}

/**
 * The history model's trials on `kv` (one Durable Object's storage): each backend's stores share a
 * prefix of their own, as two Workers' stores over one object would; imports go to the memory store or
 * another prefix. `{ error, trial }` at the first trial that fails.
 */
async function historyModel(kv, { trials }) {
  let prefixes = 0;
  const backend = () => {
    let prefix;
    return {
      name: "durableObjectKv",
      async open(snapshotEvery) {
        prefix = `hm${++prefixes}:`;
        const options = { prefix, snapshotEvery, limits: LIMITS };
        return [await SessionStore.kv(kv, options), await SessionStore.kv(kv, options)];
      },
      fresh: () => SessionStore.kv(kv, { prefix }),
    };
  };
  const target = backend();
  const targets = [
    { name: "memory", make: () => SessionStore.memory() },
    { name: "durableObjectKv (import)", make: async () => (await target.open(1))[0] },
  ];
  for (let trial = 0; trial < trials; trial++) {
    try {
      await runTrial({ trial, backend: backend(), snapshotEvery: 1 + (trial % 5), targets });
    } catch (error) {
      return { error: String(error?.stack ?? error), trial };
    }
  }
  return { trials };
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try {
      if (url.pathname === "/cloudflare-kv/refused") {
        try {
          await SessionStore.kv(cloudflareKv(env.KV));
          return json({ resolved: true }, 500);
        } catch (error) {
          return json({ ...errorBody(error), isUnsafeStoreError: error instanceof UnsafeStoreError });
        }
      }
      if (url.pathname === "/cloudflare-kv/turn") {
        const id = url.searchParams.get("session");
        const store = await SessionStore.kv(cloudflareKv(env.KV), { allowNonAtomic: true });
        const session = await store.open(id);
        const inv = await session.begin();
        inv.appendMessage({ text: url.searchParams.get("text") });
        const version = await inv.commit();
        // Read back through a second store: the records are in the namespace, not in a cache.
        const other = await SessionStore.kv(cloudflareKv(env.KV), { allowNonAtomic: true });
        const again = await other.open(id, { create: false });
        return json({ version, messages: again.messages(), readBackVersion: again.version });
      }
      if (url.pathname === "/cloudflare-kv/ttl") {
        const kv = cloudflareKv(env.KV);
        const prefix = `ttl/${crypto.randomUUID()}/`;
        // Expirations are measured from before the puts; `elapsed` says how long the puts and the list
        // took, so that a slow machine does not look like a wrong TTL.
        const before = Date.now() / 1000;
        await kv.put(`${prefix}short`, new Uint8Array([1]), { ttlMs: 1000 });
        await kv.put(`${prefix}hour`, new Uint8Array([2]), { ttlMs: 3_600_000 });
        await kv.put(`${prefix}none`, new Uint8Array([3]));
        const { keys } = await env.KV.list({ prefix });
        const expiresIn = Object.fromEntries(
          keys.map(({ name, expiration }) => [name.slice(prefix.length), expiration === undefined ? null : expiration - before]),
        );
        return json({ expiresIn, elapsed: Date.now() / 1000 - before, capabilities: kv.capabilities });
      }
      if (url.pathname === "/kv-rpc") {
        const backend = url.searchParams.get("backend");
        if (backend === "cloudflare") return json(await kvRpc(cloudflareKv(env.KV), await request.json()));
        const ns = backend === "sqlite" ? env.SQL_SESSIONS : env.SESSIONS;
        return ns.get(ns.idFromName("kv-contract")).fetch(request);
      }
      if (url.pathname === "/history-model") {
        const ns = url.searchParams.get("backend") === "sqlite" ? env.SQL_SESSIONS : env.SESSIONS;
        return ns.get(ns.idFromName("history-model")).fetch(request);
      }
      if (url.pathname === "/kv-check") {
        const ns = url.searchParams.get("backend") === "sqlite" ? env.SQL_SESSIONS : env.SESSIONS;
        return ns.get(ns.idFromName("kv-check")).fetch(request);
      }
      const id = url.searchParams.get("session");
      if (!id) return json({ error: "session is required" }, 400);
      return env.SESSIONS.get(env.SESSIONS.idFromName(id)).fetch(request);
    } catch (error) {
      return json(errorBody(error), 500);
    }
  },
};

/** The same object on the SQLite-backed storage. */
export class SqlSessions extends Sessions {}
