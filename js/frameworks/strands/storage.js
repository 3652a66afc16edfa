// AgentSessionStorage: a Strands `Storage` (write/read/delete/list of bytes) over any SessionStore, for
// Strands' own SessionManager and anything else that takes a Storage. Durable and atomic per write,
// but it cannot guard a turn: Storage never sees one.
import { fromBase64, toBase64, uint8View } from "../../runtime.js";
import { HASHED, nameFor } from "../names.js";
import { SerialQueues } from "../serial-queue.js";
import { SessionHandle, hasCode } from "../session-handle.js";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

// Bytes -> a JSON state value. Canonical JSON text (what JSON.stringify writes: every Strands snapshot)
// is stored as structured data, `{ json }`, readable through the agent-session API; anything else as
// `{ base64 }`. Either way decodeBytes gives back the same bytes.
function encodeBytes(bytes) {
  let text;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { base64: toBase64(bytes) };
  }
  try {
    const json = JSON.parse(text);
    if (JSON.stringify(json) === text) return { json };
  } catch {
    // not JSON
  }
  return { base64: toBase64(bytes) };
}

function decodeBytes(value, key) {
  if (value !== null && typeof value === "object") {
    if ("json" in value) return utf8Encoder.encode(JSON.stringify(value.json));
    const bytes = typeof value.base64 === "string" ? fromBase64(value.base64) : undefined;
    if (bytes !== undefined) return bytes;
  }
  throw new Error(`agent-session/strands: the value stored under '${key}' is not a storage record`);
}

/** The state key of a session under a hashed id that names its group (`session/<id>`): no Strands key
 * starts with a NUL. */
const GROUP = "\u0000group";

function asBase64(value) {
  return "json" in value ? { base64: toBase64(utf8Encoder.encode(JSON.stringify(value.json))) } : value;
}

/**
 * A Strands `Storage` over a SessionStore. A key `a/b/rest` lives in the agent-session session
 * `<prefix>a/b` under the state key `rest` (so Strands' `session/<sessionId>/...` keys give one
 * agent-session session per Strands session); keys with fewer than two `/` live in the session
 * `<prefix>` itself. A group `a/b` too long for an agent-session id (256 UTF-8 bytes) gets a hashed
 * id (`names.js`), and the session keeps the group under a state key of its own (`GROUP`). Writes and deletes of one session made while another is in flight are applied
 * together in one invocation; a session whose last key is deleted is deleted with its history.
 */
export class AgentSessionStorage {
  #store;
  #prefix;
  #begin;
  /** session id -> its SessionHandle */
  #handles = new Map();
  #writes = new SerialQueues();
  /** session id -> the batch of writes and deletes waiting for its turn (more join it until it starts) */
  #waiting = new Map();

  constructor(store, options = {}) {
    if (store === null || typeof store !== "object" || typeof store.open !== "function") {
      throw new TypeError("AgentSessionStorage: the first argument must be a SessionStore");
    }
    const prefix = options.prefix ?? "strands/";
    if (typeof prefix !== "string" || prefix === "") {
      throw new TypeError("AgentSessionStorage: prefix must be a non-empty string");
    }
    this.#store = store;
    this.#prefix = prefix;
    this.#begin = { onBusy: options.onBusy ?? { waitMs: 10000 } };
  }

  /** The SessionStore this storage writes to. */
  get store() {
    return this.#store;
  }

  async write(key, data) {
    const { sid, skey, group } = this.#locate(key);
    const bytes = uint8View(data); // of any realm
    if (bytes === undefined) throw new TypeError("AgentSessionStorage.write: data must be a Uint8Array");
    const value = encodeBytes(bytes);
    await this.#enqueue(sid, { skey, value, group });
  }

