// Schema migrations of the application's own data (API.md "Schema migrations"), on the memory store
// and on a KV store (two stores over one memoryKv: the old application and the new one): a session
// written under version 1 read at version 3 (two steps), persisted by the next commit as `migrated`
// events; SchemaVersionError for a newer stored version; MigrationError for a throwing or non-JSON
// migration, with nothing written.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SessionStore, SchemaVersionError, MigrationError, ValidationError } from "agent-session";
import { memoryKv } from "agent-session/adapters";

const migrate = {
  2: ({ messages, state }) => ({ messages: messages.map((m) => ({ content: m.text })), state }),
  3: ({ agent, messages, state }) => ({ messages, state: { ...state, count: messages.length, agent } }),
};

/** Two stores (the application at schema `a`, then at schema `b`) over one backend. */
async function backends() {
  const kv = memoryKv();
  return [
    ["kv", (schema) => SessionStore.kv(kv, { schema })],
    // One memory store cannot be reopened: the same store object serves both schemas' reads
    // through a kv over memoryKv, so the memory store is checked on its own below.
  ];
}

async function snapshotOf(kv) {
  const keys = [];
  let cursor;
  do {
    const page = await kv.list("", { cursor });
    keys.push(...page.keys);
    cursor = page.cursor;
  } while (cursor);
  const values = await Promise.all(keys.map((key) => kv.get(key)));
  return JSON.stringify(keys.map((key, i) => [key, values[i]?.version]));
}

test("a session written under schema 1 is read at schema 3 (two steps) and persisted by the next commit", async () => {
  for (const [name, store] of await backends()) {
    const v1 = await store({ version: 1 });
    const old = await v1.open("s");
    await old.invoke((inv) => {
      inv.appendMessage({ text: "hi" });
      inv.appendMessage({ text: "there" }, { agent: "helper" });
      inv.setState("n", 1);
    });
    const v3 = await store({ version: 3, migrate });
    const now = await v3.open("s");
    assert.deepEqual(now.messages(), [{ content: "hi" }], name);
    assert.deepEqual(now.state(), { n: 1, count: 1, agent: "default" });
    assert.deepEqual(now.messages({ agent: "helper" }), [{ content: "there" }]);
    // Nothing written by the read: the old application still reads its data.
    assert.deepEqual((await (await store({ version: 1 })).open("s")).messages(), [{ text: "hi" }]);
    const version = await now.invoke(async (inv) => {
      inv.appendMessage({ content: "again" });
      return inv.session.version;
    });
    const events = await now.history({ from: version + 1 });
    assert.deepEqual(
      events.map((e) => [e.type, e.agent]),
      [["migrated", "default"], ["migrated", "helper"], ["message", "default"]],
    );
    assert.deepEqual(events[0].data, { from: 1, to: 3, messages: [{ content: "hi" }], state: { n: 1, count: 1, agent: "default" } });
    // A fresh store at 3 loads it without running the migrations again.
    const throwing = { 2: () => { throw new Error("must not run"); }, 3: () => { throw new Error("must not run"); } };
    const fresh = await (await store({ version: 3, migrate: throwing })).open("s");
    assert.deepEqual(fresh.messages(), [{ content: "hi" }, { content: "again" }]);
    // History keeps the originals.
    assert.deepEqual((await fresh.at(version)).messages(), [{ text: "hi" }]);
  }
});

