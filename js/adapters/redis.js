// HostKv over Redis, through a client the caller connected and owns (this adapter never closes it):
// node-redis 4+ (`createClient()` or `createCluster()`) or ioredis 5+ (`new Redis()` or
// `new Redis.Cluster()`), or Upstash's REST client (@upstash/redis `new Redis({ url, token })`), told
// apart by their methods.
//
// Layout: each key is one Redis hash with two fields, `value` (the bytes, binary-safe) and
// `version` (96 random bits: a key deleted and written again never gets an old version back).
//
// Redis Cluster: all keys of a session must live in one hash slot. The Redis key is the key behind
// a hash tag naming its session, `{<session>}<key>`, where <session> is the escaped id (the text
// after the last `/` before the first SESSION_END, with it): `{abc~}h/abc~`, `{abc~}e/abc~/00../00..`.
// A key without a session part gets the empty tag `{}`, which Redis hashes as a whole key. The tag
// goes first, not inside the key, so that a store prefix holding `{` or `/` cannot move it.
// This is the one place outside the Rust core that knows the key layout; HostKv passes keys only,
// so the session has to be read back out of them.
//
// Compare-and-set and delete-if-version are each ONE Lua script (EVALSHA, falling back to EVAL the
// first time a server has not seen it): read the version, compare, write value + version and set
// the TTL (PEXPIRE) in the same script, so nothing can come between the compare and the write.
// A session commit (`commit(records, head, deletes)`) is the same script over the session's keys (one
// hash slot): the head's compare, then the records and the head, then the deletes.
// A read is one HMGET of both fields. The value goes to Redis as the bytes (a base64 string given to
// put is decoded first) and comes back as the bytes: both clients are asked for bulk strings as
// Buffers, and a reply that comes back as text anyway is an error, never read as UTF-8 (that would
// change every byte sequence that is not valid UTF-8).
//
// Upstash's REST client sends a command as a JSON array of strings and gets JSON back: bytes cannot go
// as arguments, and a reply string is UTF-8-decoded (which changes bytes that are not UTF-8) and, by
// default, JSON.parsed ("0" becomes 0). So with it every operation is a script (`scriptOf`, from the
// same templates): a value goes as base64 and the script decodes it to bytes before HSET, and every
// string a script replies has a letter before it ("v" version, "b" base64 of a value, "c" cursor, "k"
// key) so that it is ASCII and never valid JSON. Same layout in Redis as the other clients: one
// database can be shared by a server on ioredis and an edge function on Upstash. Base64 in Lua costs
// Redis CPU (about 0.1 ms per KiB each way, measured on a local redis-server 7.0), hence the default
// maxValueBytes of 512 KiB with Upstash, which also keeps a request under 1 MB.
//
// list() is SCAN with MATCH on the escaped prefix, over every master of a cluster, then sorted: SCAN
// visits keys in no useful order and may return one twice, so each page scans the whole keyspace
// and returns the keys after the cursor (the last key of the previous page). That is one full scan
// per page; the store lists only in `SessionStore.list()`, `sweepExpired()` and `delete()`, never
// in begin or commit. (A sorted-set index would sort for free, but a global index key lives in
// another hash slot than the session's keys, so it could not be updated in the same script on a
// cluster, and keys that Redis expires would stay in it.)
import { fromBase64, toBase64, uint8View } from "../runtime.js";
import { bytesOf, commitByPuts, corruptRecord, holds, invalidArgument, maxValueBytesOf, newVersion, notAValue } from "./values.js";

/** Compare-and-set, and a session commit. KEYS[1]: the key (a session's head); for a commit, KEYS[2..]:
 * its records, written (no TTL) only when the condition holds, before the key, then the keys it deletes
 * with it. ARGV: mode ("any" | "absent" | "match"), expected version, value, new version, TTL in ms (""
 * for none), "1" to report the current entry on a failed condition, then each record's value and new
 * version (ARGV[2k+3], ARGV[2k+4] for KEYS[k]); the KEYS past the records are the deletes. Returns the
 * new version; when the condition failed, nil, or [version, value] (nils when absent).
 * A template (see `scriptOf`): `<<in:x>>` is a value argument, `<<value:x>>` / `<<version:x>>` a value /
 * version replied. */
