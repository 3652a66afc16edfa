// Encryption at rest in real Deno, for tests/js/deno.test.mjs (../../../shared/API.md "Encryption at
// rest"): the package imported by its name (the "deno" export condition), a key made by Deno's own
// WebCrypto, stores over denoKv(await Deno.openKv(<file>)).
//
// For each of two runs, "clear" (no key: the control) and "sealed" (an AES-GCM key), on its own KV
// file: a session with a marker string in every kind of application data (message text and a
// message's field name, a state value and a state key, metadata, an agent name, live parts emitted
// and flushed, an interrupt reason and payload), snapshotEvery 5 so snapshots and segments are
// written, the live turn followed by a second store on a second handle of the file. The KV file is
// then dumped raw: every entry of Deno.openKv(file).list({ prefix: [] }) (the mid-turn dump through a
// separate handle while the parts are flushed, the final one through a new handle after every store
// and handle is closed), and the bytes of the SQLite file and its companions. Each dumped record is
// reported with the names of the markers it holds (its bytes read as latin1 and as UTF-8 text).
//
// The sealed run also reports what a new store with the key reads back, what a store without the key
// and a store with a different key get (CorruptRecordError: instanceof, code, key, message), and
// ValidationErrors for keys that are not AES-GCM encrypt+decrypt keys. Prints one JSON object.
//
//   deno run --allow-read --allow-write encryption.mjs '{"dir", "markers": {"clear": {...}, "sealed": {...}}}'
import { AgentSessionError, CorruptRecordError, SessionStore, ValidationError } from "agent-session";
import { denoKv } from "agent-session/adapters";

const { dir, markers } = JSON.parse(Deno.args[0]);
const ID = "leak/deno";
const COMMITS = 12;
const LIVE_PARTS = 6;
const plain = (value) => JSON.parse(JSON.stringify(value));
const aesGcm = (usages = ["encrypt", "decrypt"]) => crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, usages);

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");
/** `{ key, where, size, markers }`: the names of the markers of `M` that `bytes` holds as text. */
function record(key, where, bytes, M) {
  const texts = [latin1.decode(bytes), utf8.decode(bytes), key];
  return { key, where, size: bytes.length, markers: Object.keys(M).filter((name) => texts.some((text) => text.includes(M[name]))) };
}

/** Every entry of the Deno KV database `db`, whatever its value is. */
async function entriesDump(db, M) {
  const out = [];
  const encoder = new TextEncoder();
  for await (const entry of db.list({ prefix: [] })) {
    const value = entry.value;
    const bytes = value instanceof Uint8Array ? value
      : ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
      : encoder.encode(typeof value === "string" ? value : JSON.stringify(value) ?? String(value));
    out.push(record(entry.key.map(String).join("|"), value instanceof Uint8Array ? "entry (Uint8Array)" : `entry (${typeof value})`, bytes, M));
  }
  return out;
}

/** The bytes of the SQLite file and its -wal / -shm / -journal companions. */
async function fileDump(file, M) {
  const base = file.slice(file.lastIndexOf("/") + 1);
  const out = [];
  for await (const item of Deno.readDir(dir)) {
    if (item.isFile && item.name.startsWith(base)) out.push(record(`file ${item.name}`, "sqlite file", await Deno.readFile(`${dir}/${item.name}`), M));
  }
  return out;
}

const errorOf = (error) => ({
  name: error?.name,
  code: error?.code,
  key: error?.key,
  path: error?.path,
  message: String(error?.message ?? error),
  isCorruptRecordError: error instanceof CorruptRecordError,
  isValidationError: error instanceof ValidationError,
  isAgentSessionError: error instanceof AgentSessionError,
});