test("a session of a newer schema is a SchemaVersionError and a failing migration a MigrationError; nothing is written", async () => {
  const kv = memoryKv();
  const v2 = await SessionStore.kv(kv, { schema: { version: 2 } });
  await (await v2.open("new")).invoke((inv) => inv.appendMessage("x"));
  const before = await snapshotOf(kv);
  const v1 = await SessionStore.kv(kv, { schema: { version: 1 } });
  await assert.rejects(v1.open("new"), (error) => {
    assert.ok(error instanceof SchemaVersionError);
    assert.equal(error.code, "SCHEMA_VERSION");
    assert.deepEqual([error.stored, error.supported], [2, 1]);
    assert.match(error.message, /upgrade/);
    return true;
  });
  const old = await SessionStore.kv(kv);
  await (await old.open("old")).invoke((inv) => inv.appendMessage({ text: "a" }));
  const withOld = await snapshotOf(kv);
  assert.notEqual(withOld, before);
  const boom = new Error("boom");
  const cases = [
    [{ 1: () => { throw boom; } }, (e) => e.cause === boom],
    [{ 1: () => ({ messages: [() => 1], state: {} }) }, (e) => /not JSON/.test(e.message)],
    [{ 1: () => ({ messages: [], state: { bad: 1n } }) }, (e) => /not JSON/.test(e.message)],
    [{ 1: () => "nothing" }, (e) => /must return/.test(e.message)],
    // A state that is not a plain object: its entries would be lost (a Map) or renamed (an array).
    [{ 1: ({ state }) => ({ messages: [], state: Object.entries(state) }) }, (e) => /must return .*plain object/.test(e.message)],
    [{ 1: ({ state }) => ({ messages: [], state: new Map(Object.entries(state)) }) }, (e) => /must return/.test(e.message)],
    [{ 1: () => ({ messages: [], state: [] }) }, (e) => /must return/.test(e.message)],
    // A getter of the result's shape that throws is the cause.
    [{ 1: () => ({ get messages() { throw boom; }, state: {} }) }, (e) => /must return/.test(e.message) && e.cause === boom],
    [{ 1: () => ({ messages: [], get state() { throw boom; } }) }, (e) => /must return/.test(e.message) && e.cause === boom],
    // What a turn could not stage: a key with a lone surrogate (two such keys would merge), an empty
    // key, a message or value over the store's limits (set below).
    [{ 1: () => ({ messages: [], state: { "\uD800": "a", "\uDBFF": "b" } }) }, (e) => /not JSON/.test(e.message) && e.cause?.code === "INVALID_INPUT"],
    [{ 1: () => ({ messages: [], state: { "": 1 } }) }, (e) => /state key/.test(e.cause?.message ?? "")],
    [{ 1: () => ({ messages: ["x".repeat(5000)], state: {} }) }, (e) => /refused: .*maxMessageBytes/.test(e.message)],
    [{ 1: () => ({ messages: [], state: { big: "x".repeat(5000) } }) }, (e) => /refused: .*maxStateValueBytes/.test(e.message)],
    // Getters that throw while the engine reads what the migration returned: a MigrationError with the
    // thrown error inside, not an exception through the engine and an open() that never settles.
    [{ 1: () => ({ messages: [], state: { get bad() { throw boom; } } }) }, (e) => e.cause?.cause === boom],
    [{ 1: () => ({ messages: Object.defineProperty([], 0, { get() { throw boom; }, enumerable: true }), state: {} }) }, (e) => e.cause?.cause === boom],
    [{}, (e) => /not given/.test(e.message)],
  ];
  for (const [steps, check] of cases) {
    const limits = { maxMessageBytes: 1000, maxStateValueBytes: 1000 };
    const store = await SessionStore.kv(kv, { schema: { version: 1, migrate: steps }, limits });
    await assert.rejects(store.open("old"), (error) => {
      assert.ok(error instanceof MigrationError, String(error));
      assert.equal(error.code, "MIGRATION_FAILED");
      assert.deepEqual([error.from, error.to], [0, 1]);
      assert.ok(check(error), error.message);
      return true;
    });
    // A begin refuses the same way and leaves no lease behind.
    const session = await (await SessionStore.kv(kv)).open("old");
    await assert.rejects(
      (async () => {
        const s = await store.open("old").catch(() => null);
        if (s) await s.begin();
        else throw new MigrationError("open refused", {});
      })(),
      MigrationError,
    );
    await (await session.begin()).abort();
  }
  // The refused opens wrote nothing; the begins that were let through (schema 0 store) only moved the head.
  const after = JSON.parse(await snapshotOf(kv)).map(([key]) => key);
  assert.deepEqual(after, JSON.parse(withOld).map(([key]) => key), "no record was added or removed");
});

test("a prune at the latest version of a session not migrated yet keeps its migrated data, migrated once", async () => {
  const kv = memoryKv();
  const v1 = await SessionStore.kv(kv, { schema: { version: 1 } });
  const old = await v1.open("pruned");
  for (const text of ["hello", "world"]) await old.invoke((inv) => inv.appendMessage({ text }));
  const v2 = await SessionStore.kv(kv, { schema: { version: 2, migrate } });
  const session = await v2.open("pruned");
  const migrated = [{ content: "hello" }, { content: "world" }];
  assert.deepEqual(session.messages(), migrated);
  assert.ok((await session.prune({ before: session.version })) > 0);
  assert.deepEqual(session.messages(), migrated, "the same Session after the prune");
  assert.deepEqual((await session.at(session.version)).messages(), migrated, "at(the pruned version)");
  // A fresh store at schema 2 reads the snapshot as it is: no migration runs again.
  const throwing = { 2: () => { throw new Error("must not run"); } };
  const fresh = await (await SessionStore.kv(kv, { schema: { version: 2, migrate: throwing } })).open("pruned");
  assert.deepEqual(fresh.messages(), migrated);
  assert.deepEqual((await fresh.export()).base.map((e) => e.data), migrated, "an export carries the migrated data");
  await fresh.invoke((inv) => inv.appendMessage({ content: "again" }));
  assert.deepEqual((await (await SessionStore.kv(kv, { schema: { version: 2, migrate: throwing } })).open("pruned")).messages(), [...migrated, { content: "again" }]);
  // The old application no longer reads it as its own: the data is schema 2 now.
  await assert.rejects(v1.open("pruned"), SchemaVersionError);
});

test("the schema option is validated", async () => {
  await assert.rejects(SessionStore.memory({ schema: { version: -1 } }), ValidationError);
  await assert.rejects(SessionStore.memory({ schema: { version: 1, migrate: { 1: "not a function" } } }), ValidationError);
  await assert.rejects(SessionStore.memory({ schema: {} }), ValidationError);
  // A memory store at a schema creates sessions at it: nothing to migrate.
  const store = await SessionStore.memory({ schema: { version: 4, migrate: { 4: () => { throw new Error("no"); } } } });
  const session = await store.open("m");
  await session.invoke((inv) => inv.appendMessage(1));
  assert.deepEqual((await store.open("m")).messages(), [1]);
});