const PUT = `local current = redis.call('HGET', KEYS[1], 'version')
local refused = (ARGV[1] == 'absent' and current) or (ARGV[1] == 'match' and current ~= ARGV[2])
if refused then
  if ARGV[6] ~= '1' then return false end
  if not current then return {false, false} end
  return {<<version:current>>, <<value:redis.call('HGET', KEYS[1], 'value')>>}
end
local records = (#ARGV - 6) / 2
for k = 2, records + 1 do
  redis.call('DEL', KEYS[k])
  redis.call('HSET', KEYS[k], 'value', <<in:ARGV[2 * k + 3]>>, 'version', ARGV[2 * k + 4])
end
for k = records + 2, #KEYS do redis.call('DEL', KEYS[k]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'value', <<in:ARGV[3]>>, 'version', ARGV[4])
if ARGV[5] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return <<version:ARGV[4]>>`;

/** Delete, if the version matches. KEYS[1]: the key. ARGV: mode ("any" | "match"), expected version.
 * Returns how many keys were deleted (0 or 1). */
const DELETE = `if ARGV[1] == 'match' and redis.call('HGET', KEYS[1], 'version') ~= ARGV[2] then return 0 end
return redis.call('DEL', KEYS[1])`;

/** A read (the Upstash driver's; the others send HMGET itself). KEYS[1]: the key. Returns [version,
 * value], nils when either is missing, as PUT reports a refused condition's current entry. */
const GET = `local entry = redis.call('HMGET', KEYS[1], 'value', 'version')
if not entry[1] or not entry[2] then return {false, false} end
return {<<version:entry[2]>>, <<value:entry[1]>>}`;

/** A page of SCAN (the Upstash driver's; the others send SCAN itself). ARGV: cursor, MATCH pattern,
 * COUNT. Returns the next cursor behind "c", then each key behind "k": no reply is valid JSON. */
const SCAN_PAGE = `local page = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local reply = {'c' .. page[1]}
for i, key in ipairs(page[2]) do reply[i + 1] = 'k' .. key end
return reply`;

/** Standard base64 in Lua 5.1 (Redis's): `dec` of a padded string, `enc` padded. Each builds its output
 * in runs of string.char over at most 3000 / 4000 bytes (unpack's argument list is bounded). */
const BASE64_LUA = `local alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local floor, byte, char, concat = math.floor, string.byte, string.char, table.concat
local function dec(text)
  local sextet = {}
  for i = 1, 64 do sextet[byte(alphabet, i)] = i - 1 end
  local parts, out, n = {}, {}, 0
  for i = 1, #text, 4 do
    if n == 3000 then parts[#parts + 1] = char(unpack(out, 1, n)); n = 0 end
    local a, b, c, d = byte(text, i, i + 3)
    local v = sextet[a] * 262144 + sextet[b] * 4096 + (sextet[c] or 0) * 64 + (sextet[d] or 0)
    out[n + 1] = floor(v / 65536); out[n + 2] = floor(v / 256) % 256; out[n + 3] = v % 256
    n = n + 3
  end
  if byte(text, -1) == 61 then n = n - 1 end
  if byte(text, -2) == 61 then n = n - 1 end
  if n > 0 then parts[#parts + 1] = char(unpack(out, 1, n)) end
  return concat(parts)
end
local function enc(bytes)
  local digit = {}
  for i = 1, 64 do digit[i - 1] = byte(alphabet, i) end
  local parts, out, n = {}, {}, 0
  for i = 1, #bytes, 3 do
    if n == 4000 then parts[#parts + 1] = char(unpack(out, 1, n)); n = 0 end
    local a, b, c = byte(bytes, i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    out[n + 1] = digit[floor(v / 262144)]; out[n + 2] = digit[floor(v / 4096) % 64]
    out[n + 3] = b and digit[floor(v / 64) % 64] or 61; out[n + 4] = c and digit[v % 64] or 61
    n = n + 4
  end
  if n > 0 then parts[#parts + 1] = char(unpack(out, 1, n)) end
  return concat(parts)
end
`;

/** A script of a template for a driver: the node-redis and ioredis drivers send values as their bytes
 * and read the replies as bytes, so every marker is its expression (the script is the template
 * without its markers). The Upstash driver sends text only and reads JSON, so a value argument is
 * base64 (decoded in Lua before HSET), and each string replied gets a letter before it, "v" for a
 * version, "b" for a value's base64: never valid JSON, so the client's JSON.parse of replies
 * (automaticDeserialization) leaves it alone, and ASCII, so its UTF-8 decoding cannot change it. */
