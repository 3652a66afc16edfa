// delete(id) on a KV store when a delete failed part-way (API.md: "records left behind are swept
// later"): the head went, some records did not. The next delete of the id finds no session (false)
// and deletes what was left; other sessions, and a session created anew under the id, keep theirs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { NotFoundError, SessionStore, StorageError } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { plain } from "./_helpers.mjs";

/** memoryKv whose deletes of keys other than heads fail while `faults.on`, after the first `faults.allow`. */
function failingDeletes(faults) {
  const kv = memoryKv();
  return {
    raw: kv,
    capabilities: kv.capabilities,
    get: (...args) => kv.get(...args),
    put: (...args) => kv.put(...args),
    list: (...args) => kv.list(...args),
    async delete(key, options) {
      if (faults.on && !key.startsWith("h/") && faults.allow-- <= 0) throw new Error(`injected: delete of ${key} failed`);
      return kv.delete(key, options);
    },
  };
}

const keysOf = async (kv, id) => (await kv.list("", { limit: 10_000 })).keys.filter((key) => key.includes(`/${id}~`));

test("a delete that failed part-way leaves records no head names; the next delete of the id deletes them", async () => {
  for (const allow of [0, 3]) {
    const faults = { on: false, allow };
    const kv = failingDeletes(faults);
    const store = await SessionStore.kv(kv, { snapshotEvery: 2 });
    const other = await store.open("other");
    await other.invoke((inv) => inv.appendMessage("other"));
    const session = await store.open("gone");
    for (let turn = 0; turn < 6; turn++) {
      await session.invoke((inv) => {
        inv.appendMessage({ turn });
        inv.emit({ part: turn });
      });
    }
    const otherKeys = await keysOf(kv.raw, "other");
    faults.on = true;
    await assert.rejects(store.delete("gone"), StorageError, `allow ${allow}: the failure is the backend's`);
    faults.on = false;
    await assert.rejects(store.open("gone", { create: false }), NotFoundError, "the head went first");
    assert.ok((await keysOf(kv.raw, "gone")).length > 0, `allow ${allow}: records were left behind`);
    assert.equal(await store.delete("gone"), false, "no session was deleted");
    assert.deepEqual(await keysOf(kv.raw, "gone"), [], `allow ${allow}: nothing of the deleted session is left`);
    assert.deepEqual(await keysOf(kv.raw, "other"), otherKeys, "another session keeps its records");
    assert.deepEqual(plain((await store.open("other", { create: false })).messages()), ["other"]);
  }
});

test("records left by a failed delete do not disturb a session created anew under the id, and go with its delete", async () => {
  const faults = { on: false, allow: 1 };
  const kv = failingDeletes(faults);
  const store = await SessionStore.kv(kv, { snapshotEvery: 2 });
  const old = await store.open("reused");
  for (let turn = 0; turn < 4; turn++) await old.invoke((inv) => inv.appendMessage({ old: turn }));
  faults.on = true;
  await assert.rejects(store.delete("reused"), StorageError);
  faults.on = false;
  const fresh = await (await SessionStore.kv(kv)).open("reused");
  await fresh.invoke((inv) => inv.appendMessage("new"));
  assert.deepEqual(plain((await (await SessionStore.kv(kv)).open("reused", { create: false })).messages()), ["new"]);
  assert.equal(await store.delete("reused"), true);
  assert.deepEqual(await keysOf(kv.raw, "reused"), [], "the new session's delete took the old leftovers too");
});

// A turn whose session another store deleted under it (audit39a N1): what the holder writes after the
// delete (its flushes, the records of its refused commit) is named by no head, and no later turn of the
// session deletes it. The holder deletes it once it learns of the delete, however it does.
test("a holder whose session was deleted under it leaves no records, whichever way its turn ends", async () => {
  const ends = {
    abort: (inv) => inv.abort(),
    commit: (inv) => assert.rejects(inv.commit(), { code: "LEASE_LOST" }),
    renew: async (inv) => {
      await assert.rejects(inv.renew(), { code: "LEASE_LOST" });
      await assert.rejects(inv.abort(), { code: "INVALID_TRANSITION" });
    },
  };
  for (const [how, end] of Object.entries(ends)) {
    const kv = memoryKv();
    const holder = await SessionStore.kv(kv, { owner: "holder", heartbeat: false });
    const other = await SessionStore.kv(kv, { owner: "other" });
    const kept = await other.open("kept");
    await kept.invoke((inv) => inv.appendMessage("kept"));
    const session = await holder.open("s");
    await session.invoke((inv) => inv.appendMessage("before"));
    const inv = await session.begin();
    inv.appendMessage("staged");
    assert.equal(await other.delete("s"), true);
    inv.emit({ part: 1 });
    await inv.flush();
    assert.ok((await keysOf(kv, "s")).length > 0, `${how}: the flush wrote its record under the deleted id`);
    await end(inv);
    assert.deepEqual(await keysOf(kv, "s"), [], `${how}: the holder deleted what it wrote`);
    assert.deepEqual(plain((await (await SessionStore.kv(kv)).open("kept", { create: false })).messages()), ["kept"]);
  }
});

