// memoryKv: the reference adapter, through the contract suite, plus what only it promises.
import assert from "node:assert/strict";
import { test } from "node:test";
import { memoryKv } from "agent-session/adapters";
import { adapterContract, bytesOf } from "./contract.mjs";

// memoryKv has no commit(records, head) (the contract's optional part runs on the adapters that have it).
adapterContract({ name: "memoryKv", make: async () => ({ kv: memoryKv() }), commit: false });

test("memoryKv has no commit: a wrapper that spreads it and replaces put sees every write of a commit", async () => {
  const base = memoryKv();
  assert.equal(base.commit, undefined);
  const { SessionStore, StorageError } = await import("agent-session");
  let failing = false;
  const puts = [];
  const kv = {
    ...base,
    put: (key, ...rest) => {
      puts.push(key);
      if (failing) return Promise.reject(new Error("put failed"));
      return base.put(key, ...rest);
    },
  };
  const store = await SessionStore.kv(kv);
  const session = await store.open("s");
  await session.invoke((inv) => inv.appendMessage("kept"));
  const inv = await session.begin();
  inv.appendMessage("lost");
  puts.length = 0;
  failing = true;
  const error = await inv.commit().then(() => assert.fail("the commit resolved"), (e) => e);
  assert.ok(error instanceof StorageError, `got ${error}`);
  assert.equal(error.cause?.message, "put failed");
  assert.ok(puts.some((key) => key.startsWith("e/")), `the batch went through put: ${puts}`);
  failing = false;
  await inv.abort().catch(() => {});
  assert.deepEqual((await (await SessionStore.kv(base)).open("s", { create: false })).messages(), ["kept"]);
});

test("memoryKv: each call is a new, empty world", async () => {
  const a = memoryKv();
  const b = memoryKv();
  assert.notEqual(a, b);
  await a.put("h/x~", new Uint8Array([1]));
  assert.equal(await b.get("h/x~"), null);
  assert.deepEqual((await b.list("")).keys, []);
  assert.deepEqual((await a.list("")).keys, ["h/x~"]);
});

test("memoryKv: stored bytes are copies (mutating the input or the output changes nothing)", async () => {
  const kv = memoryKv();
  const input = new Uint8Array([1, 2, 3]);
  await kv.put("k", input);
  input[0] = 9;
  const out = (await kv.get("k")).value;
  assert.deepEqual(bytesOf(out), new Uint8Array([1, 2, 3]));
  out[1] = 9;
  assert.deepEqual(bytesOf((await kv.get("k")).value), new Uint8Array([1, 2, 3]));
});

test("memoryKv: a base64 string value is stored as its bytes", async () => {
  const kv = memoryKv();
  await kv.put("k", Buffer.from([0, 255, 7]).toString("base64"));
  assert.deepEqual(bytesOf((await kv.get("k")).value), new Uint8Array([0, 255, 7]));
});

test("memoryKv: an expired key is absent to get, list and compare-and-set at once", async () => {
  const kv = memoryKv();
  await kv.put("h/t~", new Uint8Array([1]), { ttlMs: 30 });
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(await kv.get("h/t~"), null);
  assert.deepEqual((await kv.list("h/")).keys, []);
  assert.equal(typeof (await kv.put("h/t~", new Uint8Array([2]), { expectedVersion: null })), "string");
});

test("memoryKv: list pages match a model of the live keys under interleaved puts, deletes and expiries, by prefix and cursor", async () => {
  const kv = memoryKv();
  const model = new Map(); // key -> expiresAt (ms) or Infinity
  let seed = 7;
  const random = (n) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const keyOf = () => `${"abc"[random(3)]}/${random(60)}`;
  const liveKeys = (prefix) =>
    [...model].filter(([key, end]) => key.startsWith(prefix) && end > Date.now()).map(([key]) => key).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (let round = 0; round < 300; round++) {
    const op = random(10);
    const key = keyOf();
    if (op < 6) {
      const ttlMs = random(4) === 0 ? 1 : undefined;
      await kv.put(key, new Uint8Array([round & 255]), ttlMs ? { ttlMs } : {});
      model.set(key, ttlMs ? Date.now() + ttlMs : Infinity);
    } else if (op < 8) {
      await kv.delete(key);
      model.delete(key);
    } else {
      if (random(2) === 0) await new Promise((resolve) => setTimeout(resolve, 2)); // let some TTLs pass
      for (const prefix of ["", "a/", "b/1", "zz"]) {
        const limit = 1 + random(7);
        const got = [];
        let cursor;
        do {
          const page = await kv.list(prefix, { cursor, limit });
          assert.ok(page.keys.length <= limit);
          got.push(...page.keys);
          cursor = page.cursor;
          // A key written between pages is seen when it sorts after the cursor, as the contract allows.
        } while (cursor);
        assert.deepEqual(got, liveKeys(prefix), `round ${round}, prefix ${JSON.stringify(prefix)}, limit ${limit}`);
      }
    }
  }
});
