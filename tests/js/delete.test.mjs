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
