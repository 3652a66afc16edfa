// The lifecycle state machine and the Invocation's own states (API.md "Session", "Invocation").
import { describe as suite } from "node:test";
import assert from "node:assert/strict";
import {
  SessionStore,
  Session,
  Invocation,
  ConcurrencyError,
  InvalidTransitionError,
  SessionClosedError,
  LeaseLostError,
  ValidationError,
} from "agent-session";
import { rejection, thrown, assertError, eventTypes, plain, clockStore, callAsync, test } from "./_helpers.mjs";
import { memoryKv } from "agent-session/adapters";

suite("lifecycle: statuses", () => {
  test("a new session is idle at version 0 with a created event", async () => {
    const { store, now } = await clockStore();
    const session = await store.open("fresh");
    assert.ok(session instanceof Session);
    assert.equal(session.id, "fresh");
    assert.equal(session.version, 0);
    assert.equal(session.status, "idle");
    assert.equal(session.createdAt, now());
    assert.equal(session.updatedAt, now());
    assert.equal(session.expiresAt, null);
    assert.equal(session.pendingInterrupt(), null);
    assert.deepEqual(plain(session.messages()), []);
    assert.deepEqual(plain(session.state()), {});
    const history = await session.history();
    assert.equal(history.length, 1);
    assert.equal(history[0].version, 0);
    assert.equal(history[0].type, "created");
    assert.equal(history[0].at, now());
  });

  test("idle -> running -> idle, with the version and updatedAt moving on commit", async () => {
    const { store, now } = await clockStore();
    const session = await store.open("idle-running-idle");
    const inv = await session.begin();
    assert.ok(inv instanceof Invocation);
    assert.equal(typeof inv.id, "string");
    assert.ok(inv.id.length > 0);
    assert.equal(typeof inv.token, "number");
    assert.ok(Number.isInteger(inv.token) && inv.token >= 1);
    assert.equal(inv.session.id, "idle-running-idle");
    assert.equal(session.status, "running");
    inv.appendMessage("hello");
    assert.equal(session.version, 0, "staged writes are not committed");
    assert.deepEqual(plain(session.messages()), [], "readers do not see staged writes");
    now.advance(1234);
    const version = await inv.commit();
    assert.equal(version, 1);
    assert.equal(session.status, "idle");
    assert.equal(session.version, 1, "the Session that began the invocation shows the commit without refresh()");
    assert.equal(session.updatedAt, now());
    assert.ok(session.createdAt < session.updatedAt);
    assert.deepEqual(plain(session.messages()), ["hello"]);
    // An abort also ends in idle, without a new version.
    const inv2 = await session.begin();
    assert.equal(inv2.token, inv.token + 1);
    inv2.appendMessage("discarded");
    await inv2.abort();
    assert.equal(session.status, "idle");
    assert.equal(session.version, 1);
    assert.deepEqual(plain(session.messages()), ["hello"]);
  });

  test("invoke that interrupts inside fn ends interrupted (no second commit)", async () => {
    const { store } = await clockStore();
    const session = await store.open("invoke-interrupt");
    const version = await session.invoke(async (inv) => {
      inv.appendMessage("need approval");
      return inv.interrupt("approve?", { tool: "rm" });
    });
    assert.equal(version, 1);
    assert.equal(session.version, 1);
    assert.equal(session.status, "interrupted");
    assert.deepEqual(plain(session.pendingInterrupt()), { reason: "approve?", payload: { tool: "rm" } });
  });
});

