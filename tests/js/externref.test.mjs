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
