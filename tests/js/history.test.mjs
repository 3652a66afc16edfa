// History, time travel (at), snapshots, fork and multi-agent sessions.
import { describe as suite } from "node:test";
import assert from "node:assert/strict";
import { SessionStore, ValidationError, NotFoundError, StorageError, LimitExceededError } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { rejection, assertError, eventTypes, plain, clockStore, callAsync, assertDeepFrozen, kvWithPut, T0, test } from "./_helpers.mjs";

/** Three commits by two agents at known times: the fixture of the history tests. */
async function threeCommits() {
  const fixture = await clockStore();
  const { store, now } = fixture;
  const session = await store.open("history");
  now.advance(100);
  await session.invoke(
    (inv) => {
      inv.appendMessage({ role: "user", content: "hi" });
      inv.setState("mood", "curious");
    },
    { agent: "planner" },
  );
  now.advance(100);
  await session.invoke((inv) => {
    inv.appendMessage({ role: "assistant", content: "hello" });
    inv.appendMessage({ role: "tool", content: "42" }, { agent: "coder" });
  });
  now.advance(100);
  await session.invoke((inv) => {
    inv.deleteState("mood", { agent: "planner" });
    inv.setState("answer", 42);
  });
  return { ...fixture, session };
}

suite("history", () => {
  test("history() lists every event in commit order with version, at, invocation and agent", async () => {
    const { session } = await threeCommits();
    const history = await session.history();
    assert.deepEqual(eventTypes(history), [
      "0:created",
      "1:message",
      "1:state.set",
      "2:message",
      "2:message",
      "3:state.delete",
      "3:state.set",
    ]);
    assert.deepEqual(
      history.map((e) => e.at),
      [T0, T0 + 100, T0 + 100, T0 + 200, T0 + 200, T0 + 300, T0 + 300],
    );
    assert.deepEqual(
      history.slice(1).map((e) => e.agent),
      ["planner", "planner", "default", "coder", "planner", "default"],
    );
    assert.deepEqual(plain(history[1].data), { role: "user", content: "hi" });
    assert.equal(history[2].key, "mood");
    assert.equal(history[2].data, "curious");
    assert.equal(history[5].key, "mood");
    assert.equal(history[6].key, "answer");
    assert.equal(history[6].data, 42);
    // One invocation id per commit, a different one per commit.
    const byVersion = new Map();
    for (const e of history.slice(1)) {
      assert.equal(typeof e.invocation, "string");
      assert.ok(e.invocation.length > 0);
      byVersion.set(e.version, new Set([...(byVersion.get(e.version) ?? []), e.invocation]));
    }
    for (const ids of byVersion.values()) assert.equal(ids.size, 1);
    assert.equal(new Set([...byVersion.values()].map((ids) => [...ids][0])).size, 3);
    assertDeepFrozen(history);
  });

  test("history({ from, to }) selects versions inclusively", async () => {
    const { session } = await threeCommits();
    assert.deepEqual(eventTypes(await session.history({ from: 1, to: 2 })), [
      "1:message",
      "1:state.set",
      "2:message",
      "2:message",
    ]);
    assert.deepEqual(eventTypes(await session.history({ from: 2 })), [
      "2:message",
      "2:message",
      "3:state.delete",
      "3:state.set",
    ]);
    assert.deepEqual(eventTypes(await session.history({ to: 1 })), ["0:created", "1:message", "1:state.set"]);
    assert.deepEqual(eventTypes(await session.history({ from: 3, to: 3 })), ["3:state.delete", "3:state.set"]);
    assert.deepEqual(eventTypes(await session.history({ from: 0, to: 0 })), ["0:created"]);
    assert.deepEqual(plain(await session.history({})), plain(await session.history()));
  });

  test("bad versions: ValidationError; a version above the current one: NotFoundError", async () => {
    const { session } = await threeCommits();
    const invalid = [{ from: -1 }, { to: -1 }, { from: 1.5 }, { to: 2.5 }, { from: 3, to: 1 }, { from: NaN }, { from: "1" }, { to: Infinity }];
    for (const options of invalid) {
      const error = await rejection(callAsync(() => session.history(options)), JSON.stringify(options));
      assertError(error, ValidationError, "INVALID_INPUT", `history(${String(Object.entries(options))})`);
    }
    for (const options of [{ to: 4 }, { from: 1, to: 99 }, { from: 4 }, { from: 99 }]) {
      const error = await rejection(session.history(options));
      assertError(error, NotFoundError, "NOT_FOUND", `history(${JSON.stringify(options)})`);
    }
    for (const version of [-1, 1.5, NaN, "2", Infinity, null]) {
      const error = await rejection(callAsync(() => session.at(version)), `at(${String(version)})`);
      assertError(error, ValidationError, "INVALID_INPUT", `at(${String(version)})`);
    }
    const error = await rejection(session.at(4));
    assertError(error, NotFoundError, "NOT_FOUND");
  });
});