function scriptOf(template, upstash) {
  const script = template.replace(/<<(in|value|version):(.*?)>>/g, (_, kind, expression) => {
    if (!upstash) return expression;
    if (kind === "in") return `dec(${expression})`;
    return kind === "value" ? `'b' .. enc(${expression})` : `'v' .. ${expression}`;
  });
  return upstash && script !== template ? BASE64_LUA + script : script;
}

/** Keys per SCAN call. */
const SCAN_COUNT = "1000";

/** The hex SHA-1 of a script, as EVALSHA wants it. */
const shas = new Map();
function sha1(script) {
  let sha = shas.get(script);
  if (sha === undefined) {
    sha = globalThis.crypto.subtle
      .digest("SHA-1", new TextEncoder().encode(script))
      .then((digest) => [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join(""));
    shas.set(script, sha);
  }
  return sha;
}

/** What ends an escaped session id in a key, and what the escaping never produces: `TERMINATOR` of
 * src/core/keys.rs (tests/js/adapters/redis.test.mjs checks the keys a store writes against it). */
const SESSION_END = "~";

/** The Redis key of `key`: behind the hash tag of its session (see the top of this file). */
export function redisKeyOf(key) {
  const end = key.indexOf(SESSION_END);
  let tag = "";
  if (end >= 0) {
    tag = key.slice(key.lastIndexOf("/", end) + 1, end + SESSION_END.length);
    if (tag.includes("{") || tag.includes("}")) tag = "";
  }
  return `{${tag}}${key}`;
}

/** The key that `redisKey` stores, or undefined for a key this adapter did not write. */
function keyOfRedisKey(redisKey) {
  const close = redisKey.indexOf("}");
  if (!redisKey.startsWith("{") || close < 0) return undefined;
  const key = redisKey.slice(close + 1);
  return redisKeyOf(key) === redisKey ? key : undefined;
}

/** `text` matching itself only, in a SCAN MATCH pattern. */
function escapeGlob(text) {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/** The SCAN MATCH pattern of every Redis key whose key starts with `prefix`. */
function patternOf(prefix) {
  // With a SESSION_END in the prefix, every key under it has the prefix's session, hence its tag.
  if (prefix.includes(SESSION_END)) return `${escapeGlob(redisKeyOf(prefix))}*`;
  return `{*}${escapeGlob(prefix)}*`;
}

const text = (reply) => {
  if (reply == null || typeof reply === "string") return reply;
  const bytes = uint8View(reply);
  if (bytes !== undefined) return new TextDecoder().decode(bytes);
  throw new Error(`redisKv: a reply of ${shapeOf(reply)} where its command gives text`);
};

/** What a reply is, for an error (never its content: a reply may hold the session's data). */
function shapeOf(reply) {
  return Array.isArray(reply) ? `an array of ${reply.length}` : reply === null ? "null" : typeof reply;
}

/** The scripts each kind of driver runs (`scriptOf`). */
const BINARY = { put: scriptOf(PUT, false), delete: DELETE };
const UPSTASH = { put: scriptOf(PUT, true), delete: DELETE, get: scriptOf(GET, true), scan: SCAN_PAGE };

/** What the Upstash driver takes as `maxValueBytes` unless told: a value's base64 (4/3 of its bytes) and
 * the rest of its request stay under 1 MB, the smallest request size limit Upstash has had. */
export const UPSTASH_MAX_VALUE_BYTES = 512 * 1024;

/**
 * How to talk to the client: `call(key, args)` sends one command routed by `key` and resolves to
 * its reply with bulk strings as bytes; `masters()` resolves to one object per master with a
 * `call(args)` of its own (for SCAN). The Upstash driver has `upstash: true` and `evaluate(script,
 * redisKeys, args)` instead, since everything it sends is a script (UPSTASH).
 */
function driverOf(client) {
  if (typeof client?.callBuffer === "function") {
    // ioredis: callBuffer returns bulk strings as Buffers; a Cluster routes by the command's key.
    return {
      call: (key, args) => client.callBuffer(...args),
      masters: async () =>
        (client.isCluster ? client.nodes("master") : [client]).map((node) => ({
          call: (args) => node.callBuffer(...args),
        })),
    };
  }
  if (typeof client?.sendCommand === "function") {
    // node-redis: v5 takes `typeMapping` (RESP type '$' = 36, bulk string), v4 `returnBuffers`.
    const options = { returnBuffers: true, typeMapping: { 36: globalThis.Buffer ?? Uint8Array } };
    if (typeof client.nodeClient === "function") {
      // A cluster (createCluster): sendCommand(firstKey, isReadonly, args, options).
      return {
        call: (key, args) => client.sendCommand(key, false, args, options),
        masters: async () => {
          const masters = client.masters ?? client.getMasters();
          const clients = await Promise.all(masters.map((master) => client.nodeClient(master)));
          return clients.map((node) => ({ call: (args) => node.sendCommand(args, options) }));
        },
      };
    }
    return {
      call: (key, args) => client.sendCommand(args, options),
      masters: async () => [{ call: (args) => client.sendCommand(args, options) }],
    };
  }
  if (typeof client?.evalsha === "function" && typeof client?.eval === "function") {
    // @upstash/redis (`new Redis({ url, token })`): HTTP, a command is a JSON array of strings and a
    // reply is JSON, so values go as base64 and every reply string is one the scripts wrote.
    // Auto-pipelining (its default) joins the commands made at once into one request, whose size
    // Upstash limits: a script `alone` (one that carries values) goes as a pipeline of its own, one
    // request. A failed command's message starts "Command failed: " or "Command 1 [ evalsha ] failed: ",
    // and ends ", command was: <the request>", which holds the values written (the session's data,
    // up to maxValueBytes of it): the error is passed on without that part.
    const send = (alone, command, ...args) => {
      if (!alone || typeof client.pipeline !== "function") return client[command](...args);
      return client.pipeline()[command](...args).exec().then(([reply]) => reply);
    };
    return {
      upstash: true,
      evaluate: async (script, redisKeys, args, alone) => {
        try {
          return await send(alone, "evalsha", await sha1(script), redisKeys, args);
        } catch (error) {
          if (!String(error?.message).includes("NOSCRIPT")) throw withoutRequest(error);
          try {
            return await send(alone, "eval", script, redisKeys, args);
          } catch (retried) {
            throw withoutRequest(retried);
          }
        }
      },
    };
  }
  throw invalidArgument(
    "redisKv: pass a connected node-redis (createClient / createCluster) or ioredis (new Redis / Redis.Cluster) client, or an Upstash REST client (new Redis({ url, token }) of @upstash/redis)",
  );
}

/** A put's condition as the scripts' mode and expected-version arguments. */
const condition = (expectedVersion) => [
  expectedVersion === undefined ? "any" : expectedVersion === null ? "absent" : "match",
  expectedVersion ?? "",
];

/** A TTL as the scripts' argument ("" for none). */
const ttlArg = (ttlMs) => (ttlMs > 0 ? String(Math.ceil(ttlMs)) : "");

/** `bytes` as a Redis argument: a Buffer over the same bytes where Buffer exists. */
function argOf(bytes) {
  const Buffer = globalThis.Buffer;
  return Buffer ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
}

/** The bytes of a bulk string reply. The driver asks for Buffers; text here means the client (or a
 * wrapper around it) dropped that option, and the bytes cannot be recovered from it. */
function bytesOfReply(reply) {
  const bytes = uint8View(reply); // a Buffer of another realm too (Jest gives its tests the outer one's)
  if (bytes !== undefined) return new Uint8Array(bytes);
  throw new Error(
    "redisKv: the client answered a value as text, not bytes; pass redisKv the client itself (a wrapper must pass on the options of sendCommand: returnBuffers / typeMapping)",
  );
}

/** `reply` when it is an array (a SCAN page, its keys). */
function listOf(reply, what) {
  if (Array.isArray(reply)) return reply;
  throw new Error(`redisKv: ${what} replied ${shapeOf(reply)}, not the array its command gives`);
}

/** `reply` when it is the pair of two a read or a refused put replies (its script's, or HMGET's). */
function pairOf(reply, what) {
  if (Array.isArray(reply) && reply.length === 2) return reply;
  throw new Error(`redisKv: ${what} replied ${shapeOf(reply)}, not the pair its command gives`);
}

/** An @upstash/redis error without the request its message quotes (", command was: [...]"): a new
 * Error of the same name and the message before it, without the original (which keeps the request). */
function withoutRequest(error) {
  const message = typeof error?.message === "string" ? error.message : undefined;
  const at = message?.indexOf(", command was: ") ?? -1;
  if (at < 0) return error;
  const shorter = new Error(message.slice(0, at));
  if (typeof error.name === "string") shorter.name = error.name;
  return shorter;
}

/** What follows `letter` in a string an Upstash script replied (UPSTASH; null stays null). Anything
 * else means the reply went through something that changed it: an error, never a guess. */
function unprefixed(reply, letter) {
  if (reply == null) return null;
  if (typeof reply === "string" && reply.startsWith(letter)) return reply.slice(1);
  throw new Error(`redisKv: an Upstash reply the adapter's scripts do not give (${shapeOf(reply)})`);
}

/** The bytes of a value an Upstash script replied ("b" and base64). */
function bytesOfUpstash(reply) {
  const bytes = fromBase64(unprefixed(reply, "b"));
  if (bytes === undefined) throw new Error("redisKv: an Upstash reply that is not base64");
  return bytes;
}

/**
 * A `HostKv` over Redis. The caller owns the client: it must be connected, and closing the store
 * does not close it.
 * @param {object} client a node-redis 4+ or ioredis 5+ client or cluster client, or an @upstash/redis client
 * @param {{ maxValueBytes?: number }} [options] larger values are chunked by the store; default: no
 *   limit, UPSTASH_MAX_VALUE_BYTES with an Upstash client
 */
export function redisKv(client, options = {}) {
  const driver = driverOf(client);
  const upstash = driver.upstash === true;
  const maxValueBytes = maxValueBytesOf(options, upstash ? UPSTASH_MAX_VALUE_BYTES : undefined, "redisKv");
  const scripts = upstash ? UPSTASH : BINARY;
  /** A value as a script's argument: its bytes, or their base64 for Upstash (the script decodes it). */
  const valueArg = upstash ? toBase64 : argOf;
  const versionOf = upstash ? (reply) => unprefixed(reply, "v") : text;

  /** Runs `script` on `redisKeys` (one hash slot; the call is routed by the first) by EVALSHA, by
   * EVAL when the server does not have it yet. `alone`: it carries values (see the Upstash driver). */
  async function evaluate(script, redisKeys, args, alone = false) {
    if (upstash) return driver.evaluate(script, redisKeys, args, alone);
    const keys = [String(redisKeys.length), ...redisKeys];
    try {
      return await driver.call(redisKeys[0], ["EVALSHA", await sha1(script), ...keys, ...args]);
    } catch (error) {
      if (!String(error?.message).startsWith("NOSCRIPT")) throw error;
      return driver.call(redisKeys[0], ["EVAL", script, ...keys, ...args]);
    }
  }

  /** `{ value, version }` from Redis replies, or null when both are missing (nothing is there). One
   * without the other is no entry the adapter wrote (it sets both at once): an error, not "absent". */
  function entryOf(value, version) {
    if (version == null && value == null) return null;
    if (version == null || value == null) {
      throw corruptRecord(`redisKv: a reply with ${version == null ? "a value but no version" : "a version but no value"}; the adapter writes both at once, so something else wrote this key or the reply is malformed`);
    }
    return upstash ? { value: bytesOfUpstash(value), version: versionOf(version) } : { value: bytesOfReply(value), version: text(version) };
  }

  /** What HMGET reads of `key` (in a script for Upstash): `{ value, version }`, or null. */
  async function read(key) {
    const redisKey = redisKeyOf(String(key));
    if (upstash) {
      const [version, value] = pairOf(await evaluate(scripts.get, [redisKey], []), "a read");
      return entryOf(value, version);
    }
    let reply;
    try {
      reply = await driver.call(redisKey, ["HMGET", redisKey, "value", "version"]);
    } catch (error) {
      // A key of another type than the adapter's hashes: something else wrote it.
      if (String(error?.message).startsWith("WRONGTYPE")) throw corruptRecord(`redisKv: ${error.message}`);
      throw error;
    }
    const [value, version] = pairOf(reply, "HMGET");
    return entryOf(value, version);
  }

  /** A page of SCAN on `master` (by a script for Upstash): [next cursor, Redis keys], as text. */
  async function scanPage(master, cursor, pattern) {
    if (upstash) {
      const [next, ...redisKeys] = listOf(await evaluate(scripts.scan, [], [cursor, pattern, SCAN_COUNT]), "a SCAN page");
      return [unprefixed(next, "c"), redisKeys.map((redisKey) => unprefixed(redisKey, "k"))];
    }
    const [next, redisKeys] = pairOf(await master.call(["SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT]), "SCAN");
    listOf(redisKeys, "SCAN's keys");
    return [text(next), redisKeys.map(text)];
  }

  const kv = {
    capabilities: Object.freeze(maxValueBytes === undefined ? { atomic: true } : { atomic: true, maxValueBytes }),

    get: read,

    async put(key, value, options = {}) {
      const { expectedVersion, ttlMs } = options;
      const bytes = bytesOf(value);
      if (bytes === undefined) {
        // Not a value, so nothing is written: a refused condition still answers as it would for a
        // value (one read decides it), and only a condition that holds meets the TypeError.
        if (expectedVersion !== undefined) {
          const current = await read(key);
          if (!holds(current?.version ?? null, expectedVersion)) return options.reportCurrent ? { current } : null;
        }
        throw notAValue("redisKv", key);
      }
      const report = options.reportCurrent ? "1" : "";
      const reply = await evaluate(scripts.put, [redisKeyOf(String(key))], [...condition(expectedVersion), valueArg(bytes), newVersion(), ttlArg(ttlMs), report], true);
      // `reportCurrent`: a refused put says what is there, which saves the store a read.
      if (Array.isArray(reply)) {
        const [version, value] = pairOf(reply, "a refused put");
        return { current: entryOf(value, version) };
      }
      return reply == null ? null : versionOf(reply);
    },

    async commit(records, head, deletes = []) {
      const headKey = redisKeyOf(String(head.key));
      const redisKeys = [headKey, ...records.map((record) => redisKeyOf(String(record.key))), ...deletes.map((key) => redisKeyOf(String(key)))];
      const values = [head, ...records].map((write) => {
        const bytes = bytesOf(write.value);
        if (bytes === undefined) throw notAValue("redisKv", write.key); // before anything is written
        return bytes;
      });
      // One script needs every key in the head's hash slot (its session's tag); otherwise the records
      // at once, then the head.
      const tag = headKey.slice(0, headKey.indexOf("}") + 1);
      if (tag === "{}" || !redisKeys.every((key) => key.startsWith(tag))) {
        return commitByPuts(kv, records, head, deletes);
      }
      // Upstash limits a request's size: a request holds at most maxValueBytes of values, so a larger
      // commit is the records' puts (each its own request), then the head's.
      if (upstash && values.reduce((total, bytes) => total + bytes.length, 0) > maxValueBytes) {
        return commitByPuts(kv, records, head, deletes);
      }
      const recordArgs = values.slice(1).flatMap((bytes) => [valueArg(bytes), newVersion()]);
      const args = [...condition(head.expectedVersion), valueArg(values[0]), newVersion(), ttlArg(head.ttlMs), "", ...recordArgs];
      return versionOf(await evaluate(scripts.put, redisKeys, args, true));
    },

    async delete(key, options = {}) {
      const expected = options.expectedVersion;
      if (expected === null) return false;
      const reply = await evaluate(scripts.delete, [redisKeyOf(String(key))], expected === undefined ? ["any", ""] : ["match", expected]);
      return Number(reply) > 0;
    },

    async list(prefix, options = {}) {
      prefix = String(prefix);
      const after = options.cursor || undefined;
      const limit = options.limit > 0 ? Math.floor(options.limit) : Infinity;
      const pattern = patternOf(prefix);
      const found = new Set();
      for (const master of upstash ? [undefined] : await driver.masters()) {
        let cursor = "0";
        do {
          const [next, redisKeys] = await scanPage(master, cursor, pattern);
          cursor = next;
          for (const redisKey of redisKeys) {
            const key = keyOfRedisKey(redisKey);
            if (key !== undefined && key.startsWith(prefix) && (after === undefined || key > after)) found.add(key);
          }
        } while (cursor !== "0");
      }
      const keys = [...found].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      if (keys.length <= limit) return { keys };
      keys.length = limit;
      return { keys, cursor: keys[limit - 1] };
    },
  };
  return kv;
}
