// Shared helpers of the contract suites (not a test file: node --test only picks *.test.mjs here).
import assert from "node:assert/strict";
import { test as nodeTest, after } from "node:test";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";

export const T0 = 1_700_000_000_000;

/** A manual clock for the `now` store option: time moves only when a test moves it. */
export function manualClock(start = T0) {
  let t = start;
  const now = () => t;
  now.advance = (ms) => {
    t += ms;
    return t;
  };
  now.set = (ms) => {
    t = ms;
    return t;
  };
  return now;
}

/** A promise with its resolve function outside. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The rejection reason of `promise`, failing the test if it fulfils. */
export async function rejection(promise, what = "the promise") {
  assert.ok(promise && typeof promise.then === "function", `${what} must be a promise`);
  let value;
  try {
    value = await promise;
  } catch (error) {
    return error;
  }
  assert.fail(`${what} fulfilled with ${safeString(value)} but was expected to reject`);
}

/** The error a synchronous call throws, failing the test if it returns. */
export function thrown(fn, what = "the call") {
  let value;
  try {
    value = fn();
  } catch (error) {
    return error;
  }
  assert.fail(`${what} returned ${safeString(value)} but was expected to throw`);
}

/**
 * Calls a Promise-returning API method and checks the pinned rule: it never throws synchronously, it
 * returns a Promise (failures are rejections).
 */
export function callAsync(fn, what = "the call") {
  let result;
  try {
    result = fn();
  } catch (error) {
    assert.fail(`${what} threw synchronously (${safeString(error)}) instead of returning a rejected promise`);
  }
  assert.ok(result instanceof Promise, `${what} must return a Promise, got ${safeString(result)}`);
  return result;
}

/** Asserts that `error` is an instance of `Class` with `code`, and that it is a real Error. */
export function assertError(error, Class, code, what = "the error") {
  assert.ok(error instanceof Class, `${what}: expected a ${Class.name}, got ${describe(error)}`);
  assert.ok(error instanceof Error, `${what} must be an Error`);
  assert.equal(error.code, code, `${what}: code`);
  assert.equal(error.name, Class.name, `${what}: name`);
  assert.equal(typeof error.message, "string");
  assert.ok(error.message.length > 0, `${what}: message must not be empty`);
}

export function describe(value) {
  if (value instanceof Error) return `${value.constructor?.name ?? "Error"}(${value.code ?? "no code"}): ${value.message}`;
  return safeString(value);
}

function safeString(value) {
  try {
    if (value instanceof Error) return describe(value);
    if (typeof value === "string") return JSON.stringify(value);
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Every object and array reachable from `value` is frozen. */
export function assertDeepFrozen(value, path = "$") {
  if (value === null || typeof value !== "object") return;
  assert.ok(Object.isFrozen(value), `${path} must be frozen`);
  for (const key of Object.keys(value)) assertDeepFrozen(value[key], `${path}.${key}`);
}

/** A plain JSON copy of a read (events, messages), for comparing before/after. */
export const plain = (value) => JSON.parse(JSON.stringify(value));

/** Types of the events of `history`, as "version:type" strings. */
export const eventTypes = (history) => history.map((event) => `${event.version}:${event.type}`);

/** A memory store with a manual clock, the default test setup. */
export async function clockStore(options = {}) {
  const now = options.now ?? manualClock();
  const events = [];
  const store = await SessionStore.memory({
    ...options,
    now,
    onEvent: (event) => {
      events.push(event);
      options.onEvent?.(event);
    },
  });
  return { store, now, events };
}

/** UTF-8 byte length of a string. */
export const utf8Bytes = (text) => new TextEncoder().encode(text).length;

/**
 * `node:test`'s test with a timeout, so that a broken guard that waits instead of failing fast (or a
 * lease that never lapses) fails its test instead of stalling the whole run.
 */
export function test(name, fn) {
  return nodeTest(name, { timeout: 15_000 }, fn);
}

/**
 * What `promise` settles with, or `timedOut` once `ms` have passed first. Its timer is cleared when the
 * promise settles: a pending one kept the file's process alive past its last test, racing the leak
 * check below (a file failed, every test passed, when the check came first).
 */
export async function within(promise, ms, timedOut) {
  let timer;
  const deadline = new Promise((resolve) => (timer = setTimeout(() => resolve(timedOut), ms)));
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

// A library bug can leave a timer loop running (a begin that waits for ever on a clock that never
// moves): the test then fails by its timeout, and this keeps the leaked loop from holding the file's
// process open. The timer is unref'd, so a clean run exits without waiting for it.
after(() => {
  setTimeout(() => {
    const held = process.getActiveResourcesInfo().filter((kind) => kind !== "TTYWrap");
    console.error(`# a timer or handle leaked past the last test of this file (${held.join(", ")}); exiting`);
    process.exit(process.exitCode || 1);
  }, 3000).unref();
});

/** A HostKv over `base` (a memoryKv) whose writes go through `put(key, value, options)`, which calls
 * `base.put` itself or not (a test's failure or pause); without the optional `commit`, so that a store
 * writes a commit's records and head one by one. */
export function kvWithPut(base, put) {
  return { capabilities: base.capabilities, get: base.get, list: base.list, delete: base.delete, put };
}

/** A HostKv over a new memoryKv whose calls each wait 0 to 2 macrotasks first (drawn from `random`), so
 * that operations of several stores over it interleave as they would over a network. */
export function slowKv(random) {
  const base = memoryKv();
  const slow = (call) => async (...args) => {
    for (let i = Math.floor(random() * 3); i > 0; i--) await new Promise((resolve) => setImmediate(resolve));
    return call(...args);
  };
  return { capabilities: base.capabilities, get: slow(base.get), put: slow(base.put), delete: slow(base.delete), list: slow(base.list) };
}