suite("lifecycle: interrupt and resume", () => {
  test("interrupt(reason, payload) -> interrupted with pendingInterrupt {reason, payload}", async () => {
    const { store, events } = await clockStore();
    const session = await store.open("interrupt");
    const inv = await session.begin();
    inv.appendMessage({ role: "assistant", tool_call: "delete_file" });
    const version = await inv.interrupt("needs approval", { file: "/etc/passwd", risk: 3 });
    assert.equal(version, 1);
    assert.equal(session.version, 1);
    assert.equal(session.status, "interrupted");
    assert.deepEqual(plain(session.pendingInterrupt()), {
      reason: "needs approval",
      payload: { file: "/etc/passwd", risk: 3 },
    });
    assert.deepEqual(plain(session.messages()), [{ role: "assistant", tool_call: "delete_file" }]);
    const history = await session.history();
    assert.deepEqual(eventTypes(history), ["0:created", "1:message", "1:interrupt"]);
    const interrupt = history.at(-1);
    assert.equal(interrupt.reason, "needs approval");
    assert.deepEqual(plain(interrupt.data), { file: "/etc/passwd", risk: 3 });
    assert.ok(events.some((e) => e.type === "interrupt" && e.session === "interrupt" && e.version === 1));
    // Another Session object of the id sees the same pending interrupt.
    const other = await store.open("interrupt");
    assert.equal(other.status, "interrupted");
    assert.deepEqual(plain(other.pendingInterrupt()), plain(session.pendingInterrupt()));
  });

  test("interrupt without a payload gives payload null", async () => {
    const { store } = await clockStore();
    const session = await store.open("interrupt-no-payload");
    const inv = await session.begin();
    await inv.interrupt("question");
    assert.deepEqual(plain(session.pendingInterrupt()), { reason: "question", payload: null });
    assert.equal(session.pendingInterrupt().payload, null);
    const history = await session.history();
    assert.equal(history.at(-1).type, "interrupt");
    assert.equal(history.at(-1).data, null);
  });

  test("begin() without resume on an interrupted session: InvalidTransitionError from interrupted, action begin", async () => {
    const { store } = await clockStore();
    const session = await store.open("no-resume");
    await (await session.begin()).interrupt("why?");
    const error = await rejection(session.begin());
    assertError(error, InvalidTransitionError, "INVALID_TRANSITION");
    assert.equal(error.from, "interrupted");
    assert.equal(error.action, "begin");
    assert.equal(session.status, "interrupted", "a refused move changes nothing");
    assert.equal(session.version, 1);
    let ran = false;
    const error2 = await rejection(
      session.invoke(() => {
        ran = true;
      }),
    );
    assert.ok(error2 instanceof InvalidTransitionError);
    assert.equal(error2.from, "interrupted");
    assert.equal(ran, false);
    // The refusal did not leave a lease behind.
    const inv = await session.begin({ resume: "answer" });
    await inv.abort();
  });

  test("begin({ resume }) answers the interrupt; history shows a resume event", async () => {
    const { store } = await clockStore();
    const session = await store.open("resume");
    await (await session.begin()).interrupt("pick one", { options: ["a", "b"] });
    const inv = await session.begin({ resume: { choice: "b" } });
    assert.equal(session.status, "running");
    inv.appendMessage("you chose b");
    assert.equal(await inv.commit(), 2);
    assert.equal(session.status, "idle");
    assert.equal(session.pendingInterrupt(), null);
    const history = await session.history();
    assert.deepEqual(eventTypes(history), ["0:created", "1:interrupt", "2:resume", "2:message"]);
    assert.deepEqual(plain(history[2].data), { choice: "b" });
    // invoke with resume works the same way.
    await (await session.begin()).interrupt("again?");
    const answer = await session.invoke((i) => i.messages().length, { resume: "yes" });
    assert.equal(answer, 1);
    assert.equal(session.status, "idle");
    const last = await session.history({ from: 4 });
    assert.deepEqual(eventTypes(last), ["4:resume"]);
    assert.equal(last[0].data, "yes");
  });

  test("an aborted resume leaves the session interrupted with the same pending interrupt", async () => {
    const { store } = await clockStore();
    const session = await store.open("resume-abort");
    await (await session.begin()).interrupt("q", 1);
    const inv = await session.begin({ resume: "a" });
    await inv.abort();
    assert.equal(session.status, "interrupted");
    assert.deepEqual(plain(session.pendingInterrupt()), { reason: "q", payload: 1 });
    assert.equal(session.version, 1);
  });

  test("resume on a session that is not interrupted is an InvalidTransitionError", async () => {
    const { store } = await clockStore();
    const session = await store.open("resume-idle");
    const error = await rejection(session.begin({ resume: "unasked answer" }));
    assertError(error, InvalidTransitionError, "INVALID_TRANSITION");
    assert.equal(error.from, "idle");
    assert.equal(typeof error.action, "string");
    assert.equal(session.status, "idle");
    assert.equal(session.version, 0);
    const error2 = await rejection(session.invoke(() => {}, { resume: 1 }));
    assert.ok(error2 instanceof InvalidTransitionError);
    // Nothing held: a plain begin works.
    await (await session.begin()).commit();
    assert.equal(session.version, 1);
  });

  // Two stores over one KV, as two server processes: B's Session was read before A interrupted (or
  // resumed) the session, and B calls it without a refresh().
  const twoStores = async () => {
    const kv = memoryKv();
    return [await SessionStore.kv(kv, { owner: "A" }), await SessionStore.kv(kv, { owner: "B" })];
  };
  const turns = async (session, n) => {
    for (let i = 0; i < n; i++) await session.invoke((inv) => inv.appendMessage({ i }));
  };

  test("a begin refused by a status another store set brings the Session to it: status tells what the error does", async () => {
    const [a, b] = await twoStores();
    await turns(await a.open("stale-begin"), 2);
    const stale = await b.open("stale-begin");
    await (await (await a.open("stale-begin")).begin()).interrupt("approve?", { tool: "x" });
    assert.equal(stale.status, "idle", "B has not read the head since");
    const error = await rejection(stale.begin());
    assertError(error, InvalidTransitionError, "INVALID_TRANSITION");
    assert.equal(error.from, "interrupted");
    assert.equal(stale.status, "interrupted");
    assert.deepEqual(plain(stale.pendingInterrupt()), { reason: "approve?", payload: { tool: "x" } });
    assert.equal(stale.version, 3);
    await (await stale.begin({ resume: "yes" })).commit();
    assert.equal(stale.status, "idle");
    // Closed by the other store: begin and close refused, each bringing the view to it; a prune (which
    // a closed session allows) brings it there too.
    for (const call of [(s) => s.begin(), (s) => s.close(), (s) => s.prune({ before: 1 })]) {
      const id = `stale-closed-${call}`;
      await turns(await a.open(id), 1);
      const held = await b.open(id);
      const closing = await a.open(id);
      await turns(closing, 1);
      await closing.close();
      assert.equal(held.status, "idle");
      if (String(call).includes("prune")) assert.equal(await call(held), 0);
      else assertError(await rejection(call(held)), SessionClosedError, "SESSION_CLOSED");
      assert.equal(held.status, "closed", String(call));
      assert.equal(held.version, 3, String(call));
    }
    await a.close();
    await b.close();
  });

  test("prune() takes the guard by the stored status, not by a stale Session's: interrupted elsewhere it prunes and leaves the interrupt waiting; resumed elsewhere it prunes too", async () => {
    const [a, b] = await twoStores();
    await turns(await a.open("prune-int"), 6);
    const stale = await b.open("prune-int");
    await (await (await a.open("prune-int")).begin()).interrupt("approve?");
    assert.equal(stale.status, "idle");
    // The latest version (6 turns, then the interrupt): every older record goes.
    assert.ok((await stale.prune({ before: 7 })) > 0);
    const after = await b.open("prune-int");
    assert.equal(after.status, "interrupted");
    assert.equal(plain(after.pendingInterrupt()).reason, "approve?");
    assert.equal((await after.history())[0].version, 7);
    await (await after.begin({ resume: "ok" })).commit();

    await turns(await a.open("prune-res"), 5);
    await (await (await a.open("prune-res")).begin()).interrupt("approve?");
    const stale2 = await b.open("prune-res");
    assert.equal(stale2.status, "interrupted");
    const resumed = await (await a.open("prune-res")).begin({ resume: "ok" });
    resumed.appendMessage({ r: 1 });
    await resumed.commit();
    assert.ok((await stale2.prune({ before: 7 })) > 0);
    assert.equal(stale2.status, "idle");
    assert.equal((await stale2.history())[0].version, 7);
    await (await stale2.begin()).commit();
    await a.close();
    await b.close();
  });
});

