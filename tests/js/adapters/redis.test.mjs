// redisKv on a real redis-server (127.0.0.1, started here, stopped by its pid), through node-redis
// and ioredis, on a single node and on a three-master Redis Cluster.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { runInNewContext } from "node:vm";
import { createClient, createCluster } from "redis";
import Redis from "ioredis";
import { SessionStore } from "agent-session";
import { redisKv } from "agent-session/adapters";
import { redisKeyOf } from "../../../js/adapters/redis.js";
import { adapterContract, bytesOf, listAll } from "./contract.mjs";
import { REDIS_CLI, startRedis, startRedisCluster } from "./_redis-server.mjs";

let server;
let nodeRedis;
let ioredis;
let cluster;
let nodeRedisCluster;
let ioredisCluster;

before(async () => {
  server = await startRedis();
  nodeRedis = await createClient({ url: server.url }).connect();
  ioredis = new Redis(server.port, "127.0.0.1", { lazyConnect: true });
  await ioredis.connect();
  cluster = await startRedisCluster(3);
  const rootNodes = cluster.nodes.map((node) => ({ url: node.url }));
  nodeRedisCluster = await createCluster({ rootNodes }).connect();
  ioredisCluster = new Redis.Cluster(cluster.nodes.map((node) => ({ host: "127.0.0.1", port: node.port })), { lazyConnect: true });
  await ioredisCluster.connect();
});

after(async () => {
  await nodeRedis?.quit();
  ioredis?.disconnect();
  await nodeRedisCluster?.quit();
  ioredisCluster?.disconnect();
  await server?.stop();
  await cluster?.stop();
});

adapterContract({ name: "redisKv with node-redis", make: async () => ({ kv: redisKv(nodeRedis) }) });
adapterContract({ name: "redisKv with ioredis", make: async () => ({ kv: redisKv(ioredis) }) });
adapterContract({ name: "redisKv with node-redis on a Redis Cluster", make: async () => ({ kv: redisKv(nodeRedisCluster) }) });
adapterContract({ name: "redisKv with ioredis on a Redis Cluster", make: async () => ({ kv: redisKv(ioredisCluster) }) });

/** A node-redis client that counts the commands sent through it. */
function counting(client) {
  const commands = [];
  return {
    commands,
    client: {
      sendCommand(args, options) {
        commands.push(String(args[0]));
        return client.sendCommand(args, options);
      },
    },
  };
}

