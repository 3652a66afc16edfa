// A store's cached view of a session against loads that race its own commits and another store's
// delete. Every interleaving is forced by holding one KV call (no timing): a load that read a head
// before a commit of the same store returned, and a whole load of a session deleted (and created
// again under its id) while it was read. What the view shows, and what the next commit stores (a
// snapshot of the view), must be what a fresh store reads.
import assert from "node:assert/strict";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { test } from "./_helpers.mjs";

/** A HostKv over `base` whose calls can be held: `hold(match)` pauses the first call matching it, or,
 * with `after: true`, its reply, until `release()`. */
function holdableKv(base) {
  const holds = [];
  const call = (name) => async (...args) => {
    const hold = holds.find((h) => !h.hit && h.match(name, args[0]));
    if (hold === undefined) return base[name](...args);
    hold.hit = true;
    if (hold.after) {
      const result = await base[name](...args);
      hold.arrived();
      await hold.released;
      return result;
    }
    hold.arrived();
    await hold.released;
    return base[name](...args);
  };
  return {
    kv: { capabilities: base.capabilities, get: call("get"), put: call("put"), delete: call("delete"), list: call("list") },
    hold(match, { after = false } = {}) {
      const hold = { match, after, hit: false };
      hold.reached = new Promise((resolve) => (hold.arrived = resolve));
      hold.released = new Promise((resolve) => (hold.release = resolve));
      holds.push(hold);
      return hold;
    },
  };
}

const texts = (session) => session.messages().map((message) => message.m);
const stored = async (base, id) => texts(await (await SessionStore.kv(base)).open(id, { create: false }));

async function turn(session, ...messages) {
  const inv = await session.begin();
  for (const m of messages) inv.appendMessage({ m });
  return inv.commit();
}

test("a refresh that reads a commit's head before the commit returns does not take the turn in twice", async () => {
  const base = memoryKv();
  const kv = holdableKv(base);
  const store = await SessionStore.kv(kv.kv, { snapshotEvery: 4 });
  const a = await store.open("x");
  await turn(a, "m1");
  await turn(a, "m2");
  const inv = await a.begin();
  inv.appendMessage({ m: "m3" });
  const reply = kv.hold((op, key) => op === "put" && key.startsWith("h/"), { after: true });
  const committing = inv.commit();
  await reply.reached; // the head names version 3; the commit has not resumed
  await (await store.open("x")).refresh(); // another request of the same server
  reply.release();
  assert.equal(await committing, 3);
  assert.deepEqual(texts(a), ["m1", "m2", "m3"], "the view holds the turn once");
  // The next commit writes a snapshot of the view: what is stored stays right.
  await turn(a, "m4");
  assert.deepEqual(await stored(base, "x"), ["m1", "m2", "m3", "m4"]);
  assert.deepEqual(texts(a), ["m1", "m2", "m3", "m4"]);
});

test("a whole load of a session deleted meanwhile does not land in the view of the one created again", async () => {
  const base = memoryKv();
  const kvA = holdableKv(base);
  const kvB = holdableKv(base);
  // A snapshots every commit, so that a wrong view would reach what is stored.
  const serverA = await SessionStore.kv(kvA.kv, { snapshotEvery: 1, owner: "A" });
  const serverB = await SessionStore.kv(kvB.kv, { snapshotEvery: 4, owner: "B" });
  const kept = await serverA.open("chat");
  await turn(kept, "old1");
  await turn(kept, "old2");
  const onB = await serverB.open("chat");
  for (let i = 3; i <= 7; i++) await turn(onB, `old${i}`);

  // 1. A request on A opens the chat: A's view (version 2) is behind B's snapshot (version 4), so the
  //    open is a whole load, held at its first record read.
  const load = kvA.hold((op, key) => op === "get" && key.startsWith("s/"));
  const staleOpen = serverA.open("chat");
  await load.reached;
  // 2. B deletes the chat (held after the head is gone, before the records go) and opens it again.
  const recordsGo = kvB.hold((op) => op === "list");
  const deleting = serverB.delete("chat");
  await recordsGo.reached;
  await serverB.open("chat");
  // 3. Another request on A opens the new session and commits, held at its batch write.
  const again = await serverA.open("chat");
  assert.deepEqual(texts(again), []);
  const inv = await again.begin();
  inv.appendMessage({ m: "new1" });
  const batchWrite = kvA.hold((op, key) => op === "put" && key.startsWith("e/"));
  const writing = inv.commit();
  await batchWrite.reached;
  // 4. The load of step 1 ends, then the commit of step 3.
  load.release();
  await staleOpen;
  batchWrite.release();
  await writing;
  recordsGo.release();
  await deleting;

  assert.deepEqual(texts(await serverA.open("chat")), ["new1"], "A's view after the commit");
  assert.deepEqual(await stored(base, "chat"), ["new1"]);
  await turn(kept, "new2"); // writes a snapshot of A's view
  assert.deepEqual(texts(await serverA.open("chat")), ["new1", "new2"]);
  assert.deepEqual(await stored(base, "chat"), ["new1", "new2"], "what is stored holds none of the deleted chat");
});