suite("lifecycle: close", () => {
  test("close() -> closed; begin/invoke/fork/close reject with SessionClosedError", async () => {
    const { store } = await clockStore();
    const session = await store.open("closing");
    await session.invoke((inv) => inv.appendMessage("kept"));
    assert.equal(await callAsync(() => session.close()), undefined);
    assert.equal(session.status, "closed");
    assert.equal(session.version, 2);
    const history = await session.history();
    assert.deepEqual(eventTypes(history), ["0:created", "1:message", "2:closed"]);
    assert.deepEqual(plain(session.messages()), ["kept"], "a closed session stays readable");

    const attempts = {
      begin: () => session.begin(),
      invoke: () => session.invoke(() => assert.fail("fn must not run on a closed session")),
      fork: () => session.fork(),
      close: () => session.close(),
    };
    for (const [name, attempt] of Object.entries(attempts)) {
      const error = await rejection(callAsync(attempt, name), name);
      assertError(error, SessionClosedError, "SESSION_CLOSED", name);
      assert.ok(error instanceof InvalidTransitionError, `${name}: SessionClosedError extends InvalidTransitionError`);
      assert.equal(error.from, "closed", `${name}: from`);
      if (name !== "invoke") assert.equal(error.action, name, `${name}: action`);
    }
    assert.equal(session.version, 2);
    const reopened = await store.open("closing");
    assert.equal(reopened.status, "closed");
    await assert.rejects(reopened.begin(), SessionClosedError);
    const listed = (await store.list({ prefix: "closing" })).sessions.find((s) => s.id === "closing");
    assert.equal(listed.status, "closed");
  });

  test("close() of an interrupted session works", async () => {
    const { store } = await clockStore();
    const session = await store.open("close-interrupted");
    await (await session.begin()).interrupt("q");
    await session.close();
    assert.equal(session.status, "closed");
    await assert.rejects(session.begin({ resume: "late" }), SessionClosedError);
  });

  test("close() while an invocation holds the session rejects with ConcurrencyError", async () => {
    const { store } = await clockStore({ owner: "holder-x" });
    const session = await store.open("close-busy");
    const inv = await session.begin();
    const error = await rejection(session.close());
    assertError(error, ConcurrencyError, "CONCURRENT_INVOCATION");
    assert.equal(error.holder, "holder-x");
    assert.equal(session.status, "running");
    inv.appendMessage("still mine");
    assert.equal(await inv.commit(), 1);
    await session.close();
    assert.equal(session.status, "closed");
    assert.equal(session.version, 2);
  });
});

