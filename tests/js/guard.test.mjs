// The concurrency guard: one invocation of a session at a time, refused before anything runs.
import { describe as suite } from "node:test";
import assert from "node:assert/strict";
import {
  SessionStore,
  AgentSessionError,
  ConcurrencyError,
  InvalidTransitionError,
  SessionClosedError,
  ValidationError,
  LeaseLostError,
  StoreClosedError,
} from "agent-session";
import { memoryKv } from "agent-session/adapters";
import {
  manualClock,
  deferred,
  sleep,
  rejection,
  callAsync,
  assertError,
  eventTypes,
  plain,
  clockStore,
  kvWithPut,
  test,
  within,
} from "./_helpers.mjs";

function assertConcurrency(error, { holder, retryAfterMs, leaseMs = 30000 } = {}) {
  assertError(error, ConcurrencyError, "CONCURRENT_INVOCATION", "the refused call");
  assert.ok(error instanceof AgentSessionError);
  assert.equal(typeof error.holder, "string");
  assert.ok(error.holder.length > 0, "holder must name the owner");
  if (holder !== undefined) assert.equal(error.holder, holder);
  assert.equal(typeof error.retryAfterMs, "number");
  assert.ok(error.retryAfterMs > 0, `retryAfterMs must be > 0, got ${error.retryAfterMs}`);
  assert.ok(error.retryAfterMs <= leaseMs, `retryAfterMs ${error.retryAfterMs} must not exceed the lease`);
  if (retryAfterMs !== undefined) assert.equal(error.retryAfterMs, retryAfterMs);
}

/**
 * Starts a first call that stages writes, then parks until the second call has settled (or 1 s has
 * passed, so a broken guard that queues the second call cannot deadlock the test).
 */
function parkedFirst(session, { run = "invoke" } = {}) {
  const gate = deferred();
  const safety = setTimeout(gate.resolve, 1000);
  const log = [];
  const first =
    run === "invoke"
      ? session.invoke(async (inv) => {
          log.push("first:start");
          inv.appendMessage({ role: "user", content: "first" });
          inv.setState("owner", "first");
          await gate.promise;
          inv.appendMessage({ role: "assistant", content: "first-reply" });
          log.push("first:end");
          return "first-result";
        })
      : null;
  return {
    first,
    log,
    open() {
      clearTimeout(safety);
      gate.resolve();
    },
  };
}

async function assertOnlyFirstWrites(session) {
  assert.equal(session.version, 1);
  assert.equal(session.status, "idle");
  assert.deepEqual(plain(session.messages()), [
    { role: "user", content: "first" },
    { role: "assistant", content: "first-reply" },
  ]);
  assert.deepEqual(plain(session.state()), { owner: "first" });
  const history = await session.history();
  assert.deepEqual(eventTypes(history), ["0:created", "1:message", "1:state.set", "1:message"]);
  const invocations = new Set(history.filter((e) => e.version === 1).map((e) => e.invocation));
  assert.equal(invocations.size, 1, "all of version 1 comes from one invocation");
}