suite("time travel: at(v)", () => {
  test("at(v) is the state as of each version, per agent, read-only", async () => {
    const { session } = await threeCommits();
    const v0 = await session.at(0);
    assert.equal(v0.id, "history");
    assert.equal(v0.version, 0);
    assert.equal(v0.status, "idle");
    assert.deepEqual(plain(v0.messages()), []);
    assert.deepEqual(plain(v0.state({ agent: "planner" })), {});

    const v1 = await session.at(1);
    assert.equal(v1.version, 1);
    assert.deepEqual(plain(v1.messages()), []);
    assert.deepEqual(plain(v1.messages({ agent: "planner" })), [{ role: "user", content: "hi" }]);
    assert.deepEqual(plain(v1.state({ agent: "planner" })), { mood: "curious" });

    const v2 = await session.at(2);
    assert.deepEqual(plain(v2.messages()), [{ role: "assistant", content: "hello" }]);
    assert.deepEqual(plain(v2.messages({ agent: "coder" })), [{ role: "tool", content: "42" }]);
    assert.deepEqual(plain(v2.state({ agent: "planner" })), { mood: "curious" });
    assert.deepEqual(plain(v2.state()), {});

    const v3 = await session.at(3);
    assert.deepEqual(plain(v3.state({ agent: "planner" })), {});
    assert.deepEqual(plain(v3.state()), { answer: 42 });
    assert.deepEqual(plain(v3.messages()), plain(session.messages()));

    for (const view of [v0, v1, v2, v3]) {
      assertDeepFrozen(view.messages({ agent: "planner" }));
      assertDeepFrozen(view.state({ agent: "planner" }));
    }
    // Views are not moved by later commits.
    await session.invoke((inv) => inv.appendMessage("later"));
    assert.deepEqual(plain(v2.messages()), [{ role: "assistant", content: "hello" }]);
    assert.equal(v3.version, 3);
  });

  test("at(v).status: interrupted when v ended with an interrupt, closed when with close, else idle", async () => {
    const { store } = await clockStore();
    const session = await store.open("view-status");
    await session.invoke((inv) => inv.appendMessage(1)); // v1
    await (await session.begin()).interrupt("q", "p"); // v2
    await session.invoke((inv) => inv.appendMessage(3), { resume: "a" }); // v3
    await (await session.begin()).interrupt("q2"); // v4
    await session.close(); // v5
    const statuses = [];
    for (let v = 0; v <= 5; v++) statuses.push((await session.at(v)).status);
    assert.deepEqual(statuses, ["idle", "idle", "interrupted", "idle", "interrupted", "closed"]);
  });
});

test("at(v).status is the status v's commit left, whether or not v is the latest, and stays so (a lease, an expiry)", async () => {
  const { store, now } = await clockStore({ leaseMs: 1000 });
  const session = await store.open("view-status-stays", { idleTtlMs: 10_000 });
  await session.invoke((inv) => inv.appendMessage("a")); // v1
  const inv = await session.begin();
  inv.appendMessage("b");
  await inv.checkpoint(); // v2, the turn still running
  assert.equal(session.status, "running");
  const read = async () => [(await session.at(1)).status, (await session.at(2)).status];
  assert.deepEqual(await read(), ["idle", "idle"], "while the turn runs");
  now.advance(2000); // the lease lapses
  assert.deepEqual(await read(), ["idle", "idle"], "once its lease ran out");
  now.advance(20_000); // the session expires
  assert.equal((await store.open("view-status-stays")).status, "expired");
  assert.deepEqual(await read(), ["idle", "idle"], "once the session expired");
});