suite("lifecycle: an ended Invocation", () => {
  const syncMethods = {
    appendMessage: (inv) => inv.appendMessage("x"),
    setState: (inv) => inv.setState("k", 1),
    deleteState: (inv) => inv.deleteState("k"),
    messages: (inv) => inv.messages(),
    state: (inv) => inv.state(),
  };
  const asyncMethods = {
    flush: (inv) => inv.flush(),
    renew: (inv) => inv.renew(),
    checkpoint: (inv) => inv.checkpoint(),
    commit: (inv) => inv.commit(),
    abort: (inv) => inv.abort(),
    interrupt: (inv) => inv.interrupt("late"),
  };

  async function assertEnded(inv, session, from) {
    const before = { version: session.version, history: plain(await session.history()) };
    for (const [name, call] of Object.entries(syncMethods)) {
      const error = thrown(() => call(inv), `inv.${name}()`);
      assertError(error, InvalidTransitionError, "INVALID_TRANSITION", `inv.${name}()`);
      assert.equal(error.from, from, `inv.${name}(): from`);
    }
    for (const [name, call] of Object.entries(asyncMethods)) {
      const error = await rejection(callAsync(() => call(inv), `inv.${name}()`), `inv.${name}()`);
      assertError(error, InvalidTransitionError, "INVALID_TRANSITION", `inv.${name}()`);
      assert.equal(error.from, from, `inv.${name}(): from`);
    }
    assert.equal(typeof inv[Symbol.asyncDispose], "function");
    assert.equal(await callAsync(() => inv[Symbol.asyncDispose](), "asyncDispose"), undefined);
    assert.equal(await inv[Symbol.asyncDispose](), undefined, "disposing twice is still a no-op");
    assert.equal(session.version, before.version);
    assert.deepEqual(plain(await session.history()), before.history);
  }

  test("after commit every method throws/rejects InvalidTransitionError; asyncDispose is a no-op", async () => {
    const { store } = await clockStore();
    const session = await store.open("ended-commit");
    const inv = await session.begin();
    inv.appendMessage("once");
    await inv.commit();
    await assertEnded(inv, session, "committed");
    assert.equal(session.status, "idle");
    assert.deepEqual(plain(session.messages()), ["once"]);
  });

  test("after abort: from aborted", async () => {
    const { store } = await clockStore();
    const session = await store.open("ended-abort");
    const inv = await session.begin();
    await inv.abort();
    await assertEnded(inv, session, "aborted");
    assert.equal(session.version, 0);
  });

  test("after interrupt: ended too", async () => {
    const { store } = await clockStore();
    const session = await store.open("ended-interrupt");
    const inv = await session.begin();
    await inv.interrupt("q");
    await assertEnded(inv, session, "committed");
    assert.equal(session.status, "interrupted");
  });

  test("from the call of commit(), interrupt() or abort() on, before it settles, staging and reads throw InvalidTransitionError: nothing slips into the commit or is dropped unseen by the abort (audit54)", async () => {
    for (const backend of ["memory", "kv"]) {
      const store = backend === "memory" ? await SessionStore.memory() : await SessionStore.kv(memoryKv());
      for (const [end, from] of [["commit", "committing"], ["interrupt", "committing"], ["abort", "aborted"]]) {
        const session = await store.open(`${backend}-${end}-window`);
        const inv = await session.begin();
        inv.appendMessage("staged before");
        const ending = end === "interrupt" ? inv.interrupt("q") : inv[end]();
        for (const [name, call] of [
          ["appendMessage", () => inv.appendMessage("after the call")],
          ["setState", () => inv.setState("k", 1)],
          ["deleteState", () => inv.deleteState("k")],
          ["compact", () => inv.compact({ before: 0, summary: [] })],
          ["emit", () => inv.emit({ part: 1 })],
          ["messages", () => inv.messages()],
          ["state", () => inv.state()],
        ]) {
          const error = thrown(call, `${backend}: ${name} after ${end}() was called`);
          assert.ok(error instanceof InvalidTransitionError, `${backend}: ${name} after ${end}(): ${error}`);
          assert.equal(error.from, from, `${backend}: ${name} after ${end}()`);
        }
        // Another way out meanwhile is refused from the same phase.
        const others = ["commit", "checkpoint"].map((other) => [other, inv[other]()]);
        for (const [other, call] of others) {
          const refused = await rejection(call, `${backend}: ${other}() while ${end}() settles`);
          assert.ok(refused instanceof InvalidTransitionError, `${backend}: ${other}() while ${end}(): ${refused}`);
          assert.equal(refused.from, from, `${backend}: ${other}() while ${end}() settles`);
        }
        await ending;
        const expected = end === "abort" ? [] : ["staged before"];
        assert.deepEqual(plain(session.messages()), expected, `${backend}: ${end} wrote what was staged before its call`);
        assert.deepEqual(plain(session.state()), {}, `${backend}: ${end}`);
      }
      await store.close();
    }
  });

  test("a commit that fails with StorageError leaves the invocation open for staging again, and a retry commits it (audit54)", async () => {
    let failPuts = 0;
    const base = memoryKv();
    const kv = { ...base, capabilities: base.capabilities, put: (...args) => (failPuts-- > 0 ? Promise.reject(new Error("backend down")) : base.put(...args)) };
    const store = await SessionStore.kv(kv);
    const session = await store.open("retry-after-failure");
    const inv = await session.begin();
    inv.appendMessage("first");
    failPuts = 10;
    const error = await rejection(inv.commit(), "commit against a failing backend");
    assert.equal(error.code, "STORAGE", String(error));
    assert.match(error.message, /retry it, or abort\(\)/, "the message says what to do");
    failPuts = 0;
    inv.appendMessage("second");
    await inv.commit();
    assert.deepEqual(plain(session.messages()), ["first", "second"]);
    await store.close();
  });

  test("asyncDispose of an open invocation aborts it and releases", async () => {
    const { store, events } = await clockStore();
    const session = await store.open("dispose-open");
    const inv = await session.begin();
    inv.appendMessage("discarded by dispose");
    inv.setState("k", "discarded");
    await inv[Symbol.asyncDispose]();
    assert.equal(session.status, "idle");
    assert.equal(session.version, 0);
    assert.deepEqual(plain(session.messages()), []);
    assert.deepEqual(plain(session.state()), {});
    assert.ok(events.some((e) => e.type === "abort" && e.token === inv.token));
    const error = thrown(() => inv.appendMessage("more"));
    assert.ok(error instanceof InvalidTransitionError);
    assert.equal(error.from, "aborted");
    const next = await session.begin();
    assert.equal(next.token, inv.token + 1);
    await next.abort();
  });
});