/** Writes the scenario to a new KV file, with `encryptionKey` or none; dumps it mid-turn and after. */
async function run(name, M, encryptionKey) {
  const file = `${dir}/${name}.sqlite`;
  const options = { snapshotEvery: 5, stopPollMs: 20, ...(encryptionKey ? { encryptionKey } : {}) };
  const writerKv = await Deno.openKv(file);
  const followerKv = await Deno.openKv(file);
  const writer = await SessionStore.kv(denoKv(writerKv), { ...options, owner: "writer" });
  const follower = await SessionStore.kv(denoKv(followerKv), { ...options, owner: "follower" });

  const metadata = { owner: M.metadata, tags: [M.metadata, 1] };
  const session = await writer.open(ID, { metadata });
  for (let i = 1; i <= COMMITS; i++) {
    await session.invoke((inv) => {
      inv.appendMessage({ role: "user", content: `${M.message}:${i}`, [M.messageKey]: i });
      inv.setState("notes", { text: `${M.state}:${i}` });
      inv.setState(M.stateKey, [M.state, i]);
      if (i % 4 === 0) inv.appendMessage({ content: `${M.message}:agent:${i}` }, { agent: M.agent });
    });
  }

  // The live turn, followed from the other store: parts emitted and flushed, seen by the follower,
  // dumped while the turn runs, then the turn is interrupted.
  const watched = await follower.open(ID, { create: false });
  const controller = new AbortController();
  const seen = [];
  const following = (async () => {
    for await (const event of watched.follow({ signal: controller.signal })) {
      seen.push(plain(event));
      if (event.type === "end") break;
    }
  })();
  const inv = await session.begin();
  for (let k = 0; k < LIVE_PARTS; k++) inv.emit(k % 2 === 0 ? { delta: `${M.live}:${k}` } : [`${M.live}:${k}`, k]);
  await inv.flush();
  const deadline = Date.now() + 20_000; // liveness only
  while (seen.filter((e) => e.type === "part").length < LIVE_PARTS) {
    if (Date.now() > deadline) throw new Error(`${name}: the follower saw only ${JSON.stringify(seen)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const dumpKv = await Deno.openKv(file);
  const mid = await entriesDump(dumpKv, M);
  dumpKv.close();
  inv.appendMessage({ role: "assistant", content: `${M.message}:final` });
  const version = await inv.interrupt(`${M.reason} needs approval`, { question: M.payload, n: 7 });
  await following;
  controller.abort();
  const history = plain(await session.history());
  await writer.close();
  await follower.close();
  writerKv.close();
  followerKv.close();

  const finalKv = await Deno.openKv(file);
  const end = await entriesDump(finalKv, M);
  finalKv.close();
  const files = await fileDump(file, M);
  return { file, invocation: inv.id, version, seen, history, mid, end, files };
}

/** What a new store over a new handle of `file` reads of the session, or the error it meets. */
async function read(file, options) {
  const kv = await Deno.openKv(file);
  const { agent: _agent, ...storeOptions } = options;
  const store = await SessionStore.kv(denoKv(kv), { owner: "reader", ...storeOptions });
  try {
    const session = await store.open(ID, { create: false });
    const history = plain(await session.history());
    const view = await session.at(7);
    return plain({
      version: session.version,
      status: session.status,
      messages: session.messages(),
      agentMessages: session.messages({ agent: options.agent }),
      state: session.state(),
      interrupt: session.pendingInterrupt(),
      metadata: (await session.export()).metadata,
      history,
      at7: { messages: view.messages(), state: view.state() },
    });
  } catch (error) {
    return { error: errorOf(error) };
  } finally {
    await store.close();
    kv.close();
  }
}

/** The error `SessionStore.kv(denoKv(...))` and `SessionStore.memory()` reject with for `encryptionKey`. */
async function creation(encryptionKey) {
  const out = {};
  const kv = await Deno.openKv(":memory:");
  for (const [name, make] of [["kv", () => SessionStore.kv(denoKv(kv), { encryptionKey })], ["memory", () => SessionStore.memory({ encryptionKey })]]) {
    try {
      const store = await make();
      await store.close();
      out[name] = { created: true };
    } catch (error) {
      out[name] = errorOf(error);
    }
  }
  kv.close();
  return out;
}

const result = { deno: Deno.version.deno, resolved: import.meta.resolve("agent-session") };
result.clear = await run("clear", markers.clear, undefined);

const key = await aesGcm();
result.keyInfo = { type: key.type, algorithm: key.algorithm.name, extractable: key.extractable, usages: key.usages };
result.sealed = await run("sealed", markers.sealed, key);
const file = result.sealed.file;
result.readBack = await read(file, { encryptionKey: key, agent: markers.sealed.agent });
result.readBackKeyring = await read(file, { encryptionKey: { current: "k2", keys: { default: key, k2: await aesGcm() } }, agent: markers.sealed.agent });
result.noKey = await read(file, {});
result.wrongKey = await read(file, { encryptionKey: await aesGcm() });
result.unknownKeyId = await read(file, { encryptionKey: { current: "k2", keys: { k2: key } } });

const cbc = await crypto.subtle.generateKey({ name: "AES-CBC", length: 256 }, false, ["encrypt", "decrypt"]);
const hmac = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
result.validation = {
  aesCbc: await creation(cbc),
  hmac: await creation(hmac),
  aesGcmEncryptOnly: await creation(await aesGcm(["encrypt"])),
  rawBytes: await creation(new Uint8Array(32)),
  keyringWithCbc: await creation({ current: "x", keys: { x: cbc } }),
  // The control: a good key is accepted by the same calls.
  aesGcm: await creation(key),
};

console.log(JSON.stringify(result));
