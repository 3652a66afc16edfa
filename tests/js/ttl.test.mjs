// Expiry: idle TTL and maximum lifetime, by the store's clock; sweepExpired.
import { describe as suite } from "node:test";
import assert from "node:assert/strict";
import { InvalidTransitionError, SessionExpiredError, NotFoundError, SessionStore, ValidationError } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { rejection, assertError, plain, clockStore, callAsync, manualClock, T0, test } from "./_helpers.mjs";

async function assertExpired(session) {
  assert.equal(session.status, "expired");
  for (const [name, attempt] of Object.entries({
    begin: () => session.begin(),
    invoke: () => session.invoke(() => assert.fail("fn must not run on an expired session")),
    fork: () => session.fork(),
    close: () => session.close(),
  })) {
    const error = await rejection(callAsync(attempt, name), name);
    assertError(error, SessionExpiredError, "SESSION_EXPIRED", name);
    assert.ok(error instanceof InvalidTransitionError, `${name}: SessionExpiredError extends InvalidTransitionError`);
    assert.equal(error.from, "expired", `${name}: from`);
    if (name !== "invoke") assert.equal(error.action, name, `${name}: action`);
    // open(id) gives the expired session back until it is swept or deleted: the advice says so.
    assert.match(error.message, /store\.sweepExpired\(\) or store\.delete\(id\)/, `${name}: ${error.message}`);
  }
}

suite("ttl: idleTtlMs", () => {
  test("store-level idleTtlMs: expires after that long without a commit", async () => {
    const { store, now } = await clockStore({ idleTtlMs: 1000 });
    const session = await store.open("idle-ttl");
    assert.equal(session.createdAt, T0);
    assert.equal(session.expiresAt, T0 + 1000);
    now.advance(600);
    await session.invoke((inv) => inv.appendMessage("keeps it alive"));
    assert.equal(session.updatedAt, T0 + 600);
    assert.equal(session.expiresAt, T0 + 1600, "a commit restarts the idle TTL");
    now.set(T0 + 1500);
    assert.equal(session.status, "idle", "not expired: the commit at +600 restarted the TTL");
    await session.invoke(() => {});
    now.set(T0 + 1500 + 1001);
    await assertExpired(session);
    assert.deepEqual(plain(session.messages()), ["keeps it alive"], "an expired session stays readable until swept");
    const reopened = await store.open("idle-ttl");
    assert.equal(reopened.status, "expired");
    const listed = (await store.list()).sessions.find((s) => s.id === "idle-ttl");
    assert.equal(listed.status, "expired");
    assert.equal(listed.expiresAt, T0 + 2500);
  });

  test("per-open idleTtlMs overrides the store default", async () => {
    const { store, now } = await clockStore({ idleTtlMs: 1000 });
    const short = await store.open("store-default");
    const long = await store.open("per-open", { idleTtlMs: 5000 });
    assert.equal(long.expiresAt, T0 + 5000);
    now.advance(2000);
    assert.equal(short.status, "expired");
    assert.equal(long.status, "idle");
    await long.invoke((inv) => inv.appendMessage("alive"));
    assert.equal(long.version, 1);
    now.advance(5001);
    assert.equal(long.status, "expired");
  });

  test("a per-open TTL applies only when the session is created", async () => {
    const { store } = await clockStore();
    const created = await store.open("ttl-at-create", { idleTtlMs: 1000 });
    assert.equal(created.expiresAt, T0 + 1000);
    const again = await store.open("ttl-at-create");
    assert.equal(again.expiresAt, T0 + 1000);
  });

  test("without a TTL a session never expires", async () => {
    const { store, now } = await clockStore();
    const session = await store.open("forever");
    now.advance(10 * 365 * 24 * 3600 * 1000);
    assert.equal(session.status, "idle");
    assert.equal(session.expiresAt, null);
    await session.invoke((inv) => inv.appendMessage("still here"));
    assert.equal(await store.sweepExpired(), 0);
  });
});

suite("ttl: maxLifetimeMs", () => {
  test("store-level maxLifetimeMs: expires that long after creation, commits or not", async () => {
    const { store, now } = await clockStore({ maxLifetimeMs: 3000 });
    const session = await store.open("lifetime");
    assert.equal(session.expiresAt, T0 + 3000);
    for (let i = 0; i < 5; i++) {
      now.advance(500);
      await session.invoke((inv) => inv.appendMessage(i));
      assert.equal(session.expiresAt, T0 + 3000, "commits do not extend the maximum lifetime");
    }
    now.set(T0 + 3001);
    await assertExpired(session);
    assert.deepEqual(plain(session.messages()), [0, 1, 2, 3, 4]);
  });

  test("per-open maxLifetimeMs, and the earlier of the two limits wins", async () => {
    const { store, now } = await clockStore({ maxLifetimeMs: 100_000 });
    const session = await store.open("lifetime-open", { maxLifetimeMs: 2000, idleTtlMs: 1500 });
    assert.equal(session.expiresAt, T0 + 1500);
    now.advance(1000);
    await session.invoke(() => {});
    assert.equal(session.expiresAt, T0 + 2000, "idle TTL would say +2500, the lifetime ends at +2000");
    now.set(T0 + 2001);
    assert.equal(session.status, "expired");
    await assert.rejects(session.begin(), SessionExpiredError);
  });

  test("a session expires while running once its lease has lapsed", async () => {
    const { store, now } = await clockStore({ maxLifetimeMs: 1000, leaseMs: 500, heartbeat: false });
    const session = await store.open("expire-running");
    const inv = await session.begin();
    now.advance(1500);
    assert.equal(session.status, "expired");
    await assert.rejects(inv.commit());
    assert.equal(session.version, 0);
  });
});

