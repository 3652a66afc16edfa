// redisKv with an Upstash REST client (@upstash/redis, unchanged) on a real redis-server (127.0.0.1,
// started here, stopped by its pid), through _upstash-rest.mjs, a REST server written for these tests
// (the real Upstash service is not reached). The same database is read and written through node-redis
// as well: the two drivers keep one data layout.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
import { Redis as Upstash } from "@upstash/redis";
import { SessionStore, ConcurrencyError } from "agent-session";
import { redisKv } from "agent-session/adapters";
import { redisKeyOf, UPSTASH_MAX_VALUE_BYTES } from "../../../js/adapters/redis.js";
import { adapterContract, bytesOf } from "./contract.mjs";
import { checkHistory, commitTimes } from "./_history.mjs";
import { startRedis } from "./_redis-server.mjs";
import { startUpstashRest } from "./_upstash-rest.mjs";

/** The smallest request size limit Upstash has had (10 MB is documented today for Free and Pay as you
 * go): the default maxValueBytes must keep every request under it. */
const MAX_REQUEST_BYTES = 1_000_000;

let server;
let rest;
let nodeRedis;
/** Upstash clients: at default settings, and with each of the settings that change its replies. */
const upstash = {};

before(async () => {
  server = await startRedis();
  rest = await startUpstashRest({ redisUrl: server.url, maxRequestBytes: MAX_REQUEST_BYTES });
  nodeRedis = await createClient({ url: server.url }).connect();
  const connection = { url: rest.url, token: rest.token };
  upstash.defaults = new Upstash(connection);
  upstash.raw = new Upstash({ ...connection, automaticDeserialization: false });
  upstash.utf8 = new Upstash({ ...connection, responseEncoding: false });
});

after(async () => {
  await nodeRedis?.quit();
  await rest?.stop();
  await server?.stop();
});

// One test at a time (concurrency: false): run at once, the tests that put and get 512 KiB values keep
// Redis busy in Lua (base64) and this process busy with JSON long enough to expire the TTL test's
// 300 ms key before its first get.
for (const [label, client] of [["", "defaults"], [", automaticDeserialization: false", "raw"], [", responseEncoding: false", "utf8"]]) {
  adapterContract({ name: `redisKv with an Upstash REST client${label}`, concurrency: false, make: async () => ({ kv: redisKv(upstash[client]) }) });
}

const EVERY_BYTE = Uint8Array.from({ length: 256 }, (_, i) => i);