suite("lifecycle: checkpoint", () => {
  test("checkpoint keeps the lease, bumps the version, is readable by others; abort discards only later events", async () => {
    const { store, events } = await clockStore({ owner: "cp" });
    const session = await store.open("checkpoint");
    const inv = await session.begin();
    inv.appendMessage("step 1");
    inv.setState("step", 1);
    const v1 = await inv.checkpoint();
    assert.equal(v1, 1);
    assert.equal(session.version, 1);
    assert.equal(session.status, "running", "checkpoint keeps the lease");
    assert.deepEqual(plain(session.messages()), ["step 1"]);

    const reader = await store.open("checkpoint");
    assert.equal(reader.version, 1);
    assert.deepEqual(plain(reader.messages()), ["step 1"]);
    assert.deepEqual(plain(reader.state()), { step: 1 });
    assert.equal(reader.status, "running");
    const busy = await rejection(reader.begin());
    assert.ok(busy instanceof ConcurrencyError, "the lease is still held after a checkpoint");
    assert.equal(busy.holder, "cp");

    // The invocation stays usable: read your writes, more checkpoints.
    assert.deepEqual(plain(inv.messages()), ["step 1"]);
    inv.appendMessage("step 2");
    assert.equal(await inv.checkpoint(), 2);
    assert.equal(session.status, "running");

    inv.appendMessage("step 3 (aborted)");
    inv.setState("step", 3);
    await inv.abort();
    assert.equal(session.status, "idle");
    assert.equal(session.version, 2);
    assert.deepEqual(plain(session.messages()), ["step 1", "step 2"]);
    assert.deepEqual(plain(session.state()), { step: 1 });
    const history = await session.history();
    assert.deepEqual(eventTypes(history), ["0:created", "1:message", "1:state.set", "2:message"]);
    assert.equal(new Set(history.slice(1).map((e) => e.invocation)).size, 1, "one invocation wrote both versions");
    assert.equal(events.filter((e) => e.type === "lease.acquired").length, 1);
  });

  test("a commit, checkpoint, interrupt or abort called before a checkpoint settles is an InvalidTransitionError from committing, on the memory store as on a KV store; the checkpoint lands", async () => {
    for (const [kind, store] of [["memory", await SessionStore.memory()], ["kv", await SessionStore.kv(memoryKv())]]) {
      const session = await store.open("way-out");
      const inv = await session.begin();
      inv.appendMessage("step");
      const checkpoint = inv.checkpoint();
      const refusals = await Promise.all([
        rejection(inv.commit()),
        rejection(inv.checkpoint()),
        rejection(inv.interrupt("why?")),
        rejection(inv.abort()),
      ]);
      for (const [i, error] of refusals.entries()) {
        assert.ok(error instanceof InvalidTransitionError, `${kind} #${i}: ${error}`);
        assert.equal(error.from, "committing", `${kind} #${i}`);
      }
      assert.deepEqual(refusals.map((error) => error.action), ["commit", "checkpoint", "interrupt", "abort"], kind);
      assert.equal(await checkpoint, 1, kind);
      inv.appendMessage("after");
      assert.equal(await inv.commit(), 2, kind);
      assert.deepEqual(plain(session.messages()), ["step", "after"], kind);
      assert.equal(session.status, "idle", kind);
      await store.close();
    }
  });

  test("checkpoint then commit: versions keep counting, the token stays", async () => {
    const { store } = await clockStore();
    const session = await store.open("checkpoint-commit");
    const inv = await session.begin();
    inv.appendMessage(1);
    assert.equal(await inv.checkpoint(), 1);
    inv.appendMessage(2);
    assert.equal(await inv.commit(), 2);
    assert.equal(session.status, "idle");
    assert.deepEqual(plain(session.messages()), [1, 2]);
    const next = await session.begin();
    assert.equal(next.token, inv.token + 1);
    await next.abort();
  });

  test("while a checkpoint is being written the invocation's reads go on and see what it writes; what it stages meanwhile goes to the next commit", async () => {
    // A KV whose puts wait for a gate, so that the checkpoint stays in flight while the test reads.

    const inner = memoryKv();
    let gate;
    const kv = {
      ...inner,
      capabilities: inner.capabilities,
      get: (...args) => inner.get(...args),
      delete: (...args) => inner.delete(...args),
      list: (...args) => inner.list(...args),
      put: async (...args) => {
        if (gate) await gate.promise;
        return inner.put(...args);
      },
    };
    const store = await SessionStore.kv(kv);
    const session = await store.open("reads-in-flight");
    await session.invoke((inv) => inv.setState("k", 0));
    const inv = await session.begin();
    inv.appendMessage("m1");
    inv.setState("k", 1);
    let open;
    gate = { promise: new Promise((resolve) => (open = resolve)) };
    const checkpoint = inv.checkpoint();
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(plain(inv.messages()), ["m1"], "messages() while the checkpoint is written");
    assert.deepEqual(plain(inv.state()), { k: 1 }, "state() while the checkpoint is written");
    assert.equal(inv.stateValue("k"), 1);
    inv.appendMessage("m2"); // a framework's next step, while its last step's checkpoint is written
    assert.deepEqual(plain(inv.messages()), ["m1", "m2"]);
    open();
    gate = undefined;
    assert.equal(await checkpoint, 2);
    assert.deepEqual(plain(session.messages()), ["m1"], "the checkpoint wrote what was staged before it");
    assert.deepEqual(plain(inv.messages()), ["m1", "m2"]);
    assert.equal(inv.stateValue("k"), 1);
    assert.equal(await inv.commit(), 3);
    assert.deepEqual(plain(session.messages()), ["m1", "m2"]);
  });

  test("an empty checkpoint or commit still makes a version", async () => {
    const { store } = await clockStore();
    const session = await store.open("empty-commit");
    const inv = await session.begin();
    assert.equal(await inv.checkpoint(), 1);
    assert.equal(await inv.commit(), 2);
    assert.equal(session.version, 2);
  });
});