test("at(v).status of a version a stopped resumed turn ended (its holder aborted) is still interrupted once it is older", async () => {
  const { store } = await clockStore();
  const session = await store.open("view-status-stopped-resume");
  await session.invoke((inv) => inv.appendMessage("ask")); // v1
  await (await session.begin()).interrupt("approve?"); // v2
  const resumed = await session.begin({ resume: "yes" });
  const stopping = (await store.open("view-status-stopped-resume")).stop({ reason: "user", graceMs: 30_000 });
  await new Promise((resolve) => (resumed.signal.aborted ? resolve() : resumed.signal.addEventListener("abort", resolve)));
  await resumed.abort(); // v3: the stopped event alone; the interrupt still waits
  assert.equal((await stopping).outcome, "stopped");
  assert.equal(session.version, 3);
  assert.equal((await session.at(3)).status, "interrupted", "while v3 is the latest");
  await session.invoke((inv) => inv.appendMessage("done"), { resume: "yes" }); // v4
  const statuses = [];
  for (let v = 1; v <= 4; v++) statuses.push((await session.at(v)).status);
  assert.deepEqual(statuses, ["idle", "interrupted", "interrupted", "idle"]);
});

suite("snapshots", () => {
  test("snapshotEvery: 3 with 10 commits: reads, history and at() agree across snapshot boundaries", async () => {
    const { store, events } = await clockStore({ snapshotEvery: 3 });
    const writer = await store.open("snap");
    for (let i = 0; i < 10; i++) {
      await writer.invoke((inv) => {
        inv.appendMessage({ n: i });
        inv.setState("n", i);
        if (i % 4 === 0) inv.setState(`k${i}`, i, { agent: "side" });
        if (i === 5) inv.deleteState("k0", { agent: "side" });
      });
    }
    assert.equal(writer.version, 10);
    const snapshots = events.filter((e) => e.type === "snapshot" && e.session === "snap").map((e) => e.version);
    assert.deepEqual(snapshots, [3, 6, 9]);

    const expected = (v) => ({
      messages: Array.from({ length: v }, (_, i) => ({ n: i })),
      state: v === 0 ? {} : { n: v - 1 },
      side: Object.fromEntries(
        [0, 4, 8].filter((i) => i < v && !(i === 0 && v > 5)).map((i) => [`k${i}`, i]),
      ),
    });

    // A new Session object loads from the latest snapshot plus the batches after it.
    const reader = await store.open("snap");
    assert.notEqual(reader, writer);
    assert.equal(reader.version, 10);
    assert.deepEqual(plain(reader.messages()), expected(10).messages);
    assert.deepEqual(plain(reader.state()), expected(10).state);
    assert.deepEqual(plain(reader.state({ agent: "side" })), expected(10).side);

    const history = await reader.history();
    assert.equal(history.filter((e) => e.type === "message").length, 10);
    assert.deepEqual(
      [...new Set(history.map((e) => e.version))],
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.deepEqual(
      history.filter((e) => e.type === "message").map((e) => e.data.n),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    for (const [from, to] of [
      [2, 4],
      [3, 3],
      [4, 7],
      [6, 10],
    ]) {
      const part = await reader.history({ from, to });
      assert.deepEqual(
        part.filter((e) => e.type === "message").map((e) => e.data.n),
        Array.from({ length: to - from + 1 }, (_, i) => from + i - 1),
        `history(${from}..${to})`,
      );
    }
    for (let v = 0; v <= 10; v++) {
      const view = await reader.at(v);
      assert.equal(view.version, v);
      assert.deepEqual(plain(view.messages()), expected(v).messages, `at(${v}).messages()`);
      assert.deepEqual(plain(view.state()), expected(v).state, `at(${v}).state()`);
      assert.deepEqual(plain(view.state({ agent: "side" })), expected(v).side, `at(${v}).state(side)`);
    }
    // And the writer, refreshed, agrees.
    assert.equal(await writer.refresh(), writer);
    assert.deepEqual(plain(writer.messages()), expected(10).messages);
  });
});

suite("fork", () => {
  test("fork() copies the latest state into a new session at version 1; the source is unchanged", async () => {
    const { store } = await clockStore();
    const source = await store.open("fork-source");
    await source.invoke((inv) => {
      inv.appendMessage("m1");
      inv.setState("a", 1);
      inv.appendMessage("side-1", { agent: "side" });
    });
    await source.invoke((inv) => {
      inv.appendMessage("m2");
      inv.setState("b", { deep: [true] });
    });
    const sourceHistory = plain(await source.history());
    const fork = await callAsync(() => source.fork());
    assert.notEqual(fork.id, source.id);
    assert.match(fork.id, /^[A-Za-z0-9_-]{22,}$/);
    assert.equal(fork.version, 1);
    assert.equal(fork.status, "idle");
    assert.deepEqual(plain(fork.messages()), ["m1", "m2"]);
    assert.deepEqual(plain(fork.state()), { a: 1, b: { deep: [true] } });
    assert.deepEqual(plain(fork.messages({ agent: "side" })), ["side-1"]);

    const history = await fork.history();
    assert.equal(history[0].version, 0);
    assert.equal(history[0].type, "created");
    assert.equal(history[1].version, 1);
    assert.equal(history[1].type, "forked");
    assert.deepEqual(plain(history[1].data), { from: "fork-source", version: 2 });
    const copied = history.slice(2);
    assert.ok(copied.every((e) => e.version === 1), "the copy is in version 1");
    assert.ok(copied.every((e) => e.type === "message" || e.type === "state.set"));
    assert.deepEqual(
      copied.filter((e) => e.type === "message" && e.agent === "default").map((e) => e.data),
      ["m1", "m2"],
    );
    assert.deepEqual(
      copied.filter((e) => e.type === "state.set").map((e) => `${e.agent}:${e.key}`).sort(),
      ["default:a", "default:b"],
    );

    // Source unchanged; the two evolve separately.
    assert.equal(source.version, 2);
    assert.deepEqual(plain(await source.history()), sourceHistory);
    await fork.invoke((inv) => inv.appendMessage("only in fork"));
    assert.deepEqual(plain((await source.refresh()).messages()), ["m1", "m2"]);
    assert.deepEqual(plain(fork.messages()), ["m1", "m2", "only in fork"]);
    const reopened = await store.open(fork.id, { create: false });
    assert.equal(reopened.version, 2);
  });

  test("fork({ at }) copies the state as of that version; fork({ id }) names the new session", async () => {
    const { store } = await clockStore();
    const source = await store.open("fork-at");
    for (const m of ["a", "b", "c"]) await source.invoke((inv) => inv.appendMessage(m));
    const fork = await source.fork({ at: 2, id: "fork-at/child" });
    assert.equal(fork.id, "fork-at/child");
    assert.equal(fork.version, 1);
    assert.deepEqual(plain(fork.messages()), ["a", "b"]);
    const forked = (await fork.history()).find((e) => e.type === "forked");
    assert.deepEqual(plain(forked.data), { from: "fork-at", version: 2 });
    const viaOpen = await store.open("fork-at/child", { create: false });
    assert.deepEqual(plain(viaOpen.messages()), ["a", "b"]);
    const empty = await source.fork({ at: 0 });
    assert.equal(empty.version, 1);
    assert.deepEqual(plain(empty.messages()), []);
    assert.deepEqual(eventTypes(await empty.history()), ["0:created", "1:forked"]);
    await assert.rejects(source.fork({ at: 9 }), NotFoundError);
    await assert.rejects(source.fork({ id: "" }), ValidationError);
    assert.equal(source.version, 3);
  });

  test("fork of an interrupted session starts idle, without the pending interrupt", async () => {
    const { store } = await clockStore();
    const source = await store.open("fork-interrupted");
    await session_interrupt(source);
    const fork = await source.fork();
    assert.equal(fork.status, "idle");
    assert.equal(fork.pendingInterrupt(), null);
    assert.deepEqual(plain(fork.messages()), ["before the question"]);
    assert.equal(source.status, "interrupted");
  });
});

suite("fork is one commit", () => {
  /** A memoryKv whose writes fail from the `failAt`-th one under `id` on (the keys of a session carry its id). */
  function failingKv(id) {
    const base = memoryKv();
    const state = { failAt: Infinity, writes: 0 };
    const mine = (key) => key.includes(id);
    const kv = kvWithPut(base, async (key, value, options) => {
      if (mine(key) && ++state.writes >= state.failAt) throw new Error("disk full (injected)");
      return base.put(key, value, options);
    });
    return { kv, state };
  }

  test("a fork whose write fails leaves no session under its id, and the same id can be forked again", async () => {
    for (let failAt = 1; failAt <= 4; failAt++) {
      const { kv, state } = failingKv("child");
      const store = await SessionStore.kv(kv);
      const source = await store.open("parent");
      await source.invoke((inv) => {
        inv.appendMessage("hello");
        inv.setState("k", 1);
      });
      state.failAt = failAt;
      let failed = null;
      try {
        await source.fork({ id: "child" });
      } catch (error) {
        failed = error;
      }
      state.failAt = Infinity;
      const other = await SessionStore.kv(kv);
      if (failed) {
        assertError(failed, StorageError, "STORAGE", `the fork failing at write ${failAt}`);
        await assert.rejects(other.open("child", { create: false }), NotFoundError);
        const retried = await source.fork({ id: "child" });
        assert.equal(retried.version, 1);
      }
      // Whatever failed, the id holds the whole fork.
      const child = await other.open("child", { create: false });
      assert.equal(child.version, 1);
      assert.equal(child.status, "idle");
      assert.deepEqual(plain(child.messages()), ["hello"]);
      assert.deepEqual(eventTypes(await child.history()), ["0:created", "1:forked", "1:message", "1:state.set"]);
    }
  });

  test("a fork whose head write fails leaves no session under its id; one whose head landed before the failure resolves", async () => {
    for (const landed of [false, true]) {
      const base = memoryKv();
      let failHead = false;
      const kv = kvWithPut(base, async (key, value, options) => {
        if (failHead && key.startsWith("h/") && key.includes("child")) {
          failHead = false;
          if (landed) await base.put(key, value, options);
          throw new Error("connection reset (injected)");
        }
        return base.put(key, value, options);
      });
      const store = await SessionStore.kv(kv);
      const source = await store.open("parent");
      await source.invoke((inv) => inv.appendMessage("hello"));
      failHead = true;
      const keysUnder = async () => (await base.list("")).keys.filter((key) => key.includes("child"));
      if (landed) {
        const fork = await source.fork({ id: "child" });
        assert.equal(fork.version, 1);
        assert.deepEqual(plain(fork.messages()), ["hello"]);
      } else {
        assertError(await rejection(source.fork({ id: "child" })), StorageError, "STORAGE");
        // No session: its records (a head write that timed out could still land) stay, named by no
        // head, until the id's next delete.
        assert.deepEqual((await keysUnder()).filter((key) => key.startsWith("h/")), [], "no head under the failed fork's id");
        await assert.rejects((await SessionStore.kv(base)).open("child", { create: false }), NotFoundError);
        assert.equal((await source.fork({ id: "child" })).version, 1);
      }
      const child = await (await SessionStore.kv(base)).open("child", { create: false });
      assert.deepEqual(eventTypes(await child.history()), ["0:created", "1:forked", "1:message"]);
    }
  });

  test("a server opening the fork's id by id never sees it before its commit", async () => {
    const base = memoryKv();
    let peek = null;
    const kv = kvWithPut(base, async (key, value, options) => {
      // Between any two writes of the fork, another store opens its id (create: false).
      if (key.includes("child") && peek) await peek();
      return base.put(key, value, options);
    });
    const store = await SessionStore.kv(kv);
    const server = await SessionStore.kv(kv);
    const source = await store.open("parent");
    await source.invoke((inv) => inv.appendMessage("hello"));
    const seen = [];
    peek = async () => {
      try {
        const s = await server.open("child", { create: false });
        seen.push(`${s.version}:${JSON.stringify(s.messages())}`);
      } catch (error) {
        assertError(error, NotFoundError, "NOT_FOUND");
        seen.push("absent");
      }
    };
    const fork = await source.fork({ id: "child" });
    peek = null;
    assert.ok(seen.length > 0, "the fork wrote under its id");
    assert.deepEqual(seen.filter((s) => s !== "absent"), [], `seen mid-fork: ${seen}`);
    assert.equal(fork.version, 1);
  });

  test("a fork into an id another store creates meanwhile is refused and leaves none of its records", async () => {
    const base = memoryKv();
    let race = null;
    const kv = kvWithPut(base, async (key, value, options) => {
      // At the fork's first write under its id, another store creates that id (a server's open by id).
      if (key.includes("child") && race) {
        const go = race;
        race = null;
        await go();
      }
      return base.put(key, value, options);
    });
    const store = await SessionStore.kv(kv);
    const server = await SessionStore.kv(kv);
    const source = await store.open("parent");
    await source.invoke((inv) => inv.appendMessage("hello"));
    race = async () => {
      const theirs = await server.open("child");
      assert.equal(theirs.version, 0);
    };
    const error = await rejection(source.fork({ id: "child" }));
    assertError(error, ValidationError, "INVALID_INPUT");
    assert.equal(error.path, "id");
    const keys = (await base.list("")).keys.filter((key) => key.includes("child"));
    assert.equal(keys.length, 1, `only the other store's head is under the id: ${keys}`);
    const theirs = await server.open("child", { create: false });
    assert.deepEqual(eventTypes(await theirs.history()), ["0:created"]);
  });

  test("a fork over maxCommitBytes names the fork and what to do, and writes nothing", async () => {
    const store = await SessionStore.memory({ limits: { maxCommitBytes: 1000 } });
    const source = await store.open("long");
    for (let i = 0; i < 4; i++) await source.invoke((inv) => inv.appendMessage("x".repeat(400)));
    const error = await rejection(source.fork({ id: "copy" }));
    assertError(error, LimitExceededError, "LIMIT_EXCEEDED");
    assert.match(error.message, /a fork, one commit of the messages and state it copies/);
    assert.match(error.message, /fork at an earlier version, or compact the session first/);
    await assert.rejects(store.open("copy", { create: false }), NotFoundError);
    const early = await source.fork({ id: "copy", at: 2 });
    assert.equal(early.messages().length, 2);
  });

  test("history()'s created event is the metadata of the session it read, after a delete and re-create elsewhere", async () => {
    const kv = memoryKv();
    const a = await SessionStore.kv(kv);
    const b = await SessionStore.kv(kv);
    const held = await a.open("x", { metadata: { owner: "alice" } });
    await held.invoke((inv) => inv.appendMessage("alice's"));
    await b.delete("x");
    const again = await b.open("x", { metadata: { owner: "bob" } });
    await again.invoke((inv) => inv.appendMessage("bob's"));
    const history = await held.history();
    assert.deepEqual(plain(history[0].data), { owner: "bob" });
    assert.deepEqual(plain(history.slice(1).map((event) => event.data)), ["bob's"]);
  });

  test("import refuses a forked event whose data is not { from, version }", async () => {
    const { store } = await clockStore();
    const source = await store.open("src");
    await source.invoke((inv) => inv.appendMessage("a"));
    const fork = await source.fork({ id: "f" });
    const data = await fork.export();
    const at = data.events.findIndex((event) => event.type === "forked");
    for (const [bad, path] of [
      [null, `data.events[${at}].data`],
      ["garbage", `data.events[${at}].data`],
      [{ from: 5, version: 1 }, `data.events[${at}].data.from`],
      [{ from: "src", version: -1 }, `data.events[${at}].data.version`],
      [{ version: 1 }, `data.events[${at}].data.from`],
    ]) {
      const events = data.events.map((event, i) => (i === at ? { ...event, data: bad } : event));
      const error = await rejection(store.import({ ...data, events }, { id: "g" }), JSON.stringify(bad));
      assertError(error, ValidationError, "INVALID_INPUT");
      assert.equal(error.path, path, JSON.stringify(bad));
    }
    await assert.rejects(store.open("g", { create: false }), NotFoundError);
    const imported = await store.import(data, { id: "g" });
    const forked = (await imported.history()).find((event) => event.type === "forked");
    assert.deepEqual(plain(forked.data), { from: "src", version: 1 });
  });
});

async function session_interrupt(session) {
  const inv = await session.begin();
  inv.appendMessage("before the question");
  await inv.interrupt("q?");
}

suite("multi-agent", () => {
  test("agent on begin sets the default for the invocation; per-call agent overrides; reads are per agent", async () => {
    const { store } = await clockStore();
    const session = await store.open("agents");
    const inv = await session.begin({ agent: "planner" });
    inv.appendMessage("plan");
    inv.appendMessage("code", { agent: "coder" });
    inv.setState("step", 1);
    inv.setState("file", "a.rs", { agent: "coder" });
    assert.deepEqual(plain(inv.messages()), ["plan"], "an invocation's reads default to its agent");
    assert.deepEqual(plain(inv.messages({ agent: "coder" })), ["code"]);
    assert.deepEqual(plain(inv.state()), { step: 1 });
    assert.deepEqual(plain(inv.messages({ agent: "default" })), []);
    await inv.commit();

    assert.deepEqual(plain(session.messages()), [], "Session reads default to the agent \"default\"");
    assert.deepEqual(plain(session.messages({ agent: "planner" })), ["plan"]);
    assert.deepEqual(plain(session.messages({ agent: "coder" })), ["code"]);
    assert.deepEqual(plain(session.state({ agent: "planner" })), { step: 1 });
    assert.deepEqual(plain(session.state({ agent: "coder" })), { file: "a.rs" });
    assert.deepEqual(plain(session.messages({ agent: "nobody" })), []);
    assert.deepEqual(plain(session.state({ agent: "nobody" })), {});

    await session.invoke((i) => {
      i.appendMessage("default speaks");
      i.deleteState("file", { agent: "coder" });
    });
    assert.deepEqual(plain(session.messages()), ["default speaks"]);
    assert.deepEqual(plain(session.messages({ agent: "default" })), ["default speaks"]);
    assert.deepEqual(plain(session.state({ agent: "coder" })), {});

    const history = await session.history({ from: 1 });
    assert.deepEqual(
      history.map((e) => `${e.version}:${e.type}:${e.agent}`),
      [
        "1:message:planner",
        "1:message:coder",
        "1:state.set:planner",
        "1:state.set:coder",
        "2:message:default",
        "2:state.delete:coder",
      ],
    );
  });

  test("agent names follow the id rules: 1..256 UTF-8 bytes, no lone surrogate", async () => {
    const { store } = await clockStore();
    const session = await store.open("agent-names");
    for (const agent of ["", "\uD800", "é".repeat(128) + "x"]) {
      const error = await rejection(session.begin({ agent }), `begin({ agent: ${JSON.stringify(agent)} })`);
      assertError(error, ValidationError, "INVALID_INPUT");
    }
    const inv = await session.begin();
    for (const agent of ["", "\uDC00x", "a".repeat(257)]) {
      const error = (() => {
        try {
          inv.appendMessage("m", { agent });
        } catch (e) {
          return e;
        }
      })();
      assertError(error, ValidationError, "INVALID_INPUT", `appendMessage agent ${JSON.stringify(agent).slice(0, 20)}`);
    }
    inv.appendMessage("ok", { agent: "é".repeat(128) });
    inv.appendMessage("ok too", { agent: "a/b\u0000c" });
    await inv.commit();
    assert.deepEqual(plain(session.messages({ agent: "é".repeat(128) })), ["ok"]);
    assert.deepEqual(plain(session.messages({ agent: "a/b\u0000c" })), ["ok too"]);
    assert.deepEqual(plain(session.messages({ agent: "a/b" })), []);
  });
});