test("a holder whose lease was taken, not deleted, deletes nothing of the session", async () => {
  const kv = memoryKv();
  let t = 1_000_000;
  const now = () => t;
  const first = await SessionStore.kv(kv, { owner: "first", heartbeat: false, leaseMs: 1000, now });
  const second = await SessionStore.kv(kv, { owner: "second", leaseMs: 1000, now });
  const session = await first.open("s");
  const inv = await session.begin();
  inv.emit({ part: "first's" });
  await inv.flush();
  inv.appendMessage("first's");
  t += 5000; // the first holder's lease runs out
  await (await second.open("s")).invoke((next) => next.appendMessage("second's"));
  const before = await keysOf(kv, "s");
  await assert.rejects(inv.commit(), { code: "LEASE_LOST" });
  const after = await keysOf(kv, "s");
  assert.deepEqual(before.filter((key) => !after.includes(key)), [], "no record there before the commit was deleted");
  assert.deepEqual(plain((await (await SessionStore.kv(kv, { now })).open("s", { create: false })).messages()), ["second's"]);
});

// audit43 B1: the holder's cleanup deletes only what it wrote. A session imported (records first, head
// last, as on a KV store without a one-call commit) under the id meanwhile keeps every record.
test("a holder whose session was deleted deletes nothing of a session imported under the id meanwhile", async () => {
  for (const end of ["abort", "commit"]) {
    const kv = memoryKv();
    let holdHeads = false;
    let released;
    const heldBack = new Promise((resolve) => (released = resolve));
    let headWaiting;
    const waiting = new Promise((resolve) => (headWaiting = resolve));
    const importerKv = {
      capabilities: kv.capabilities,
      get: (...args) => kv.get(...args),
      list: (...args) => kv.list(...args),
      delete: (...args) => kv.delete(...args),
      async put(key, value, options) {
        if (holdHeads && key.startsWith("h/")) {
          headWaiting();
          await heldBack;
        }
        return kv.put(key, value, options);
      },
    };
    const holder = await SessionStore.kv(kv, { owner: "holder", heartbeat: false });
    const importer = await SessionStore.kv(importerKv, { owner: "importer" });
    const source = await (await SessionStore.memory({ snapshotEvery: 2 })).open("source");
    for (let turn = 0; turn < 3; turn++) await source.invoke((inv) => inv.appendMessage({ imported: turn }));
    const data = await source.export();
    const session = await holder.open("s");
    await session.invoke((inv) => inv.appendMessage("before"));
    const inv = await session.begin();
    inv.appendMessage("staged");
    inv.emit({ part: 1 });
    await inv.flush();
    assert.equal(await importer.delete("s"), true);
    holdHeads = true;
    const importing = importer.import(data, { id: "s" });
    await waiting; // the import's records are written, its head not yet
    if (end === "abort") await inv.abort();
    else await assert.rejects(inv.commit(), { code: "LEASE_LOST" });
    released();
    await importing;
    const reader = await (await SessionStore.kv(kv)).open("s", { create: false });
    assert.deepEqual(plain(reader.messages()), [{ imported: 0 }, { imported: 1 }, { imported: 2 }], end);
    assert.equal((await reader.history()).length, data.events.length, `${end}: the imported history is whole`);
    assert.ok(!(await keysOf(kv, "s")).some((key) => key.includes(`/${inv.token.toString(16).padStart(16, "0")}`)), `${end}: the holder's own records went`);
  }
});

test("a prune whose session another store deletes under its lease rejects with NotFoundError and leaves no record (audit55)", async () => {
  for (const closed of [false, true]) {
    const base = memoryKv();
    let gate = null;
    // The pruner's KV holds its first record write (the snapshot of the latest version) until the delete is done.
    const pruning = {
      ...base,
      put: async (key, ...rest) => {
        if (gate && !key.startsWith("h/")) await gate;
        return base.put(key, ...rest);
      },
    };
    let onLease = null;
    const pruner = await SessionStore.kv(pruning, { onEvent: (event) => event.type === "lease.acquired" && onLease?.() });
    const other = await SessionStore.kv(base);
    const session = await pruner.open("doomed");
    for (let i = 0; i < 6; i++) await session.invoke((inv) => inv.appendMessage(`m${i}`));
    if (closed) await session.close();
    let deleted;
    let open;
    gate = new Promise((resolve) => (open = resolve));
    onLease = () => {
      onLease = null;
      deleted = other.delete("doomed").then(open);
    };
    const error = await session.prune({ before: session.version }).then(
      (value) => assert.fail(`the prune resolved ${value}`),
      (e) => e,
    );
    gate = null;
    await deleted;
    assert.ok(error instanceof NotFoundError, `${closed ? "closed" : "idle"}: ${error}`);
    assert.deepEqual((await base.list("")).keys, [], `${closed ? "closed" : "idle"}: no record left`);
    await pruner.close();
    await other.close();
  }
});