suite("lifecycle: leases and fencing", () => {
  test("a lapsed lease is taken over with token + 1 and the stale commit writes nothing", async () => {
    const { store, now, events } = await clockStore({ leaseMs: 1000, heartbeat: false, owner: "o" });
    const session = await store.open("lease-lost");
    await session.invoke((inv) => inv.appendMessage("v1"));
    const stale = await session.begin();
    stale.appendMessage("stale write");
    stale.setState("who", "stale");
    assert.equal(session.status, "running");
    now.advance(1001);
    assert.equal(session.status, "idle", "a running session whose lease lapsed reads idle");

    const other = await store.open("lease-lost");
    const fresh = await other.begin();
    assert.equal(fresh.token, stale.token + 1, "the take-over lease has the next fencing token");
    fresh.appendMessage("fresh write");
    assert.equal(await fresh.commit(), 2);
    const historyBefore = plain(await other.history());
    const messagesBefore = plain(other.messages());

    const error = await rejection(stale.commit());
    assertError(error, LeaseLostError, "LEASE_LOST");
    await session.refresh();
    await other.refresh();
    for (const s of [session, other]) {
      assert.equal(s.version, 2);
      assert.deepEqual(plain(s.messages()), messagesBefore);
      assert.deepEqual(plain(s.messages()), ["v1", "fresh write"]);
      assert.deepEqual(plain(s.state()), {});
      assert.deepEqual(plain(await s.history()), historyBefore);
    }
    // The lost invocation is ended.
    const after = thrown(() => stale.appendMessage("more"));
    assert.ok(after instanceof InvalidTransitionError);
    assert.equal(after.from, "lease-lost");
    assert.equal(await stale[Symbol.asyncDispose](), undefined);
    assert.ok(events.some((e) => e.type === "lease.lost" && e.token === stale.token));
  });

  test("the same Session object in the same realm takes over a lapsed lease", async () => {
    const { store, now } = await clockStore({ leaseMs: 500, heartbeat: false });
    const session = await store.open("lease-same-object");
    const stale = await session.begin();
    stale.appendMessage("stale");
    now.advance(501);
    const fresh = await session.begin();
    assert.equal(fresh.token, stale.token + 1);
    await fresh.commit();
    await assert.rejects(stale.commit(), LeaseLostError);
    assert.deepEqual(plain(session.messages()), []);
    assert.equal(session.version, 1);
  });

  test("a commit after the lease lapsed rejects with LeaseLostError even if nobody took over", async () => {
    const { store, now } = await clockStore({ leaseMs: 1000, heartbeat: false });
    const session = await store.open("lease-lapsed");
    const inv = await session.begin();
    inv.appendMessage("too late");
    now.advance(1500);
    const error = await rejection(inv.commit());
    assertError(error, LeaseLostError, "LEASE_LOST");
    assert.equal(session.version, 0);
    assert.deepEqual(plain(session.messages()), []);
    assert.deepEqual(eventTypes(await session.history()), ["0:created"]);
    const reopened = await store.open("lease-lapsed");
    assert.equal(reopened.version, 0);
    const next = await session.begin();
    assert.ok(next.token > inv.token);
    await next.abort();
  });

  test("an invocation a LeaseLostError ended refuses abort() as after a commit; one lost unseen aborts quietly", async () => {
    for (const how of ["commit", "checkpoint"]) {
      const { store, now } = await clockStore({ leaseMs: 1000, heartbeat: false });
      const session = await store.open(`lost-then-abort-${how}`);
      const inv = await session.begin();
      inv.appendMessage("too late");
      now.advance(1001);
      const taker = await (await store.open(`lost-then-abort-${how}`)).begin();
      assertError(await rejection(inv[how]()), LeaseLostError, "LEASE_LOST");
      for (const call of [() => inv.abort(), () => inv.commit(), () => inv.interrupt("x")]) {
        const error = await rejection(call());
        assertError(error, InvalidTransitionError, "INVALID_TRANSITION");
        assert.equal(error.from, "lease-lost", how);
      }
      await inv[Symbol.asyncDispose]();
      // The refused abort wrote nothing: the taker's lease holds.
      taker.appendMessage("taker");
      await taker.commit();
      assert.deepEqual(plain((await store.open(`lost-then-abort-${how}`)).messages()), ["taker"]);
    }
    // Lost, but no call has said so yet: the abort is the caller's cleanup and resolves.
    const { store, now } = await clockStore({ leaseMs: 1000, heartbeat: false });
    const session = await store.open("lost-unseen");
    const inv = await session.begin();
    now.advance(1001);
    const taker = await (await store.open("lost-unseen")).begin();
    await inv.abort();
    assert.equal((await rejection(inv.commit())).from, "aborted");
    await taker.abort();
  });

  test("a checkpoint after the lease lapsed rejects with LeaseLostError; earlier checkpoints stay", async () => {
    const { store, now } = await clockStore({ leaseMs: 1000, heartbeat: false });
    const session = await store.open("lease-lapsed-checkpoint");
    const inv = await session.begin();
    inv.appendMessage("kept");
    assert.equal(await inv.checkpoint(), 1);
    now.advance(900);
    inv.appendMessage("also kept");
    assert.equal(await inv.checkpoint(), 2, "a checkpoint renews the lease");
    now.advance(900);
    inv.appendMessage("lost");
    assert.equal(await inv.checkpoint(), 3, "still within the renewed lease");
    now.advance(1001);
    inv.appendMessage("never visible");
    await assert.rejects(inv.checkpoint(), LeaseLostError);
    await session.refresh();
    assert.equal(session.version, 3);
    assert.deepEqual(plain(session.messages()), ["kept", "also kept", "lost"]);
    assert.equal(session.status, "idle");
  });

  test("renew() extends the lease by the store's clock", async () => {
    const { store, now } = await clockStore({ leaseMs: 1000, heartbeat: false });
    const session = await store.open("renew");
    const inv = await session.begin();
    now.advance(800);
    await inv.renew();
    now.advance(800);
    assert.equal(session.status, "running");
    const busy = await rejection(session.begin());
    assert.ok(busy instanceof ConcurrencyError);
    assert.equal(busy.retryAfterMs, 200);
    inv.appendMessage("renewed");
    assert.equal(await inv.commit(), 1);
  });

  test("the store option leaseMs sets retryAfterMs by the store's clock", async () => {
    const { store, now } = await clockStore({ leaseMs: 5000, heartbeat: false });
    const session = await store.open("retry-after");
    const inv = await session.begin();
    now.advance(1500);
    const error = await rejection(session.begin());
    assert.equal(error.retryAfterMs, 3500);
    await inv.abort();
  });
});