test("a refresh or a begin that reads records a delete took meanwhile reports the session deleted", async () => {
  const base = memoryKv();
  const kvA = holdableKv(base);
  const serverA = await SessionStore.kv(kvA.kv, { owner: "A" });
  const serverB = await SessionStore.kv(base, { owner: "B" });
  for (const call of ["refresh", "begin"]) {
    const id = `chat-${call}`;
    const a = await serverA.open(id);
    await turn(a, "one");
    await turn(await serverB.open(id), "two"); // A's view lacks version 2
    const batchRead = kvA.hold((op, key) => op === "get" && key.startsWith("e/"));
    const reading = call === "refresh" ? a.refresh() : a.begin();
    await batchRead.reached;
    assert.equal(await serverB.delete(id), true);
    batchRead.release();
    await assert.rejects(reading, (error) => error.code === "NOT_FOUND", `${call} after the delete`);
    assert.equal((await serverB.list({ prefix: id })).sessions.length, 0, "nothing was written back");
  }
});

test("at(v) of the version its head read named is version v, though a commit moved the view meanwhile", async () => {
  const base = memoryKv();
  const kv = holdableKv(base);
  const store = await SessionStore.kv(kv.kv);
  const session = await store.open("at-race");
  for (const m of ["m1", "m2", "m3"]) await turn(session, m);
  const inv = await session.begin();
  inv.appendMessage({ m: "m4" });
  const headRead = kv.hold((op, key) => op === "get" && key.startsWith("h/"), { after: true });
  const at3 = session.at(3);
  await headRead.reached; // at(3) has read a head at version 3
  assert.equal(await inv.commit(), 4); // the view is at version 4
  headRead.release();
  const view = await at3;
  assert.equal(view.version, 3);
  assert.deepEqual(view.messages().map((message) => message.m), ["m1", "m2", "m3"]);
  // A fork at that version, the same way.
  const inv5 = await session.begin();
  inv5.appendMessage({ m: "m5" });
  const forkRead = kv.hold((op, key) => op === "get" && key.startsWith("h/"), { after: true });
  const forking = session.fork({ id: "at-race-fork" });
  await forkRead.reached;
  assert.equal(await inv5.commit(), 5);
  forkRead.release();
  const fork = await forking;
  assert.deepEqual(texts(fork), ["m1", "m2", "m3", "m4"]);
  const forked = (await fork.history()).find((event) => event.type === "forked");
  assert.deepEqual({ ...forked.data }, { from: "at-race", version: 4 });
});

test("of two forks into one new id, one is refused and the other's session holds its copy alone", async () => {
  const base = memoryKv();
  const kvB = holdableKv(base);
  const storeA = await SessionStore.kv(base, { owner: "A" });
  const storeB = await SessionStore.kv(kvB.kv, { owner: "B" });
  const onA = await storeA.open("origin");
  for (const m of ["m1", "m2", "m3"]) await turn(onA, m);
  const onB = await storeB.open("origin", { create: false });
  // B's first call on the new id is done, its reply held; A forks into that id meanwhile.
  const held = kvB.hold((op, key) => key.startsWith("h/dup"), { after: true });
  const settle = (promise) => promise.then((session) => ({ session }), (error) => ({ error }));
  const forkB = settle(onB.fork({ id: "dup", at: 2 }));
  await held.reached;
  const forkA = await settle(onA.fork({ id: "dup", at: 3 }));
  held.release();
  const results = [forkA, await forkB];
  const won = results.filter((result) => result.session !== undefined);
  const lost = results.filter((result) => result.error !== undefined);
  assert.equal(won.length, 1, "exactly one fork into one id succeeds");
  assert.equal(lost[0].error.code, "INVALID_INPUT");
  assert.match(lost[0].error.message, /already exists/);
  const winner = won[0].session;
  const dup = await (await SessionStore.kv(base)).open("dup", { create: false });
  assert.deepEqual(texts(dup), texts(winner));
  const forked = (await dup.history()).filter((event) => event.type === "forked");
  assert.equal(forked.length, 1, "one fork's copy, not two merged");
  assert.equal(texts(dup).length, forked[0].data.version);
});

test("a fork over maxCommitBytes is refused before anything is written; the id stays free", async () => {
  const base = memoryKv();
  const store = await SessionStore.kv(base, { limits: { maxCommitBytes: 1000 } });
  const session = await store.open("big");
  for (let i = 0; i < 5; i++) await turn(session, "x".repeat(300));
  await assert.rejects(session.fork({ id: "copy" }), { code: "LIMIT_EXCEEDED" });
  assert.deepEqual(
    (await store.list()).sessions.map((info) => info.id),
    ["big"],
  );
  await assert.rejects(store.open("copy", { create: false }), { code: "NOT_FOUND" });
  const copy = await session.fork({ id: "copy", at: 2 });
  assert.equal(texts(copy).length, 2);
});
