// The HostKv contract, written once and run against every adapter on its real engine (memoryKv,
// denoKv on @deno/kv, redisKv on redis-server with node-redis and ioredis, ...). Not a test file
// itself: a *.test.mjs calls `adapterContract({ name, make })`.
//
// The contract (what SessionStore.kv relies on):
// - get(key) -> { value: Uint8Array | base64 string, version: string } | null
// - values (the rule of js/adapters/index.d.ts): bytes, as a Uint8Array or as their standard base64
//   (RFC 4648, padded); put takes either and stores the bytes, get returns either; any other value
//   given to put is a TypeError, but only once its condition holds (a refused condition resolves to
//   null as always), and it writes nothing
// - put(key, value, { expectedVersion?, ttlMs? }) -> new version | null (condition failed, nothing
//   written); expectedVersion undefined = unconditional, null = must not exist, string = must equal
// - versions are opaque, change on every write, and never repeat for a key, even after delete
// - delete(key, { expectedVersion? }) -> true when something was deleted
// - list(prefix, { cursor?, limit? }) -> { keys, cursor? }: ascending, every key with the prefix
//   across pages, no duplicates
// - capabilities: { atomic: boolean, maxValueBytes?: number, minTtlMs?: number }
// - commit(records, head, deletes) (optional) -> the head's new version | null: every record, then the
//   head if its expectedVersion holds, and then the keys in `deletes` (of the head's session) are
//   gone; a value that is not bytes is a TypeError, nothing written. The adapters of this package
//   write and delete nothing for a refused head when the commit fits one backend operation, as every
//   commit here does (what they do past that is tested with each adapter)
import assert from "node:assert/strict";
import { describe, test } from "node:test";

/** The bytes of a `get` result's value (a string value is standard base64 of the bytes). */
export function bytesOf(value) {
  if (typeof value === "string") {
    assert.ok(/^[A-Za-z0-9+/]*={0,2}$/.test(value) && value.length % 4 === 0, `a string value must be standard base64, got ${JSON.stringify(value.slice(0, 40))}`);
    return Uint8Array.from(Buffer.from(value, "base64"));
  }
  assert.ok(value instanceof Uint8Array, `a value must be a Uint8Array or a base64 string, got ${Object.prototype.toString.call(value)}`);
  return Uint8Array.from(value);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const base64 = (bytes) => Buffer.from(bytes).toString("base64");

/** Bytes that are not UTF-8: a lone continuation byte, truncated and overlong sequences, surrogates,
 * bytes UTF-8 never uses, a sequence cut off at the end. A UTF-8 reading changes every one of them. */
const NOT_UTF8 = new Uint8Array([
  0x80, 0x41, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc, 0xc0, 0x80, 0xed, 0xa0, 0x80,
  0xed, 0xbf, 0xbf, 0xf8, 0x88, 0x80, 0x80, 0x80, 0xfe, 0xff, 0xf4, 0x90, 0x80, 0x80, 0x00, 0xe2, 0x82,
]);

/** Values `put` must refuse with a TypeError: strings that are not standard padded base64, and things
 * that are neither a Uint8Array nor a string (each survives the JSON of the workerd RPC as itself). */
const NOT_VALUES = {
  "text": "not base64!",
  "3 characters": "abc",
  "unpadded": "YQ",
  "over-padded": "YQ===",
  "padding inside": "YQ==YQ==",
  "= inside": "AB=C",
  "base64url": "-_8=",
  "a line break": "AAAA\nAAAA",
  "a space": "AAAA AAAA",
  "non-ASCII": "éé==",
  "a number": 42,
  "null": null,
  "an array of bytes": [1, 2, 3],
  "an object": {},
};

/** The error `fn()` threw or rejected with (a HostKv may do either), or fails when it did neither. */
async function refusal(fn, message) {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  assert.fail(`${message}: resolved instead of throwing`);
}

/** Every key under `prefix`, following cursors; checks each page on the way. */
export async function listAll(kv, prefix, limit) {
  const keys = [];
  let cursor;
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 1000, "list() kept returning a cursor");
    const page = await kv.list(prefix, limit === undefined ? (cursor ? { cursor } : {}) : { limit, ...(cursor ? { cursor } : {}) });
    assert.ok(page && Array.isArray(page.keys), "list() must resolve to { keys: string[] }");
    if (limit !== undefined) assert.ok(page.keys.length <= limit, `a page holds ${page.keys.length} keys, more than the limit ${limit}`);
    keys.push(...page.keys);
    if (page.cursor === undefined || page.cursor === null || page.cursor === "") return keys;
    assert.equal(typeof page.cursor, "string", "a cursor is a string");
    cursor = page.cursor;
  }
}

