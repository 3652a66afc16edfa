// Writes a fixture of stored data for tests/js/compat.test.mjs with a build of agent-session: the
// records that build leaves in a KV store (memoryKv, plain and encrypted at rest) after a fixed script
// of sessions, and what that build read back from them. Run with an older build's js/ directory (a
// worktree of an older commit, built with its own scripts/build), so that each release's stored data
// stays readable by later ones:
//   git worktree add /tmp/old <commit> && ln -s "$PWD/node_modules" /tmp/old/node_modules
//   (cd /tmp/old && scripts/build)
//   node tests/compat/write-fixture.mjs /tmp/old/js tests/compat/<commit>.json
// The script uses only what every build has had since the first (messages and state of two agents,
// deletes, interrupt and resume, close, fork, idle TTL, metadata, snapshots), and encryption at rest
// (one key), compaction and prune where the build has them.
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [jsDir, out] = process.argv.slice(2);
if (!jsDir || !out) throw new Error("usage: node tests/compat/write-fixture.mjs BUILD_JS_DIR OUT.json");
const from = (path) => import(pathToFileURL(resolve(jsDir, path)).href);
const { SessionStore } = await from("entry/node.js");
const { memoryKv } = await from("adapters/index.js");

const T0 = 1_750_000_000_000;
let t = T0;
const now = () => t;
const tick = () => (t += 1000);
const toBase64 = (bytes) => Buffer.from(bytes).toString("base64");

async function dump(kv) {
  const entries = [];
  let cursor;
  do {
    const page = await kv.list("", cursor === undefined ? {} : { cursor });
    for (const key of page.keys) {
      const got = await kv.get(key);
      const value = typeof got.value === "string" ? got.value : toBase64(got.value);
      entries.push([key, value]);
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
  return entries.sort(([a], [b]) => (a < b ? -1 : 1));
}

/** What a build reads of a session: the same shape tests/js/compat.test.mjs reads with this build. */
async function readsOf(session) {
  const history = await session.history();
  return {
    version: session.version,
    status: session.status,
    messages: [session.messages(), session.messages({ agent: "b" })],
    state: [session.state(), session.state({ agent: "b" })],
    history: history.map(({ version, type, agent, key, reason, data, before }) => ({ version, type, agent, key, reason, data, before })),
  };
}

async function turn(session, k, { resume, agent } = {}) {
  tick();
  const inv = await session.begin(resume === undefined ? {} : { resume });
  inv.appendMessage({ role: "user", text: `question ${k}`, n: k });
  inv.appendMessage({ role: "assistant", text: `answer ${k} ${"é😀".repeat(k % 3)}` }, agent === undefined ? undefined : { agent });
  inv.setState(`key${k % 4}`, { k, list: [k, k + 1], nested: { text: `v${k}` } });
  if (k % 5 === 4) inv.deleteState(`key${(k + 1) % 4}`);
  if (agent !== undefined) inv.setState("agentKey", k, { agent });
  return inv;
}

async function sessionsOf(store, features) {
  const sessions = {};
  const plain = await store.open("plain", { metadata: { title: "plain", tags: ["a"] } });
  for (let k = 0; k < 7; k++) await (await turn(plain, k, { agent: k % 2 ? "b" : undefined })).commit();
  sessions.plain = plain;

  const interrupted = await store.open("interrupted");
  await (await turn(interrupted, 0)).commit();
  tick();
  const asking = await turn(interrupted, 1);
  await asking.interrupt("approve the payment?", { amount: 12.5, currency: "EUR" });
  sessions.interrupted = interrupted;

  const resumed = await store.open("resumed");
  await (await turn(resumed, 0)).interrupt("which city?", null);
  await (await turn(resumed, 1, { resume: { city: "Lyon" } })).commit();
  sessions.resumed = resumed;

  const closed = await store.open("closed");
  await (await turn(closed, 0)).commit();
  tick();
  await closed.close();
  sessions.closed = closed;

  const ttl = await store.open("ttl", { idleTtlMs: 365 * 24 * 3600 * 1000 });
  await (await turn(ttl, 0)).commit();
  sessions.ttl = ttl;

  tick();
  sessions.forked = await plain.fork({ id: "forked", at: 4 });
  await (await turn(sessions.forked, 9)).commit();

  const long = await store.open("long / with \u0000 odd id é");
  for (let k = 0; k < 20; k++) await (await turn(long, k, { agent: k % 3 ? undefined : "b" })).commit();
  sessions.long = long;

  if (features.compact) {
    const compacted = await store.open("compacted");
    for (let k = 0; k < 6; k++) await (await turn(compacted, k)).commit();
    const inv = await turn(compacted, 6);
    inv.compact({ before: 8, summary: [{ role: "system", text: "summary of 8 messages" }] });
    await inv.commit();
    await (await turn(compacted, 7)).commit();
    sessions.compacted = compacted;
  }
  if (features.prune) {
    const pruned = await store.open("pruned");
    for (let k = 0; k < 12; k++) await (await turn(pruned, k)).commit();
    await pruned.prune({ before: 8 });
    sessions.pruned = pruned;
  }
  return sessions;
}

const probe = await (await SessionStore.memory()).open("probe");
const probeInv = await probe.begin();
await probeInv.abort();
const probeKey = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
const encryption = await SessionStore.memory({ encryptionKey: probeKey }).then(
  () => true,
  () => false, // a build before encryption at rest refuses the option
);
const features = { compact: typeof probeInv.compact === "function", prune: typeof probe.prune === "function", encryption };

const stores = {};
for (const encrypted of encryption ? [false, true] : [false]) {
  const kv = memoryKv();
  const raw = encrypted ? crypto.getRandomValues(new Uint8Array(32)) : undefined;
  const key = encrypted ? await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]) : undefined;
  const options = { now, snapshotEvery: 3, ...(encrypted ? { encryptionKey: key } : {}) };
  const store = await SessionStore.kv(kv, options);
  const sessions = await sessionsOf(store, features);
  const reads = {};
  // Read back by a fresh store of the same build, as the test will with this one.
  const fresh = await SessionStore.kv(kv, { now, ...(encrypted ? { encryptionKey: key } : {}) });
  for (const id of Object.keys(sessions)) reads[sessions[id].id] = await readsOf(await fresh.open(sessions[id].id, { create: false }));
  stores[encrypted ? "encrypted" : "plain"] = { key: raw === undefined ? null : toBase64(raw), entries: await dump(kv), reads };
}
writeFileSync(out, `${JSON.stringify({ written: new Date(T0).toISOString(), now: t, features, stores })}\n`);
console.log(`wrote ${out}: features ${JSON.stringify(features)}, ${Object.values(stores).map((s) => s.entries.length).join(" + ")} records`);
