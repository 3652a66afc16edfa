// The store's cache of session views, as a server uses it: one store, `open(id)` on every request.
// Session objects of one id share one view; the cache stays within `cache: { maxSessions, maxBytes,
// ttlMs }` whatever the number of sessions opened and Session objects dropped; an evicted session
// reloads on use; dispose and close free at once. Memory figures are in bench/open-by-id.mjs.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LimitExceededError, SessionStore, ValidationError } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { manualClock, rejection, thrown } from "./_helpers.mjs";

const turn = (session, ...messages) =>
  session.invoke((inv) => {
    for (const message of messages) inv.appendMessage(message);
  });

for (const [name, makeStore] of [
  ["memory", (options) => SessionStore.memory(options)],
  ["kv(memoryKv)", (options) => SessionStore.kv(memoryKv(), options)],
]) {
  describe(`cache on ${name}`, () => {
    test("opening by id per request shares one view: frozen reads are the same objects", async () => {
      const store = await makeStore();
      for (let i = 0; i < 300; i++) await turn(await store.open("long"), { i });
      const a = await store.open("long");
      const b = await store.open("long");
      assert.equal(a.version, 300);
      assert.equal(a.messages().length, 300);
      assert.equal(a.messages(), b.messages(), "one parsed, frozen array for both Session objects");
      assert.ok(Object.isFrozen(a.messages()));
      await turn(b, { i: 300 });
      assert.equal(a.version, 301, "a commit through one Session object shows in the other");
      assert.deepEqual(a.messages().at(-1), { i: 300 });
      assert.deepEqual(store.cacheUsage().sessions, 1);
    });

    test("maxSessions bounds the cache; an evicted session reloads on its next async use", async () => {
      const store = await makeStore({ cache: { maxSessions: 5 } });
      const first = await store.open("first");
      await turn(first, "kept");
      for (let i = 0; i < 50; i++) {
        await turn(await store.open(`other-${i}`), i);
        assert.ok(store.cacheUsage().sessions <= 5, JSON.stringify(store.cacheUsage()));
      }
      const error = thrown(() => first.messages());
      assert.ok(error instanceof LimitExceededError, String(error));
      assert.equal(error.code, "LIMIT_EXCEEDED");
      assert.match(error.message, /refresh\(\)/, "the message says what to do");
      assert.equal(first.version, 1, "the head stays readable");
      assert.equal(await first.refresh(), first);
      assert.deepEqual(first.messages(), ["kept"]);
      await turn(first, "more");
      assert.deepEqual((await store.open("first")).messages(), ["kept", "more"]);
    });

    test("maxBytes bounds the cached bytes whatever the number of sessions opened", async () => {
      const maxBytes = 64 * 1024;
      const store = await makeStore({ cache: { maxBytes } });
      const text = "x".repeat(2000);
      for (let i = 0; i < 200; i++) {
        await turn(await store.open(`s-${i}`), text, text);
        assert.ok(store.cacheUsage().bytes <= maxBytes, JSON.stringify(store.cacheUsage()));
      }
      assert.ok(store.cacheUsage().sessions < 200 && store.cacheUsage().sessions > 1);
      assert.deepEqual((await store.open("s-0")).messages(), [text, text], "the oldest reloads");
    });

    test("ttlMs drops a session not used for that long", async () => {
      const now = manualClock();
      const store = await makeStore({ now, cache: { ttlMs: 60_000 } });
      const idle = await store.open("idle");
      await turn(idle, 1);
      now.advance(60_000);
      await turn(await store.open("busy"), 2);
      assert.equal(store.cacheUsage().sessions, 1);
      assert.ok(thrown(() => idle.state()) instanceof LimitExceededError);
      assert.deepEqual((await store.open("idle")).messages(), [1]);
    });

    test("a running invocation keeps its view, whatever else is opened", async () => {
      const store = await makeStore({ cache: { maxSessions: 1 } });
      const held = await store.open("held");
      const inv = await held.begin();
      inv.appendMessage("staged");
      for (let i = 0; i < 5; i++) await turn(await store.open(`o-${i}`), i);
      assert.deepEqual(inv.messages(), ["staged"]);
      await inv.commit();
      assert.deepEqual(held.messages(), ["staged"]);
    });

    test("Symbol.dispose and close() free the cached views at once", async () => {
      const store = await makeStore();
      {
        const session = await store.open("s");
        await turn(session, "a");
        assert.ok(store.cacheUsage().bytes > 0);
        session[Symbol.dispose]();
        assert.deepEqual(store.cacheUsage(), { sessions: 0, bytes: 0 });
      }
      assert.deepEqual((await store.open("s")).messages(), ["a"], "reloaded on use");
      await store.close();
      assert.deepEqual(store.cacheUsage(), { sessions: 0, bytes: 0 });
    });

    test("bad cache options are a ValidationError naming the path", async () => {
      for (const [cache, path] of [
        [{ maxSessions: 0 }, "options.cache.maxSessions"],
        [{ maxBytes: -1 }, "options.cache.maxBytes"],
        [{ ttlMs: 1.5 }, "options.cache.ttlMs"],
        [{ maxSessions: "10" }, "options.cache.maxSessions"],
        ["big", "options.cache"],
      ]) {
        const error = await rejection(makeStore({ cache }));
        assert.ok(error instanceof ValidationError, String(error));
        assert.equal(error.path, path);
      }
    });
  });
}

