// Schema migrations against a model, seeded random runs: the application is deployed at schema 0, 1,
// 2, 3 over time (a new store over the same memoryKv each time) while turns (messages, state sets and
// deletes, compactions; committed or aborted) go through the newest store and sometimes an older one
// still running. What every read must show: the stored data migrated from the schema it was last
// committed under to the reader's (API.md "Schema migrations"); an older reader of a newer session
// gets SchemaVersionError and writes nothing; a commit persists the migrated data, after which a
// fresh store of that schema loads it without calling any migration; `at(v)` shows an old version as
// it was committed; a fork of any version holds its data migrated to the store's schema; an export
// imported into a store of the newest schema reads the same.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { seeded } from "../browser/model-checks.mjs";

const AGENTS = ["default", "a"];
const opt = (agent) => (agent === "default" ? undefined : { agent });

/** Migration n: messages tagged (strings suffixed, objects given a key), state given a key; 2 drops k1. */
function step(n, { messages, state }) {
  const next = { ...state, [`s${n}`]: n };
  if (n === 2) delete next.k1;
  return {
    messages: messages.map((m) => (typeof m === "string" ? `${m}|${n}` : { ...m, [`s${n}`]: true })),
    state: next,
  };
}

const EMPTY = { default: { messages: [], state: {} }, a: { messages: [], state: {} } };

/** `data` (per agent) stored under schema `from`, as a reader at schema `to` sees it. */
function migrated(data, from, to) {
  if (data === EMPTY) return EMPTY; // no agent yet: nothing to migrate
  const out = {};
  for (const agent of AGENTS) {
    let view = data[agent];
    for (let n = from + 1; n <= to; n++) view = step(n, view);
    out[agent] = view;
  }
  return out;
}

function readOf(view) {
  const out = {};
  for (const agent of AGENTS) out[agent] = { messages: view.messages(opt(agent)), state: view.state(opt(agent)) };
  return out;
}

