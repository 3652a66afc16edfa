// SessionStore.kv over denoKv on @deno/kv's SQLite backend: two stores with different owners, each
// on its own openKv handle of one file (as two isolates would be), contending on one session.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { openKv } from "@deno/kv";
import { SessionStore, ConcurrencyError, LeaseLostError } from "agent-session";
import { denoKv } from "agent-session/adapters";
import { checkHistory, denialOf } from "./_history.mjs";

const dir = mkdtempSync(join(tmpdir(), "agent-session-store-deno-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newFile = () => join(dir, `kv-${++files}.sqlite`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One contender: begins until it has committed `commits` times, logging every step. */
async function contend(store, worker, id, commits, log) {
  const session = await store.open(id);
  let done = 0;
  for (let attempt = 0; done < commits; attempt++) {
    assert.ok(attempt < 5000, `${worker} could not commit ${commits} times`);
    let inv;
    try {
      inv = await session.begin();
    } catch (error) {
      log.push({ type: "denied", worker, t: Date.now(), ...denialOf(error) });
      await sleep(Math.random() * 4);
      continue;
    }
    log.push({ type: "acquire", worker, t: Date.now(), token: inv.token, base: inv.session.version });
    inv.appendMessage({ worker, token: inv.token });
    await sleep(Math.random() * 3);
    log.push({ type: "committing", worker, t: Date.now(), token: inv.token });
    const version = await inv.commit();
    log.push({ type: "commit", worker, t: Date.now(), token: inv.token, version });
    done++;
  }
}

test("two isolates (two openKv handles on one file, different owners) keep the guard's invariants", { timeout: 120_000 }, async () => {
  const file = newFile();
  const dbA = await openKv(file);
  const dbB = await openKv(file);
  try {
    const storeA = await SessionStore.kv(denoKv(dbA), { owner: "isolate-A" });
    const storeB = await SessionStore.kv(denoKv(dbB), { owner: "isolate-B" });
    const log = [];
    // Three contenders per isolate: same-isolate and cross-isolate races both happen.
    await Promise.all([
      contend(storeA, "A1", "shared", 6, log),
      contend(storeB, "B1", "shared", 6, log),
      contend(storeA, "A2", "shared", 6, log),
      contend(storeB, "B2", "shared", 6, log),
      contend(storeA, "A3", "shared", 6, log),
      contend(storeB, "B3", "shared", 6, log),
    ]);
    const reader = await SessionStore.kv(denoKv(dbB), { owner: "reader" });
    const session = await reader.open("shared");
    const { commits, denials } = checkHistory(log, { version: session.version, messages: session.messages() }, {
      owners: ["isolate-A", "isolate-B"],
    });
    assert.equal(commits, 36);
    assert.ok(denials > 0, "the contenders really contended");
    const crossIsolate = log.filter((e) => e.type === "denied" && e.holder !== (e.worker.startsWith("A") ? "isolate-A" : "isolate-B"));
    assert.ok(crossIsolate.length > 0, "some denials came through the other handle's lease");
    // History agrees with the log, version by version.
    const history = await session.history();
    const versions = history.filter((e) => e.type === "message").map((e) => e.version);
    assert.deepEqual(versions, Array.from({ length: 36 }, (_, i) => i + 1));
  } finally {
    dbA.close();
    dbB.close();
  }
});

test("two isolates: a stale holder's late commit is LeaseLostError and writes nothing visible", async () => {
  const file = newFile();
  const dbA = await openKv(file);
  const dbB = await openKv(file);
  try {
    const stale = await SessionStore.kv(denoKv(dbA), { owner: "stale", leaseMs: 200, heartbeat: false });
    const fresh = await SessionStore.kv(denoKv(dbB), { owner: "fresh" });
    const old = await (await stale.open("s")).begin();
    old.appendMessage("late");
    const busy = await (await fresh.open("s")).begin().then(
      () => assert.fail("begin while the lease is live"),
      (error) => error,
    );
    assert.ok(busy instanceof ConcurrencyError);
    await sleep(busy.retryAfterMs + 50);
    const inv = await (await fresh.open("s")).begin();
    assert.ok(inv.token > old.token);
    inv.appendMessage("taken over");
    await inv.commit();
    const raw = new Map();
    for await (const entry of dbB.list({ prefix: ["agent-session"] })) raw.set(entry.key[1], entry.versionstamp);
    await assert.rejects(old.commit(), LeaseLostError);
    for (const [key, versionstamp] of raw) {
      assert.equal((await dbB.get(["agent-session", key])).versionstamp, versionstamp, `${key} was rewritten`);
    }
    const reader = await (await SessionStore.kv(denoKv(dbA), { owner: "r" })).open("s");
    assert.deepEqual(reader.messages(), ["taken over"]);
    assert.equal(reader.version, 1);
  } finally {
    dbA.close();
    dbB.close();
  }
});

test("expiry: the head goes to Deno KV with expireIn, and its expiresAt is kept in the record", async () => {
  const db = await openKv(newFile());
  try {
    const sets = [];
    const spy = {
      get: (key) => db.get(key),
      list: (...args) => db.list(...args),
      atomic() {
        const op = db.atomic();
        const wrapped = {
          check: (...checks) => (op.check(...checks), wrapped),
          set: (key, value, options) => (sets.push({ key: key[1], options }), op.set(key, value, options), wrapped),
          delete: (key) => (op.delete(key), wrapped),
          commit: () => op.commit(),
        };
        return wrapped;
      },
    };
    const store = await SessionStore.kv(denoKv(spy), { owner: "a", idleTtlMs: 60_000 });
    const session = await store.open("ttl");
    const inv = await session.begin();
    inv.appendMessage("hello");
    await inv.commit();
    const heads = sets.filter(({ key }) => key.startsWith("h/"));
    assert.ok(heads.length > 0);
    for (const { options } of heads) {
      assert.ok(options?.expireIn >= 60_000, `head set with ${JSON.stringify(options)}`);
    }
    for (const { key, options } of sets.filter(({ key }) => !key.startsWith("h/"))) {
      assert.equal(options, undefined, `${key} is immutable and has no TTL of its own`);
    }
    assert.ok(session.expiresAt >= session.updatedAt + 60_000 - 1, `expiresAt ${session.expiresAt}`);
    const { sessions } = await (await SessionStore.kv(denoKv(db), { owner: "r" })).list();
    assert.equal(sessions[0].expiresAt, session.expiresAt, "another store reads expiresAt from the record");
  } finally {
    db.close();
  }
});