test("two stores over one memoryKv: a commit by one reaches the other's view by the batches it lacks", async () => {
  const kv = memoryKv();
  const a = await SessionStore.kv(kv, { owner: "a" });
  const b = await SessionStore.kv(kv, { owner: "b" });
  for (let i = 0; i < 20; i++) await turn(await a.open("shared"), i);
  const viewB = await b.open("shared");
  assert.equal(viewB.messages().length, 20);
  await turn(await a.open("shared"), 20);
  const again = await b.open("shared");
  assert.equal(again.version, 21);
  assert.equal(viewB.version, 21, "the earlier Session object of b shares the refreshed view");
  assert.deepEqual(again.messages().at(-1), 20);
});

test("a session deleted and created again under its id is not served from the old view", async () => {
  const kv = memoryKv();
  const a = await SessionStore.kv(kv, { owner: "a" });
  const b = await SessionStore.kv(kv, { owner: "b" });
  await turn(await a.open("s"), "old");
  assert.equal(await b.delete("s"), true);
  await turn(await b.open("s"), "new");
  assert.deepEqual((await a.open("s")).messages(), ["new"]);
});

test("a session deleted and created again through another store within the same millisecond is not served from the old view", async () => {
  // The new head is at version 0 with the deleted one's createdAt, and the other store's view is newer
  // than it: no commit token tells them apart, so that store reads the head again before keeping its view.
  const kv = memoryKv();
  const now = manualClock();
  const a = await SessionStore.kv(kv, { owner: "a", now });
  const b = await SessionStore.kv(kv, { owner: "b", now });
  await turn(await a.open("s", { metadata: { n: 1 } }), "old");
  assert.equal(await b.delete("s"), true);
  await b.open("s", { metadata: { n: 1 } });
  const reopened = await a.open("s", { create: false });
  assert.equal(reopened.version, 0);
  assert.deepEqual(reopened.messages(), [], "a fresh open");
  const inv = await (await a.open("s")).begin();
  assert.deepEqual(inv.messages(), [], "a turn's reads");
  inv.appendMessage("new");
  assert.equal(await inv.commit(), 1);
  assert.deepEqual((await (await SessionStore.kv(kv, { now })).open("s")).messages(), ["new"]);
});

for (const [name, makeStore] of [
  ["memory", (options) => SessionStore.memory(options)],
  ["kv(memoryKv)", (options) => SessionStore.kv(memoryKv(), options)],
]) {
  test(`${name}: a session deleted and created again within the same millisecond through one store starts empty`, async () => {
    // The new head is at version 0 with the deleted one's created_at: only forgetting the old view at the
    // delete (and at the create) tells them apart. The deleted session's Session object is held throughout.
    for (const leaseHeld of [false, true]) {
      const store = await makeStore({ now: manualClock() });
      const old = await store.open("s");
      await old.invoke((inv) => inv.setState("y", 1));
      const held = leaseHeld ? await old.begin() : undefined;
      assert.equal(await store.delete("s"), true);
      await held?.abort().catch(() => {});
      const again = await store.open("s");
      assert.equal(again.version, 0);
      assert.deepEqual(again.state(), {}, `lease held at the delete: ${leaseHeld}`);
      await again.invoke((inv) => inv.setState("x", 1));
      assert.deepEqual(again.state(), { x: 1 });
      assert.deepEqual((await store.open("s", { create: false })).state(), { x: 1 });
      // The deleted session's object, refreshed, shows the session now under its id.
      await old.refresh();
      assert.deepEqual(old.state(), { x: 1 });
    }
  });
}