test("sessions of a store are instances of the exported classes, with no public constructor", async () => {
  const store = await SessionStore.memory();
  assert.ok(store instanceof SessionStore);
  const session = await store.open();
  assert.ok(session instanceof Session);
  const inv = await session.begin();
  assert.ok(inv instanceof Invocation);
  await inv.abort();
});

suite("lifecycle: statuses of old versions", () => {
  test("at(v) of a version that a stopped turn ended with interrupt() is interrupted after the session moved on", async () => {
    for (const make of [() => SessionStore.memory(), () => SessionStore.kv(memoryKv())]) {
      const store = await make();
      const session = await store.open("stopped-interrupt");
      await session.invoke((inv) => inv.appendMessage("m1"));
      const inv = await session.begin();
      inv.appendMessage("q");
      const stopped = session.stop({ reason: "user", graceMs: 3000 });
      await inv.interrupt("need approval", { ask: 1 });
      await stopped;
      assert.deepEqual(
        (await session.history({ from: 2 })).map((event) => event.type),
        ["message", "interrupt", "stopped"],
      );
      assert.equal((await session.at(2)).status, "interrupted");
      await session.invoke((i) => i.appendMessage("answer"), { resume: "yes" });
      assert.equal((await session.at(2)).status, "interrupted", "an old version keeps its status");
      assert.equal((await session.at(3)).status, "idle");
    }
  });
});