test("schema deploys 0 -> 3 with turns through new and old stores: every read is the stored data migrated to the reader's schema", async () => {
  for (let trial = 0; trial < 40; trial++) {
    const random = seeded(1009 + trial * 7727);
    const pick = (list) => list[Math.floor(random() * list.length)];
    const kv = memoryKv();
    let calls = 0;
    const migrate = {};
    for (let n = 1; n <= 3; n++) {
      migrate[n] = (data) => {
        calls++;
        return step(n, data);
      };
    }
    const snapshotEvery = 1 + (trial % 4);
    const storeAt = (version) =>
      SessionStore.kv(kv, { snapshotEvery, ...(version > 0 && { schema: { version, migrate } }) });
    const stores = [await storeAt(0)];
    // What is stored: the schema it was last committed under, and its data (per agent).
    let stored = { schema: 0, data: { default: { messages: [], state: {} }, a: { messages: [], state: {} } } };
    let counter = 0;
    const first = await stores[0].open("s");
    await first.invoke((inv) => {
      for (const agent of AGENTS) inv.setState("keep", agent, opt(agent)); // every agent has data, always
    });
    for (const agent of AGENTS) stored.data[agent].state.keep = agent;
    const versions = [{ schema: 0, data: EMPTY }, structuredClone(stored)];
    let events = (await first.history()).length;

    for (let stepNo = 0; stepNo < 50; stepNo++) {
      const where = `trial ${trial}, step ${stepNo}`;
      if (stores.length < 4 && random() < 0.1) stores.push(await storeAt(stores.length)); // a deploy
      const schema = random() < 0.75 ? stores.length - 1 : Math.floor(random() * stores.length);
      const store = stores[schema];
      if (schema < stored.schema) {
        const refused = await store.open("s").then(() => undefined, (error) => error);
        assert.equal(refused?.code, "SCHEMA_VERSION", `${where}: a store at schema ${schema} opening a session of schema ${stored.schema}`);
        continue;
      }
      const session = await store.open("s");
      const view = migrated(stored.data, stored.schema, schema);
      assert.deepEqual(readOf(session), view, `${where}: read at schema ${schema} (stored at ${stored.schema})`);
      const inv = await session.begin();
      const next = structuredClone(view);
      for (let i = 0, n = 1 + Math.floor(random() * 4); i < n; i++) {
        const agent = pick(AGENTS);
        const roll = random();
        if (roll < 0.5) {
          const message = random() < 0.5 ? `m${++counter}` : { n: ++counter };
          inv.appendMessage(message, opt(agent));
          next[agent].messages.push(message);
        } else if (roll < 0.75) {
          const key = pick(["k1", "k2"]);
          inv.setState(key, counter, opt(agent));
          next[agent].state[key] = counter;
        } else if (roll < 0.9) {
          const key = pick(["k1", "k2"]);
          inv.deleteState(key, opt(agent));
          delete next[agent].state[key];
        } else {
          const before = Math.floor(random() * (next[agent].messages.length + 1));
          inv.compact({ before, summary: [`sum${stepNo}`], ...opt(agent) });
          next[agent].messages.splice(0, before, `sum${stepNo}`);
        }
        assert.deepEqual(inv.messages(opt(agent)), next[agent].messages, `${where}: the invocation reads its writes`);
      }
      if (random() < 0.85) {
        await inv.commit();
        const wasMigrated = schema > stored.schema;
        stored = { schema, data: next };
        versions.push(structuredClone(stored));
        const history = await session.history();
        const added = history.slice(events);
        events = history.length;
        const kinds = added.filter((e) => e.type === "migrated").map((e) => e.agent ?? "default");
        assert.deepEqual(kinds.sort(), wasMigrated ? [...AGENTS].sort() : [], `${where}: one migrated event per agent, only when migrating`);
        // Persisted: a fresh store of this schema loads it without running any migration.
        const before = calls;
        const fresh = await storeAt(schema);
        assert.deepEqual(readOf(await fresh.open("s")), next, `${where}: a fresh store's load`);
        assert.equal(calls, before, `${where}: a load after the commit runs no migration`);
      } else {
        await inv.abort();
      }
    }
    const newest = stores.length - 1;
    const reader = await stores[newest].open("s");
    const latest = versions.length - 1;
    assert.equal(reader.version, latest, `trial ${trial}: version`);
    for (let v = 0; v <= latest; v++) {
      // at(v) shows an old version as it was committed; the latest one as the session reads it.
      const expected = v === latest ? migrated(versions[v].data, versions[v].schema, newest) : versions[v].data;
      assert.deepEqual(readOf(await reader.at(v)), expected, `trial ${trial}: at(${v}) (committed at schema ${versions[v].schema})`);
    }
    // A fork is written under the store's schema: its data is the version's, migrated to it.
    const forkAt = Math.floor(random() * (latest + 1));
    const fork = await reader.fork({ at: forkAt });
    const forked = migrated(versions[forkAt].data, versions[forkAt].schema, newest);
    assert.deepEqual(readOf(fork), forked, `trial ${trial}: fork at ${forkAt} (committed at schema ${versions[forkAt].schema})`);
    const before = calls;
    assert.deepEqual(readOf(await (await storeAt(newest)).open(fork.id)), forked, `trial ${trial}: the fork, loaded by a fresh store`);
    assert.equal(calls, before, `trial ${trial}: loading the fork runs no migration`);
    // An export (plaintext, with its schema) imported into a store of the newest schema.
    const exported = JSON.parse(JSON.stringify(await (await stores[Math.max(stored.schema, 0)].open("s")).export()));
    const copy = await (await SessionStore.kv(memoryKv(), newest > 0 ? { schema: { version: newest, migrate } } : {})).import(exported);
    assert.deepEqual(readOf(copy), migrated(stored.data, stored.schema, newest), `trial ${trial}: the import read at schema ${newest}`);
  }
});