test("stateValue reads one state key: committed on a Session, staged over committed on an Invocation", async () => {
  const store = await SessionStore.memory();
  const session = await store.open("s");
  await session.invoke((inv) => {
    inv.setState("a", { n: 1 });
    inv.setState("b", [2]);
    inv.setState("x", 1, { agent: "helper" });
  });
  assert.deepEqual(session.stateValue("a"), { n: 1 });
  assert.ok(Object.isFrozen(session.stateValue("a")));
  assert.equal(session.stateValue("missing"), undefined);
  assert.equal(session.stateValue("x"), undefined);
  assert.equal(session.stateValue("x", { agent: "helper" }), 1);
  const inv = await session.begin();
  inv.setState("a", "staged");
  inv.deleteState("b");
  assert.equal(inv.stateValue("a"), "staged");
  assert.equal(inv.stateValue("b"), undefined);
  assert.deepEqual(session.stateValue("b"), [2], "the session shows what is committed");
  await inv.abort();
  assert.ok(thrown(() => session.stateValue("")) instanceof ValidationError);
});

test("close() of a memory store frees its stored sessions at once, not when the garbage collector runs", async () => {
  const store = await SessionStore.memory();
  const value = "x".repeat(4 << 20);
  for (const id of ["a", "b"]) {
    await (await store.open(id)).invoke((inv) => {
      for (let i = 0; i < 4; i++) inv.appendMessage(value.slice(0, (1 << 20) - 16));
    });
  }
  const before = SessionStore.memoryUsage().countedBytes;
  const cached = store.cacheUsage().bytes;
  await store.close();
  const freed = before - SessionStore.memoryUsage().countedBytes;
  assert.ok(freed >= cached + (8 << 20) - 64, `freed ${freed} bytes: the cache's ${cached} and the 8 MiB stored`);
});

test("a closed store refuses with StoreClosedError, its own class and code", async () => {
  const { StoreClosedError, AgentSessionError } = await import("agent-session");
  const store = await SessionStore.memory();
  const session = await store.open("s");
  await turn(session, "a");
  await store.close();
  for (const attempt of [store.open("s"), store.list(), store.delete("s"), session.begin(), session.refresh()]) {
    const error = await rejection(attempt);
    assert.ok(error instanceof StoreClosedError && error instanceof AgentSessionError, String(error));
    assert.equal(error.code, "STORE_CLOSED");
  }
  assert.ok(thrown(() => session.messages()) instanceof StoreClosedError);
  // Calls that read no session are refused too: a listener added now could never be called.
  for (const call of [() => store.onChange(() => {}), () => session.onChange(() => {}), () => session.follow()]) {
    assert.ok(thrown(call) instanceof StoreClosedError, String(call));
  }
  assert.deepEqual(store.cacheUsage(), { sessions: 0, bytes: 0 }, "what close() freed stays readable");
  assert.equal(session.version, 1, "the head stays readable");
});

test("a Session object's synchronous read after its own store deleted the session is a NotFoundError, not a cache limit", async () => {
  const { NotFoundError } = await import("agent-session");
  const store = await SessionStore.kv(memoryKv());
  const session = await store.open("gone");
  await turn(session, "a");
  await store.delete("gone");
  for (const read of [() => session.messages(), () => session.state(), () => session.stateValue("k")]) {
    const error = thrown(read);
    assert.ok(error instanceof NotFoundError, `${error?.name}: ${error?.message}`);
    assert.match(error.message, /was deleted/);
    assert.doesNotMatch(error.message, /cache/);
  }
  await assert.rejects(session.refresh(), NotFoundError);
  // Opened again by id, the new session reads.
  const again = await store.open("gone");
  assert.deepEqual(again.messages(), []);
});

