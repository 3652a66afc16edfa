// denoKv on the real engine: @deno/kv's SQLite backend (the one Deno itself uses for local KV),
// opened on a temp file, plus @deno/kv's in-memory implementation.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { openKv } from "@deno/kv";
import { denoKv } from "agent-session/adapters";
import { adapterContract, bytesOf } from "./contract.mjs";

const dir = mkdtempSync(join(tmpdir(), "agent-session-denokv-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newFile = () => join(dir, `kv-${++files}.sqlite`);

adapterContract({
  name: "denoKv on @deno/kv (SQLite file)",
  make: async () => {
    const db = await openKv(newFile());
    return { kv: denoKv(db), cleanup: () => db.close() };
  },
  // The SQLite backend sweeps expired keys only once a minute (Deno KV deletes late by design; the
  // store keeps each head's expiry in the head itself), so waiting for it would cost the test run a
  // minute: that expireIn reaches Deno KV is checked by the spy test below, and the in-memory
  // backend's contract run below waits for a real expiry.
  ttl: false,
});

adapterContract({
  name: "denoKv on @deno/kv (in-memory)",
  make: async () => {
    const db = await openKv("");
    return { kv: denoKv(db), cleanup: () => db.close() };
  },
});

test("denoKv: declares Deno KV's 64 KiB value limit unless told otherwise, and checks the option", async () => {
  const db = await openKv(newFile());
  try {
    assert.deepEqual({ ...denoKv(db).capabilities }, { atomic: true, maxValueBytes: 65536 });
    assert.equal(denoKv(db, { maxValueBytes: 1024 }).capabilities.maxValueBytes, 1024);
    assert.throws(() => denoKv(db, { maxValueBytes: 0 }), (error) => error instanceof TypeError && error.code === "INVALID_INPUT");
    assert.throws(() => denoKv({}), (error) => error instanceof TypeError && error.code === "INVALID_INPUT");
    // A misspelt option, or options that are not an object, would leave the limit unset: refused.
    for (const options of [{ maxValueByte: 1024 }, { maxValueBytes: 1024, extra: true }, 5, "64k", null]) {
      assert.throws(
        () => denoKv(db, options),
        (error) => error instanceof TypeError && error.code === "INVALID_INPUT" && /^denoKv: options/.test(error.message),
        JSON.stringify(options),
      );
    }
    assert.equal(denoKv(db, undefined).capabilities.maxValueBytes, 65536);
    // One byte over the declared limit is what Deno KV itself refuses: the limit is not too small.
    await assert.rejects(denoKv(db).put("k", new Uint8Array(65537)));
  } finally {
    db.close();
  }
});

test("denoKv: each key is one key part under [\"agent-session\"], the value its raw bytes", async () => {
  const db = await openKv(newFile());
  try {
    const kv = denoKv(db);
    const version = await kv.put("e/a~/01/02#0", new Uint8Array([0, 255]));
    const raw = await db.get(["agent-session", "e/a~/01/02#0"]);
    assert.equal(raw.versionstamp, version);
    assert.deepEqual(bytesOf(raw.value), new Uint8Array([0, 255]));
  } finally {
    db.close();
  }
});

test("denoKv: a base64 string put is stored as its bytes; a stored string reads as bytes, anything else is an error", async () => {
  const db = await openKv("");
  try {
    const kv = denoKv(db);
    await kv.put("h/string~", "AP8=");
    const raw = await db.get(["agent-session", "h/string~"]);
    assert.ok(raw.value instanceof Uint8Array, "stored as bytes, not as the base64 text");
    assert.deepEqual(Uint8Array.from(raw.value), new Uint8Array([0, 255]));
    // A string value stored by an earlier denoKv (which kept a string as it was given).
    await db.set(["agent-session", "h/old~"], "AQID");
    assert.deepEqual((await kv.get("h/old~")).value, new Uint8Array([1, 2, 3]));
    await db.set(["agent-session", "h/foreign~"], { not: "bytes" });
    await assert.rejects(kv.get("h/foreign~"), (error) => /not bytes/.test(error.message) && error.code === "CORRUPT_RECORD");
    await db.set(["agent-session", "h/text~"], "plain text");
    await assert.rejects(kv.get("h/text~"), /not bytes/);
  } finally {
    db.close();
  }
});

test("denoKv: ttlMs is passed to Deno KV as expireIn", async () => {
  const db = await openKv("");
  try {
    const seen = [];
    const spy = {
      get: (key) => db.get(key),
      list: (...args) => db.list(...args),
      atomic() {
        const op = db.atomic();
        const wrapped = {
          check: (...checks) => (op.check(...checks), wrapped),
          set: (key, value, options) => (seen.push(options), op.set(key, value, options), wrapped),
          delete: (key) => (op.delete(key), wrapped),
          commit: () => op.commit(),
        };
        return wrapped;
      },
    };
    const kv = denoKv(spy);
    await kv.put("h/a~", new Uint8Array([1]), { ttlMs: 1500.5 });
    await kv.put("h/b~", new Uint8Array([1]));
    assert.deepEqual(seen, [{ expireIn: 1501 }, undefined]);
  } finally {
    db.close();
  }
});

test("denoKv: two handles on one file (two isolates) see each other's writes and race fairly", async () => {
  const file = newFile();
  const dbA = await openKv(file);
  const dbB = await openKv(file);
  try {
    const a = denoKv(dbA);
    const b = denoKv(dbB);
    const v1 = await a.put("h/shared~", new Uint8Array([1]), { expectedVersion: null });
    assert.equal((await b.get("h/shared~")).version, v1);
    assert.equal(await b.put("h/shared~", new Uint8Array([2]), { expectedVersion: null }), null);
    for (let round = 0; round < 10; round++) {
      const current = (await a.get("h/shared~")).version;
      const results = await Promise.all([
        a.put("h/shared~", new Uint8Array([round, 0]), { expectedVersion: current }),
        b.put("h/shared~", new Uint8Array([round, 1]), { expectedVersion: current }),
        a.put("h/shared~", new Uint8Array([round, 2]), { expectedVersion: current }),
        b.put("h/shared~", new Uint8Array([round, 3]), { expectedVersion: current }),
      ]);
      const winners = results.filter((version) => version !== null);
      assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
      assert.equal((await b.get("h/shared~")).version, winners[0]);
    }
    assert.deepEqual((await b.list("h/")).keys, ["h/shared~"]);
  } finally {
    dbA.close();
    dbB.close();
  }
});

test("@deno/kv: a commit that fails with \"database is locked\" wrote nothing (so denoKv may retry it)", async () => {
  // The library behaviour denoKv's retry rests on: two handles on one file, many racing
  // read-check-increment commits; the counter must equal the commits that reported ok.
  const file = newFile();
  const dbA = await openKv(file);
  const dbB = await openKv(file);
  try {
    await dbA.set(["counter"], 0);
    let ok = 0;
    let locked = 0;
    const worker = async (db) => {
      for (let i = 0; i < 60; i++) {
        const entry = await db.get(["counter"]);
        try {
          if ((await db.atomic().check(entry).set(["counter"], entry.value + 1).commit()).ok) ok++;
        } catch (error) {
          assert.match(String(error.message), /database is locked/);
          locked++;
        }
      }
    };
    await Promise.all([worker(dbA), worker(dbB), worker(dbA), worker(dbB)]);
    assert.equal((await dbA.get(["counter"])).value, ok, `${locked} locked commits`);
  } finally {
    dbA.close();
    dbB.close();
  }
});

test("denoKv: a commit past one atomic operation's limits is the records' operations, then the head's", async () => {
  const db = await openKv(newFile());
  try {
    const kv = denoKv(db);
    const operations = [];
    const spied = { ...db, get: db.get.bind(db), list: db.list.bind(db), atomic: () => (operations.push("atomic"), db.atomic()) };
    const adapter = denoKv(spied);
    // 13 values of 64 KiB: more bytes than one atomic operation takes (800 KiB).
    const records = Array.from({ length: 13 }, (_, i) => ({ key: `big/e/s~/${String(i).padStart(2, "0")}`, value: new Uint8Array(65536).fill(i) }));
    const version = await adapter.commit(records, { key: "big/h/s~", value: new Uint8Array([1]), expectedVersion: null });
    assert.equal(typeof version, "string");
    assert.equal(operations.length, 14, "one operation per record, then the head's");
    for (const { key, value } of records) assert.deepEqual(bytesOf((await kv.get(key)).value), value, key);
    assert.equal((await kv.get("big/h/s~")).version, version);
    assert.equal(await adapter.commit(records.slice(0, 1), { key: "big/h/s~", value: new Uint8Array([2]), expectedVersion: null }), null);
    // A small commit is one operation.
    operations.length = 0;
    assert.equal(typeof (await adapter.commit(records.slice(0, 2), { key: "big/h/s~", value: new Uint8Array([3]), expectedVersion: version })), "string");
    assert.equal(operations.length, 1);
  } finally {
    db.close();
  }
});

test("denoKv: a head another program rewrote (an object, text): open gives CorruptRecordError naming the key; list() leaves it out and goes on", async () => {
  const { SessionStore, CorruptRecordError } = await import("agent-session");
  const db = await openKv("");
  try {
    const corrupt = [];
    const store = await SessionStore.kv(denoKv(db), { onEvent: (event) => event.type === "corrupt" && corrupt.push(event.key) });
    for (const id of ["object", "text", "fine"]) await (await store.open(id)).invoke((inv) => inv.appendMessage(id));
    await db.set(["agent-session", "h/object~"], { some: "object" });
    await db.set(["agent-session", "h/text~"], "not base64 !");
    for (const id of ["object", "text"]) {
      await assert.rejects(store.open(id), (error) => {
        assert.ok(error instanceof CorruptRecordError, `${id}: got ${error}`);
        assert.equal(error.key, `h/${id}~`);
        return true;
      });
    }
    const { sessions } = await store.list();
    assert.deepEqual(sessions.map((session) => session.id), ["fine"]);
    assert.deepEqual(corrupt.sort(), ["h/object~", "h/text~"]);
    assert.equal(await store.sweepExpired(), 0);
    assert.deepEqual((await db.get(["agent-session", "h/object~"])).value, { some: "object" });
  } finally {
    db.close();
  }
});
