// The public API called with what callers get wrong, seeded random runs: every method of SessionStore,
// Session and Invocation with arguments drawn from odd values (wrong types, NaN, -0, huge and negative
// numbers, empty and lone-surrogate strings, symbols, BigInts, functions, proxies and getters that
// throw, objects with odd options). What must hold after every call: it returned, or it failed with an
// AgentSessionError (a typed error with a code); a method that returns a promise never throws
// synchronously and settles; a call refused for its input wrote nothing; and the WebAssembly instance
// still works (a turn on another session commits): nothing trapped; and closing the store ends every
// follow() still waiting. FUZZ_TRIALS=n runs more seeds (80 trials, 20,000 calls: no failure).
import assert from "node:assert/strict";
import { test } from "node:test";
import { AgentSessionError, SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { seeded } from "../browser/model-checks.mjs";

const throwing = new Proxy({}, { get() { throw new Error("a trap that throws"); }, ownKeys() { throw new Error("ownKeys throws"); } });
const ODD = [
  undefined, null, true, 0, -0, -1, 1.5, NaN, Infinity, 2 ** 53 + 2, 1e308, "", "x", "a".repeat(300), "\u0000", "\ud800",
  Symbol("s"), 10n, () => 1, {}, [], [1, "2"], { a: 1 }, Object.create(null), new Date(NaN), new Uint8Array(3), new Map([[1, 2]]),
  throwing, { get boom() { throw new Error("getter"); } }, { toJSON() { throw new Error("toJSON"); } },
  { before: -1 }, { before: 1e20 }, { before: 1, summary: "not a list" }, { before: 0, summary: [undefined] },
  { agent: "" }, { agent: 5 }, { agent: "a".repeat(300) }, { onBusy: "wait" }, { onBusy: { waitMs: -5 } }, { onBusy: { waitMs: NaN } },
  { limit: -1 }, { limit: 1.5 }, { cursor: 5 }, { prefix: 7 }, { id: "" }, { id: 7 }, { at: -1 }, { at: 1.5 }, { at: 1e20 },
  { from: 3, to: 1 }, { from: -1 }, { graceMs: -1 }, { graceMs: 1e20 }, { reason: 5 }, { resume: undefined }, { traceparent: "nope" },
  { create: "yes" }, { idleTtlMs: -1 }, { maxLifetimeMs: NaN }, { metadata: () => 1 }, { after: { invocation: 5, seq: -1 } },
  { signal: {} }, { format: "agent-session.export/1", id: "x", version: -1, events: "no" },
  { format: "agent-session.export/1", id: "imp", version: 1, status: "idle", createdAt: 1, updatedAt: 1, expiresAt: null, metadata: null, events: [{ version: 1, type: "message", at: 1, invocation: "i", data: NaN }] },
];

/** Methods and how many arguments they take: [name, arity]. */
const STORE = [["open", 2], ["list", 1], ["delete", 1], ["sweepExpired", 1], ["import", 2], ["export", 1]];
const SESSION = [["messages", 1], ["state", 1], ["begin", 1], ["history", 1], ["at", 1], ["fork", 1], ["stop", 1], ["prune", 1], ["follow", 1], ["refresh", 0], ["export", 0]];
const INVOCATION = [["appendMessage", 2], ["setState", 3], ["deleteState", 2], ["messages", 1], ["state", 1], ["emit", 1], ["compact", 1], ["stateValue", 2], ["interrupt", 2]];

/** A readable form of an odd value, whatever it does when read. */
function describe(value) {
  if (typeof value === "symbol") return "Symbol";
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return "fn";
  if (value === throwing) return "throwing proxy";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch (error) {
    return `<${error.message}>`;
  }
}

async function dump(kv) {
  const { keys } = await kv.list("");
  const values = await Promise.all(keys.map((key) => kv.get(key)));
  return keys.map((key, i) => `${key}@${values[i]?.version}`).join("\n");
}

/** Settles `promise` or fails after `ms` (a call that never settles is a failure). */
function settled(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle in ${ms} ms`)), ms))),
  ]);
}

test("the API called with odd arguments: typed errors, promises that settle, nothing written when refused, no trap", async () => {
  const outcomes = { ok: 0, typed: 0 };
  for (let trial = 0; trial < Number(process.env.FUZZ_TRIALS ?? 6); trial++) {
    const random = seeded(1234 + trial * 99991);
    const pick = (list) => list[Math.floor(random() * list.length)];
    const kv = memoryKv();
    const store = await SessionStore.kv(kv, { leaseMs: 60_000 });
    const canary = await (await SessionStore.memory()).open("canary");
    let session = await store.open("fuzz");
    let inv;
    const pending = []; // the first next() of each follow() and export() iterator
    for (let step = 0; step < 250; step++) {
      const where = `trial ${trial}, step ${step}`;
      if (inv === undefined && random() < 0.3) {
        inv = await session.begin().catch(() => undefined);
        // A holder that ends its turn when asked to stop (else each stop() waits out its grace).
        const begun = inv;
        begun?.signal.addEventListener("abort", () => {
          if (inv === begun) inv = undefined;
          begun.abort().catch(() => {});
        });
      }
      const [target, methods] = inv !== undefined && random() < 0.5 ? [inv, INVOCATION] : random() < 0.6 ? [session, SESSION] : [store, STORE];
      const [method, arity] = pick(methods);
      const args = Array.from({ length: Math.floor(random() * (arity + 1)) }, () => pick(ODD));
      const what = `${where}: ${target === store ? "store" : target === session ? "session" : "invocation"}.${method}(${args.map(describe).join(", ")})`;
      if (process.env.FUZZ_LOG) console.error(what);
      const before = await dump(kv);
      let result;
      let error;
      try {
        result = target[method](...args);
      } catch (thrown) {
        error = thrown;
      }
      if (result !== null && typeof result === "object" && typeof result.then === "function") {
        try {
          result = await settled(result, 5000, what);
        } catch (rejected) {
          error = rejected;
        }
      } else if (result !== null && typeof result === "object" && typeof result[Symbol.asyncIterator] === "function") {
        // follow() and export(): one step. A follower's next() may wait for a turn that never comes
        // (an async iterator's return() waits for it too): closing the store at the end must end it.
        const iterator = result[Symbol.asyncIterator]();
        const next = iterator.next();
        const outcome = { settled: false, what };
        pending.push(outcome);
        next.then(
          () => (outcome.settled = true),
          (rejected) => Object.assign(outcome, { settled: true, rejected }),
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
        if (outcome.rejected !== undefined) error = outcome.rejected;
      }
      if (method === "begin" && error === undefined) await result.abort(); // not left holding the session
      if (error !== undefined) {
        assert.ok(error instanceof AgentSessionError, `${what} threw ${error?.stack ?? error}, not an AgentSessionError`);
        assert.equal(typeof error.code, "string", `${what}: the error's code`);
        outcomes.typed++;
        if (["INVALID_INPUT", "LIMIT_EXCEEDED"].includes(error.code)) assert.equal(await dump(kv), before, `${what} was refused (${error.code}) but wrote`);
      } else {
        outcomes.ok++;
      }
      // What ended the invocation, or a closed session, gets a new one.
      if (inv !== undefined && target === inv && ["interrupt"].includes(method) && error === undefined) inv = undefined;
      if (target === session && ["stop", "prune", "fork"].includes(method)) {
        await inv?.abort().catch(() => {});
        inv = undefined;
      }
      if (random() < 0.05) {
        await inv?.commit().catch(() => {});
        inv = undefined;
        session = await store.open(`fuzz${step}`);
      }
      // The instance still works.
      await canary.invoke((turn) => turn.appendMessage(step));
    }
    await inv?.abort().catch(() => {});
    // Closing the store ends what still follows its sessions.
    await store.close();
    for (const outcome of pending) {
      await settled(new Promise((resolve) => {
        const poll = () => (outcome.settled ? resolve() : setTimeout(poll, 5));
        poll();
      }), 5000, `${outcome.what}: its next() after store.close()`);
      if (outcome.rejected !== undefined) assert.ok(outcome.rejected instanceof AgentSessionError, `${outcome.what}: ${outcome.rejected}`);
    }
  }
  assert.ok(outcomes.ok > 100 && outcomes.typed > 100, JSON.stringify(outcomes));
});