test("a store closed while one of its invocations is open stops renewing that lease: another store takes the session once it runs out; abort() still releases at once", async () => {
  const { StoreClosedError, ConcurrencyError } = await import("agent-session");
  const kv = memoryKv();
  const events = [];
  const closing = await SessionStore.kv(kv, { owner: "closing", leaseMs: 1000, onEvent: (e) => events.push(e.type) });
  const held = await (await closing.open("held")).begin();
  held.appendMessage("never committed");
  await closing.close();
  const afterClose = events.length;
  assert.ok((await rejection(held.commit())) instanceof StoreClosedError, "its commit is refused");
  const other = await (await SessionStore.kv(kv, { owner: "other" })).open("held");
  // Refused while the lease runs, then taken: one attempt a lease's length apart (the heartbeat
  // renews every third of it, so a renewing holder would still hold it).
  assert.ok((await rejection(other.begin())) instanceof ConcurrencyError, "the lease still runs");
  await new Promise((resolve) => setTimeout(resolve, 2200));
  const taken = await other.begin();
  assert.deepEqual(events.slice(afterClose).filter((type) => type === "lease.renewed"), [], "no renewal after close");
  taken.appendMessage("after the lease ran out");
  await taken.commit();
  assert.deepEqual(other.messages(), ["after the lease ran out"]);

  // abort() after close gives the lease back at once.
  const second = await SessionStore.kv(kv, { owner: "second", leaseMs: 60_000 });
  const open = await (await second.open("held")).begin();
  await second.close();
  await open.abort();
  await (await other.begin()).abort();
});

test("a server opening one session by id on every request through 5000 turns (10,000 messages): every message kept, in order, and a fresh store reads them all", { timeout: 120_000 }, async () => {
  const kv = memoryKv();
  const server = await SessionStore.kv(kv, { owner: "server" });
  for (let i = 0; i < 5000; i++) {
    const session = await server.open("long");
    await session.invoke((inv) => {
      inv.appendMessage({ role: "user", i });
      inv.appendMessage({ role: "assistant", i });
    });
  }
  assert.equal(server.cacheUsage().sessions, 1, "one cached view, whatever the number of opens");
  const reader = await SessionStore.kv(kv, { owner: "reader" });
  const session = await reader.open("long", { create: false });
  assert.equal(session.version, 5000);
  const messages = session.messages();
  assert.equal(messages.length, 10_000);
  for (let i = 0; i < 5000; i += 997) {
    assert.deepEqual(messages[2 * i], { role: "user", i });
    assert.deepEqual(messages[2 * i + 1], { role: "assistant", i });
  }
  assert.deepEqual(messages.at(-1), { role: "assistant", i: 4999 });
  const history = await session.history({ from: 4990 });
  assert.equal(history.filter((event) => event.type === "message").length, 22);
});