suite("lifecycle: dispose while a commit writes", () => {
  test("[Symbol.asyncDispose] during a commit in flight waits for it: no error, nothing aborted (memory and kv)", async () => {
    for (const make of [() => SessionStore.memory(), () => SessionStore.kv(memoryKv())]) {
      const store = await make();
      const session = await store.open("dispose-in-flight");
      const inv = await session.begin();
      inv.appendMessage("kept");
      const [committed, disposed] = await Promise.allSettled([inv.commit(), inv[Symbol.asyncDispose]()]);
      assert.equal(committed.status, "fulfilled", String(committed.reason));
      assert.equal(disposed.status, "fulfilled", String(disposed.reason));
      assert.equal(committed.value, 1);
      assert.deepEqual(plain(session.messages()), ["kept"]);
      assert.equal(session.status, "idle");
    }
  });

  test("[Symbol.asyncDispose] during a commit that fails with StorageError aborts the invocation once it has failed", async () => {
    const base = memoryKv();
    let failPuts = 0; // how many puts to refuse
    const kv = {
      ...base,
      capabilities: base.capabilities,
      put: (key, value, options) => (failPuts-- > 0 ? Promise.reject(new Error("down")) : base.put(key, value, options)),
    };
    const store = await SessionStore.kv(kv);
    const session = await store.open("dispose-failed");
    const inv = await session.begin();
    inv.appendMessage("lost");
    failPuts = 1;
    const [committed, disposed] = await Promise.allSettled([inv.commit(), inv[Symbol.asyncDispose]()]);
    assert.equal(committed.status, "rejected");
    assert.equal(committed.reason.code, "STORAGE");
    assert.equal(disposed.status, "fulfilled", String(disposed.reason));
    const next = await session.begin(); // released by the dispose, not held for a lease
    await next.abort();
    assert.deepEqual(plain(session.messages()), []);
  });
});

suite("lifecycle: no public constructors", () => {
  test("new SessionStore(), new Session() and new Invocation() throw a TypeError saying what makes one", () => {
    for (const [Class, maker] of [
      [SessionStore, "SessionStore.memory()"],
      [Session, "store.open(id)"],
      [Invocation, "session.begin()"],
    ]) {
      const error = thrown(() => new Class());
      assert.ok(error instanceof TypeError, `${Class.name}: got ${error}`);
      assert.ok(error.message.includes(`${Class.name} has no public constructor`), error.message);
      assert.ok(error.message.includes(maker), error.message);
    }
  });
});

suite("lifecycle: list", () => {
  test("list() resolves to a result made for the call: its array and entries are the caller's", async () => {
    const store = await SessionStore.memory();
    await store.open("a");
    await store.open("b");
    const first = await store.list();
    assert.deepEqual(first.sessions.map((info) => info.id).sort(), ["a", "b"]);
    first.sessions.push({ id: "mine" });
    first.sessions[0].version = 99;
    const second = await store.list();
    assert.deepEqual(second.sessions.map((info) => info.id).sort(), ["a", "b"]);
    assert.ok(second.sessions.every((info) => info.version === 0));
  });
});

suite("lifecycle: options", () => {
  test("an option a method does not take is a ValidationError naming it, as open() and begin() refuse one; nothing is done", async () => {
    const store = await SessionStore.memory();
    const session = await store.open("options");
    await session.invoke((inv) => inv.appendMessage("kept"));
    const calls = [
      ["history", () => session.history({ form: 0 }), "options.form"],
      ["fork", () => session.fork({ version: 0 }), "options.version"],
      ["prune", () => session.prune({ before: 1, keep: 1 }), "options.keep"],
      ["stop", () => session.stop({ grace: 0 }), "options.grace"],
      ["list", () => store.list({ limt: 1 }), "options.limt"],
      ["sweepExpired", () => store.sweepExpired({ max: 1 }), "options.max"],
      ["import", async () => store.import(await session.export(), { name: "x" }), "options.name"],
    ];
    for (const [name, call, path] of calls) {
      const error = await rejection(call(), name);
      assertError(error, ValidationError, "INVALID_INPUT");
      assert.equal(error.path, path, name);
    }
    for (const [name, call, path] of [
      ["export", () => store.export({ prefx: "o" }), "options.prefx"],
      ["follow", () => session.follow({ afer: { invocation: "x", seq: 0 } }), "options.afer"],
      ["follow after", () => session.follow({ after: { invocation: "x", sequence: 0 } }), "options.after.sequence"],
    ]) {
      const error = thrown(call, name);
      assertError(error, ValidationError, "INVALID_INPUT");
      assert.equal(error.path, path, name);
    }
    const inv = await session.begin();
    const error = thrown(() => inv.compact({ before: 1, summary: ["s"], forced: true }), "compact");
    assertError(error, ValidationError, "INVALID_INPUT");
    assert.equal(error.path, "options.forced");
    await inv.abort();
    assert.deepEqual(plain(session.messages()), ["kept"]);
    assert.equal((await store.list()).sessions.length, 1, "no fork, no import");
  });
});

suite("lifecycle: inv.session", () => {
  test("inv.session is the Session that began the invocation (begin or invoke), the same object at every read", async () => {
    const store = await SessionStore.memory();
    const session = await store.open("began-by");
    const other = await store.open("began-by");
    const inv = await session.begin();
    assert.equal(inv.session, session);
    assert.equal(inv.session, inv.session);
    assert.notEqual(inv.session, other);
    inv.appendMessage("one");
    await inv.commit();
    assert.equal(inv.session.version, 1);
    let seen;
    await other.invoke((each) => {
      seen = each.session;
      each.appendMessage("two");
    });
    assert.equal(seen, other);
    assert.equal(session.version, 2, "the Sessions of an id in a store share its view");
    const refused = await rejection(session.invoke("not a function"));
    assertError(refused, ValidationError, "INVALID_INPUT");
  });
});