test("the store factories called with odd options: a store or a typed error, never a trap", async () => {
  const random = seeded(777);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const OPTION_NAMES = ["owner", "leaseMs", "heartbeat", "idleTtlMs", "maxLifetimeMs", "snapshotEvery", "now", "limits", "onEvent", "encryptionKey", "cache", "schema", "prefix", "liveFlushMs", "stopPollMs", "allowNonAtomic"];
  const canary = await (await SessionStore.memory()).open("canary");
  let made = 0;
  let refused = 0;
  for (let i = 0; i < 400; i++) {
    const kind = pick(["memory", "kv", "kv(odd)"]);
    // The kv options are not options of a memory store (an option a store does not know is refused).
    const names = kind === "memory" ? OPTION_NAMES.filter((name) => name !== "prefix" && name !== "allowNonAtomic") : OPTION_NAMES;
    const options = random() < 0.2 ? pick(ODD) : Object.fromEntries(Array.from({ length: 1 + Math.floor(random() * 3) }, () => [pick(names), pick(ODD)]));
    const what = `SessionStore.${kind}(${describe(options)})`;
    let store;
    try {
      const made = kind === "memory" ? SessionStore.memory(options) : kind === "kv" ? SessionStore.kv(memoryKv(), options) : SessionStore.kv(options);
      store = await settled(made, 5000, what);
    } catch (error) {
      assert.ok(error instanceof AgentSessionError, `${what} threw ${error?.stack ?? error}, not an AgentSessionError`);
      refused++;
    }
    if (store !== undefined) {
      made++;
      // A store that was made works, or says why not with a typed error.
      try {
        await settled((async () => (await store.open("s")).invoke((inv) => inv.appendMessage(i)))(), 5000, `${what}: a turn`);
      } catch (error) {
        assert.ok(error instanceof AgentSessionError, `${what}: a turn threw ${error?.stack ?? error}`);
      }
      await store.close();
    }
    await canary.invoke((inv) => inv.appendMessage(i));
  }
  // Most are refused: an odd value, or an option a store does not know (the odd objects' keys).
  assert.ok(made >= 5 && refused > 20, `made ${made}, refused ${refused}`);
});