describe("redisKv with an Upstash REST client: specifics", () => {
  test("an unknown client is a TypeError naming the three clients", () => {
    for (const client of [{}, null, { exec() {} }, { evalsha() {} }]) {
      assert.throws(() => redisKv(client), (error) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, /node-redis/);
        assert.match(error.message, /ioredis/);
        assert.match(error.message, /Upstash/);
        return true;
      });
    }
  });

  test("capabilities: atomic; maxValueBytes defaults to UPSTASH_MAX_VALUE_BYTES, and the option overrides it", () => {
    assert.equal(UPSTASH_MAX_VALUE_BYTES, 512 * 1024);
    assert.deepEqual({ ...redisKv(upstash.defaults).capabilities }, { atomic: true, maxValueBytes: UPSTASH_MAX_VALUE_BYTES });
    assert.deepEqual({ ...redisKv(upstash.defaults, { maxValueBytes: 4096 }).capabilities }, { atomic: true, maxValueBytes: 4096 });
    assert.throws(() => redisKv(upstash.defaults, { maxValueBytes: 10 }), TypeError);
    // node-redis and ioredis keep no limit unless told.
    assert.deepEqual({ ...redisKv(nodeRedis).capabilities }, { atomic: true });
  });

  test("every byte value written through Upstash is in Redis as those bytes, and reads back through Upstash and node-redis", async () => {
    for (const [name, client] of Object.entries(upstash)) {
      const key = `bytes/h/up-${name}~`;
      for (const value of [EVERY_BYTE, Buffer.from(EVERY_BYTE).toString("base64")]) {
        const version = await redisKv(client).put(key, value);
        const raw = await nodeRedis.sendCommand(["HGET", redisKeyOf(key), "value"], { typeMapping: { 36: Buffer } });
        assert.deepEqual(Uint8Array.from(raw), EVERY_BYTE, `${name}: Redis holds the bytes`);
        for (const [reader, kv] of [["Upstash", redisKv(client)], ["node-redis", redisKv(nodeRedis)]]) {
          const entry = await kv.get(key);
          assert.deepEqual(bytesOf(entry.value), EVERY_BYTE, `${name}, read through ${reader}`);
          assert.equal(entry.version, version, `${name}, read through ${reader}`);
        }
      }
    }
  });

  test("every byte value written through node-redis reads back through Upstash, from get and from a refused put's report", async () => {
    const reversed = EVERY_BYTE.slice().reverse();
    for (const [name, client] of Object.entries(upstash)) {
      const key = `bytes/h/node-redis-${name}~`;
      const kv = redisKv(client);
      const version = await redisKv(nodeRedis).put(key, EVERY_BYTE);
      assert.deepEqual(await kv.get(key), { value: EVERY_BYTE, version }, name);
      assert.deepEqual(
        await kv.put(key, new Uint8Array([1]), { expectedVersion: "stale", reportCurrent: true }),
        { current: { value: EVERY_BYTE, version } },
        name,
      );
      // A compare-and-set chain may cross clients: each one's version is the other's expectedVersion.
      const next = await kv.put(key, reversed, { expectedVersion: version });
      assert.deepEqual(await redisKv(nodeRedis).get(key), { value: reversed, version: next }, name);
      assert.equal(await redisKv(nodeRedis).put(key, EVERY_BYTE, { expectedVersion: version }), null, name);
      const last = await redisKv(nodeRedis).put(key, EVERY_BYTE, { expectedVersion: next });
      assert.equal(await kv.delete(key, { expectedVersion: next }), false, name);
      assert.deepEqual(await kv.get(key), { value: EVERY_BYTE, version: last }, name);
      assert.equal(await kv.delete(key, { expectedVersion: last }), true, name);
      assert.equal(await redisKv(nodeRedis).get(key), null, name);
    }
  });

  test("why reads are scripts: a plain HMGET through the Upstash client does not give the bytes back", async () => {
    const key = "naive/h/a~";
    await redisKv(nodeRedis).put(key, EVERY_BYTE);
    const [value] = await upstash.defaults.hmget(redisKeyOf(key), "value").then((reply) => Object.values(reply ?? {}));
    const text = typeof value === "string" ? value : JSON.stringify(value);
    assert.notDeepEqual(Uint8Array.from(Buffer.from(text, "latin1")), EVERY_BYTE);
    assert.notDeepEqual(new Uint8Array(Buffer.from(text, "utf8")), EVERY_BYTE, "UTF-8 decoding replaced the bytes that are not UTF-8");
  });

  test("a key written through Upstash has the layout of the other drivers: one hash {value, version} behind its session's tag, ttlMs a PEXPIRE", async () => {
    const key = "layout/e/s1~/0000000000000001/0000000000000002#1";
    const version = await redisKv(upstash.defaults).put(key, new Uint8Array([0, 255]), { ttlMs: 50_000 });
    const redisKey = "{s1~}layout/e/s1~/0000000000000001/0000000000000002#1";
    const fields = await nodeRedis.sendCommand(["HGETALL", redisKey], { typeMapping: { 36: Buffer } });
    const hash = Object.fromEntries(
      Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i].toString(), fields[2 * i + 1]]),
    );
    assert.deepEqual(Object.keys(hash).sort(), ["value", "version"]);
    assert.deepEqual(Uint8Array.from(hash.value), new Uint8Array([0, 255]));
    assert.equal(hash.version.toString(), version);
    const pttl = await nodeRedis.pTTL(redisKey);
    assert.ok(pttl > 40_000 && pttl <= 50_000, `pttl ${pttl}`);
  });

  test("a commit larger than maxValueBytes goes as one put per request, each within the request size limit", async () => {
    const kv = redisKv(upstash.defaults);
    const chunk = (fill) => new Uint8Array(UPSTASH_MAX_VALUE_BYTES).fill(fill);
    const records = [0, 1, 2].map((i) => ({ key: `big/e/s~/000${i}`, value: chunk(i) }));
    const version = await kv.commit(records, { key: "big/h/s~", value: new Uint8Array([9]), expectedVersion: null });
    assert.equal(typeof version, "string");
    for (const [i, record] of records.entries()) assert.deepEqual((await redisKv(nodeRedis).get(record.key)).value, chunk(i));
    assert.equal(await kv.commit(records, { key: "big/h/s~", value: new Uint8Array([8]), expectedVersion: null }), null);
    assert.equal((await kv.get("big/h/s~")).version, version);
  });
});