describe("redisKv specifics", () => {
  test("capabilities: atomic, no size limit unless told, and the option is checked", () => {
    assert.deepEqual({ ...redisKv(nodeRedis).capabilities }, { atomic: true });
    assert.deepEqual({ ...redisKv(ioredis, { maxValueBytes: 4096 }).capabilities }, { atomic: true, maxValueBytes: 4096 });
    assert.throws(() => redisKv(nodeRedis, { maxValueBytes: 1.5 }), (error) => error instanceof TypeError && error.code === "INVALID_INPUT");
    assert.throws(() => redisKv({}), (error) => error instanceof TypeError && error.code === "INVALID_INPUT");
    assert.throws(() => redisKv({}), TypeError);
    assert.throws(() => redisKv(null), TypeError);
  });

  test("a reply that is not what HMGET, SCAN or the put script gives is an error saying so (not an absent key, not an internal TypeError)", async () => {
    const bytes = Buffer.from("v");
    for (const [reply, message] of [
      [[bytes], /HMGET replied an array of 1/],
      [[], /HMGET replied an array of 0/],
      [undefined, /HMGET replied undefined/],
      [[bytes, null], /a value but no version/],
      [[null, bytes], /a version but no value/],
      [[bytes, 42], /a reply of number where its command gives text/],
      [42, /HMGET replied number/],
    ]) {
      await assert.rejects(redisKv({ sendCommand: async () => reply }).get("k"), message);
    }
    assert.equal(await redisKv({ sendCommand: async () => [null, null] }).get("k"), null, "both missing: absent");
    const refused = redisKv({ sendCommand: async (args) => (args[0] === "EVALSHA" ? [] : null) });
    await assert.rejects(refused.put("k", new Uint8Array([1]), { expectedVersion: "1", reportCurrent: true }), /a refused put replied an array of 0/);
    await assert.rejects(redisKv({ sendCommand: async () => "OK" }).list(""), /SCAN replied string/);
    await assert.rejects(redisKv({ sendCommand: async () => ["0", 7] }).list(""), /SCAN's keys replied number/);
  });

  test("one command per call: get is HMGET, put and delete one EVALSHA (EVAL only the first time)", async () => {
    await nodeRedis.sendCommand(["SCRIPT", "FLUSH"]);
    const { client, commands } = counting(nodeRedis);
    const kv = redisKv(client);
    await kv.put("one/h/a~", new Uint8Array([1]));
    assert.deepEqual(commands.splice(0), ["EVALSHA", "EVAL"], "first put: EVALSHA answered NOSCRIPT, then EVAL");
    assert.equal(await kv.put("one/h/a~", new Uint8Array([2]), { expectedVersion: null }), null);
    const v2 = await kv.put("one/h/a~", new Uint8Array([2]), { ttlMs: 60_000 });
    await kv.get("one/h/a~");
    assert.deepEqual(commands.splice(0), ["EVALSHA", "EVALSHA", "HMGET"]);
    assert.equal(await kv.delete("one/h/a~", { expectedVersion: "stale" }), false);
    assert.equal(await kv.delete("one/h/a~", { expectedVersion: v2 }), true);
    assert.deepEqual(commands.splice(0), ["EVALSHA", "EVAL", "EVALSHA"]);
  });

  test("commit is one EVALSHA over the session's keys; the head's ttlMs is a PEXPIRE, the records have none", async () => {
    await nodeRedis.sendCommand(["SCRIPT", "FLUSH"]);
    const { client, commands } = counting(nodeRedis);
    const kv = redisKv(client);
    const records = [0, 1].map((i) => ({ key: `cm/e/s2~/000${i}`, value: new Uint8Array([i]) }));
    const version = await kv.commit(records, { key: "cm/h/s2~", value: new Uint8Array([9]), expectedVersion: null, ttlMs: 50_000 });
    assert.deepEqual(commands.splice(0), ["EVALSHA", "EVAL"], "first commit: EVALSHA answered NOSCRIPT, then EVAL");
    assert.equal(typeof version, "string");
    assert.equal(await kv.commit([], { key: "cm/h/s2~", value: new Uint8Array([8]), expectedVersion: null }), null);
    assert.deepEqual(commands.splice(0), ["EVALSHA"]);
    const pttl = await ioredis.pttl("{s2~}cm/h/s2~");
    assert.ok(pttl > 40_000 && pttl <= 50_000, `pttl ${pttl}`);
    assert.equal(await ioredis.pttl("{s2~}cm/e/s2~/0001"), -1);
  });

  test("a commit with keys outside the head's hash slot: the records' puts at once, then the head's", async () => {
    for (const [name, client] of [["node-redis cluster", nodeRedisCluster], ["ioredis cluster", ioredisCluster]]) {
      const kv = redisKv(client);
      const records = [
        { key: `x-${name}/e/s3~/0001`, value: new Uint8Array([1]) },
        { key: `x-${name}/e/other~/0001`, value: new Uint8Array([2]) }, // another session: another slot
      ];
      const head = { key: `x-${name}/h/s3~`, value: new Uint8Array([3]) };
      const version = await kv.commit(records, { ...head, expectedVersion: null });
      assert.equal(typeof version, "string", name);
      for (const { key, value } of [...records, head]) assert.deepEqual(bytesOf((await kv.get(key)).value), value, `${name}: ${key}`);
      assert.equal((await kv.get(head.key)).version, version);
      assert.equal(await kv.commit(records, { ...head, expectedVersion: null }), null, `${name}: a refused head`);
    }
  });

  test("a key is one hash {value, version} behind its session's hash tag; ttlMs is a PEXPIRE", async () => {
    const kv = redisKv(ioredis);
    const version = await kv.put("tag/e/s1~/0000000000000001/0000000000000002#1", new Uint8Array([0, 255]), { ttlMs: 50_000 });
    const redisKey = "{s1~}tag/e/s1~/0000000000000001/0000000000000002#1";
    assert.equal(redisKeyOf("tag/e/s1~/0000000000000001/0000000000000002#1"), redisKey);
    const hash = await ioredis.hgetallBuffer(redisKey);
    assert.deepEqual(Object.keys(hash).sort(), ["value", "version"]);
    assert.deepEqual(bytesOf(hash.value), new Uint8Array([0, 255]));
    assert.equal(hash.version.toString(), version);
    const pttl = await ioredis.pttl(redisKey);
    assert.ok(pttl > 40_000 && pttl <= 50_000, `pttl ${pttl}`);
    // A put without ttlMs leaves no TTL behind.
    await kv.put("tag/e/s1~/0000000000000001/0000000000000002#1", new Uint8Array([1]));
    assert.equal(await ioredis.pttl(redisKey), -1);
  });

  test("all keys of a session hash to one cluster slot, whatever the store prefix", async () => {
    const sessions = ["abc~", "a%2Fb%7B%7D~", "x~"];
    for (const prefix of ["", "app:", "tenant/7/", "we{ird}/", "p~/"]) {
      for (const session of sessions) {
        const keys = [
          `${prefix}h/${session}`,
          `${prefix}e/${session}/0000000000000001/0000000000000002`,
          `${prefix}e/${session}/0000000000000001/0000000000000002#3`,
          `${prefix}s/${session}/000000000000000a/0000000000000002`,
        ];
        const slots = keys.map((key) =>
          Number(execFileSync(REDIS_CLI, ["-p", String(cluster.nodes[0].port), "cluster", "keyslot", redisKeyOf(key)], { encoding: "utf8" })),
        );
        assert.equal(new Set(slots).size, 1, `${prefix}${session}: slots ${slots}`);
      }
    }
  });

  test("the keys a store writes for one session all get that session's hash tag (redisKeyOf knows the key layout)", async () => {
    const kv = redisKv(ioredis);
    const store = await SessionStore.kv(kv, { prefix: "layout/", snapshotEvery: 1 });
    const session = await store.open("a/b {c}~");
    for (let i = 0; i < 3; i++) await session.invoke((inv) => inv.appendMessage({ i }));
    const keys = await listAll(kv, "layout/");
    const kinds = new Set(keys.map((key) => key.slice("layout/".length, "layout/".length + 2)));
    assert.deepEqual([...kinds].sort(), ["e/", "g/", "h/", "s/"], `keys: ${keys}`);
    const tags = new Set(keys.map((key) => redisKeyOf(key).slice(0, redisKeyOf(key).indexOf("}") + 1)));
    assert.equal(tags.size, 1, `tags: ${[...tags]}`);
    assert.notEqual([...tags][0], "{}");
    await store.close();
  });

  test("on a cluster, list covers every master", async () => {
    const kv = redisKv(nodeRedisCluster);
    const keys = [];
    for (let i = 0; i < 60; i++) keys.push(`spread/h/s${String(i).padStart(2, "0")}~`);
    await Promise.all(keys.map((key) => kv.put(key, new Uint8Array([1]))));
    // The keys really are on more than one master.
    const holders = new Set();
    for (const node of cluster.nodes) {
      const count = Number(execFileSync(REDIS_CLI, ["-p", String(node.port), "dbsize"], { encoding: "utf8" }));
      if (count > 0) holders.add(node.port);
    }
    assert.ok(holders.size > 1, "keys spread over the masters");
    assert.deepEqual(await listAll(kv, "spread/h/", 7), keys);
    assert.deepEqual(await listAll(redisKv(ioredisCluster), "spread/h/", 13), keys);
  });

  test("a key written by something else (not a hash of ours) fails loudly, it is not misread", async () => {
    await ioredis.set(redisKeyOf("foreign/h/a~"), "plain string");
    const kv = redisKv(ioredis);
    await assert.rejects(kv.get("foreign/h/a~"), (error) => /WRONGTYPE/.test(error.message) && error.code === "CORRUPT_RECORD");
    await assert.rejects(kv.put("foreign/h/a~", new Uint8Array([1]), { expectedVersion: null }), /WRONGTYPE/);
  });

  test("a value comes back as the stored bytes; a client that answers text is an error, never read as UTF-8", async () => {
    const notUtf8 = new Uint8Array([0xc3, 0x28, 0xff, 0x00, 0x80, 0xed, 0xa0, 0x80]);
    for (const [name, client] of [["node-redis", nodeRedis], ["ioredis", ioredis]]) {
      const key = `text/h/${name}~`;
      const version = await redisKv(client).put(key, Buffer.from(notUtf8).toString("base64"));
      const raw = await ioredis.hgetBuffer(redisKeyOf(key), "value");
      assert.deepEqual(Uint8Array.from(raw), notUtf8, `${name}: Redis holds the bytes, not the base64 text`);
      assert.deepEqual((await redisKv(client).get(key)).value, notUtf8, name);
    }
    // Wrappers that drop what redisKv asks for (Buffers), so the clients answer bulk strings as text.
    const textOnly = [
      ["node-redis", { sendCommand: (args) => nodeRedis.sendCommand(args) }],
      ["ioredis", { callBuffer: (...args) => ioredis.call(...args) }],
    ];
    for (const [name, client] of textOnly) {
      const kv = redisKv(client);
      const key = `text/h/${name}~`;
      await assert.rejects(kv.get(key), /answered a value as text/, name);
      await assert.rejects(kv.put(key, new Uint8Array([1]), { expectedVersion: "stale", reportCurrent: true }), /answered a value as text/, name);
    }
  });

  test("replies as another realm's bytes (Jest gives its sandbox the outer realm's Buffer): sessions round-trip", async () => {
    const Foreign = runInNewContext("Uint8Array");
    const remade = (reply) =>
      Buffer.isBuffer(reply) ? Foreign.from(reply) : Array.isArray(reply) ? reply.map(remade) : reply;
    assert.equal(remade(Buffer.from("x")) instanceof Uint8Array, false);
    for (const [name, client] of [
      ["node-redis", { sendCommand: async (...args) => remade(await nodeRedis.sendCommand(...args)) }],
      ["ioredis", { callBuffer: async (...args) => remade(await ioredis.callBuffer(...args)) }],
    ]) {
      const id = `realm-${name}`;
      const first = await (await SessionStore.kv(redisKv(client), { prefix: "realms/" })).open(id);
      await first.invoke((inv) => inv.appendMessage({ role: "user", content: "hello" }));
      const again = await (await SessionStore.kv(redisKv(client), { prefix: "realms/" })).open(id);
      assert.deepEqual(again.messages(), [{ role: "user", content: "hello" }], name);
      await again.invoke((inv) => inv.appendMessage({ role: "assistant", content: "hi" }));
      assert.equal((await first.refresh()).version, 2, name);
    }
  });

  test("a put of a value that is not one writes nothing and runs no script: at most one HMGET decides its condition", async () => {
    const { client, commands } = counting(nodeRedis);
    const kv = redisKv(client);
    const version = await kv.put("notvalue/h/a~", new Uint8Array([1]));
    commands.length = 0;
    await assert.rejects(kv.put("notvalue/h/a~", "not base64!"), TypeError);
    assert.deepEqual(commands.splice(0), [], "unconditional: refused before any command");
    await assert.rejects(kv.put("notvalue/h/a~", "not base64!", { expectedVersion: version }), TypeError);
    assert.equal(await kv.put("notvalue/h/a~", "not base64!", { expectedVersion: "stale" }), null);
    assert.deepEqual(await kv.put("notvalue/h/a~", "YQ", { expectedVersion: null, reportCurrent: true }), {
      current: { value: new Uint8Array([1]), version },
    });
    assert.deepEqual(commands.splice(0), ["HMGET", "HMGET", "HMGET"]);
    assert.equal((await kv.get("notvalue/h/a~")).version, version);
  });

  test("the adapter never closes the client", async () => {
    const client = await createClient({ url: server.url }).connect();
    const kv = redisKv(client);
    await kv.put("own/h/a~", new Uint8Array([1]));
    await kv.list("own/");
    assert.equal(client.isOpen, true);
    await client.quit();
  });
});

describe("redisKv: reportCurrent", () => {
  for (const [name, client] of [["node-redis", () => nodeRedis], ["ioredis", () => ioredis]]) {
    test(`${name}: a refused put reports the current entry when asked, and only then`, async () => {
      const kv = redisKv(client());
      const key = `h/report-${name}~`;
      const version = await kv.put(key, new Uint8Array([1, 0, 255]), { expectedVersion: null });
      const reported = await kv.put(key, new Uint8Array([2]), { expectedVersion: "stale", reportCurrent: true });
      assert.equal(reported.current.version, version);
      assert.deepEqual([...bytesOf(reported.current.value)], [1, 0, 255]);
      assert.equal(await kv.put(key, new Uint8Array([2]), { expectedVersion: "stale" }), null);
      assert.deepEqual(await kv.put(`h/absent-${name}~`, new Uint8Array([2]), { expectedVersion: "x", reportCurrent: true }), { current: null });
      assert.deepEqual([...bytesOf((await kv.get(key)).value)], [1, 0, 255], "nothing was written");
    });
  }
});