// Two stores over one KV (two processes), their views, deletes and creates: seeded random sequences of
// turns (messages, state sets and deletes, for the default agent and another; committed or aborted),
// deletes, and reads through a held Session object (refreshed) or a new open, against a model of what
// was committed. A held object of a session deleted since is opened again, as a framework's handle does.
// The clock moves 1 ms a step: a session deleted and created again by other stores within one
// millisecond is the case the engine cannot tell yet (CHANGELOG, "Left").
test("two stores, random turns, deletes and reads (every other trial within one millisecond): every read and a fresh store agree with what was committed", async () => {
  for (let trial = 0; trial < 60; trial++) {
    let seed = 9001 + trial * 7919;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const pick = (list) => list[Math.floor(random() * list.length)];
    const now = manualClock();
    const kv = memoryKv();
    const stores = [await SessionStore.kv(kv, { now, snapshotEvery: 3 }), await SessionStore.kv(kv, { now, snapshotEvery: 3 })];
    const held = new Map();
    const model = new Map(); // id -> { version, messages: { default, a }, state: { default, a } }
    const empty = () => ({ version: 0, messages: { default: [], a: [] }, state: { default: {}, a: {} } });
    const read = (session) => ({
      version: session.version,
      messages: { default: session.messages(), a: session.messages({ agent: "a" }) },
      state: { default: session.state(), a: session.state({ agent: "a" }) },
    });
    for (let step = 0; step < 80; step++) {
      // Every other trial runs within one millisecond: a session deleted and created again has the
      // deleted one's createdAt (trial 3 found a stale view served for it).
      if (trial % 2 === 0) now.advance(1);
      const where = `trial ${trial}, step ${step}`;
      const at = random() < 0.5 ? 0 : 1;
      const id = pick(["s1", "s2"]);
      const key = `${at}/${id}`;
      const roll = random();
      if (roll < 0.6) {
        let session = held.get(key);
        if (session === undefined || random() < 0.3) held.set(key, (session = await stores[at].open(id)));
        let inv;
        try {
          inv = await session.begin();
        } catch (error) {
          if (error?.code !== "NOT_FOUND") throw error;
          held.set(key, (session = await stores[at].open(id)));
          inv = await session.begin();
        }
        const next = structuredClone(model.get(id) ?? empty());
        for (let i = 0, n = 1 + Math.floor(random() * 4); i < n; i++) {
          const agent = pick(["default", "a"]);
          const options = agent === "a" ? { agent } : undefined;
          const op = random();
          if (op < 0.5) {
            inv.appendMessage(`m${step}.${i}`, options);
            next.messages[agent].push(`m${step}.${i}`);
          } else if (op < 0.8) {
            const [k, v] = [pick(["k1", "k2"]), Math.floor(random() * 100)];
            inv.setState(k, v, options);
            next.state[agent][k] = v;
          } else {
            const k = pick(["k1", "k2"]);
            inv.deleteState(k, options);
            delete next.state[agent][k];
          }
        }
        if (random() < 0.8) {
          next.version = await inv.commit();
          model.set(id, next);
        } else {
          await inv.abort();
          if (!model.has(id)) model.set(id, empty()); // opened (created) and nothing committed
        }
      } else if (roll < 0.7) {
        assert.equal(await stores[at].delete(id), model.has(id), `${where}: delete`);
        model.delete(id);
      } else {
        const session =
          random() < 0.5 && held.has(key)
            ? await held.get(key).refresh().catch((error) => error)
            : await stores[at].open(id, { create: false }).catch((error) => error);
        if (session instanceof Error) {
          assert.equal(session.code, "NOT_FOUND", `${where}: ${session.message}`);
          assert.ok(!model.has(id) || held.has(key), `${where}: read ${id} refused`);
          continue;
        }
        if (model.has(id)) assert.deepEqual(read(session), model.get(id), `${where}: store ${at} reads ${id}`);
      }
    }
    const fresh = await SessionStore.kv(kv, { now });
    for (const [id, expected] of model) assert.deepEqual(read(await fresh.open(id, { create: false })), expected, `trial ${trial}: a fresh store reads ${id}`);
  }
});

test("a hot session's counted bytes follow what it holds: a rewritten or deleted state value and compacted messages are taken off (a fresh load counts the same), and the instance's count stays flat", async () => {
  const value = "v".repeat(1000);
  const writes = {
    "one key rewritten": (inv, i) => inv.setState("k", value + i),
    "a key set and deleted": (inv, i) => (i % 2 ? inv.deleteState("k") : inv.setState("k", value + i)),
    "messages compacted": (inv, i) => {
      inv.appendMessage(value + i);
      if (i % 10 === 9) inv.compact({ before: inv.messages().length - 1, summary: [{ summary: i }] });
    },
    "five keys rewritten, another agent": (inv, i) => inv.setState(`k${i % 5}`, value + i, { agent: `agent-${i % 2}` }),
  };
  for (const [name, write] of Object.entries(writes)) {
    const kv = memoryKv();
    const store = await SessionStore.kv(kv);
    const session = await store.open("hot");
    const counted = [];
    for (let i = 0; i < 400; i++) {
      await session.invoke((inv) => write(inv, i));
      if (i === 199 || i === 399) counted.push(store.cacheUsage().bytes);
    }
    const fresh = await SessionStore.kv(kv);
    await fresh.open("hot");
    assert.equal(store.cacheUsage().bytes, fresh.cacheUsage().bytes, `${name}: the hot store counts what a fresh load counts`);
    assert.ok(counted[1] <= counted[0] + value.length + 200, `${name}: the count does not grow with the writes (${counted})`);
    await store.close();
    await fresh.close();
  }
});