describe("SessionStore.kv over Upstash, shared with node-redis", () => {
  test("a message committed through Upstash is seen through node-redis, and the reverse", async () => {
    const viaUpstash = await SessionStore.kv(redisKv(upstash.defaults), { owner: "upstash" });
    const viaNodeRedis = await SessionStore.kv(redisKv(nodeRedis), { owner: "node-redis" });
    const session = await viaUpstash.open("shared");
    const inv = await session.begin();
    inv.appendMessage({ from: "upstash", bytes: "\u0000\u00ff" });
    assert.equal(await inv.commit(), 1);
    const other = await viaNodeRedis.open("shared");
    assert.deepEqual(other.messages(), [{ from: "upstash", bytes: "\u0000\u00ff" }]);
    const second = await other.begin();
    second.appendMessage({ from: "node-redis" });
    assert.equal(await second.commit(), 2);
    const view = await (await SessionStore.kv(redisKv(upstash.raw), { owner: "reader" })).open("shared");
    assert.deepEqual(view.messages(), [{ from: "upstash", bytes: "\u0000\u00ff" }, { from: "node-redis" }]);
    assert.deepEqual((await viaUpstash.list()).sessions.map((s) => s.id), ["shared"]);
    await viaUpstash.close();
    await viaNodeRedis.close();
  });

  test("a message larger than maxValueBytes is chunked, and every request stays within the size limit", async () => {
    const store = await SessionStore.kv(redisKv(upstash.defaults), { owner: "big" });
    const inv = await (await store.open("big-message")).begin();
    const text = "x".repeat(1_000_000); // two chunks of at most UPSTASH_MAX_VALUE_BYTES
    inv.appendMessage({ text });
    assert.equal(await inv.commit(), 1);
    const view = await (await SessionStore.kv(redisKv(nodeRedis), { owner: "r" })).open("big-message");
    assert.equal(view.messages()[0].text, text);
    const back = await (await SessionStore.kv(redisKv(upstash.utf8), { owner: "r2" })).open("big-message");
    assert.equal(back.messages()[0].text, text);
    await store.close();
    // The control: with a maxValueBytes past what a request takes, the same commit is refused.
    const over = await SessionStore.kv(redisKv(upstash.defaults, { maxValueBytes: 2 * 1024 * 1024 }), { owner: "over" });
    const refused = await (await over.open("big-over")).begin();
    refused.appendMessage({ text });
    await assert.rejects(refused.commit(), /max request size exceeded/);
    await over.close();
  });

  test("a begin while the other client's invocation holds the session is ConcurrencyError naming it", async () => {
    const viaUpstash = await SessionStore.kv(redisKv(upstash.defaults), { owner: "up-holder" });
    const viaNodeRedis = await SessionStore.kv(redisKv(nodeRedis), { owner: "nr-holder" });
    for (const [holder, holderName, other] of [[viaUpstash, "up-holder", viaNodeRedis], [viaNodeRedis, "nr-holder", viaUpstash]]) {
      const id = `held-by-${holderName}`;
      const inv = await (await holder.open(id)).begin();
      const denied = await (await other.open(id)).begin().then(
        () => assert.fail("a second begin succeeded while the first held the session"),
        (error) => error,
      );
      assert.ok(denied instanceof ConcurrencyError, `got ${denied}`);
      assert.equal(denied.holder, holderName);
      assert.ok(denied.retryAfterMs > 0, `retryAfterMs ${denied.retryAfterMs}`);
      inv.appendMessage({ by: holderName });
      assert.equal(await inv.commit(), 1);
      const next = await (await other.open(id)).begin();
      assert.deepEqual(next.messages(), [{ by: holderName }]);
      next.appendMessage({ by: "other" });
      assert.equal(await next.commit(), 2);
    }
    await viaUpstash.close();
    await viaNodeRedis.close();
  });

  // The client retries a request whose fetch failed (its `retry` option, 5 times by default): a script
  // that ran, its answer lost, runs again and is refused by the head it wrote itself.
  for (const step of ["begin", "commit"]) {
    test(`a ${step} whose answer is lost after Redis ran it, and that the client sends again: it resolves, and the turn is there once`, async () => {
      const client = new Upstash({ url: rest.url, token: rest.token, retry: { retries: 3, backoff: () => 10 } });
      const store = await SessionStore.kv(redisKv(client), { owner: "retried" });
      const id = `retried-${step}`;
      const session = await store.open(id);
      await session.invoke((inv) => inv.appendMessage("first"));
      const dropped = [];
      const dropNextScript = () => {
        rest.faults.next = (path, commands) => {
          if (!commands.some((args) => /^eval(sha)?$/i.test(args[0]))) return undefined;
          rest.faults.next = null;
          dropped.push(path);
          return { drop: true };
        };
      };
      if (step === "begin") dropNextScript();
      const inv = await session.begin();
      inv.appendMessage("second");
      if (step === "commit") dropNextScript();
      try {
        assert.equal(await inv.commit(), 2);
      } finally {
        rest.faults.next = null;
      }
      assert.equal(dropped.length, 1, "one answer was lost");
      const reader = await SessionStore.kv(redisKv(nodeRedis));
      assert.deepEqual((await reader.open(id, { create: false })).messages(), ["first", "second"]);
      await store.close();
      await reader.close();
    });
  }

  test("an error Upstash answers to a commit is a StorageError whose message does not quote the request (the session's data)", async () => {
    const store = await SessionStore.kv(redisKv(upstash.defaults));
    const session = await store.open("refused-commit");
    const secret = `the user's secret ${"x".repeat(300_000)}`;
    const inv = await session.begin();
    inv.appendMessage(secret);
    rest.faults.next = (path, commands) => {
      if (!commands.some((args) => /^eval(sha)?$/i.test(args[0]))) return undefined;
      rest.faults.next = null;
      return { refuse: "ERR quota exceeded" };
    };
    const error = await inv.commit().then(() => assert.fail("the commit resolved"), (e) => e);
    rest.faults.next = null;
    assert.equal(error.code, "STORAGE");
    assert.match(error.message, /ERR quota exceeded/);
    assert.ok(error.message.length < 1000, `a message of ${error.message.length} characters`);
    assert.ok(!error.message.includes("command was"), error.message.slice(0, 300));
    assert.ok(!error.message.includes(Buffer.from("the user's secret").toString("base64").slice(0, 16)));
    assert.equal(await inv.commit(), 1, "a retry commits");
    await store.close();
  });

  test("contenders over Upstash and node-redis on one session: the merged history keeps the invariants", { timeout: 120_000 }, async () => {
    const id = "contended";
    const clients = [["up-0", upstash.defaults], ["nr-1", nodeRedis], ["up-2", upstash.raw], ["nr-3", nodeRedis]];
    const events = [];
    const contend = async ([worker, client], commits) => {
      const log = (event) => events.push({ worker, t: Date.now(), ...event });
      const store = await SessionStore.kv(redisKv(client), { owner: worker });
      const session = await store.open(id);
      await commitTimes(session, worker, commits, log, 5000);
      await store.close();
    };
    await Promise.all(clients.map((client) => contend(client, 5)));
    const reader = await (await SessionStore.kv(redisKv(upstash.defaults), { owner: "reader" })).open(id);
    const { commits, denials } = checkHistory(events, { version: reader.version, messages: reader.messages() }, { owners: clients.map(([worker]) => worker) });
    assert.equal(commits, 20);
    assert.ok(denials > 0, "the contenders really contended");
  });
});
