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