const ascending = (keys) => [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

let namespaces = 0;

/**
 * Registers the contract tests for one adapter.
 * @param {{
 *   name: string,
 *   make: () => Promise<{ kv: object, cleanup?: () => unknown }>,
 *   ttlGoneWithinMs?: number,   // how late the backend may delete an expired key (default 5000)
 *   ttl?: boolean,              // false: the backend has no TTL (ttlMs is ignored)
 *   concurrency?: boolean,      // run the tests of this suite concurrently (default true)
 *   commit?: boolean,           // false: the adapter has no commit(records, head) (default true)
 * }} options
 */
export function adapterContract({ name, make, ttlGoneWithinMs = 5000, ttl = true, concurrency = true, commit = true }) {
  /** Runs `fn(kv, ns)` on a fresh adapter, with a key namespace of its own (backends may be shared). */
  const withKv = (fn) => async () => {
    const { kv, cleanup } = await make();
    const ns = `c${process.pid}-${++namespaces}-${Math.random().toString(36).slice(2, 8)}:`;
    try {
      await fn(kv, ns);
    } finally {
      await cleanup?.();
    }
  };

  describe(`HostKv contract: ${name}`, { concurrency }, () => {
    test("capabilities: { atomic: boolean, maxValueBytes?: positive integer, minTtlMs?: number }", withKv(async (kv) => {
      const caps = kv.capabilities;
      assert.equal(typeof caps, "object");
      assert.notEqual(caps, null);
      assert.equal(typeof caps.atomic, "boolean");
      if (caps.maxValueBytes !== undefined) {
        assert.ok(Number.isInteger(caps.maxValueBytes) && caps.maxValueBytes > 0, `maxValueBytes ${caps.maxValueBytes}`);
      }
      if (caps.minTtlMs !== undefined) assert.ok(typeof caps.minTtlMs === "number" && caps.minTtlMs >= 0);
      for (const method of ["get", "put", "delete", "list"]) assert.equal(typeof kv[method], "function", method);
    }));

    test("get of an absent key is null", withKv(async (kv, ns) => {
      assert.equal(await kv.get(`${ns}h/absent~`), null);
    }));

    test("put then get returns the bytes and the version put returned", withKv(async (kv, ns) => {
      const key = `${ns}h/one~`;
      const version = await kv.put(key, new Uint8Array([1, 2, 3]));
      assert.equal(typeof version, "string");
      assert.ok(version.length > 0, "a version is a non-empty string");
      const entry = await kv.get(key);
      assert.deepEqual(bytesOf(entry.value), new Uint8Array([1, 2, 3]));
      assert.equal(entry.version, version);
    }));

    test("binary values round-trip exactly: zero bytes, 0xff, every byte value, empty", withKv(async (kv, ns) => {
      const every = new Uint8Array(512).map((_, i) => i % 256);
      const values = {
        zeros: new Uint8Array(1000),
        ff: new Uint8Array(100).fill(0xff),
        every,
        reversed: every.slice().reverse(),
        single0: new Uint8Array([0]),
        empty: new Uint8Array(0),
        // A view into a larger buffer: only the view's bytes are the value.
        view: new Uint8Array([9, 9, 0, 255, 0, 9, 9]).subarray(2, 5),
        notUtf8: new Uint8Array([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc, 0xed, 0xa0, 0x80]),
      };
      for (const [label, value] of Object.entries(values)) {
        const key = `${ns}e/bin~/${label}`;
        assert.equal(typeof (await kv.put(key, value)), "string", label);
        assert.deepEqual(bytesOf((await kv.get(key)).value), Uint8Array.from(value), label);
      }
    }));

    test("value rule: a base64 string is the bytes it encodes; get returns those bytes, never the text", withKv(async (kv, ns) => {
      const every = Uint8Array.from({ length: 256 }, (_, i) => i);
      const bytes = {
        empty: new Uint8Array(0),
        zero: new Uint8Array([0]),
        ff: new Uint8Array([0xff]),
        two: new Uint8Array([0xfb, 0xff]),
        text: new TextEncoder().encode("hello"),
        every,
        notUtf8: NOT_UTF8,
      };
      for (const [label, value] of Object.entries(bytes)) {
        const key = `${ns}e/b64~/${label}`;
        const version = await kv.put(key, base64(value));
        assert.equal(typeof version, "string", label);
        const entry = await kv.get(key);
        assert.deepEqual(bytesOf(entry.value), value, `${label}: get returns the bytes the string encodes`);
        assert.equal(entry.version, version, label);
      }
      // The two forms write the same thing: a compare-and-set chain may mix them.
      const key = `${ns}h/mixed~`;
      const v1 = await kv.put(key, every, { expectedVersion: null });
      const v2 = await kv.put(key, base64(NOT_UTF8), { expectedVersion: v1 });
      assert.equal(typeof v2, "string");
      assert.equal(await kv.put(key, base64(every), { expectedVersion: v1 }), null, "a string value does not bypass the compare");
      assert.deepEqual(bytesOf((await kv.get(key)).value), NOT_UTF8);
      const v3 = await kv.put(key, new Uint8Array([7]), { expectedVersion: v2 });
      assert.deepEqual(bytesOf((await kv.get(key)).value), new Uint8Array([7]));
      assert.equal((await kv.get(key)).version, v3);
    }));

    test("value rule: bytes that are not UTF-8 round-trip exactly, put as bytes or as base64", withKv(async (kv, ns) => {
      for (const [label, value] of [["bytes", NOT_UTF8], ["base64", base64(NOT_UTF8)]]) {
        for (let cut = 0; cut < 4; cut++) {
          // Cut at every offset of a 4-byte window, so each sequence also ends up at the value's end.
          const key = `${ns}e/utf8~/${label}/${cut}`;
          const expected = NOT_UTF8.subarray(0, NOT_UTF8.length - cut);
          const put = typeof value === "string" ? base64(expected) : expected;
          assert.equal(typeof (await kv.put(key, put)), "string", `${label} ${cut}`);
          const got = (await kv.get(key)).value;
          assert.deepEqual(bytesOf(got), Uint8Array.from(expected), `${label} ${cut}`);
        }
      }
    }));

    test("value rule: a put of a value that is not one rejects with TypeError and writes nothing, where its condition holds", withKv(async (kv, ns) => {
      const existing = `${ns}h/bad-existing~`;
      const absent = `${ns}h/bad-absent~`;
      const version = await kv.put(existing, new Uint8Array([1, 2, 3]));
      const unchanged = async (label) => {
        const entry = await kv.get(existing);
        assert.deepEqual(bytesOf(entry.value), new Uint8Array([1, 2, 3]), `${label}: the value is unchanged`);
        assert.equal(entry.version, version, `${label}: the version is unchanged`);
        assert.equal(await kv.get(absent), null, `${label}: nothing was created`);
      };
      for (const [label, value] of Object.entries(NOT_VALUES)) {
        for (const [how, key, options] of [
          ["unconditional, existing key", existing, undefined],
          ["unconditional, absent key", absent, undefined],
          ["expectedVersion matching", existing, { expectedVersion: version }],
          ["expectedVersion null, absent key", absent, { expectedVersion: null }],
          ["expectedVersion matching, with ttlMs", existing, { expectedVersion: version, ttlMs: 3_600_000 }],
        ]) {
          const error = await refusal(() => kv.put(key, value, options), `${label}, ${how}`);
          assert.ok(error instanceof TypeError, `${label}, ${how}: a TypeError, got ${error?.name}: ${error?.message}`);
          assert.equal(error.code, "INVALID_INPUT", `${label}, ${how}: the TypeError's code`);
          await unchanged(`${label}, ${how}`);
        }
      }
    }));

    test("value rule: a put of a value that is not one, whose condition does not hold, resolves to null (refused) without throwing", withKv(async (kv, ns) => {
      const existing = `${ns}h/refused-existing~`;
      const absent = `${ns}h/refused-absent~`;
      const stale = await kv.put(existing, new Uint8Array([0]));
      const version = await kv.put(existing, new Uint8Array([1, 2, 3]), { expectedVersion: stale });
      for (const [label, value] of Object.entries(NOT_VALUES)) {
        for (const [how, key, expectedVersion] of [
          ["a stale version", existing, stale],
          ["a version it never had", existing, "no-such-version"],
          ["null, the key exists", existing, null],
          ["a version, the key is absent", absent, version],
        ]) {
          let result;
          try {
            result = await kv.put(key, value, { expectedVersion });
          } catch (error) {
            assert.fail(`${label}, expectedVersion ${how}: threw ${error?.name}: ${error?.message} instead of resolving to null`);
          }
          assert.equal(result, null, `${label}, expectedVersion ${how}`);
        }
        const entry = await kv.get(existing);
        assert.deepEqual(bytesOf(entry.value), new Uint8Array([1, 2, 3]), label);
        assert.equal(entry.version, version, label);
        assert.equal(await kv.get(absent), null, label);
      }
    }));

    test("value rule: a value put as a string reads back as its bytes, from get and from a refused put's report", withKv(async (kv, ns) => {
      const key = `${ns}h/string-put~`;
      // Text that is also base64: the stored value is what it decodes to, not its characters.
      const version = await kv.put(key, "aGVsbG8=", { expectedVersion: null });
      const entry = await kv.get(key);
      assert.deepEqual(bytesOf(entry.value), new TextEncoder().encode("hello"));
      assert.equal(entry.version, version);
      // A refused put may report what is there ({ current }, when the adapter can); the same bytes.
      for (const value of [new Uint8Array([9]), "CQ==", "not base64!"]) {
        const refused = await kv.put(key, value, { expectedVersion: "stale", reportCurrent: true });
        if (refused === null) continue;
        assert.equal(refused.current.version, version);
        assert.deepEqual(bytesOf(refused.current.value), new TextEncoder().encode("hello"));
      }
      const absent = await kv.put(`${ns}h/string-absent~`, "CQ==", { expectedVersion: "stale", reportCurrent: true });
      assert.ok(absent === null || (typeof absent === "object" && absent.current === null), `refused on an absent key: ${JSON.stringify(absent)}`);
      assert.deepEqual(bytesOf((await kv.get(key)).value), new TextEncoder().encode("hello"), "nothing was written");
    }));

    test("value rule: a base64 string of maxValueBytes bytes is stored (the limit counts bytes, not characters)", withKv(async (kv, ns) => {
      const size = Math.min(kv.capabilities.maxValueBytes ?? 256 * 1024, 1024 * 1024);
      const value = new Uint8Array(size).map((_, i) => (i * 13 + 5) % 256);
      const key = `${ns}e/big64~/0000000000000001/0000000000000001#0`;
      assert.equal(typeof (await kv.put(key, base64(value))), "string");
      assert.deepEqual(bytesOf((await kv.get(key)).value), value);
    }));

    test("a value of exactly maxValueBytes is stored (the store chunks at that size)", withKv(async (kv, ns) => {
      const max = kv.capabilities.maxValueBytes;
      const size = max ?? 256 * 1024;
      const value = new Uint8Array(size).map((_, i) => (i * 7 + 3) % 256);
      const key = `${ns}e/big~/0000000000000001/0000000000000001#0`;
      assert.equal(typeof (await kv.put(key, value)), "string");
      assert.deepEqual(bytesOf((await kv.get(key)).value), value);
    }));

    test("every write gets a new version", withKv(async (kv, ns) => {
      const key = `${ns}h/versions~`;
      const seen = new Set();
      for (let i = 0; i < 10; i++) {
        const version = await kv.put(key, new Uint8Array([i]));
        assert.ok(!seen.has(version), `version ${version} repeated`);
        seen.add(version);
        assert.equal((await kv.get(key)).version, version);
      }
    }));

    test("compare-and-set: the current version wins, a stale one writes nothing", withKv(async (kv, ns) => {
      const key = `${ns}h/cas~`;
      const v1 = await kv.put(key, new Uint8Array([1]));
      const v2 = await kv.put(key, new Uint8Array([2]), { expectedVersion: v1 });
      assert.equal(typeof v2, "string");
      assert.notEqual(v2, v1);
      assert.equal(await kv.put(key, new Uint8Array([3]), { expectedVersion: v1 }), null, "stale version must fail");
      const entry = await kv.get(key);
      assert.deepEqual(bytesOf(entry.value), new Uint8Array([2]));
      assert.equal(entry.version, v2);
      const v3 = await kv.put(key, new Uint8Array([4]), { expectedVersion: v2 });
      assert.equal((await kv.get(key)).version, v3);
    }));

    test("expectedVersion null: creates an absent key, refuses an existing one", withKv(async (kv, ns) => {
      const key = `${ns}h/create~`;
      const v1 = await kv.put(key, new Uint8Array([1]), { expectedVersion: null });
      assert.equal(typeof v1, "string");
      assert.equal(await kv.put(key, new Uint8Array([2]), { expectedVersion: null }), null);
      const entry = await kv.get(key);
      assert.deepEqual(bytesOf(entry.value), new Uint8Array([1]));
      assert.equal(entry.version, v1);
    }));

    test("a version expected of an absent key fails and creates nothing", withKv(async (kv, ns) => {
      const other = `${ns}h/other~`;
      const version = await kv.put(other, new Uint8Array([1]));
      const key = `${ns}h/missing~`;
      assert.equal(await kv.put(key, new Uint8Array([1]), { expectedVersion: version }), null);
      assert.equal(await kv.get(key), null);
    }));

    test("delete: false when absent, true when present, then absent", withKv(async (kv, ns) => {
      const key = `${ns}h/del~`;
      assert.equal(await kv.delete(key), false);
      await kv.put(key, new Uint8Array([1]));
      assert.equal(await kv.delete(key), true);
      assert.equal(await kv.get(key), null);
      assert.equal(await kv.delete(key), false);
    }));

    test("delete with expectedVersion: only the current version deletes", withKv(async (kv, ns) => {
      const key = `${ns}h/delv~`;
      const v1 = await kv.put(key, new Uint8Array([1]));
      const v2 = await kv.put(key, new Uint8Array([2]), { expectedVersion: v1 });
      assert.equal(await kv.delete(key, { expectedVersion: v1 }), false, "stale version must not delete");
      assert.equal((await kv.get(key)).version, v2);
      assert.equal(await kv.delete(key, { expectedVersion: v2 }), true);
      assert.equal(await kv.get(key), null);
      assert.equal(await kv.delete(key, { expectedVersion: v2 }), false, "nothing left to delete");
    }));

    test("versions never repeat for a key, even after delete and recreate", withKv(async (kv, ns) => {
      const key = `${ns}h/recreate~`;
      const seen = [];
      for (let i = 0; i < 15; i++) {
        const version = await kv.put(key, new Uint8Array([i]), { expectedVersion: null });
        assert.equal(typeof version, "string", `recreate ${i}`);
        assert.ok(!seen.includes(version), `version ${version} came back after delete`);
        // No version the key had before matches the new incarnation.
        for (const old of seen) {
          assert.equal(await kv.delete(key, { expectedVersion: old }), false, "an old version deleted the new key");
        }
        if (seen.length > 0) {
          assert.equal(await kv.put(key, new Uint8Array([99]), { expectedVersion: seen[0] }), null);
        }
        seen.push(version);
        assert.equal(await kv.delete(key, { expectedVersion: version }), true);
      }
    }));

    test("list: ascending keys with the prefix, and only those (prefix boundaries)", withKv(async (kv, ns) => {
      const keys = [
        "h/a~", "h/ab~", "h/b~", "h/a%2F~", "h/A~",
        "e/a~/0000000000000001/0000000000000001", "e/a~/0000000000000002/0000000000000003",
        "e/a~/0000000000000002/0000000000000003#0", "e/ab~/0000000000000001/0000000000000001",
        "s/a~/0000000000000002/0000000000000003", "hx",
      ];
      for (const key of [...keys].reverse()) await kv.put(ns + key, new Uint8Array([1]));
      const strip = (list) => list.map((key) => key.slice(ns.length));
      // Byte order: "%" < "A" < "a" < "b" < "~", so h/ab~ comes before h/a~.
      assert.deepEqual(strip(await listAll(kv, `${ns}h/`)), ["h/A~", "h/a%2F~", "h/ab~", "h/a~", "h/b~"]);
      assert.deepEqual(strip(await listAll(kv, `${ns}h/a~`)), ["h/a~"]);
      assert.deepEqual(strip(await listAll(kv, `${ns}h/a`)), ["h/a%2F~", "h/ab~", "h/a~"]);
      assert.deepEqual(strip(await listAll(kv, `${ns}e/a~/`)), [
        "e/a~/0000000000000001/0000000000000001",
        "e/a~/0000000000000002/0000000000000003",
        "e/a~/0000000000000002/0000000000000003#0",
      ]);
      assert.deepEqual(strip(await listAll(kv, `${ns}e/ab~/`)), ["e/ab~/0000000000000001/0000000000000001"]);
      assert.deepEqual(strip(await listAll(kv, `${ns}h`)), ["h/A~", "h/a%2F~", "h/ab~", "h/a~", "h/b~", "hx"]);
      assert.deepEqual(strip(await listAll(kv, ns)), ascending(keys));
      assert.deepEqual(await listAll(kv, `${ns}nothing/`), []);
      assert.deepEqual(await kv.list(`${ns}nothing/`, { limit: 5 }), { keys: [] });
    }));

    test("list pages: every key once, in order, pages within the limit", withKv(async (kv, ns) => {
      const keys = [];
      for (let i = 0; i < 23; i++) keys.push(`${ns}e/p~/${i.toString(16).padStart(16, "0")}/0000000000000001`);
      await Promise.all(keys.map((key) => kv.put(key, new Uint8Array([1]))));
      await kv.put(`${ns}e/p0~/0000000000000001/0000000000000001`, new Uint8Array([1]));
      for (const limit of [1, 5, 7, 23, 24, 100]) {
        const listed = await listAll(kv, `${ns}e/p~/`, limit);
        assert.deepEqual(listed, keys, `limit ${limit}`);
      }
      // A deleted key is not listed; the pages still cover the rest.
      await kv.delete(keys[10]);
      assert.deepEqual(await listAll(kv, `${ns}e/p~/`, 4), keys.filter((_, i) => i !== 10));
    }));

    test("keys with glob, brace and escape characters are stored and listed literally", withKv(async (kv, ns) => {
      const keys = ["p[1]*?\\/h/a~", "p[1]*?\\/h/b~", "p[2]/h/a~", "p{x}/h/a~", "p{x}/e/a~/01/02", "p%2A/h/a~", "p.x/h/a~"];
      for (const key of keys) {
        await kv.put(ns + key, new Uint8Array([key.length]));
        assert.deepEqual(bytesOf((await kv.get(ns + key)).value), new Uint8Array([key.length]), key);
      }
      const strip = (list) => list.map((key) => key.slice(ns.length));
      assert.deepEqual(strip(await listAll(kv, `${ns}p[1]*?\\/`)), ["p[1]*?\\/h/a~", "p[1]*?\\/h/b~"]);
      assert.deepEqual(strip(await listAll(kv, `${ns}p[`)), ["p[1]*?\\/h/a~", "p[1]*?\\/h/b~", "p[2]/h/a~"]);
      assert.deepEqual(strip(await listAll(kv, `${ns}p{x}/`)), ["p{x}/e/a~/01/02", "p{x}/h/a~"]);
      assert.deepEqual(strip(await listAll(kv, `${ns}p*`)), []);
      assert.deepEqual(strip(await listAll(kv, `${ns}p?`)), []);
      assert.deepEqual(strip(await listAll(kv, ns)), ascending(keys));
    }));

    test("concurrent compare-and-sets on one version: exactly one wins", withKv(async (kv, ns) => {
      if (!kv.capabilities.atomic) return;
      const key = `${ns}h/race~`;
      for (let round = 0; round < 5; round++) {
        const before = round === 0 ? null : (await kv.get(key)).version;
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => kv.put(key, new Uint8Array([round, i]), { expectedVersion: before })),
        );
        const winners = results.map((version, i) => ({ version, i })).filter(({ version }) => version !== null);
        assert.equal(winners.length, 1, `round ${round}: ${winners.length} writers won`);
        const entry = await kv.get(key);
        assert.equal(entry.version, winners[0].version);
        assert.deepEqual(bytesOf(entry.value), new Uint8Array([round, winners[0].i]));
      }
    }));

    test("concurrent deletes of one version: exactly one deletes", withKv(async (kv, ns) => {
      if (!kv.capabilities.atomic) return;
      const key = `${ns}h/delrace~`;
      const version = await kv.put(key, new Uint8Array([1]));
      const results = await Promise.all(Array.from({ length: 8 }, () => kv.delete(key, { expectedVersion: version })));
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal(await kv.get(key), null);
    }));

    test("ttlMs: a key written with a TTL is there at once and gone eventually", { timeout: ttlGoneWithinMs + 30_000 }, withKv(async (kv, ns) => {
      if (!ttl) return;
      const ttlMs = Math.max(300, kv.capabilities.minTtlMs ?? 0);
      const short = `${ns}h/short~`;
      const long = `${ns}h/long~`;
      const plain = `${ns}h/plain~`;
      const start = Date.now();
      await kv.put(short, new Uint8Array([1]), { ttlMs, expectedVersion: null });
      await kv.put(long, new Uint8Array([2]), { ttlMs: 3_600_000 });
      await kv.put(plain, new Uint8Array([3]));
      assert.deepEqual(bytesOf((await kv.get(short)).value), new Uint8Array([1]), "not expired before its time");
      while ((await kv.get(short)) !== null) {
        assert.ok(Date.now() - start < ttlMs + ttlGoneWithinMs, `still there ${Date.now() - start} ms after a ${ttlMs} ms TTL`);
        await sleep(100);
      }
      assert.ok(Date.now() - start >= ttlMs - 20, `gone ${Date.now() - start} ms after a ${ttlMs} ms TTL: too early`);
      assert.deepEqual(bytesOf((await kv.get(long)).value), new Uint8Array([2]), "a long TTL keeps the key");
      assert.deepEqual(bytesOf((await kv.get(plain)).value), new Uint8Array([3]), "no TTL keeps the key");
      // The expired key is absent for compare-and-set too.
      assert.equal(typeof (await kv.put(short, new Uint8Array([4]), { expectedVersion: null })), "string");
    }));
  });

  if (commit) commitContract(name, withKv, concurrency);
}