suite("guard: overlapping calls in one realm", () => {
  test("invoke racing invoke: the second rejects with ConcurrencyError before its fn runs", async () => {
    const now = manualClock();
    const store = await SessionStore.memory({ owner: "alice", leaseMs: 10_000, now });
    const session = await store.open("race-invoke");
    const { first, log, open } = parkedFirst(session);
    let secondRan = false;
    const second = session.invoke((inv) => {
      secondRan = true;
      inv.appendMessage({ role: "user", content: "second" });
      inv.setState("owner", "second");
      return "second-result";
    });
    second.then(open, open);
    const [r1, r2] = await Promise.allSettled([first, second]);
    assert.equal(r2.status, "rejected", "the second invoke must be refused");
    assertConcurrency(r2.reason, { holder: "alice", retryAfterMs: 10_000, leaseMs: 10_000 });
    assert.equal(secondRan, false, "the second fn must not run");
    assert.equal(r1.status, "fulfilled", `the first invoke must succeed (${r1.reason})`);
    assert.equal(r1.value, "first-result");
    assert.deepEqual(log, ["first:start", "first:end"]);
    await assertOnlyFirstWrites(session);
    // Released: the next call goes through.
    assert.equal(await session.invoke(() => 7), 7);
  });

  test("invoke racing invoke with the real clock: retryAfterMs is positive and at most leaseMs", async () => {
    const store = await SessionStore.memory();
    const session = await store.open();
    const { first, open } = parkedFirst(session);
    let secondRan = false;
    const second = session.invoke(() => {
      secondRan = true;
    });
    second.then(open, open);
    const [r1, r2] = await Promise.allSettled([first, second]);
    assert.equal(r1.status, "fulfilled");
    assert.equal(r2.status, "rejected");
    assertConcurrency(r2.reason);
    assert.equal(secondRan, false);
    await assertOnlyFirstWrites(session);
  });

  test("begin racing begin: exactly the first wins", async () => {
    const { store } = await clockStore({ owner: "bob" });
    const session = await store.open("race-begin");
    const [a, b] = await Promise.allSettled([session.begin(), session.begin()]);
    assert.equal(a.status, "fulfilled", `the first begin must win (${a.reason})`);
    assert.equal(b.status, "rejected");
    assertConcurrency(b.reason, { holder: "bob", retryAfterMs: 30_000 });
    const inv = a.value;
    assert.equal(session.status, "running");
    inv.appendMessage("from-a");
    assert.equal(await inv.commit(), 1);
    assert.deepEqual(plain(session.messages()), ["from-a"]);
    assert.equal(session.status, "idle");
    const again = await session.begin();
    assert.equal(again.token, inv.token + 1, "the next lease has the next fencing token");
    await again.abort();
  });

  test("begin racing invoke: the invoke rejects and its fn never runs", async () => {
    const { store } = await clockStore({ owner: "carol" });
    const session = await store.open("race-begin-invoke");
    let ran = false;
    const begun = session.begin();
    const invoked = session.invoke(() => {
      ran = true;
    });
    const [b, i] = await Promise.allSettled([begun, invoked]);
    assert.equal(b.status, "fulfilled");
    assert.equal(i.status, "rejected");
    assertConcurrency(i.reason, { holder: "carol" });
    assert.equal(ran, false);
    b.value.appendMessage("begin-wins");
    await b.value.commit();
    assert.deepEqual(plain(session.messages()), ["begin-wins"]);
    assert.equal(session.version, 1);
  });

  test("invoke racing begin: the begin rejects, the invoke's writes are all that is committed", async () => {
    const { store } = await clockStore({ owner: "dave" });
    const session = await store.open("race-invoke-begin");
    const { first, open } = parkedFirst(session);
    const begun = session.begin();
    begun.then(open, open);
    const [r1, r2] = await Promise.allSettled([first, begun]);
    assert.equal(r1.status, "fulfilled");
    assert.equal(r2.status, "rejected");
    assertConcurrency(r2.reason, { holder: "dave" });
    await assertOnlyFirstWrites(session);
  });

  test("invoke racing close: close rejects with ConcurrencyError and the session stays open", async () => {
    const { store } = await clockStore({ owner: "erin" });
    const session = await store.open("race-invoke-close");
    const { first, open } = parkedFirst(session);
    const closing = session.close();
    closing.then(open, open);
    const [r1, r2] = await Promise.allSettled([first, closing]);
    assert.equal(r2.status, "rejected");
    assertConcurrency(r2.reason, { holder: "erin" });
    assert.equal(r1.status, "fulfilled");
    await assertOnlyFirstWrites(session);
    assert.notEqual(session.status, "closed");
    // And once released, close goes through.
    await session.close();
    assert.equal(session.status, "closed");
  });

  test("close racing invoke: the invoke is refused and its fn never runs", async () => {
    const { store } = await clockStore({ owner: "fay" });
    const session = await store.open("race-close-invoke");
    let ran = false;
    const closing = session.close();
    const invoked = session.invoke((inv) => {
      ran = true;
      inv.appendMessage("after close?");
    });
    const [c, i] = await Promise.allSettled([closing, invoked]);
    assert.equal(c.status, "fulfilled", `close must succeed (${c.reason})`);
    assert.equal(i.status, "rejected");
    // Refused either while close holds the guard, or (if close already finished: a store whose
    // reads resolve at once may linearize the whole close first) because the session is closed.
    if (i.reason instanceof SessionClosedError) {
      assert.equal(i.reason.code, "SESSION_CLOSED");
    } else {
      assertConcurrency(i.reason, { holder: "fay" });
    }
    assert.equal(ran, false);
    assert.equal(session.status, "closed");
    assert.deepEqual(plain(session.messages()), []);
    const history = await session.history();
    assert.equal(history.at(-1).type, "closed");
    assert.equal(history.filter((e) => e.type === "message").length, 0);
  });

  test("three overlapping invokes: exactly one runs", async () => {
    const { store } = await clockStore();
    const session = await store.open("race-three");
    const ran = [];
    const results = await Promise.allSettled(
      [0, 1, 2].map((n) =>
        session.invoke(async (inv) => {
          ran.push(n);
          inv.appendMessage(n);
          await sleep(5);
        }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      ["fulfilled", "rejected", "rejected"],
    );
    for (const r of results.slice(1)) assert.ok(r.reason instanceof ConcurrencyError);
    assert.deepEqual(ran, [0]);
    assert.deepEqual(plain(session.messages()), [0]);
    assert.equal(session.version, 1);
  });
});

suite("guard: stores and Session objects", () => {
  test("two SessionStore.memory() stores share nothing: the same id can begin in both at once", async () => {
    const one = await SessionStore.memory();
    const two = await SessionStore.memory();
    const a = await one.open("shared-id");
    const b = await two.open("shared-id");
    const [ia, ib] = await Promise.all([a.begin(), b.begin()]);
    ia.appendMessage("in one");
    ib.appendMessage("in two");
    await Promise.all([ia.commit(), ib.commit()]);
    assert.deepEqual(plain(a.messages()), ["in one"]);
    assert.deepEqual(plain(b.messages()), ["in two"]);
    assert.deepEqual(plain((await one.open("shared-id")).messages()), ["in one"]);
    assert.deepEqual(plain((await two.open("shared-id")).messages()), ["in two"]);
    const onlyInOne = await one.open("only-in-one");
    assert.ok(onlyInOne);
    await assert.rejects(two.open("only-in-one", { create: false }), { code: "NOT_FOUND" });
  });

  test("two Session objects of one id from one store contend", async () => {
    const { store } = await clockStore({ owner: "same-store" });
    const a = await store.open("two-objects");
    const b = await store.open("two-objects");
    const [ra, rb] = await Promise.allSettled([a.begin(), b.begin()]);
    assert.equal(ra.status, "fulfilled");
    assert.equal(rb.status, "rejected");
    assertConcurrency(rb.reason, { holder: "same-store" });

    // Sequentially too: while a holds, b is refused, and b's invoke fn never runs.
    let ran = false;
    const refused = await rejection(
      b.invoke(() => {
        ran = true;
      }),
    );
    assertConcurrency(refused, { holder: "same-store" });
    assert.equal(ran, false);

    ra.value.appendMessage("by a");
    await ra.value.commit();
    // begin() starts from the latest committed version, even through another Session object.
    const inv = await b.begin();
    assert.deepEqual(plain(inv.messages()), ["by a"]);
    inv.appendMessage("by b");
    assert.equal(await inv.commit(), 2);
    assert.equal(b.version, 2);
    assert.deepEqual(plain(b.messages()), ["by a", "by b"]);
    const refreshed = await a.refresh();
    assert.equal(refreshed, a, "refresh() resolves to the same Session object");
    assert.equal(a.version, 2);
    assert.deepEqual(plain(a.messages()), ["by a", "by b"]);
  });
});

suite("guard: calls at once in one store get the head's answer", () => {
  // A call kept out by the store's own begin still taking its lease (on a KV store, it waits on a
  // read) answers what the head answers: not "busy" for a lease nobody will hold, nor with this
  // store's name and a whole lease for another store's lease.
  for (const [name, make] of [
    ["memory", (options) => SessionStore.memory(options)],
    ["kv(memoryKv())", (options, kv = memoryKv()) => SessionStore.kv(kv, options)],
  ]) {
    test(`${name}: on a closed session begin, close and invoke at once are each SessionClosedError`, async () => {
      const store = await make({ owner: "one" });
      const session = await store.open("closed-at-once");
      await session.close();
      const results = await Promise.allSettled([session.begin(), session.close(), session.invoke(() => {}), session.begin()]);
      for (const result of results) {
        assert.equal(result.status, "rejected");
        assert.ok(result.reason instanceof SessionClosedError, String(result.reason));
        assert.equal(result.reason.code, "SESSION_CLOSED");
      }
    });

    test(`${name}: a begin beside a refused resume is not refused for it`, async () => {
      const store = await make({ owner: "one" });
      const session = await store.open("resume-beside");
      const [resume, begin] = await Promise.allSettled([session.begin({ resume: "yes" }), session.begin()]);
      assert.equal(resume.status, "rejected");
      assertError(resume.reason, InvalidTransitionError, "INVALID_TRANSITION", "resume on an idle session");
      assert.equal(begin.status, "fulfilled", String(begin.reason));
      begin.value.appendMessage("kept");
      assert.equal(await begin.value.commit(), 1);
    });
  }

  test("kv: calls at once while another store holds the lease all name that store", async () => {
    const kv = memoryKv();
    const holder = await SessionStore.kv(kv, { owner: "holder", leaseMs: 5000 });
    const held = await (await holder.open("held-elsewhere")).begin();
    const store = await SessionStore.kv(kv, { owner: "one" });
    const session = await store.open("held-elsewhere");
    const results = await Promise.allSettled([session.begin(), session.begin(), session.close()]);
    for (const result of results) {
      assert.equal(result.status, "rejected");
      assertConcurrency(result.reason, { holder: "holder", leaseMs: 5000 });
    }
    await held.commit();
    const inv = await session.begin();
    await inv.commit();
  });
});

suite("guard: release on every path", () => {
  test("a throw inside invoke aborts, rethrows the same error object and releases", async () => {
    const { store, events } = await clockStore();
    const session = await store.open("throws");
    const boom = new Error("boom");
    const error = await rejection(
      session.invoke((inv) => {
        inv.appendMessage("never visible");
        inv.setState("k", "never visible");
        throw boom;
      }),
    );
    assert.equal(error, boom, "invoke must rethrow the very error fn threw");
    assert.equal(session.version, 0);
    assert.equal(session.status, "idle");
    assert.deepEqual(plain(session.messages()), []);
    assert.deepEqual(plain(session.state()), {});
    assert.deepEqual(eventTypes(await session.history()), ["0:created"]);
    assert.ok(events.some((e) => e.type === "abort"), "the thrown invoke is reported as an abort");

    // An async throw (a rejected promise from fn) behaves the same; the thrown value may be anything.
    const reason = { notAnError: true };
    const error2 = await rejection(
      session.invoke(async (inv) => {
        inv.appendMessage("never either");
        await sleep(1);
        throw reason;
      }),
    );
    assert.equal(error2, reason);
    assert.equal(session.version, 0);

    const result = await session.invoke((inv) => {
      inv.appendMessage("ok");
      return { done: true };
    });
    assert.deepEqual(result, { done: true });
    assert.equal(session.version, 1);
    assert.deepEqual(plain(session.messages()), ["ok"]);
  });

  test("invoke returns fn's value and commits; a fn that committed itself is not committed twice", async () => {
    const { store } = await clockStore();
    const session = await store.open("invoke-result");
    const value = await session.invoke(async (inv) => {
      inv.appendMessage("x");
      return 42;
    });
    assert.equal(value, 42);
    assert.equal(session.version, 1);
    const v = await session.invoke(async (inv) => {
      inv.appendMessage("y");
      return inv.commit();
    });
    assert.equal(v, 2);
    assert.equal(session.version, 2, "invoke must not commit again after fn committed");
    assert.deepEqual(plain(session.messages()), ["x", "y"]);
  });

  test("a Promise-returning method never throws synchronously", async () => {
    const { store } = await clockStore();
    const session = await store.open("no-sync-throw");
    const cases = [
      ["SessionStore.memory with a bad option", () => SessionStore.memory({ leaseMs: "soon" }), ValidationError],
      ["open('')", () => store.open(""), ValidationError],
      ["open(42)", () => store.open(42), ValidationError],
      ["delete('')", () => store.delete(""), ValidationError],
      ["history({ from: -1 })", () => session.history({ from: -1 }), ValidationError],
      ["at(1.5)", () => session.at(1.5), ValidationError],
      ["begin({ agent: '' })", () => session.begin({ agent: "" }), ValidationError],
      ["begin({ resume }) on an idle session", () => session.begin({ resume: "yes" }), InvalidTransitionError],
      ["invoke(fn throwing synchronously)", () => session.invoke(() => {
        throw new TypeError("sync");
      }), TypeError],
      ["invoke(not a function)", () => session.invoke("not a function"), [ValidationError, TypeError]],
      ["fork({ at: -1 })", () => session.fork({ at: -1 }), ValidationError],
    ];
    for (const [what, call, Class] of cases) {
      const promise = callAsync(call, what);
      const error = await rejection(promise, what);
      const classes = [Class].flat();
      assert.ok(
        classes.some((C) => error instanceof C),
        `${what}: expected ${classes.map((C) => C.name).join(" or ")}, got ${error}`,
      );
    }
    // Methods of an ended invocation reject rather than throw.
    const inv = await session.begin();
    await inv.commit();
    for (const name of ["commit", "abort", "checkpoint", "renew"]) {
      const error = await rejection(callAsync(() => inv[name](), `inv.${name}()`), `inv.${name}()`);
      assert.ok(error instanceof InvalidTransitionError, `inv.${name}(): ${error}`);
    }
    const error = await rejection(callAsync(() => inv.interrupt("why"), "inv.interrupt()"));
    assert.ok(error instanceof InvalidTransitionError);
    // The session is still usable.
    assert.equal(await session.invoke(() => "fine"), "fine");
  });
});

suite("guard: onBusy waitMs", () => {
  test("waits for a release that happens within the wait, then sees the holder's commit", async () => {
    const store = await SessionStore.memory({ owner: "waiter-test" });
    const session = await store.open("wait-ok");
    const holder = await session.begin();
    holder.appendMessage("holder");
    const released = sleep(20).then(() => holder.commit());
    const started = Date.now();
    const inv = await session.begin({ onBusy: { waitMs: 2000 } });
    const waited = Date.now() - started;
    assert.equal(await released, 1);
    assert.ok(waited >= 15, `begin must have waited for the release (waited ${waited} ms)`);
    assert.ok(waited < 2000, `begin must stop waiting once released (waited ${waited} ms)`);
    assert.equal(inv.token, holder.token + 1);
    assert.deepEqual(plain(inv.messages()), ["holder"], "the waiter starts from the holder's commit");
    inv.appendMessage("waiter");
    assert.equal(await inv.commit(), 2);
    assert.deepEqual(plain(session.messages()), ["holder", "waiter"]);
  });

  test("invoke with onBusy waits too", async () => {
    const store = await SessionStore.memory();
    const session = await store.open("wait-invoke");
    const holder = await session.begin();
    setTimeout(() => holder.abort(), 20);
    let ran = false;
    const result = await session.invoke(
      (inv) => {
        ran = true;
        inv.appendMessage("after wait");
        return "ok";
      },
      { onBusy: { waitMs: 2000 } },
    );
    assert.equal(result, "ok");
    assert.equal(ran, true);
    assert.deepEqual(plain(session.messages()), ["after wait"]);
  });

  test("still fails when the holder never releases (small real waitMs)", async () => {
    const store = await SessionStore.memory({ owner: "stuck" });
    const session = await store.open("wait-fail-real");
    const holder = await session.begin();
    const started = Date.now();
    const error = await rejection(session.begin({ onBusy: { waitMs: 60 } }));
    const waited = Date.now() - started;
    assertConcurrency(error, { holder: "stuck" });
    assert.ok(waited >= 40, `begin must wait about waitMs before failing (waited ${waited} ms)`);
    assert.equal(session.status, "running");
    holder.appendMessage("holder still commits");
    assert.equal(await holder.commit(), 1);
  });

  test("still fails when the holder never releases (injected clock moved past waitMs)", async () => {
    const now = manualClock();
    const store = await SessionStore.memory({ owner: "stuck-clock", leaseMs: 30_000, now });
    const session = await store.open("wait-fail-clock");
    const holder = await session.begin();
    let settled = false;
    const waiting = session.begin({ onBusy: { waitMs: 5000 } });
    waiting.then(
      () => (settled = true),
      () => (settled = true),
    );
    await sleep(30);
    assert.equal(settled, false, "within waitMs by the store's clock, begin keeps waiting");
    now.advance(6000);
    const error = await rejection(waiting);
    assertConcurrency(error, { holder: "stuck-clock", retryAfterMs: 24_000 });
    holder.appendMessage("holder");
    assert.equal(await holder.commit(), 1);
    assert.deepEqual(plain(session.messages()), ["holder"]);
  });

  test("onBusy 'reject' is the default and fails fast", async () => {
    const store = await SessionStore.memory();
    const session = await store.open("reject-explicit");
    const holder = await session.begin();
    const started = Date.now();
    const error = await rejection(session.begin({ onBusy: "reject" }));
    assert.ok(error instanceof ConcurrencyError);
    assert.ok(Date.now() - started < 1000);
    await holder.abort();
  });
});

// The heartbeat with real timers: open invocations renew their leases (every third of leaseMs), all
// through one shared timer, and an invocation that ends stops only its own renewals.
suite("heartbeat", () => {
  const LEASE_MS = 150;
  const holders = async (heartbeat) => {
    const kv = memoryKv();
    const a = await SessionStore.kv(kv, { owner: "a", leaseMs: LEASE_MS, heartbeat });
    const b = await SessionStore.kv(kv, { owner: "b", leaseMs: LEASE_MS });
    return { a, b };
  };

  test("two open invocations keep their leases for many lease lengths; after one ends, the other still does", async () => {
    const { a, b } = await holders(true);
    const [first, second] = [await a.open("one"), await a.open("two")];
    const [invFirst, invSecond] = [await first.begin(), await second.begin()];
    await sleep(4 * LEASE_MS);
    for (const id of ["one", "two"]) {
      assertConcurrency(await rejection((await b.open(id)).begin()), { holder: "a", leaseMs: LEASE_MS });
    }
    invFirst.appendMessage("first");
    assert.equal(await invFirst.commit(), 1);
    await sleep(4 * LEASE_MS);
    assertConcurrency(await rejection((await b.open("two")).begin()), { holder: "a", leaseMs: LEASE_MS });
    invSecond.appendMessage("second");
    assert.equal(await invSecond.commit(), 1, "the lease was renewed the whole time");
    // "one" is free: b takes it at once.
    const taken = await (await b.open("one")).begin();
    assert.equal(taken.session.version, 1);
    await taken.abort();
  });

  test("without the heartbeat the lease runs out: the other store takes over and the first commit is LeaseLostError (the control)", async () => {
    const { a, b } = await holders(false);
    const inv = await (await a.open("lapsed")).begin();
    await sleep(4 * LEASE_MS);
    const other = await (await b.open("lapsed")).begin();
    inv.appendMessage("late");
    assertError(await rejection(inv.commit()), LeaseLostError, "LEASE_LOST", "the lapsed holder's commit");
    await other.abort();
  });
});

suite("a begin waiting for the lease when its store closes", () => {
  test("rejects with StoreClosedError at the close, not after waitMs with ConcurrencyError", async () => {
    const kv = memoryKv();
    const holder = await SessionStore.kv(kvWithPut(kv, kv.put), { owner: "A" });
    const waiter = await SessionStore.kv(kvWithPut(kv, kv.put), { owner: "B" });
    const held = await (await holder.open("busy")).begin();
    const waiting = callAsync(() => waiter.open("busy").then((s) => s.begin({ onBusy: { waitMs: 600_000 } })), "begin()");
    await sleep(30);
    await waiter.close();
    // waitMs is ten minutes and the holder never lets go: only the close can end the wait.
    const error = await within(rejection(waiting), 10_000, "the waiting begin did not settle after the close");
    assertError(error, StoreClosedError, "STORE_CLOSED");
    await held.commit();
  });

  test("a lease its store took as it closed is given back at once: another store begins without waiting", async () => {
    const kv = memoryKv();
    let waiter = null;
    let closeAtLease = false;
    // The waiter's lease write lands, then its store closes before the begin resolves.
    const waiterKv = kvWithPut(kv, async (key, value, options) => {
      const written = await kv.put(key, value, options);
      if (closeAtLease && key.startsWith("h/")) {
        closeAtLease = false;
        await waiter.close();
      }
      return written;
    });
    const holder = await SessionStore.kv(kvWithPut(kv, kv.put), { owner: "A" });
    waiter = await SessionStore.kv(waiterKv, { owner: "B" });
    const held = await (await holder.open("busy")).begin();
    const waiting = callAsync(() => waiter.open("busy").then((s) => s.begin({ onBusy: { waitMs: 600_000 } })), "begin()");
    await sleep(30);
    closeAtLease = true;
    await held.commit(); // the waiter's begin now takes the lease, and its store closes
    assertError(await within(rejection(waiting), 10_000, "no answer"), StoreClosedError, "STORE_CLOSED");
    const next = await (await holder.open("busy")).begin(); // fails fast with ConcurrencyError were the lease kept
    await next.commit();
  });

  test("a lease lost while the backend stalls past several heartbeats is told as LeaseLostError, and no late renewal holds it again (audit56)", async () => {
    const base = memoryKv();
    let stall = null;
    // The holder's writes wait while `stall` is set (a Redis that stops answering); its reads do not.
    const holderKv = kvWithPut(base, async (key, ...rest) => {
      if (stall) await stall.promise;
      return base.put(key, ...rest);
    });
    const holder = await SessionStore.kv(holderKv, { owner: "holder", leaseMs: 300 });
    const other = await SessionStore.kv(base, { owner: "other", leaseMs: 300 });
    const session = await holder.open("stalled");
    const inv = await session.begin();
    inv.appendMessage("held through a stall");
    stall = deferred();
    await sleep(700); // seven heartbeat periods, the lease run out by the clock
    const taken = await (await other.open("stalled")).begin();
    taken.appendMessage("the other store's");
    await taken.commit();
    stall.resolve();
    stall = null;
    await sleep(100); // the renewals in flight land, or are refused
    assertError(await rejection(inv.commit(), "the holder's commit"), LeaseLostError, "LEASE_LOST");
    const after = await (await other.open("stalled")).begin(); // not held by a late renewal
    await after.abort();
    assert.deepEqual(plain((await other.open("stalled")).messages()), ["the other store's"]);
    await holder.close();
    await other.close();
  });

  test("a heartbeat whose write hangs until the backend's timeout does not cost the holder its lease: the next ones renew it (audit58)", async () => {
    const base = memoryKv();
    let hang = false;
    const holderKv = kvWithPut(base, (key, ...rest) => {
      if (hang && key.startsWith("h/")) {
        hang = false; // the first heartbeat's write never answers
        return new Promise(() => {});
      }
      return base.put(key, ...rest);
    });
    const holder = await SessionStore.kv(holderKv, { owner: "holder", leaseMs: 600, timeoutMs: 200 });
    const other = await SessionStore.kv(base, { owner: "other", leaseMs: 600 });
    const inv = await (await holder.open("hung")).begin();
    inv.appendMessage("kept");
    hang = true;
    await sleep(1500); // past the lease's first end, the hung write timed out meanwhile
    assertError(await rejection((await other.open("hung")).begin(), "the other store's begin"), ConcurrencyError, "CONCURRENT_INVOCATION");
    assert.equal(await inv.commit(), 1);
    await holder.close();
    await other.close();
  });
});

