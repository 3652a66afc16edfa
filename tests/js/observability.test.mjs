// onEvent, onChange, owner names and trace context.
import { describe as suite } from "node:test";
import assert from "node:assert/strict";
import { SessionStore, ConcurrencyError } from "agent-session";
import { rejection, clockStore, plain, sleep, test } from "./_helpers.mjs";

const TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

const ofType = (events, type) => events.filter((e) => e.type === type);

suite("onEvent", () => {
  test("begin + commit: lease.acquired, commit, lease.released with session, version, token, owner", async () => {
    const { store, events, now } = await clockStore({ owner: "obs" });
    const session = await store.open("obs/commit");
    const inv = await session.begin();
    const acquired = ofType(events, "lease.acquired");
    assert.equal(acquired.length, 1);
    assert.equal(acquired[0].session, "obs/commit");
    assert.equal(acquired[0].token, inv.token);
    assert.equal(acquired[0].owner, "obs");
    inv.appendMessage("x");
    now.advance(250);
    await inv.commit();
    const commit = ofType(events, "commit");
    assert.equal(commit.length, 1);
    assert.equal(commit[0].session, "obs/commit");
    assert.equal(commit[0].version, 1);
    assert.equal(commit[0].token, inv.token);
    assert.equal(commit[0].owner, "obs");
    if (commit[0].durationMs !== undefined) assert.equal(commit[0].durationMs, 250);
    const released = ofType(events, "lease.released");
    assert.equal(released.length, 1);
    assert.equal(released[0].session, "obs/commit");
    assert.equal(released[0].token, inv.token);
    const order = events.filter((e) => e.session === "obs/commit").map((e) => e.type);
    assert.ok(order.indexOf("lease.acquired") < order.indexOf("commit"));
    assert.ok(order.indexOf("commit") < order.indexOf("lease.released"));
    for (const e of events) assert.equal(typeof e.type, "string");
  });

  test("abort: abort and lease.released; a refused begin: lease.denied naming the holder", async () => {
    const { store, events } = await clockStore({ owner: "holder-name" });
    const session = await store.open("obs/abort");
    const inv = await session.begin();
    const error = await rejection(session.begin());
    assert.ok(error instanceof ConcurrencyError);
    const denied = ofType(events, "lease.denied");
    assert.equal(denied.length, 1);
    assert.equal(denied[0].session, "obs/abort");
    assert.equal(denied[0].owner, "holder-name");
    await inv.abort();
    const abort = ofType(events, "abort");
    assert.equal(abort.length, 1);
    assert.equal(abort[0].session, "obs/abort");
    assert.equal(abort[0].token, inv.token);
    const released = ofType(events, "lease.released");
    assert.equal(released.length, 1);
    assert.equal(released[0].token, inv.token);
    assert.equal(ofType(events, "commit").length, 0, "an abort is not a commit");
  });

  test("interrupt: an interrupt event with the new version and token", async () => {
    const { store, events } = await clockStore();
    const session = await store.open("obs/interrupt");
    const inv = await session.begin();
    await inv.interrupt("q", { a: 1 });
    const interrupt = ofType(events, "interrupt");
    assert.equal(interrupt.length, 1);
    assert.equal(interrupt[0].session, "obs/interrupt");
    assert.equal(interrupt[0].version, 1);
    assert.equal(interrupt[0].token, inv.token);
    assert.ok(ofType(events, "lease.released").some((e) => e.token === inv.token), "an interrupt releases the lease");
  });

  test("snapshot: one event per snapshot version", async () => {
    const { store, events } = await clockStore({ snapshotEvery: 2 });
    const session = await store.open("obs/snap");
    for (let i = 0; i < 5; i++) await session.invoke((inv) => inv.appendMessage(i));
    const snapshots = ofType(events, "snapshot");
    assert.deepEqual(
      snapshots.map((e) => [e.session, e.version]),
      [
        ["obs/snap", 2],
        ["obs/snap", 4],
      ],
    );
  });

  test("expire: one event per swept session", async () => {
    const { store, events, now } = await clockStore({ idleTtlMs: 100 });
    await store.open("obs/exp1");
    const two = await store.open("obs/exp2");
    await two.invoke((inv) => inv.appendMessage(1));
    now.advance(101);
    assert.equal(await store.sweepExpired(), 2);
    const expire = ofType(events, "expire");
    assert.deepEqual(expire.map((e) => e.session).sort(), ["obs/exp1", "obs/exp2"]);
    const e2 = expire.find((e) => e.session === "obs/exp2");
    if (e2.version !== undefined) assert.equal(e2.version, 1);
  });

  test("lease.lost when a stale holder's commit is refused", async () => {
    const { store, events, now } = await clockStore({ leaseMs: 100, heartbeat: false });
    const session = await store.open("obs/lost");
    const inv = await session.begin();
    now.advance(101);
    await assert.rejects(inv.commit());
    const lost = ofType(events, "lease.lost");
    assert.equal(lost.length, 1);
    assert.equal(lost[0].session, "obs/lost");
    assert.equal(lost[0].token, inv.token);
    assert.equal(ofType(events, "commit").length, 0);
  });

  test("an onEvent listener that throws does not break the commit", async () => {
    const store = await SessionStore.memory({
      onEvent: () => {
        throw new Error("listener bug");
      },
    });
    const session = await store.open("obs/throwing-listener");
    await session.invoke((inv) => inv.appendMessage("still committed"));
    assert.equal(session.version, 1);
    assert.deepEqual(plain(session.messages()), ["still committed"]);
  });

  test("an async onEvent or onChange listener that rejects leaves no unhandled rejection (it ends a Node process by default; audit42b N7)", async () => {
    const unhandled = [];
    const onUnhandled = (reason) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const heard = [];
      const store = await SessionStore.memory({
        onEvent: async (event) => {
          heard.push(event.type);
          throw new Error(`listener bug at ${event.type}`);
        },
      });
      store.onChange(async () => {
        throw new Error("store listener bug");
      });
      const session = await store.open("obs/rejecting-listener");
      session.onChange(() => Promise.reject(new Error("session listener bug")));
      // Another thenable is left as it is: its `then` is not called (a lazy query builder runs then).
      let thenCalled = false;
      session.onChange(() => ({ then() { thenCalled = true; } }));
      await session.invoke((inv) => inv.appendMessage("still committed"));
      await sleep(20); // unhandled rejections are reported after the microtasks
      assert.deepEqual(heard, ["lease.acquired", "commit", "lease.released"]);
      assert.equal(session.version, 1);
      assert.deepEqual(plain(session.messages()), ["still committed"]);
      assert.deepEqual(unhandled.map((reason) => reason?.message), []);
      assert.equal(thenCalled, false, "a thenable that is not a promise is not called");
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});

suite("owner", () => {
  test("the owner option is the ConcurrencyError holder and the events' owner", async () => {
    const { store, events } = await clockStore({ owner: "worker-7" });
    const a = await store.open("own");
    const b = await store.open("own");
    const inv = await a.begin();
    const error = await rejection(b.begin());
    assert.ok(error instanceof ConcurrencyError);
    assert.equal(error.holder, "worker-7");
    assert.ok(error.message.includes("worker-7"), "the message names the holder");
    assert.equal(ofType(events, "lease.acquired")[0].owner, "worker-7");
    await inv.abort();
  });

  test("the default owner is a random non-empty name per store", async () => {
    const one = await clockStore();
    const two = await clockStore();
    const owners = [];
    for (const { store, events } of [one, two]) {
      const s = await store.open("default-owner");
      const inv = await s.begin();
      const error = await rejection(s.begin());
      assert.equal(typeof error.holder, "string");
      assert.ok(error.holder.length > 0);
      assert.equal(ofType(events, "lease.acquired")[0].owner, error.holder);
      owners.push(error.holder);
      await inv.abort();
    }
    assert.notEqual(owners[0], owners[1], "two stores get different default owners");
  });
});

suite("trace context", () => {
  test("traceparent from begin options appears on that invocation's history events only", async () => {
    const { store, events } = await clockStore();
    const session = await store.open("trace");
    const inv = await session.begin({ traceparent: TRACE });
    inv.appendMessage("traced");
    inv.setState("k", 1);
    await inv.commit();
    await session.invoke((i) => i.appendMessage("untraced"));
    await session.invoke((i) => i.appendMessage("traced 2"), { traceparent: TRACE2 });
    const history = await session.history();
    assert.equal(history[0].traceparent, undefined, "the created event has no trace");
    assert.deepEqual(
      history.slice(1).map((e) => [e.version, e.traceparent]),
      [
        [1, TRACE],
        [1, TRACE],
        [2, undefined],
        [3, TRACE2],
      ],
    );
    assert.ok(
      events.some((e) => e.type === "commit" && e.traceparent === TRACE),
      "the commit event carries the invocation's traceparent",
    );
    assert.ok(!events.some((e) => e.type === "commit" && e.version === 2 && e.traceparent !== undefined));
  });
});

suite("onChange", () => {
  test("store.onChange is called synchronously after each commit, and unsubscribes", async () => {
    const { store } = await clockStore();
    const changes = [];
    const off = store.onChange((change) => changes.push(plain(change)));
    assert.equal(typeof off, "function");
    const session = await store.open("change/a");
    assert.deepEqual(changes, [], "opening (creating) a session is not a commit");
    const inv = await session.begin();
    inv.appendMessage(1);
    await inv.commit();
    assert.deepEqual(changes, [{ id: "change/a", version: 1, status: "idle" }], "called by the time commit() resolves");
    const inv2 = await session.begin();
    await inv2.checkpoint();
    assert.deepEqual(changes.at(-1), { id: "change/a", version: 2, status: "running" });
    await inv2.interrupt("q");
    assert.deepEqual(changes.at(-1), { id: "change/a", version: 3, status: "interrupted" });
    await (await session.begin({ resume: "a" })).abort();
    assert.equal(changes.length, 3, "an abort is not a commit");
    await session.close();
    assert.deepEqual(changes.at(-1), { id: "change/a", version: 4, status: "closed" });
    const other = await store.open("change/b");
    await other.invoke(() => {});
    assert.deepEqual(changes.at(-1), { id: "change/b", version: 1, status: "idle" });
    off();
    await other.invoke(() => {});
    assert.equal(changes.length, 5, "no calls after unsubscribing");
  });

  test("calling an unsubscribe function twice is a no-op", async () => {
    const { store } = await clockStore();
    const session = await store.open("change/twice");
    const calls = [];
    const offStore = store.onChange(() => calls.push("store"));
    const offSession = session.onChange(() => calls.push("session"));
    offStore();
    offSession();
    offStore();
    offSession();
    await session.invoke(() => {});
    assert.deepEqual(calls, []);
  });

  test("session.onChange sees only its session's commits", async () => {
    const { store } = await clockStore();
    const a = await store.open("sess-change/a");
    const b = await store.open("sess-change/b");
    const seen = [];
    const off = a.onChange((change) => seen.push(plain(change)));
    await a.invoke(() => {});
    await b.invoke(() => {});
    await a.invoke(() => {});
    assert.deepEqual(seen, [
      { version: 1, status: "idle" },
      { version: 2, status: "idle" },
    ]);
    off();
    await a.invoke(() => {});
    assert.equal(seen.length, 2);
  });

  test("session.onChange also sees commits made through another Session object of the same store", async () => {
    const { store } = await clockStore();
    const a = await store.open("sess-change/shared");
    const b = await store.open("sess-change/shared");
    const seen = [];
    a.onChange((change) => seen.push(change.version));
    await b.invoke(() => {});
    assert.deepEqual(seen, [1]);
  });
});

suite("onChange across the stores of one realm over one HostKv", () => {
  /** Lets the event loop run until `done()` (what another store's commit starts is asynchronous). */
  async function settle(done) {
    for (let round = 0; round < 50 && !done(); round++) await sleep(2);
  }

  test("a store's onChange hears the commits of another store over the same HostKv object, and its views catch up", async () => {
    const { memoryKv } = await import("agent-session/adapters");
    const kv = memoryKv();
    const a = await SessionStore.kv(kv, { owner: "a" });
    const b = await SessionStore.kv(kv, { owner: "b" });
    const heard = [];
    a.onChange((change) => heard.push(plain(change)));
    const viewA = await a.open("realm/s");
    const heardBySession = [];
    viewA.onChange((change) => heardBySession.push({ ...plain(change), seen: viewA.messages().length }));
    const viewB = await b.open("realm/s");
    await viewB.invoke((inv) => inv.appendMessage("from b"));
    const inv = await viewB.begin();
    inv.appendMessage("again");
    await inv.interrupt("ask");
    await settle(() => heard.length === 2 && heardBySession.length === 2);
    assert.deepEqual(heard, [
      { id: "realm/s", version: 1, status: "idle" },
      { id: "realm/s", version: 2, status: "interrupted" },
    ]);
    // Each notice comes once the view has caught up to it: the listener reads the new messages.
    assert.deepEqual(heardBySession, [
      { version: 1, status: "idle", seen: 1 },
      { version: 2, status: "interrupted", seen: 2 },
    ]);
    assert.equal(viewA.version, 2);
    assert.equal(viewA.status, "interrupted");
    assert.deepEqual(viewA.messages(), ["from b", "again"]);
    // b's own listeners hear its commits once, as before; a's commits reach b once b listens.
    const heardByB = [];
    b.onChange((change) => heardByB.push(plain(change)));
    await viewA.invoke((session) => session.appendMessage("from a"), { resume: "yes" });
    await settle(() => heardByB.length === 1);
    assert.deepEqual(heardByB, [{ id: "realm/s", version: 3, status: "idle" }]);
    assert.deepEqual(heard.at(-1), { id: "realm/s", version: 3, status: "idle" }, "a heard its own commit, once");
    assert.equal(heard.length, 3);
  });

  test("stores over another HostKv object, or another prefix, are not told; a closed store is not either", async () => {
    const { memoryKv } = await import("agent-session/adapters");
    const kv = memoryKv();
    const listening = await SessionStore.kv(kv, { prefix: "p/" });
    const heard = [];
    listening.onChange((change) => heard.push(change.id));
    const otherPrefix = await SessionStore.kv(kv, { prefix: "q/" });
    await (await otherPrefix.open("realm/q")).invoke((inv) => inv.appendMessage(1));
    const otherKv = await SessionStore.kv(memoryKv(), { prefix: "p/" });
    await (await otherKv.open("realm/k")).invoke((inv) => inv.appendMessage(1));
    const samePrefix = await SessionStore.kv(kv, { prefix: "p/" });
    await (await samePrefix.open("realm/p")).invoke((inv) => inv.appendMessage(1));
    await settle(() => heard.length > 0);
    assert.deepEqual(heard, ["realm/p"], "only the store over the same HostKv object and prefix");
    await listening.close();
    await (await samePrefix.open("realm/p")).invoke((inv) => inv.appendMessage(2));
    await sleep(20);
    assert.deepEqual(heard, ["realm/p"], "nothing after close()");
  });
});

suite("conflict events", () => {
  test("a begin on a head another store wrote since: one conflict event, then the lease on the fresh head", async () => {
    const { memoryKv } = await import("agent-session/adapters");
    const kv = memoryKv();
    const events = [];
    const a = await SessionStore.kv(kv, { owner: "a", onEvent: (event) => events.push(event.type) });
    const b = await SessionStore.kv(kv, { owner: "b" });
    const session = await a.open("s");
    await (await b.open("s")).invoke((inv) => inv.appendMessage("from b"));
    events.length = 0;
    const inv = await session.begin();
    assert.deepEqual(events, ["conflict", "lease.acquired"]);
    assert.deepEqual(inv.messages(), ["from b"], "it began from b's commit");
    await inv.commit();
    assert.equal(session.version, 2);
  });
});