/** The contract of `commit(records, head, deletes)`: a session commit in one call. */
function commitContract(name, withKv, concurrency) {
  // The keys of one session (a store's layout: one hash tag on Redis, so that one script takes them).
  const keysOf = (ns, session) => ({
    head: `${ns}h/${session}~`,
    record: (i) => `${ns}e/${session}~/${String(i).padStart(4, "0")}`,
    live: (i) => `${ns}t/${session}~/7/${i}`,
  });
  const recordsOf = (keys, count, fill) =>
    Array.from({ length: count }, (_, i) => ({ key: keys.record(i), value: new Uint8Array([fill, i & 0xff, i >> 8]) }));

  describe(`HostKv contract: commit(records, head, deletes): ${name}`, { concurrency }, () => {
    test("writes every record and the head; the head's version is what it returns", withKv(async (kv, ns) => {
      assert.equal(typeof kv.commit, "function");
      const keys = keysOf(ns, "one");
      const version = await kv.commit(recordsOf(keys, 3, 7), { key: keys.head, value: new Uint8Array([1]), expectedVersion: null });
      assert.equal(typeof version, "string");
      const head = await kv.get(keys.head);
      assert.equal(head.version, version);
      assert.deepEqual(bytesOf(head.value), new Uint8Array([1]));
      for (let i = 0; i < 3; i++) {
        const record = await kv.get(keys.record(i));
        assert.deepEqual(bytesOf(record.value), new Uint8Array([7, i, 0]), `record ${i}`);
        // (Keys written together may share a version, as Deno KV's versionstamps of one operation do.)
        assert.equal(typeof record.version, "string");
      }
      // The next commit from that version; no records is a head write alone.
      const next = await kv.commit([], { key: keys.head, value: new Uint8Array([2]), expectedVersion: version });
      assert.equal(typeof next, "string");
      assert.notEqual(next, version);
      assert.deepEqual(bytesOf((await kv.get(keys.head)).value), new Uint8Array([2]));
    }));

    test("a head condition that does not hold: null, and nothing is written", withKv(async (kv, ns) => {
      const keys = keysOf(ns, "refused");
      const version = await kv.put(keys.head, new Uint8Array([1]));
      const stale = await kv.put(keys.head, new Uint8Array([2]));
      assert.notEqual(stale, version);
      assert.equal(await kv.commit(recordsOf(keys, 2, 9), { key: keys.head, value: new Uint8Array([3]), expectedVersion: version }), null);
      assert.equal(await kv.commit(recordsOf(keys, 2, 9), { key: keys.head, value: new Uint8Array([3]), expectedVersion: null }), null);
      const other = keysOf(ns, "absent");
      assert.equal(await kv.commit(recordsOf(other, 2, 9), { key: other.head, value: new Uint8Array([3]), expectedVersion: stale }), null);
      assert.deepEqual(bytesOf((await kv.get(keys.head)).value), new Uint8Array([2]), "the head is unchanged");
      assert.equal((await kv.get(keys.head)).version, stale);
      for (const key of [keys.record(0), keys.record(1), other.record(0), other.head]) assert.equal(await kv.get(key), null, key);
    }));

    test("deletes: gone once the head is written; a refused head deletes nothing", withKv(async (kv, ns) => {
      const keys = keysOf(ns, "deletes");
      for (const i of [0, 1, 2]) await kv.put(keys.live(i), new Uint8Array([i]));
      const version = await kv.put(keys.head, new Uint8Array([1]));
      const stale = await kv.put(keys.head, new Uint8Array([2]));
      const refused = await kv.commit(recordsOf(keys, 1, 9), { key: keys.head, value: new Uint8Array([3]), expectedVersion: version }, [keys.live(0)]);
      assert.equal(refused, null);
      assert.deepEqual(bytesOf((await kv.get(keys.live(0))).value), new Uint8Array([0]), "a refused head deletes nothing");
      const written = await kv.commit(recordsOf(keys, 1, 9), { key: keys.head, value: new Uint8Array([3]), expectedVersion: stale }, [keys.live(0), keys.live(1)]);
      assert.equal(typeof written, "string");
      assert.equal(await kv.get(keys.live(0)), null);
      assert.equal(await kv.get(keys.live(1)), null);
      assert.deepEqual(bytesOf((await kv.get(keys.live(2))).value), new Uint8Array([2]), "a key not given stays");
      assert.deepEqual(bytesOf((await kv.get(keys.record(0))).value), new Uint8Array([9, 0, 0]));
      assert.equal((await kv.get(keys.head)).version, written);
    }));

    test("concurrent commits from one head version: exactly one wins, and only its records are written", withKv(async (kv, ns) => {
      const keys = keysOf(ns, "race");
      const base = await kv.put(keys.head, new Uint8Array([0]));
      const contenders = [1, 2, 3, 4].map((n) => ({
        n,
        records: [{ key: keys.record(n), value: new Uint8Array([n]) }],
      }));
      const results = await Promise.all(
        contenders.map(({ n, records }) => kv.commit(records, { key: keys.head, value: new Uint8Array([n]), expectedVersion: base })),
      );
      const winners = contenders.filter((_, i) => typeof results[i] === "string");
      assert.equal(winners.length, 1, `results: ${JSON.stringify(results)}`);
      assert.ok(results.every((r) => r === null || typeof r === "string"));
      const [winner] = winners;
      assert.deepEqual(bytesOf((await kv.get(keys.head)).value), new Uint8Array([winner.n]));
      for (const { n } of contenders) {
        const record = await kv.get(keys.record(n));
        if (n === winner.n) assert.deepEqual(bytesOf(record.value), new Uint8Array([n]));
        else assert.equal(record, null, `the records of a refused commit (${n}) are not written`);
      }
    }));

    test("many records (more than a backend takes in one call) are all written", withKv(async (kv, ns) => {
      const keys = keysOf(ns, "many");
      const records = recordsOf(keys, 150, 5);
      const version = await kv.commit(records, { key: keys.head, value: new Uint8Array([1]), expectedVersion: null });
      assert.equal(typeof version, "string");
      assert.deepEqual(await listAll(kv, `${ns}e/many~/`), records.map((record) => record.key));
      for (const i of [0, 63, 64, 127, 128, 149]) {
        assert.deepEqual(bytesOf((await kv.get(keys.record(i))).value), new Uint8Array([5, i & 0xff, i >> 8]), `record ${i}`);
      }
      assert.equal((await kv.get(keys.head)).version, version);
    }));

    test("base64 values are the bytes; a value that is not bytes is a TypeError and writes nothing", withKv(async (kv, ns) => {
      const keys = keysOf(ns, "values");
      const version = await kv.commit([{ key: keys.record(0), value: base64(new Uint8Array([0xff, 0])) }], {
        key: keys.head,
        value: base64(new Uint8Array([1, 2])),
        expectedVersion: null,
      });
      assert.equal(typeof version, "string");
      assert.deepEqual(bytesOf((await kv.get(keys.record(0))).value), new Uint8Array([0xff, 0]));
      assert.deepEqual(bytesOf((await kv.get(keys.head)).value), new Uint8Array([1, 2]));
      const bad = [{ key: keys.record(1), value: new Uint8Array([1]) }, { key: keys.record(2), value: "not base64!" }];
      const error = await refusal(() => kv.commit(bad, { key: keys.head, value: new Uint8Array([3]), expectedVersion: version }), "a record that is not bytes");
      assert.ok(error instanceof TypeError, `a TypeError, got ${error}`);
      assert.equal(await kv.get(keys.record(1)), null, "nothing of it is written");
      assert.equal((await kv.get(keys.head)).version, version);
    }));
  });
}
