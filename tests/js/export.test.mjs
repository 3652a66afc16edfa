// Export and import (API.md "Export, import and backup") in Node: a round trip through the KV
// adapters, a matrix of malformed exports (each refused with its path, nothing written), import into
// an existing id, what an export of a running, pruned or not-yet-migrated session restores to, an
// export whose version is absurdly large, and store.export() over 10000 sessions with bounded memory.
// The IndexedDB leg of the round trip is tests/browser/export.test.mjs; both use the sessions of
// tests/browser/export-fixture.mjs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { openKv } from "@deno/kv";
import { SessionStore, ValidationError, LimitExceededError, InvalidTransitionError, CorruptRecordError } from "agent-session";
import { memoryKv, denoKv } from "agent-session/adapters";
import { FIXTURE_IDS, buildSessions, describeAll, describeSession, exportAll } from "../browser/export-fixture.mjs";
import { seeded } from "../browser/model-checks.mjs";
import { slowKv } from "./_helpers.mjs";

const FORMAT = "agent-session.export/1";
const dir = mkdtempSync(join(tmpdir(), "agent-session-export-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Every key of a HostKv with its version: what "nothing written" compares. */
async function kvDump(kv) {
  const out = {};
  let cursor;
  do {
    const page = await kv.list("", { cursor });
    for (const key of page.keys) out[key] = (await kv.get(key))?.version ?? null;
    cursor = page.cursor;
  } while (cursor);
  return out;
}

/** The rejection of `promise`, failing when it fulfils. */
async function rejection(promise, what) {
  try {
    const value = await promise;
    assert.fail(`${what}: fulfilled (${value?.constructor?.name ?? typeof value}) but was expected to reject`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    return error;
  }
}

const sortedIds = [...FIXTURE_IDS].sort();

test("round trip memory -> memoryKv -> Deno KV (SQLite file) -> memory keeps versions, history, messages, state, status and pending interrupt", async () => {
  const source = await SessionStore.memory({ snapshotEvery: 3 });
  await buildSessions(source);
  const expected = { exports: await exportAll(source), views: await describeAll(source, sortedIds) };
  assert.deepEqual(expected.exports.map((e) => e.id), sortedIds);
  // The file format: JSON text of the export.
  for (const data of expected.exports) {
    assert.equal(data.format, FORMAT);
    assert.deepEqual(JSON.parse(JSON.stringify(data)), data);
  }
  let exports = expected.exports;
  const db = await openKv(join(dir, "round-trip.sqlite"));
  try {
    const legs = [
      ["memoryKv", () => {
        const kv = memoryKv();
        return [() => SessionStore.kv(kv), () => SessionStore.kv(kv)];
      }],
      ["Deno KV", () => [() => SessionStore.kv(denoKv(db), { prefix: "leg/" }), () => SessionStore.kv(denoKv(db), { prefix: "leg/" })]],
      ["memory", () => {
        const store = SessionStore.memory();
        return [() => store, () => store];
      }],
    ];
    for (const [leg, make] of legs) {
      const [writer, reader] = make();
      const into = await writer();
      for (const data of JSON.parse(JSON.stringify(exports))) {
        const session = await into.import(data);
        assert.equal(session.id, data.id, `${leg}: import resolves to the session`);
        assert.equal(session.version, data.version, `${leg}: at the export's version`);
      }
      const from = await reader();
      const got = { exports: await exportAll(from), views: await describeAll(from, sortedIds) };
      assert.deepEqual(got.exports, expected.exports, `${leg}: the exports are the source's`);
      for (const id of sortedIds) assert.deepEqual(got.views[id], expected.views[id], `${leg}: ${JSON.stringify(id)} reads as in the source`);
      exports = got.exports;
    }
  } finally {
    db.close();
  }
});

describe("a malformed export is a ValidationError or LimitExceededError naming the path, and nothing is written", () => {
  const LIMITS = { maxMessageBytes: 1000, maxStateValueBytes: 1000, maxCommitBytes: 3000 };
  const base = () => ({
    format: FORMAT,
    id: "imported",
    version: 3,
    status: "idle",
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_003_000,
    expiresAt: null,
    metadata: { title: "t" },
    events: [
      { version: 0, at: 1_700_000_000_000, invocation: "", type: "created", data: { title: "t" } },
      { version: 1, at: 1_700_000_001_000, invocation: "i1", type: "message", agent: "default", data: "hi" },
      { version: 1, at: 1_700_000_001_000, invocation: "i1", type: "state.set", agent: "default", key: "k", data: 1 },
      { version: 2, at: 1_700_000_002_000, invocation: "i2", type: "message", agent: "default", data: "yo" },
      { version: 2, at: 1_700_000_002_000, invocation: "i2", type: "state.delete", agent: "default", key: "k" },
      // version 3: a commit that staged nothing
    ],
  });
  const push = (event) => (d) => {
    d.events.push({ version: 3, at: 1_700_000_003_000, invocation: "i3", ...event });
  };
  const V = ValidationError;
  const L = LimitExceededError;
  // [name, change (mutates the base, or returns what to import instead), class, path (string or RegExp)]
  const cases = [
    ["not an object", () => "agent-session.export/1", V, "data"],
    ["null", () => null, V, "data"],
    ["an array", () => [], V, "data"],
    ["wrong format", (d) => void (d.format = "agent-session.export/2"), V, "data.format"],
    ["format missing", (d) => void delete d.format, V, "data.format"],
    ["id missing", (d) => void delete d.id, V, "data.id"],
    ["id empty", (d) => void (d.id = ""), V, "data.id"],
    ["id not a string", (d) => void (d.id = 42), V, "data.id"],
    ["id over 256 bytes", (d) => void (d.id = "é".repeat(129)), V, "data.id"],
    ["id with a lone surrogate", (d) => void (d.id = "a\uD800b"), V, "data.id"],
    ["version not an integer", (d) => void (d.version = 2.5), V, "data.version"],
    ["version a string", (d) => void (d.version = "3"), V, "data.version"],
    ["version negative", (d) => void (d.version = -1), V, "data.version"],
    ["status unknown", (d) => void (d.status = "paused"), V, "data.status"],
    ["status running", (d) => void (d.status = "running"), V, "data.status"],
    ["status interrupted without an interrupt event", (d) => void (d.status = "interrupted"), V, "data.status"],
    ["status interrupted with its interrupt answered", (d) => {
      d.status = "interrupted";
      d.events.splice(3, 0, { version: 1, at: 1_700_000_001_000, invocation: "i1", type: "interrupt", reason: "q", data: null });
      d.events.splice(4, 0, { version: 2, at: 1_700_000_002_000, invocation: "i2", type: "resume", data: "a" });
    }, V, "data.status"],
    ["an event after a closed event", (d) => void d.events.splice(3, 0, { version: 1, at: 1_700_000_001_000, invocation: "i1", type: "closed" }), V, "data.events[4]"],
    ["status idle after a closed event", push({ type: "closed" }), V, "data.status"],
    ["createdAt not a number", (d) => void (d.createdAt = "yesterday"), V, "data.createdAt"],
    ["expiresAt not an integer", (d) => void (d.expiresAt = 1.5), V, "data.expiresAt"],
    ["metadata holds a BigInt", (d) => void (d.metadata = { n: [1n] }), V, "data.metadata.n[0]"],
    ["events not an array", (d) => void (d.events = { 0: d.events[0] }), V, "data.events"],
    ["events missing", (d) => void delete d.events, V, "data.events"],
    ["an event not an object", (d) => void (d.events[2] = "state.set"), V, "data.events[2]"],
    ["an event out of order", (d) => void (d.events[4].version = 1), V, "data.events[4]"],
    ["an event above version", (d) => void (d.events[3].version = 4), V, "data.events[3]"],
    ["a message at version 0", (d) => void (d.events[1].version = 0), V, "data.events[1]"],
    ["a created event after version 0", push({ type: "created", data: null }), V, "data.events[5]"],
    ["a second created event", (d) => void d.events.splice(1, 0, { ...d.events[0] }), V, "data.events[1]"],
    ["retained above version", (d) => void (d.retained = 4), V, "data.retained"],
    ["retained not an integer", (d) => void (d.retained = 1.5), V, "data.retained"],
    ["an event below retained", (d) => void (d.retained = 2), V, "data.events[0]"],
    ["an event version not an integer", (d) => void (d.events[2].version = 1.25), V, "data.events[2].version"],
    ["an event time missing", (d) => void delete d.events[1].at, V, "data.events[1].at"],
    ["unknown type", (d) => void (d.events[3].type = "telepathy"), V, "data.events[3].type"],
    ["type missing", (d) => void delete d.events[3].type, V, "data.events[3].type"],
    ["data holds a BigInt", (d) => void (d.events[1].data = { n: 10n }), V, "data.events[1].data.n"],
    ["data holds a function", (d) => void (d.events[1].data = { f() {} }), V, "data.events[1].data.f"],
    ["data holds a symbol", (d) => void (d.events[1].data = [Symbol("s")]), V, "data.events[1].data[0]"],
    ["data is NaN", (d) => void (d.events[2].data = NaN), V, "data.events[2].data"],
    ["data holds Infinity", (d) => void (d.events[1].data = [1, Infinity]), V, "data.events[1].data[1]"],
    ["data is a cycle", (d) => {
      const cycle = { a: 1 };
      cycle.self = cycle;
      d.events[1].data = cycle;
    }, V, "data.events[1].data.self"],
    ["data getter throws", (d) => void (d.events[1].data = { get boom() { throw new Error("boom"); } }), V, "data.events[1].data.boom"],
    ["message data missing", (d) => void delete d.events[1].data, V, "data.events[1].data"],
    ["message over limits.maxMessageBytes", (d) => void (d.events[3].data = "x".repeat(1200)), L, /^data\.events\[3\](\.data)?$/],
    ["state value over limits.maxStateValueBytes", (d) => void (d.events[2].data = "x".repeat(1200)), L, /^data\.events\[2\](\.data)?$/],
    ["metadata over limits.maxStateValueBytes", (d) => void (d.metadata = { note: "x".repeat(1200) }), L, "data.metadata"],
    ["commit over limits.maxCommitBytes", (d) => {
      for (let i = 0; i < 4; i++) d.events.splice(3, 0, { version: 2, at: 1_700_000_002_000, invocation: "i2", type: "message", agent: "default", data: "y".repeat(900) });
    }, L, /^data\.events/],
    ["agent name empty", (d) => void (d.events[1].agent = ""), V, "data.events[1].agent"],
    ["agent name over 256 bytes", (d) => void (d.events[1].agent = "a".repeat(257)), V, "data.events[1].agent"],
    ["agent name not a string", (d) => void (d.events[1].agent = ["planner"]), V, "data.events[1].agent"],
    ["state key empty", (d) => void (d.events[2].key = ""), V, "data.events[2].key"],
    ["state key missing", (d) => void delete d.events[2].key, V, "data.events[2].key"],
    ["state.delete key over 256 bytes", (d) => void (d.events[4].key = "k".repeat(257)), V, "data.events[4].key"],
    ["interrupt without reason", push({ type: "interrupt", data: null }), V, "data.events[5].reason"],
    ["stopped with a bad outcome", push({ type: "stopped", reason: "r", data: { by: "owner", outcome: "lost" } }), V, "data.events[5].data.outcome"],
    ["stopped without data", push({ type: "stopped", reason: "r" }), V, "data.events[5].data"],
    ["compacted with non-array data", push({ type: "compacted", agent: "default", before: 1, data: "summary" }), V, "data.events[5].data"],
    ["compacted with before not an integer", push({ type: "compacted", agent: "default", before: -1, data: [] }), V, "data.events[5].before"],
    ["migrated with state missing", push({ type: "migrated", agent: "default", data: { from: 0, to: 1, messages: [] } }), V, "data.events[5].data.state"],
    ["migrated with messages not an array", push({ type: "migrated", agent: "default", data: { from: 0, to: 1, messages: "m", state: {} } }), V, "data.events[5].data.messages"],
    ["traceparent not a string", (d) => void (d.events[1].traceparent = 7), V, "data.events[1].traceparent"],
    ["an event whose getter throws", (d) => void Object.defineProperty(d.events, 1, { get() { throw new Error("getter"); } }), V, "data.events"],
  ];

  test(`the matrix has at least 20 cases (${cases.length})`, () => assert.ok(cases.length >= 20));

  test("an export's message, state value, metadata, or any value alone over a commit, is refused before it is copied into wasm memory", async () => {
    const store = await SessionStore.kv(memoryKv(), { limits: LIMITS });
    const huge = "x".repeat(64 << 20);
    const before = SessionStore.memoryUsage().wasmBytes;
    for (const [what, change, path] of [
      ["message", (d) => void (d.events[3].data = huge), "data.events[3].data"],
      ["state value", (d) => void (d.events[2].data = huge), "data.events[2].data"],
      ["metadata", (d) => void (d.metadata = huge), "data.metadata"],
      // The rest have no limit of their own: one alone over a commit is over it.
      ["interrupt payload", push({ type: "interrupt", reason: "q", data: huge }), "data.events[5].data"],
      ["resume answer", push({ type: "resume", data: huge }), "data.events[5].data"],
      ["compaction summary", push({ type: "compacted", agent: "default", before: 1, data: [huge] }), "data.events[5].data[0]"],
      ["migrated message", push({ type: "migrated", agent: "default", data: { from: 0, to: 1, messages: [huge], state: {} } }), "data.events[5].data.messages[0]"],
      ["migrated state value", push({ type: "migrated", agent: "default", data: { from: 0, to: 1, messages: [], state: { k: huge } } }), "data.events[5].data.state[k]"],
    ]) {
      const data = base();
      change(data);
      const error = await rejection(store.import(data), what);
      assert.ok(error instanceof LimitExceededError, `${what}: ${error?.name}: ${error?.message}`);
      assert.equal(error.path, path, what);
      assert.equal(error.actual, (64 << 20) + 2, `${what}: actual`);
    }
    const grown = SessionStore.memoryUsage().wasmBytes - before;
    assert.ok(grown < 16 << 20, `wasm memory grew by ${grown} bytes`);
  });

  for (const [name, change, Class, path] of cases) {
    test(name, async () => {
      const kv = memoryKv();
      const store = await SessionStore.kv(kv, { limits: LIMITS });
      // Something already stored, which must stay as it is.
      const existing = await store.open("existing");
      await existing.invoke((inv) => inv.appendMessage("kept"));
      const before = await kvDump(kv);
      const listed = await store.list();
      let data = base();
      const replaced = change(data);
      if (replaced !== undefined) data = replaced;
      const error = await rejection(store.import(data), name);
      assert.ok(error instanceof Class, `${name}: expected a ${Class.name}, got ${error?.name}: ${error?.message}`);
      assert.deepEqual(await kvDump(kv), before, `${name}: nothing written`);
      assert.deepEqual(await store.list(), listed, `${name}: no session listed`);
      await assert.rejects(store.open("imported", { create: false }), { code: "NOT_FOUND" });
      if (path instanceof RegExp) assert.match(String(error.path), path, `${name}: path (message: ${error.message})`);
      else assert.equal(error.path, path, `${name}: path (message: ${error.message})`);
      // The same export, corrected, imports: the refusal was about the change.
      const ok = await store.import(base());
      assert.deepEqual(ok.messages(), ["hi", "yo"]);
      assert.deepEqual(ok.state(), {});
      assert.equal(ok.version, 3);
      await store.close();
    });
  }
});

test("import into an existing id is a ValidationError (path \"id\") that changes nothing; { id } imports under another id", async () => {
  const kv = memoryKv();
  const store = await SessionStore.kv(kv);
  await buildSessions(store);
  const original = await store.open("rich/multi", { create: false });
  const data = JSON.parse(JSON.stringify(await original.export()));
  const view = await describeSession(original);
  const before = await kvDump(kv);

  const error = await rejection(store.import(data), "import over an existing id");
  assert.ok(error instanceof ValidationError, `got ${error?.name}: ${error?.message}`);
  assert.equal(error.path, "id");
  assert.deepEqual(await kvDump(kv), before, "nothing written");
  // Also when the other id given is taken.
  const taken = await rejection(store.import(data, { id: "rich/fork" }), "import under a taken id");
  assert.ok(taken instanceof ValidationError);
  assert.equal(taken.path, "id");

  const copy = await store.import(data, { id: "rich/multi (restored)" });
  assert.equal(copy.id, "rich/multi (restored)");
  const copied = await describeSession(copy);
  assert.deepEqual({ ...copied, id: view.id }, view, "the copy reads as the original");
  assert.deepEqual(await describeSession(await store.open("rich/multi", { create: false })), view, "the original is unchanged");
  const copyExport = JSON.parse(JSON.stringify(await copy.export()));
  assert.deepEqual({ ...copyExport, id: data.id }, data, "the copy exports as the original, under its own id");
});

test("import with a bad { id } is a ValidationError with path \"options.id\", nothing written", async () => {
  const kv = memoryKv();
  const store = await SessionStore.kv(kv);
  const session = await store.open("source");
  await session.invoke((inv) => inv.appendMessage("x"));
  const data = JSON.parse(JSON.stringify(await session.export()));
  const before = await kvDump(kv);
  for (const id of ["", "x".repeat(257), "a\uDC00", 7]) {
    const error = await rejection(store.import(data, { id }), `import under ${JSON.stringify(id)}`);
    assert.ok(error instanceof ValidationError, `${JSON.stringify(id)}: got ${error?.name}`);
    assert.deepEqual(await kvDump(kv), before, "nothing written");
    assert.equal(error.path, "options.id", `${JSON.stringify(id)}: path (message: ${error.message})`);
  }
});

test("import({ idleTtlMs, maxLifetimeMs }): the restored session takes TTLs that commits extend; without them it keeps the export's expiresAt as a fixed time", async () => {
  const DAY = 86_400_000;
  let now = 1_700_000_000_000;
  const source = await SessionStore.memory({ now: () => now });
  const session = await source.open("ttl", { idleTtlMs: 30 * DAY, maxLifetimeMs: 400 * DAY });
  await session.invoke((inv) => inv.appendMessage("x"));
  const data = JSON.parse(JSON.stringify(await session.export()));
  assert.equal(data.expiresAt, now + 30 * DAY);
  now += 20 * DAY;
  const kv = memoryKv();
  const target = await SessionStore.kv(kv, { now: () => now, maxLifetimeMs: 70 * DAY });
  const fixed = await target.import(data, { id: "fixed" });
  const renewed = await target.import(data, { id: "renewed", idleTtlMs: 30 * DAY });
  const own = await target.import(data, { id: "own", idleTtlMs: 30 * DAY, maxLifetimeMs: 400 * DAY });
  // Counted from the export's updatedAt (its last commit), as a session opened with them would be.
  assert.equal(renewed.expiresAt, data.updatedAt + 30 * DAY, "idleTtlMs from the options; maxLifetimeMs the store's (70 days from createdAt, later)");
  now += 5 * DAY;
  for (const restored of [fixed, renewed, own]) await restored.invoke((inv) => inv.appendMessage("after the restore"));
  assert.equal(fixed.expiresAt, data.expiresAt, "no TTLs given: the export's expiresAt stays, commits do not extend it");
  assert.equal(renewed.expiresAt, now + 30 * DAY, "a commit extends the idle TTL");
  assert.equal(own.expiresAt, now + 30 * DAY);
  now = data.createdAt + 50 * DAY; // within the idle TTL of the commit at day 25
  for (const restored of [renewed, own]) await restored.invoke((inv) => inv.appendMessage("later"));
  assert.equal(renewed.expiresAt, data.createdAt + 70 * DAY, "the store's maxLifetimeMs, counted from the export's createdAt");
  assert.equal(own.expiresAt, now + 30 * DAY, "the options' maxLifetimeMs");
  now = data.createdAt + 75 * DAY;
  assert.equal((await target.open("renewed", { create: false })).status, "expired");
  assert.equal((await target.open("own", { create: false })).status, "idle");
  // An expired session stays expired, at the time it expired.
  const expired = JSON.parse(JSON.stringify(await (await target.open("renewed", { create: false })).export()));
  assert.equal(expired.status, "expired");
  const again = await target.import(expired, { id: "expired-again", idleTtlMs: 30 * DAY });
  assert.equal(again.status, "expired");
  assert.equal(again.expiresAt, expired.expiresAt);
  // Bad values are refused by path, nothing written.
  const before = await kvDump(kv);
  for (const [options, path] of [[{ id: "b", idleTtlMs: 0 }, "options.idleTtlMs"], [{ id: "b", maxLifetimeMs: -1 }, "options.maxLifetimeMs"], [{ id: "b", idleTtlMs: "30" }, "options.idleTtlMs"]]) {
    const error = await rejection(target.import(data, options), JSON.stringify(options));
    assert.ok(error instanceof ValidationError, `${JSON.stringify(options)}: got ${error?.name}`);
    assert.equal(error.path, path);
  }
  assert.deepEqual(await kvDump(kv), before, "nothing written");
});

test("an import is one change: store.onChange hears the session at its version and status; a refused import, none", async () => {
  const source = await SessionStore.memory();
  await buildSessions(source);
  const data = JSON.parse(JSON.stringify(await (await source.open("rich/multi", { create: false })).export()));
  const target = await SessionStore.memory();
  const changes = [];
  target.onChange((change) => changes.push(change));
  const session = await target.import(data);
  assert.deepEqual(changes, [{ id: "rich/multi", version: data.version, status: "interrupted" }]);
  assert.equal(session.version, data.version);
  await assert.rejects(target.import(data), ValidationError, "the id exists");
  assert.equal(changes.length, 1, "nothing changed, nothing heard");
  await target.close();
  await source.close();
});

test("an imported session holds no lease: another store of the backend resumes it at once", async () => {
  const source = await SessionStore.memory();
  await buildSessions(source);
  const data = JSON.parse(JSON.stringify(await (await source.open("rich/multi", { create: false })).export()));
  const kv = memoryKv();
  const importer = await SessionStore.kv(kv, { owner: "importer", leaseMs: 600_000 });
  await importer.import(data);
  const other = await SessionStore.kv(kv, { owner: "other" });
  const session = await other.open("rich/multi", { create: false });
  assert.equal(session.status, "interrupted");
  assert.deepEqual(session.pendingInterrupt(), { reason: "pending question", payload: null });
  await assert.rejects(session.begin(), InvalidTransitionError, "begin without resume on the interrupted import");
  const inv = await session.begin({ resume: { answer: 42 } });
  inv.appendMessage("resumed");
  assert.equal(await inv.commit(), data.version + 1);
  const history = await session.history({ from: data.version + 1 });
  assert.deepEqual(history.map((e) => e.type), ["resume", "message"]);
});

test("store.export({ prefix }) exports exactly the sessions whose id starts with it; a session deleted meanwhile is left out", async () => {
  const store = await SessionStore.kv(memoryKv());
  for (const id of ["a/1", "a/2", "a/3", "ab", "b/1", "b/2"]) {
    const session = await store.open(id);
    await session.invoke((inv) => inv.appendMessage(id));
  }
  assert.deepEqual((await exportAll(store, { prefix: "a/" })).map((e) => e.id), ["a/1", "a/2", "a/3"]);
  assert.deepEqual((await exportAll(store, { prefix: "zzz" })).map((e) => e.id), []);
  assert.deepEqual((await exportAll(store)).map((e) => e.id), ["a/1", "a/2", "a/3", "ab", "b/1", "b/2"]);
  assert.throws(() => store.export({ prefix: 5 }), ValidationError);
  const seen = [];
  for await (const data of store.export()) {
    seen.push(data.id);
    if (data.id === "a/1") await store.delete("b/1");
  }
  assert.deepEqual(seen, ["a/1", "a/2", "a/3", "ab", "b/2"]);
});

test("store.export() leaves the cached views of the Sessions the application holds, and frees the ones it loaded itself", async () => {
  for (const store of [await SessionStore.memory(), await SessionStore.kv(memoryKv())]) {
    const held = [];
    for (const id of ["held/1", "held/2", "held/3"]) {
      const session = await store.open(id);
      await session.invoke((inv) => inv.appendMessage(`${id} says hi`));
      held.push(session);
    }
    // Written by another store of the same backend would be the same: here, a view this store drops now.
    const loose = await store.open("loose");
    await loose.invoke((inv) => inv.appendMessage("loose"));
    loose.dispose();
    const running = await held[2].begin();
    running.appendMessage("staged");
    assert.equal(store.cacheUsage().sessions, 3);
    assert.deepEqual((await exportAll(store)).map((e) => e.id), ["held/1", "held/2", "held/3", "loose"]);
    // Synchronous reads of the held sessions still work: their views were not freed.
    held.forEach((session, i) => assert.deepEqual(session.messages(), [`held/${i + 1} says hi`]));
    assert.equal(store.cacheUsage().sessions, 3, "the view the export loaded (loose) is freed again");
    await running.commit();
    assert.deepEqual(held[2].messages(), ["held/3 says hi", "staged"]);
    await store.close();
  }
});

test("an export taken while a turn runs (a live backup) imports: same versions and messages, no lease", async () => {
  const kv = memoryKv();
  const store = await SessionStore.kv(kv);
  const session = await store.open("live");
  await session.invoke((inv) => inv.appendMessage("before"));
  const inv = await session.begin();
  inv.appendMessage("checkpointed");
  await inv.checkpoint();
  inv.appendMessage("staged, not committed");
  try {
    const backup = await SessionStore.kv(kv, { owner: "backup" });
    const [data] = await exportAll(backup);
    assert.equal(data.version, 2);
    const restored = await SessionStore.memory();
    let imported;
    try {
      imported = await restored.import(data);
    } catch (error) {
      assert.fail(`the import of a backup taken while a turn ran was refused: ${error.name} (path ${error.path}): ${error.message} (export status ${JSON.stringify(data.status)})`);
    }
    assert.equal(imported.version, 2);
    assert.deepEqual(imported.messages(), ["before", "checkpointed"]);
    assert.notEqual(imported.status, "running", "an import never holds a lease");
    await imported.invoke((next) => next.appendMessage("after restore"));
  } finally {
    await inv.abort();
  }
});

test("a pruned session's export restores the same messages() and state()", async () => {
  const store = await SessionStore.memory({ snapshotEvery: 2 });
  const session = await store.open("pruned");
  for (let i = 0; i < 6; i++) {
    await session.invoke((inv) => {
      inv.appendMessage(`m${i}`);
      inv.setState(`k${i}`, i);
    });
  }
  assert.ok((await session.prune({ before: 4 })) > 0, "prune removed records");
  const data = JSON.parse(JSON.stringify(await session.export()));
  const imported = await (await SessionStore.memory()).import(data);
  assert.equal(imported.version, session.version);
  assert.deepEqual(imported.messages(), session.messages(), "messages() of the restored session");
  assert.deepEqual(imported.state(), session.state(), "state() of the restored session");
});

test("a pruned session past a million versions imports (only its kept versions are records); an unpruned one past the bound is a ValidationError saying to prune", async () => {
  const store = await SessionStore.memory();
  const session = await store.open("long-lived");
  for (let i = 0; i < 4; i++) await session.invoke((inv) => inv.appendMessage(`m${i}`));
  await session.prune({ before: session.version });
  const data = JSON.parse(JSON.stringify(await session.export()));
  assert.equal(data.retained, 4);
  // The same session after a million more versions (as a long-lived agent's checkpoints make them,
  // pruned as it went): every version number moved up by 1,000,000.
  const shift = 1_000_000;
  const moved = {
    ...data,
    version: data.version + shift,
    retained: data.retained + shift,
    base: data.base.map((e) => ({ ...e, version: e.version + shift })),
    events: data.events.map((e) => ({ ...e, version: e.version + shift })),
  };
  const target = await SessionStore.memory();
  const imported = await target.import(moved);
  assert.equal(imported.version, 1_000_004);
  assert.deepEqual(imported.messages(), ["m0", "m1", "m2", "m3"]);
  assert.deepEqual((await imported.history()).map((e) => [e.version, e.type]), [[1_000_004, "message"]]);
  await imported.invoke((inv) => inv.appendMessage("next"));
  assert.equal(imported.version, 1_000_005);
  // Without its base, every version from 1 on would be a record: refused before anything is written.
  const unpruned = { ...moved, id: "unpruned", retained: undefined, base: undefined };
  await assert.rejects(target.import(unpruned), (error) => {
    assert.ok(error instanceof ValidationError, String(error));
    assert.equal(error.path, "data.version");
    assert.match(error.message, /1000004 \(versions 1 to 1000004\).*prune/);
    return true;
  });
  assert.deepEqual((await target.list()).sessions.map((info) => info.id), ["long-lived"], "nothing written");
});

test("a pruned session whose oldest kept version is its pending interrupt: the export imports, interrupted by the same interrupt, and resumes", async () => {
  const store = await SessionStore.memory({ snapshotEvery: 1 });
  const session = await store.open("pruned-interrupted");
  await session.invoke((inv) => {
    inv.appendMessage("m1");
    inv.setState("k", 1);
  });
  const inv = await session.begin();
  inv.appendMessage("m2");
  await inv.interrupt("approve?", { tool: "pay" });
  assert.ok((await session.prune({ before: session.version })) > 0, "prune removed records");
  const data = JSON.parse(JSON.stringify(await session.export()));
  assert.equal(data.status, "interrupted");
  const imported = await (await SessionStore.memory()).import(data);
  assert.equal(imported.status, "interrupted");
  assert.deepEqual(imported.messages(), ["m1", "m2"]);
  assert.deepEqual(imported.state(), { k: 1 });
  const view = await imported.at(imported.version);
  assert.equal(view.status, "interrupted", "at() of the kept version");
  const last = (await imported.history()).at(-1);
  assert.deepEqual([last.type, last.reason, last.data], ["interrupt", "approve?", { tool: "pay" }]);
  const resumed = await imported.begin({ resume: { approved: true } });
  await resumed.commit();
  assert.equal(imported.status, "idle");
  // Exported again, the same.
  assert.deepEqual(JSON.parse(JSON.stringify(await (await (await SessionStore.memory()).import(data, { id: "again" })).export())).events.map((e) => e.type), data.events.map((e) => e.type));
});

test("a pruned session whose oldest kept version holds nothing keeps that version when exported and imported", async () => {
  const store = await SessionStore.memory({ snapshotEvery: 1 });
  const session = await store.open("pruned-empty");
  await session.invoke((inv) => inv.appendMessage("m1"));
  await session.invoke((inv) => inv.compact({ before: 1, summary: [] })); // version 2: nothing left
  await session.invoke((inv) => inv.appendMessage("m3"));
  assert.ok((await session.prune({ before: 2 })) > 0, "prune removed records");
  assert.deepEqual((await session.at(2)).messages(), []);
  const data = JSON.parse(JSON.stringify(await session.export()));
  assert.equal(data.retained, 2);
  const imported = await (await SessionStore.memory()).import(data);
  assert.deepEqual((await imported.at(2)).messages(), [], "at() of the oldest kept version");
  await assert.rejects(imported.at(1), { code: "NOT_FOUND" });
  assert.deepEqual(imported.messages(), ["m3"]);
  assert.equal(JSON.parse(JSON.stringify(await imported.export())).retained, 2, "exported again");
  // An unpruned session's export has no `retained`.
  assert.equal("retained" in (await (await store.open("whole")).export()), false);
});

/** What history() says, event by event, and the state at every kept version. */
async function timeline(session) {
  const history = JSON.parse(JSON.stringify(await session.history()));
  const first = history[0]?.version ?? session.version;
  const views = [];
  for (let v = first; v <= session.version; v++) {
    const view = await session.at(v);
    views.push([v, view.status, view.messages(), view.state(), view.messages({ agent: "b" })]);
  }
  return { history: history.map(({ at, invocation, ...rest }) => rest), views };
}

test("a pruned session imports with the same history(), event by event, and the same state at every kept version (its base is a snapshot, not events)", async () => {
  const cases = {
    "messages and state": async (s) => {
      await s.invoke((i) => { i.appendMessage("a"); i.setState("k", 1); i.appendMessage("b0", { agent: "b" }); });
      await s.invoke((i) => i.appendMessage("b"));
      await s.invoke((i) => i.deleteState("k"));
      return 2;
    },
    "a compaction at the kept version": async (s) => {
      await s.invoke((i) => { for (const m of ["m0", "m1", "m2"]) i.appendMessage(m); });
      await s.invoke((i) => i.compact({ before: 2, summary: ["S"] }));
      await s.invoke((i) => i.appendMessage("m3"));
      return 2;
    },
    "an interrupt at the kept version, answered later": async (s) => {
      await s.invoke((i) => i.appendMessage("q"));
      const inv = await s.begin();
      await inv.interrupt("approve?", { tool: "pay" });
      await (await s.begin({ resume: { ok: true } })).commit();
      return 2;
    },
    "pruned at the latest version": async (s) => {
      await s.invoke((i) => { i.appendMessage("x"); i.setState("k", "v"); });
      await s.invoke((i) => i.appendMessage("y"));
      return 2;
    },
  };
  for (const [name, build] of Object.entries(cases)) {
    // (A prune keeps from the newest snapshot at or below `before`: with one every 2 commits, that may be
    // a version below it.)
    for (const snapshotEvery of [1, 2]) {
      const store = await SessionStore.memory({ snapshotEvery });
      const session = await store.open(`pruned-${snapshotEvery}`);
      const before = await build(session);
      assert.ok((await session.prune({ before })) >= 0);
      const want = await timeline(session);
      const data = JSON.parse(JSON.stringify(await session.export()));
      const retained = data.retained;
      assert.ok(retained > 0 && retained <= before, `${name}, snapshotEvery ${snapshotEvery}: retained ${retained}`);
      assert.ok(Array.isArray(data.base), `${name}: the export has its base`);
      assert.ok(data.base.every((e) => e.version === retained && ["message", "state.set"].includes(e.type)), `${name}: base events`);
      const kv = memoryKv();
      const imported = await (await SessionStore.kv(kv)).import(structuredClone(data));
      assert.deepEqual(await timeline(imported), want, `${name}, snapshotEvery ${snapshotEvery}: history() and at() after import`);
      assert.deepEqual(imported.messages(), session.messages(), `${name}: messages()`);
      await assert.rejects(imported.at(retained - 1), { code: "NOT_FOUND" }, `${name}: below the kept range`);
      // No record below the kept version was written.
      const records = (await kv.list("")).keys.map((key) => key.match(/(?:^|\/)[esg]\/[^/]+\/([0-9a-f]{16})\/[0-9a-f]{16}$/));
      const versions = records.filter(Boolean).map((m) => parseInt(m[1], 16));
      assert.ok(versions.length > 0 && versions.every((v) => v >= retained), `${name}: record versions ${versions}`);
      // Read by a fresh store, exported again, and taken on: the same.
      const fresh = await (await SessionStore.kv(kv)).open(session.id, { create: false });
      assert.deepEqual(await timeline(fresh), want, `${name}: a fresh store reads the same`);
      const again = JSON.parse(JSON.stringify(await fresh.export()));
      assert.deepEqual(again.base.map(({ at, invocation, ...e }) => e), data.base.map(({ at, invocation, ...e }) => e), `${name}: base exported again`);
      assert.deepEqual(again.events.map(({ at, invocation, ...e }) => e), data.events.map(({ at, invocation, ...e }) => e), `${name}: events exported again`);
      if (fresh.status === "interrupted") await (await fresh.begin({ resume: 1 })).commit();
      await fresh.invoke((i) => i.appendMessage("after"));
      await fresh.prune({ before: fresh.version });
      assert.deepEqual(fresh.messages().at(-1), "after");
    }
  }
});

test("an export written before `base` (the kept version's state as its events) still imports as it did", async () => {
  const store = await SessionStore.memory({ snapshotEvery: 1 });
  const session = await store.open("legacy");
  await session.invoke((i) => { i.appendMessage("a"); i.setState("k", 1); });
  await session.invoke((i) => i.appendMessage("b"));
  await session.invoke((i) => i.appendMessage("c"));
  await session.prune({ before: 2 });
  const data = JSON.parse(JSON.stringify(await session.export()));
  // The form of before: the base's events at the kept version, instead of that version's own.
  const { base, ...legacy } = data;
  legacy.events = [...base, ...data.events.filter((e) => e.version > 2 || e.type === "interrupt")];
  const imported = await (await SessionStore.memory()).import(legacy);
  assert.deepEqual(imported.messages(), session.messages());
  assert.deepEqual(imported.state(), session.state());
  assert.deepEqual((await imported.at(2)).messages(), ["a", "b"]);
});

test("a damaged base is refused with its path, nothing written", async () => {
  const store = await SessionStore.memory({ snapshotEvery: 1 });
  const session = await store.open("damaged-base");
  await session.invoke((i) => { i.appendMessage("a"); i.setState("k", 1); });
  await session.invoke((i) => i.appendMessage("b"));
  await session.prune({ before: 2 });
  const data = JSON.parse(JSON.stringify(await session.export()));
  const damages = [
    ["a base without retained", (d) => void delete d.retained, "data.base"],
    ["a base event at another version", (d) => void (d.base[0].version = 1), "data.base[0]"],
    ["a base event that is not a message or a value", (d) => void (d.base[0] = { ...d.base[0], type: "closed" }), "data.base[0]"],
    ["a base that is not an array", (d) => void (d.base = {}), "data.base"],
  ];
  for (const [name, damage] of damages) {
    const damaged = structuredClone(data);
    damage(damaged);
    const kv = memoryKv();
    const error = await rejection((await SessionStore.kv(kv)).import(damaged), name);
    assert.ok(error instanceof ValidationError, `${name}: ${error?.name}: ${error?.message}`);
    assert.equal(error.path, name === "a base without retained" ? "data.base" : damages.find((d) => d[0] === name)[2], `${name}: path`);
    assert.deepEqual(await kvDump(kv), {}, `${name}: nothing written`);
  }
});

test("a compacted event that replaces more messages than its agent has there is refused with its path, nothing written (audit42a N3)", async () => {
  for (const pruned of [false, true]) {
    const store = await SessionStore.memory({ snapshotEvery: 2 });
    const session = await store.open("compacted");
    await session.invoke((i) => { i.appendMessage("m1"); i.appendMessage("m2"); i.appendMessage("other", { agent: "b" }); });
    if (pruned) {
      for (let k = 0; k < 3; k++) await session.invoke((i) => i.appendMessage({ k }));
      await session.prune({ before: 3 });
    }
    // Its own staged message counts, as inv.compact counts it; the base of a pruned export already
    // holds its oldest kept version's events.
    const all = pruned ? 6 : 3;
    await session.invoke((i) => { i.appendMessage("m3"); i.compact({ before: all, summary: ["sum"] }); i.appendMessage("m4"); });
    await session.invoke((i) => i.compact({ before: 2, summary: ["sum2"] }));
    const data = JSON.parse(JSON.stringify(await session.export()));
    const imported = await (await SessionStore.memory()).import(structuredClone(data));
    assert.deepEqual([...imported.messages()], ["sum2"], `pruned ${pruned}: a valid export imports`);
    for (const at of data.events.flatMap((event, index) => (event.type === "compacted" ? [index] : []))) {
      const damaged = structuredClone(data);
      damaged.events[at].before += 1;
      const kv = memoryKv();
      const error = await rejection((await SessionStore.kv(kv)).import(damaged), `pruned ${pruned}, event ${at}`);
      assert.ok(error instanceof ValidationError, `${error?.name}: ${error?.message}`);
      assert.equal(error.path, `data.events[${at}].before`);
      assert.match(error.message, /replaces the first \d+ messages of agent "default", which has \d+ there/);
      assert.deepEqual(await kvDump(kv), {}, "nothing written");
    }
  }
});

test("an export, history() and at() racing a prune by another store: the export starts again and imports, the reads get the versions kept or NotFoundError, never CorruptRecordError", async () => {
  let outcomes = { exported: 0, historyRead: 0, historyPruned: 0, atRead: 0, atPruned: 0 };
  for (let trial = 0; trial < 40; trial++) {
    // A KV whose calls take 0 to 2 macrotasks, so that the prune's deletes land between the reads.
    const random = seeded(trial + 1);
    const kv = slowKv(random);
    const pruner = await (await SessionStore.kv(kv, { snapshotEvery: 3 })).open("raced");
    for (let k = 0; k < 20; k++) await pruner.invoke((inv) => inv.appendMessage({ k }));
    const reader = await (await SessionStore.kv(kv, { snapshotEvery: 3 })).open("raced");
    const [exported, history, at] = await Promise.all([
      reader.export(),
      reader.history({ from: 1 }).catch((error) => error),
      reader.at(2).catch((error) => error),
      pruner.prune({ before: 18 }),
    ]);
    const copy = await (await SessionStore.memory()).import(JSON.parse(JSON.stringify(exported)));
    assert.deepEqual(copy.messages(), pruner.messages(), `trial ${trial}: the export's messages`);
    outcomes.exported++;
    for (const [what, read] of [["history", history], ["at", at]]) {
      if (read instanceof Error) {
        assert.equal(read.code, "NOT_FOUND", `trial ${trial}: ${what}: ${read.name}: ${read.message}`);
        outcomes[`${what}Pruned`]++;
      } else outcomes[`${what}Read`]++;
    }
  }
  // Both ways happened: reads before the prune deleted them, and reads it deleted first.
  assert.ok(outcomes.historyRead > 0 && outcomes.historyPruned > 0, JSON.stringify(outcomes));
});

test("open(), history() and an export racing a delete by another store: they read the session or get NotFoundError, never CorruptRecordError", async () => {
  const outcomes = {};
  for (let trial = 0; trial < 100; trial++) {
    const random = seeded(trial + 1);
    const kv = slowKv(random);
    const store = await SessionStore.kv(kv, { snapshotEvery: 3 });
    const session = await store.open("deleted");
    for (let k = 0; k < 8; k++) await session.invoke((inv) => inv.appendMessage({ k }));
    const held = await (await SessionStore.kv(kv)).open("deleted");
    const reads = await Promise.allSettled([(await SessionStore.kv(kv)).open("deleted", { create: false }), held.history(), held.export(), store.delete("deleted")]);
    for (const [what, read] of [["open", reads[0]], ["history", reads[1]], ["export", reads[2]]]) {
      const outcome = read.status === "fulfilled" ? "read" : read.reason?.code;
      assert.ok(outcome === "read" || outcome === "NOT_FOUND", `trial ${trial}: ${what}: ${read.reason?.name}: ${read.reason?.message}`);
      outcomes[`${what} ${outcome}`] = (outcomes[`${what} ${outcome}`] ?? 0) + 1;
    }
  }
  for (const what of ["open", "history", "export"]) assert.ok(outcomes[`${what} NOT_FOUND`] > 0, JSON.stringify(outcomes));
});

test("a delete racing the session created again by another store with a turn: the new session stays whole", async () => {
  let kept = 0;
  for (let trial = 0; trial < 100; trial++) {
    const random = seeded(trial + 1);
    const kv = slowKv(random);
    const deleter = await SessionStore.kv(kv, { snapshotEvery: 1 });
    const old = await deleter.open("reset");
    for (let k = 0; k < 6; k++) await old.invoke((inv) => inv.appendMessage({ old: k }));
    const writer = await SessionStore.kv(kv, { snapshotEvery: 1 });
    const recreate = async () => {
      await new Promise((resolve) => setImmediate(resolve));
      const session = await writer.open("reset");
      await session.invoke((inv) => inv.appendMessage("new"));
      return session.version;
    };
    const [, turn] = await Promise.allSettled([deleter.delete("reset"), recreate()]);
    const read = await (await SessionStore.kv(kv)).open("reset", { create: false }).then((session) => session, (error) => error);
    assert.ok(!(read instanceof Error) || read.code === "NOT_FOUND", `trial ${trial}: ${read.name}: ${read.message}`);
    if (turn.status === "fulfilled" && !(read instanceof Error) && read.messages().includes("new")) {
      // The new session's turn is there whole: its messages are its own.
      assert.deepEqual(read.messages(), ["new"], `trial ${trial}`);
      kept++;
    }
  }
  assert.ok(kept > 0, "some new session outlived the delete");
});

test("an export racing a commit by another store stops at the version it started from, and imports", async () => {
  for (let trial = 0; trial < 60; trial++) {
    const random = seeded(trial + 1);
    const kv = slowKv(random);
    const writer = await (await SessionStore.kv(kv)).open("raced");
    for (let k = 0; k < 5; k++) await writer.invoke((inv) => inv.appendMessage({ k }));
    const reader = await (await SessionStore.kv(kv)).open("raced");
    const [data] = await Promise.all([reader.export(), writer.invoke((inv) => inv.appendMessage("late"))]);
    assert.ok(data.events.every((event) => event.version <= data.version), `trial ${trial}: no event above the export's version`);
    const copy = await (await SessionStore.memory()).import(JSON.parse(JSON.stringify(data)));
    assert.equal(copy.messages().length, data.version, `trial ${trial}: one message a version`);
  }
});

test("schema: a session not yet migrated, exported from a store with a schema and imported into one with the same schema, reads the same", async () => {
  const kv = memoryKv();
  const old = await SessionStore.kv(kv);
  const session = await old.open("m");
  await session.invoke((inv) => {
    inv.appendMessage({ text: "hello" });
    inv.setState("n", 1);
  });
  const schema = {
    version: 1,
    migrate: { 1: ({ messages, state }) => ({ messages: messages.map((m) => ({ content: m.text })), state: { ...state, migrated: true } }) },
  };
  const current = await SessionStore.kv(kv, { schema });
  const shown = await current.open("m");
  assert.deepEqual(shown.messages(), [{ content: "hello" }]);
  const data = JSON.parse(JSON.stringify(await shown.export()));
  const imported = await (await SessionStore.memory({ schema })).import(data);
  assert.deepEqual(imported.messages(), shown.messages(), "messages() after import into a store with the same schema");
  assert.deepEqual(imported.state(), shown.state(), "state() after import into a store with the same schema");
});

test("schema: a pruned session not yet migrated, exported by the application's newer store, carries its base as stored (not migrated) and imports migrated once", async () => {
  const kv = memoryKv();
  const old = await (await SessionStore.kv(kv)).open("pruned-old");
  for (const text of ["a", "b"]) await old.invoke((inv) => inv.appendMessage({ text }));
  await old.prune({ before: old.version }); // by the old application: its base is schema 0
  const schema = { version: 1, migrate: { 1: ({ messages, state }) => ({ messages: messages.map((m) => ({ content: m.text })), state }) } };
  const current = await SessionStore.kv(kv, { schema });
  const shown = await current.open("pruned-old");
  assert.deepEqual(shown.messages(), [{ content: "a" }, { content: "b" }]);
  const data = JSON.parse(JSON.stringify(await shown.export()));
  assert.equal(data.schema, 0);
  assert.deepEqual(data.base.map((e) => e.data), [{ text: "a" }, { text: "b" }], "the base as stored, in the export's schema");
  const imported = await (await SessionStore.memory({ schema })).import(data);
  assert.deepEqual(imported.messages(), [{ content: "a" }, { content: "b" }], "migrated once");
});

test("schema: an export whose `schema` is below one of its own `migrated` events is refused with that event's path, nothing written", async () => {
  const kv = memoryKv();
  await (await (await SessionStore.kv(kv)).open("m")).invoke((inv) => inv.appendMessage({ text: "hello" }));
  const schema = { version: 2, migrate: { 1: (data) => data, 2: ({ messages, state }) => ({ messages: messages.map((m) => ({ content: m.text })), state }) } };
  const session = await (await SessionStore.kv(kv, { schema })).open("m");
  await session.invoke((inv) => inv.appendMessage({ content: "again" })); // persists the migration
  const data = JSON.parse(JSON.stringify(await session.export()));
  assert.equal(data.schema, 2);
  const index = data.events.findIndex((e) => e.type === "migrated");
  assert.ok(index > 0);
  const target = await SessionStore.memory({ schema });
  for (const lowered of [undefined, 0, 1]) {
    await assert.rejects(target.import({ ...data, schema: lowered }), (error) => {
      assert.ok(error instanceof ValidationError, String(error));
      assert.equal(error.path, `data.events[${index}]`);
      assert.match(error.message, /migrated.*schema 2.*above the export's schema/);
      return true;
    });
  }
  assert.equal((await target.list()).sessions.length, 0, "nothing written");
  const imported = await target.import(data);
  assert.deepEqual(imported.messages(), [{ content: "hello" }, { content: "again" }]);
});

// Imports `{ version, events: [] }` in a child process on a memoryKv store (a crash of the
// WebAssembly instance must not take this test file down); what happened, the keys written, and
// whether the instance still works afterwards.
function importHugeVersion(version) {
  const script = `
    import { SessionStore } from "agent-session";
    import { memoryKv } from "agent-session/adapters";
    const kv = memoryKv();
    const store = await SessionStore.kv(kv);
    let outcome;
    try {
      const s = await store.import({ format: "${FORMAT}", id: "huge", version: ${version}, status: "idle",
        createdAt: 1, updatedAt: 2, expiresAt: null, metadata: null, events: [] });
      outcome = "imported at version " + s.version;
    } catch (error) {
      outcome = "rejected: " + error.name + " (path " + error.path + "): " + error.message;
    }
    const keys = (await kv.list("", { limit: 10 })).keys;
    const after = await store.open("after");
    await after.invoke((inv) => inv.appendMessage("still works"));
    console.log(JSON.stringify({ outcome, keys, after: after.messages() }));
  `;
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: new URL("../..", import.meta.url),
    encoding: "utf8",
    timeout: 60_000,
  });
  const summary = `exit ${child.status} ${child.signal ?? ""}\nstdout: ${child.stdout}\nstderr: ${child.stderr.slice(0, 1500)}`;
  assert.equal(child.status, 0, `the process must not crash: ${summary}`);
  return { ...JSON.parse(child.stdout.trim().split("\n").pop()), summary };
}

for (const [label, version] of [["2**32 + 1", "2 ** 32 + 1"], ["2**28", "2 ** 28"]]) {
  test(`an export whose version is absurdly large (${label}, no events) is refused with its path, nothing written, the instance keeps working`, () => {
    const result = importHugeVersion(version);
    assert.match(result.outcome, /^rejected: (ValidationError|LimitExceededError) \(path data\.version\)/, result.summary);
    assert.deepEqual(result.keys, [], `nothing written: ${result.summary}`);
    assert.deepEqual(result.after, ["still works"]);
  });
}

test("store.export() over 10000 sessions: each id exactly once, the cache and counted memory stay flat", { timeout: 60_000 }, async (t) => {
  const N = 10_000;
  const kv = memoryKv();
  const started = performance.now();
  const writer = await SessionStore.kv(kv, { cache: { maxSessions: 16 } });
  for (let i = 0; i < N; i++) {
    const session = await writer.open(`s/${String(i).padStart(5, "0")}`);
    await session.invoke((inv) => {
      inv.appendMessage({ role: "user", content: `turn of session ${i}` });
      inv.setState("i", i);
    });
    session.dispose();
  }
  await writer.close();
  t.diagnostic(`created ${N} sessions in ${(performance.now() - started).toFixed(0)} ms`);

  const store = await SessionStore.kv(kv);
  const baseline = SessionStore.memoryUsage();
  const seen = new Map();
  let maxCached = 0;
  let maxCachedBytes = 0;
  const counted = [];
  const exporting = performance.now();
  for await (const data of store.export()) {
    seen.set(data.id, (seen.get(data.id) ?? 0) + 1);
    assert.equal(data.version, 1);
    const usage = store.cacheUsage();
    maxCached = Math.max(maxCached, usage.sessions);
    maxCachedBytes = Math.max(maxCachedBytes, usage.bytes);
    if (seen.size % 500 === 0) counted.push(SessionStore.memoryUsage().countedBytes);
  }
  const end = SessionStore.memoryUsage();
  t.diagnostic(`exported in ${(performance.now() - exporting).toFixed(0)} ms; cache at most ${maxCached} sessions / ${maxCachedBytes} bytes; countedBytes ${baseline.countedBytes} -> ${counted.join(", ")}; wasmBytes ${baseline.wasmBytes} -> ${end.wasmBytes}`);
  assert.equal(seen.size, N, "every session exported");
  assert.deepEqual([...seen.values()].filter((n) => n !== 1), [], "each exactly once");
  for (let i = 0; i < N; i++) assert.ok(seen.has(`s/${String(i).padStart(5, "0")}`));
  assert.ok(maxCached <= 2, `the cache held up to ${maxCached} sessions while exporting (each exported view is freed)`);
  const spread = Math.max(...counted) - Math.min(...counted);
  assert.ok(spread < 64 * 1024, `countedBytes moved by ${spread} bytes over the export (${counted.join(", ")})`);
  assert.ok(counted.at(-1) - baseline.countedBytes < 64 * 1024, "countedBytes after 10000 exports is where it started");
  assert.ok(end.wasmBytes - baseline.wasmBytes < 32 * 2 ** 20, `wasm memory grew by ${end.wasmBytes - baseline.wasmBytes} bytes`);
  await store.close();
});

test("store.export() does not skip a session whose head cannot be decoded: the backup fails with CorruptRecordError naming it", async () => {
  const kv = memoryKv();
  const store = await SessionStore.kv(kv);
  for (const id of ["a", "b", "c"]) await (await store.open(id)).invoke((inv) => inv.appendMessage(id));
  const { keys } = await kv.list("h/");
  const broken = keys[1];
  await kv.put(broken, new Uint8Array([1, 2, 3]));
  const fresh = await SessionStore.kv(kv);
  const exported = [];
  await assert.rejects(
    (async () => {
      for await (const data of fresh.export()) exported.push(data.id);
    })(),
    (error) => {
      assert.ok(error instanceof CorruptRecordError, String(error));
      assert.equal(error.key, broken);
      return true;
    },
  );
  assert.deepEqual(exported, ["a"], "the sessions before it were exported");
});

test("an export is the caller's plain JSON: edited in place (here to corrupt it), the import refuses it by path", async () => {
  const store = await SessionStore.memory();
  const session = await store.open("editable");
  await session.invoke((inv) => inv.appendMessage({ role: "user", content: "hi" }));
  const exported = await session.export();
  assert.equal(Object.isFrozen(exported), false);
  assert.equal(Object.isFrozen(exported.events[1]), false);
  assert.equal(Object.isFrozen(exported.events[1].data), false);
  exported.events[1].type = "bogus";
  const refused = await store.import(exported, { id: "edited" }).then(() => assert.fail("imported"), (error) => error);
  assert.ok(refused instanceof ValidationError, `got ${refused}`);
  assert.equal(refused.path, "data.events[1].type");
  // The next export is a new object: the edit touched neither the session nor what history() shares.
  assert.equal((await session.export()).events[1].type, "message");
  assert.equal((await session.history())[1].type, "message");
  for await (const each of store.export()) {
    assert.equal(Object.isFrozen(each), false);
    each.id = "renamed";
    assert.equal((await store.import(each)).id, "renamed");
  }
});

describe("a head over the backend's per-value limit", () => {
  /** memoryKv that declares a per-value limit of `limit` bytes (as Deno KV's 64 KiB), and its keys. */
  function limitedKv(limit) {
    const inner = memoryKv();
    const kv = { ...inner, capabilities: { ...inner.capabilities, maxValueBytes: limit } };
    delete kv.commit; // one put per record, as an adapter without a one-call commit
    return kv;
  }
  const keysOf = async (kv) => (await kv.list("")).keys;

  test("an import whose metadata or pending interrupt does not fit in one value: LimitExceededError naming the head, and nothing is left written", async () => {
    const source = await SessionStore.memory();
    const big = "m".repeat(6000);
    const withMetadata = await source.open("meta", { metadata: { big } });
    await withMetadata.invoke((inv) => inv.appendMessage("x".repeat(9000)));
    const interrupted = await source.open("ask");
    const inv = await interrupted.begin();
    inv.appendMessage("y".repeat(9000));
    await inv.interrupt("approve", { big });
    for (const session of [withMetadata, interrupted]) {
      const kv = limitedKv(4096);
      const target = await SessionStore.kv(kv);
      await assert.rejects(target.import(await session.export()), (error) => {
        assert.ok(error instanceof LimitExceededError, `got ${error}`);
        assert.equal(error.limit, 4096);
        assert.ok(error.actual > 4096);
        assert.match(error.message, /head record/);
        return true;
      });
      assert.deepEqual(await keysOf(kv), [], `${session.id}: nothing is left`);
      // A store with room for it takes the same export.
      const roomy = await SessionStore.kv(limitedKv(65536));
      assert.equal((await roomy.import(await session.export())).version, session.version);
    }
  });

  test("open with metadata, and an interrupt, over the limit: LimitExceededError naming the head; the invocation stays open", async () => {
    const kv = limitedKv(4096);
    const store = await SessionStore.kv(kv);
    await assert.rejects(store.open("too-big", { metadata: { big: "m".repeat(6000) } }), /head record/);
    const session = await store.open("ok");
    const inv = await session.begin();
    inv.appendMessage("z".repeat(9000)); // a message over the limit is chunked
    await assert.rejects(inv.interrupt("approve", { big: "p".repeat(6000) }), (error) => error instanceof LimitExceededError && /head record/.test(error.message));
    await inv.interrupt("approve", { small: true });
    assert.equal((await session.refresh()).status, "interrupted");
    assert.equal(session.messages()[0].length, 9000);
  });
});
