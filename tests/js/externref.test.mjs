// Errors that cross the WebAssembly boundary must not leave slots of the instance's externref table
// behind: wasm-bindgen's `catch` imports left one per throw (the slot of the return value), and
// after about eight million of them (a server's callbacks that throw, values that JSON cannot carry)
// the table passed V8's limit and the instance trapped, every session in it with it. The test holds
// the instance (wrapping WebAssembly.Instance before the package loads) and counts the table.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc");
const Original = WebAssembly.Instance;
let instance;
WebAssembly.Instance = function (module, imports) {
  instance = new Original(module, imports);
  return instance;
};
WebAssembly.Instance.prototype = Original.prototype;
const { SessionStore } = await import("agent-session");
WebAssembly.Instance = Original;
const table = instance.exports.__wbindgen_externrefs;

async function settle() {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * The slots in use after a first round and after each of `rounds` more rounds of `calls` calls of
 * `fn` (each throwing). In use: neither free (wasm-bindgen empties a freed slot to null) nor the
 * leaked kind (the `undefined` a throwing `catch` import returned, whose slot nothing frees); a
 * leak of one slot a call shows as `calls` more each round, whether or not the table had room.
 */
async function slotsInUse(fn, calls, rounds = 2) {
  const seen = [];
  for (let round = 0; round <= rounds; round++) {
    for (let i = 0; i < calls; i++) {
      try {
        await fn();
      } catch {
        // expected
      }
    }
    await settle();
    let used = 0;
    for (let i = 0; i < table.length; i++) if (table.get(i) !== null) used++;
    seen.push(used);
  }
  return seen;
}

test("values JSON cannot carry, refused by appendMessage, setState and emit, leave no externref slot behind", async () => {
  const store = await SessionStore.memory();
  const inv = await (await store.open("refused")).begin();
  const cases = [
    () => inv.appendMessage({ f() {} }),
    () => inv.setState("k", 1n),
    () => inv.appendMessage({ get x() { throw new Error("getter"); } }),
    () => inv.emit({ f() {} }),
  ];
  const seen = await slotsInUse(() => cases.forEach((call) => assert.throws(call, { code: "INVALID_INPUT" })), 10_000);
  assert.deepEqual(seen.slice(1), [seen[0], seen[0]], `slots in use: ${seen}`);
});

test("invoke(fn) whose fn throws, and an onEvent listener that throws, leave no externref slot behind", async () => {
  const store = await SessionStore.memory({ onEvent: () => { throw new Error("listener"); } });
  const session = await store.open("throws");
  const seen = await slotsInUse(() => session.invoke(() => { throw new Error("app"); }), 10_000);
  assert.deepEqual(seen.slice(1), [seen[0], seen[0]], `slots in use: ${seen}`);
});

test("options whose getters throw, a migration that throws, a clock that throws and a KV adapter that throws synchronously leave no externref slot behind", async () => {
  const { memoryKv } = await import("agent-session/adapters");
  const store = await SessionStore.memory();
  const session = await store.open("getters");
  const throwing = (name) => ({ get [name]() { throw new Error("getter"); } });
  const kv = memoryKv();
  await (await (await SessionStore.kv(kv)).open("old")).invoke((inv) => inv.appendMessage("stored under schema 0"));
  const migrating = await SessionStore.kv(kv, { schema: { version: 1, migrate: { 1: () => { throw new Error("migration"); } } } });
  let broken = false;
  const clocked = await SessionStore.memory({ now: () => { if (broken) throw new Error("clock"); return Date.now(); } });
  const clockedSession = await clocked.open("clock");
  const syncThrow = (method) => new Proxy(memoryKv(), {
    get(target, key) {
      if (key === method) return () => { throw new Error(`${method} threw synchronously`); };
      const value = target[key];
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const getThrows = await SessionStore.kv(syncThrow("get"));
  const putThrows = await SessionStore.kv(syncThrow("put"));
  const commitThrows = await SessionStore.kv(syncThrow("commit"));
  await assert.rejects(commitThrows.open("c").then((s) => s.invoke((inv) => inv.appendMessage("m"))), { code: "STORAGE" });
  const cases = [
    [() => session.begin(throwing("onBusy")), "INVALID_INPUT"],
    [() => session.invoke(() => {}, throwing("onBusy")), "INVALID_INPUT"],
    [() => store.open("getters", throwing("idleTtlMs")), "INVALID_INPUT"],
    [() => session.messages(throwing("agent")), "INVALID_INPUT"],
    [() => migrating.open("old"), "MIGRATION_FAILED"],
    [() => getThrows.open("g"), "STORAGE"],
    [() => putThrows.open("p"), "STORAGE"],
    [() => commitThrows.open("c").then((s) => s.invoke((inv) => inv.appendMessage("m"))), "STORAGE"],
  ];
  const seen = await slotsInUse(async () => {
    for (const [call, code] of cases) {
      await assert.rejects(async () => call(), { code });
    }
    broken = true;
    try {
      await clockedSession.invoke((inv) => inv.appendMessage("by a clock that throws"));
    } finally {
      broken = false;
    }
  }, 1_000);
  assert.deepEqual(seen.slice(1), [seen[0], seen[0]], `slots in use: ${seen}`);
});

// Every import of the generated glue that catches a throw and returns a value (`handleError` with a
// `ret`): each takes a slot per throw. Only calls on the store's own IndexedDB objects may stay (they
// throw when the browser closed the connection, which the store reopens once, not per caller's call),
// calls on values the engine made itself, and those whose result is a boolean. A callback, an option, an adapter or a caller's
// value goes through src/caught.rs instead.
test("the .wasm's catch imports that return a value are only those a caller cannot make throw (its own IndexedDB objects, values it made, booleans)", async () => {
  const { readFile } = await import("node:fs/promises");
  const glue = await readFile(new URL("../../js/wasm/agent_session.js", import.meta.url), "utf8");
  const found = [...glue.matchAll(/return handleError\(function \([^)]*\) \{\s*const ret = ([^;]+);/g)].map((m) => m[1]);
  assert.ok(found.length > 0, "the glue's catch imports were found (the pattern matches wasm-bindgen's output)");
  const allowed = [
    /^IDBKeyRange\.(bound|upperBound)\(/,
    /^arg0\.(createIndex|createObjectStore|delete|getAllKeys|get|index|objectStore|open|put|transaction)\(/,
    /^arg0\.(result|error)$/,
    /^Object\.fromEntries\(arg0\)$/, // pairs the engine built (src/bindings/reads.rs)
    /^arg0\.toString\(arg1\)$/, // Number.prototype.toString of a number (host_kv.rs js_number_text)
    /^Reflect\.(has|set)\(/, // a boolean comes back: no slot is taken for it
    // wasm-bindgen-futures settles the promises it makes with their own resolve and reject functions,
    // which do not throw; clippy.toml refuses js-sys's Function::call* in this crate.
    /^arg0\.call\(arg1, arg2\)$/,
  ];
  const others = found.filter((expression) => !allowed.some((pattern) => pattern.test(expression)));
  assert.deepEqual(others, [], "catch imports that return a value, outside the list above");
});