  async read(key) {
    const { sid, skey } = this.#locate(key);
    const value = (await this.#handle(sid).refreshed())?.stateValue(skey);
    return value === undefined ? null : decodeBytes(value, key);
  }

  async delete(key) {
    const { sid, skey } = this.#locate(key);
    await this.#enqueue(sid, { skey, value: undefined });
  }

  async list(prefix = "") {
    if (typeof prefix !== "string") throw new TypeError("AgentSessionStorage.list: the query must be a string prefix");
    const keys = [];
    const first = prefix.indexOf("/");
    const second = first < 0 ? -1 : prefix.indexOf("/", first + 1);
    if (second >= 0) {
      // The prefix names one session.
      const group = prefix.slice(0, second + 1);
      const rest = prefix.slice(second + 1);
      for (const skey of await this.#keys(this.#sessionOf(prefix.slice(0, second)))) {
        if (skey.startsWith(rest)) keys.push(group + skey);
      }
    } else {
      // Sessions under hashed ids, each named by its group.
      for (const id of await this.#ids(this.#prefix + HASHED)) {
        const session = await this.#handle(id).refreshed();
        const group = session?.stateValue(GROUP);
        if (typeof group !== "string") continue;
        for (const skey of await this.#keys(id)) {
          const key = `${group}/${skey}`;
          if (key.startsWith(prefix)) keys.push(key);
        }
      }
      for (const skey of await this.#keys(this.#prefix)) {
        if (skey.startsWith(prefix)) keys.push(skey);
      }
      for (const id of await this.#ids(this.#prefix + prefix)) {
        const group = id.slice(this.#prefix.length);
        if (!group.includes("/")) continue; // the root session, a hashed one, or not one of ours
        for (const skey of await this.#keys(id)) {
          const key = `${group}/${skey}`;
          if (key.startsWith(prefix)) keys.push(key);
        }
      }
    }
    return keys.sort();
  }

  #locate(key) {
    if (typeof key !== "string" || key === "") throw new TypeError("AgentSessionStorage: a key must be a non-empty string");
    const first = key.indexOf("/");
    const second = first < 0 ? -1 : key.indexOf("/", first + 1);
    if (second < 0) return { sid: this.#prefix, skey: key };
    const skey = key.slice(second + 1);
    if (skey === "") throw new TypeError(`AgentSessionStorage: the key '${key}' ends at a session boundary`);
    const group = key.slice(0, second);
    return { sid: this.#sessionOf(group), skey, group };
  }

  /** The agent-session id of group `a/b`: `<prefix>a/b`, or a hashed one when that is too long. */
  #sessionOf(group) {
    return nameFor(this.#prefix, group, this.#prefix + HASHED);
  }

  /** The ids of every session whose id starts with `prefix`. */
  async #ids(prefix) {
    const ids = [];
    let cursor;
    do {
      const page = await this.#store.list({ prefix, ...(cursor !== undefined && { cursor }) });
      for (const info of page.sessions) ids.push(info.id);
      cursor = page.cursor;
    } while (cursor !== undefined);
    return ids;
  }

  #handle(sid) {
    let handle = this.#handles.get(sid);
    if (handle === undefined) {
      // Storage is a key-value store: an expired session is one whose keys are gone.
      handle = new SessionHandle(this.#store, sid, { restartExpired: true });
      this.#handles.set(sid, handle);
    }
    return handle;
  }

  async #keys(sid) {
    const session = await this.#handle(sid).refreshed();
    return session === undefined ? [] : Object.keys(session.state()).filter((key) => key !== GROUP);
  }

  #enqueue(sid, op) {
    return new Promise((resolve, reject) => {
      let batch = this.#waiting.get(sid);
      if (batch === undefined) {
        batch = [];
        this.#waiting.set(sid, batch);
        const started = batch;
        this.#writes
          .run(sid, () => {
            this.#waiting.delete(sid); // from here on, new writes wait for the next turn
            return this.#apply(sid, started);
          })
          .catch((error) => {
            for (const queued of started) queued.reject(error);
          });
      }
      batch.push({ ...op, resolve, reject });
    });
  }

  /** One invocation for a batch of writes and deletes of one session. */
  async #apply(sid, batch) {
    const handle = this.#handle(sid);
    const writes = batch.some((op) => op.value !== undefined);
    const invocation = await handle.begin(this.#begin, { create: writes });
    if (invocation === undefined) {
      for (const op of batch) op.resolve(); // deletes of keys in an absent session
      return;
    }
    const applied = [];
    let changed = false;
    // The keys this batch leaves set: while there is one, the session is not empty (no need to read
    // the whole state back to tell).
    const set = new Set();
    // A session under a hashed id names its group (list() reads it), from its first write on.
    const named = batch.find((op) => op.value !== undefined && op.group !== undefined && sid !== this.#prefix + op.group);
    if (named !== undefined && invocation.stateValue(GROUP) === undefined) invocation.setState(GROUP, named.group);
    for (const op of batch) {
      try {
        if (op.value === undefined) {
          if (invocation.stateValue(op.skey) !== undefined) {
            invocation.deleteState(op.skey);
            set.delete(op.skey);
            changed = true;
          }
        } else {
          try {
            invocation.setState(op.skey, op.value);
          } catch (error) {
            // Valid JSON that agent-session will not hold as such (nested past its depth limit, say):
            // stored opaque.
            if (!hasCode(error, "INVALID_INPUT") || !("json" in op.value)) throw error;
            invocation.setState(op.skey, asBase64(op.value));
          }
          set.add(op.skey);
          changed = true;
        }
        applied.push(op);
      } catch (error) {
        op.reject(error);
      }
    }
    try {
      if (!changed) {
        await invocation.abort();
      } else if (set.size === 0 && Object.keys(invocation.state()).every((key) => key === GROUP)) {
        // The last key is gone: delete the session and its history, while this invocation holds the
        // lease (no other writer can commit in between).
        await this.#store.delete(sid);
        handle.forget();
        await invocation.abort().catch(() => {});
      } else {
        await invocation.commit();
      }
    } catch (error) {
      await invocation.abort().catch(() => {});
      for (const op of applied) op.reject(error);
      return;
    }
    for (const op of applied) op.resolve();
  }
}
