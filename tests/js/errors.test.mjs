// Every error class of API.md: exported from the public import, a real Error, stable code and name.
import { describe as suite } from "node:test";
import assert from "node:assert/strict";
import * as api from "agent-session";
import {
  SessionStore,
  AgentSessionError,
  ConcurrencyError,
  LeaseLostError,
  ConflictError,
  InvalidTransitionError,
  NotFoundError,
  SessionExpiredError,
  SessionClosedError,
  ValidationError,
  LimitExceededError,
  CorruptRecordError,
  StorageError,
  UnsafeStoreError,
} from "agent-session";
import { rejection, thrown, clockStore, test } from "./_helpers.mjs";

const table = [
  [ConcurrencyError, "CONCURRENT_INVOCATION", AgentSessionError],
  [LeaseLostError, "LEASE_LOST", AgentSessionError],
  [ConflictError, "VERSION_CONFLICT", AgentSessionError],
  [InvalidTransitionError, "INVALID_TRANSITION", AgentSessionError],
  [NotFoundError, "NOT_FOUND", AgentSessionError],
  [SessionExpiredError, "SESSION_EXPIRED", InvalidTransitionError],
  [SessionClosedError, "SESSION_CLOSED", InvalidTransitionError],
  [ValidationError, "INVALID_INPUT", AgentSessionError],
  [LimitExceededError, "LIMIT_EXCEEDED", AgentSessionError],
  [CorruptRecordError, "CORRUPT_RECORD", AgentSessionError],
  [StorageError, "STORAGE", AgentSessionError],
  [UnsafeStoreError, "UNSAFE_STORE", AgentSessionError],
];

suite("errors: exports and class shape", () => {
  test("every name of API.md is exported from the package", () => {
    for (const name of [
      "SessionStore",
      "Session",
      "Invocation",
      "AgentSessionError",
      "ConcurrencyError",
      "LeaseLostError",
      "ConflictError",
      "InvalidTransitionError",
      "NotFoundError",
      "SessionExpiredError",
      "SessionClosedError",
      "ValidationError",
      "LimitExceededError",
      "CorruptRecordError",
      "StorageError",
      "UnsafeStoreError",
    ]) {
      assert.equal(typeof api[name], "function", `${name} must be exported as a class`);
      assert.equal(api[name].name, name, `${name}.name`);
    }
    assert.equal(typeof SessionStore.memory, "function");
  });

  // indexedDb and kv arrive with their backends (issues 3 and 4); this release ships memory.
  test("SessionStore has the memory factory of API.md", () => {
    for (const factory of ["memory"]) {
      assert.equal(typeof SessionStore[factory], "function", `SessionStore.${factory}`);
    }
  });

  test("AgentSessionError extends Error", () => {
    assert.equal(Object.getPrototypeOf(AgentSessionError.prototype), Error.prototype);
  });

  for (const [Class, code, Parent] of table) {
    test(`${Class.name}: extends ${Parent.name}, AgentSessionError and Error`, () => {
      assert.equal(Object.getPrototypeOf(Class.prototype), Parent.prototype, `${Class.name}'s parent`);
      assert.ok(Class.prototype instanceof AgentSessionError);
      assert.ok(Class.prototype instanceof Error);
      assert.equal(Class.name, Class.prototype.constructor.name);
      assert.equal(typeof code, "string");
    });
  }
});

/** Each class, produced for real through the memory store. */
const producers = {
  async ConcurrencyError() {
    const { store } = await clockStore({ owner: "prod" });
    const s = await store.open("c");
    await s.begin();
    return rejection(s.begin());
  },
  async LeaseLostError() {
    const { store, now } = await clockStore({ leaseMs: 10, heartbeat: false });
    const s = await store.open("l");
    const inv = await s.begin();
    now.advance(11);
    return rejection(inv.commit());
  },
  async InvalidTransitionError() {
    const { store } = await clockStore();
    const inv = await (await store.open("i")).begin();
    await inv.commit();
    return rejection(inv.commit());
  },
  async NotFoundError() {
    const { store } = await clockStore();
    return rejection(store.open("nf", { create: false }));
  },
  async SessionExpiredError() {
    const { store, now } = await clockStore({ idleTtlMs: 5 });
    const s = await store.open("e");
    now.advance(6);
    return rejection(s.begin());
  },
  async SessionClosedError() {
    const { store } = await clockStore();
    const s = await store.open("cl");
    await s.close();
    return rejection(s.begin());
  },
  async ValidationError() {
    const { store } = await clockStore();
    return rejection(store.open(""));
  },
  async LimitExceededError() {
    const { store } = await clockStore({ limits: { maxMessageBytes: 4 } });
    const inv = await (await store.open("lim")).begin();
    return thrown(() => inv.appendMessage("too long"));
  },
};

suite("errors: real instances", () => {
  for (const [Class, code, Parent] of table) {
    const produce = producers[Class.name];
    if (!produce) continue;
    test(`${Class.name}: instanceof, code ${code}, name, message, stack`, async () => {
      const error = await produce();
      assert.ok(error instanceof Class, `expected ${Class.name}, got ${error?.constructor?.name}: ${error?.message}`);
      assert.ok(error instanceof Parent);
      assert.ok(error instanceof AgentSessionError);
      assert.ok(error instanceof Error);
      assert.equal(error.code, code);
      assert.equal(error.name, Class.name);
      assert.equal(error.constructor, Class);
      assert.equal(typeof error.message, "string");
      assert.ok(error.message.length > 10, "the message explains what happened");
      assert.equal(typeof error.stack, "string");
      assert.ok(String(error).startsWith(`${Class.name}: `), `String(error): ${String(error)}`);
      assert.equal(Object.prototype.toString.call(error), "[object Error]");
      for (const [Other] of table) {
        if (Other !== Class && !(Class.prototype instanceof Other)) {
          assert.ok(!(error instanceof Other), `${Class.name} must not be instanceof ${Other.name}`);
        }
      }
    });
  }

  test("field types: ConcurrencyError, InvalidTransitionError, LimitExceededError, ValidationError", async () => {
    const c = await producers.ConcurrencyError();
    assert.equal(c.holder, "prod");
    assert.equal(c.retryAfterMs, 30_000);
    const i = await producers.InvalidTransitionError();
    assert.equal(i.from, "committed");
    assert.equal(i.action, "commit");
    const l = await producers.LimitExceededError();
    assert.equal(l.limit, 4);
    assert.ok(l.actual >= 8 && l.actual <= 10, `"too long" is 8 bytes (10 as JSON text), got ${l.actual}`);
    const v = await producers.ValidationError();
    assert.ok(v.path === undefined || typeof v.path === "string");
  });
});

suite("errors: classes that the memory store cannot produce (shape only)", () => {
  for (const [Class, code] of [
    [ConflictError, "VERSION_CONFLICT"],
    [CorruptRecordError, "CORRUPT_RECORD"],
    [StorageError, "STORAGE"],
    [UnsafeStoreError, "UNSAFE_STORE"],
  ]) {
    test(`${Class.name}: constructible with a message, carries code ${code}`, () => {
      const error = new Class("probe message");
      assert.ok(error instanceof Class);
      assert.ok(error instanceof AgentSessionError);
      assert.ok(error instanceof Error);
      assert.equal(error.code, code);
      assert.equal(error.name, Class.name);
      assert.equal(error.message, "probe message");
    });
  }
});