suite("ttl: sweepExpired", () => {
  test("sweepExpired() deletes exactly the expired sessions and returns the count", async () => {
    const { store, now, events } = await clockStore({ idleTtlMs: 1000 });
    await store.open("sweep/a");
    await store.open("sweep/b");
    const keep = await store.open("sweep/keep", { idleTtlMs: 60_000 });
    now.advance(1001);
    await keep.invoke((inv) => inv.appendMessage("alive"));
    assert.equal(await callAsync(() => store.sweepExpired()), 2);
    const ids = (await store.list({ prefix: "sweep/" })).sessions.map((s) => s.id).sort();
    assert.deepEqual(ids, ["sweep/keep"]);
    for (const id of ["sweep/a", "sweep/b"]) {
      const error = await rejection(store.open(id, { create: false }));
      assertError(error, NotFoundError, "NOT_FOUND");
    }
    const expire = events.filter((e) => e.type === "expire").map((e) => e.session).sort();
    assert.deepEqual(expire, ["sweep/a", "sweep/b"]);
    assert.equal(await store.sweepExpired(), 0, "nothing left to sweep");
    assert.deepEqual(plain((await store.open("sweep/keep", { create: false })).messages()), ["alive"]);
  });

  test("on a KV store with TTLs, an hourly sweep deletes every record of a session that expired (the backend TTL only backs it up)", async () => {
    // memoryKv honours `ttlMs` by Date.now: it runs on the store's clock here.
    const now = manualClock(Date.now());
    const realNow = Date.now;
    Date.now = now;
    try {
      const kv = memoryKv();
      const keys = async () => (await kv.list("", { limit: 10_000 })).keys;
      const kept = await (await SessionStore.kv(kv, { now })).open("backend-ttl/kept");
      await kept.invoke((inv) => inv.appendMessage("kept"));
      const keptKeys = await keys();
      const store = await SessionStore.kv(kv, { now, idleTtlMs: 1000, snapshotEvery: 2 });
      const session = await store.open("backend-ttl/expiring");
      for (let turn = 0; turn < 5; turn++) await session.invoke((inv) => inv.appendMessage({ turn }));
      assert.ok((await keys()).length > keptKeys.length + 5, "the expiring session's head and records are stored");
      now.advance(1000 + 60 * 60 * 1000);
      assert.equal(await store.sweepExpired(), 1, "the sweep finds the expired session by its head");
      assert.deepEqual(await keys(), keptKeys, "nothing of the expired session is left behind");
      assert.deepEqual(plain((await store.open("backend-ttl/kept", { create: false })).messages()), ["kept"]);
    } finally {
      Date.now = realNow;
    }
  });

  test("sweepExpired({ limit }) refuses a limit that is not a positive integer, with one message", async () => {
    const store = await SessionStore.memory();
    for (const limit of [0, -1, 1.5, "2"]) {
      await assert.rejects(store.sweepExpired({ limit }), (error) => {
        assert.ok(error instanceof ValidationError, `limit ${limit}: ${error?.name}`);
        assert.equal(error.path, "options.limit");
        assert.match(error.message, /options\.limit must be a positive integer/);
        return true;
      });
    }
  });

  test("sweepExpired({ limit }) deletes at most limit sessions", async () => {
    const { store, now } = await clockStore({ maxLifetimeMs: 10 });
    for (const id of ["l1", "l2", "l3"]) await store.open(`limit/${id}`);
    now.advance(11);
    assert.equal(await store.sweepExpired({ limit: 2 }), 2);
    assert.equal((await store.list({ prefix: "limit/" })).sessions.length, 1);
    assert.equal(await store.sweepExpired({ limit: 2 }), 1);
    assert.equal((await store.list({ prefix: "limit/" })).sessions.length, 0);
  });

  test("an id swept away can be opened again as a new session", async () => {
    const { store, now } = await clockStore({ idleTtlMs: 100 });
    const old = await store.open("reborn");
    await old.invoke((inv) => inv.appendMessage("old life"));
    now.advance(101);
    assert.equal(await store.sweepExpired(), 1);
    const fresh = await store.open("reborn");
    assert.equal(fresh.version, 0);
    assert.equal(fresh.status, "idle");
    assert.deepEqual(plain(fresh.messages()), []);
    assert.deepEqual(
      (await fresh.history()).map((e) => e.type),
      ["created"],
    );
  });
});
