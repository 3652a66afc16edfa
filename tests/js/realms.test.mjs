// Bytes made in another realm. Jest runs each test file in a `vm` context whose Uint8Array is its own,
// but gives it the outer realm's Buffer, so every Buffer a Redis client returns there is bytes that are
// not `instanceof` the Uint8Array the package sees; an iframe's typed arrays are the same in a page.
// Here a `vm` context makes them, as Jest's sandbox does, and the package must take them as bytes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runInNewContext } from "node:vm";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { AgentSessionStorage } from "agent-session/strands";

const foreign = runInNewContext("({ Uint8Array, ArrayBuffer, Int8Array })");
/** `bytes` copied into a Uint8Array of the other realm (a view at an offset, as a Buffer often is). */
const foreignBytes = (bytes) => {
  const buffer = new foreign.ArrayBuffer(bytes.length + 3);
  const view = new foreign.Uint8Array(buffer, 3, bytes.length);
  view.set(bytes);
  return view;
};
/** `bytes` copied into an ArrayBuffer of the other realm. */
const foreignBuffer = (bytes) => {
  const buffer = new foreign.ArrayBuffer(bytes.length);
  new foreign.Uint8Array(buffer).set(bytes);
  return buffer;
};

test("the values a vm context makes are of another realm (what the tests below rely on)", () => {
  assert.equal(foreignBytes(new Uint8Array([1])) instanceof Uint8Array, false);
  assert.equal(foreignBuffer(new Uint8Array([1])) instanceof ArrayBuffer, false);
});

/** memoryKv, with every value its get returns (and a refused put reports) remade by `remake`. */
function remadeKv(remake, base = memoryKv()) {
  const entry = (found) => (found ? { value: remake(found.value), version: found.version } : found);
  return {
    ...base,
    get: async (key) => entry(await base.get(key)),
    put: async (key, value, options) => {
      const result = await base.put(key, value, options);
      return result !== null && typeof result === "object" && "current" in result ? { current: entry(result.current) } : result;
    },
  };
}

for (const [what, remake] of [
  ["a Uint8Array", foreignBytes],
  ["an ArrayBuffer", foreignBuffer],
]) {
  test(`a HostKv whose get returns ${what} of another realm: sessions load, commit and reload`, async () => {
    const kv = remadeKv(remake);
    const server = await SessionStore.kv(kv);
    const session = await server.open("chat", { metadata: { by: "first" } });
    await session.invoke((inv) => {
      inv.appendMessage({ role: "user", content: "hello" });
      inv.setState("step", 1);
    });
    // A second process, opening by id as a server does per request.
    const again = await (await SessionStore.kv(kv)).open("chat");
    assert.deepEqual(again.messages(), [{ role: "user", content: "hello" }]);
    assert.equal(again.stateValue("step"), 1);
    await again.invoke((inv) => inv.appendMessage({ role: "assistant", content: "hi" }));
    await session.refresh();
    assert.equal(session.version, 2);
    assert.equal(session.messages().length, 2);
  });
}

test("a HostKv whose get returns another realm's typed array that is not a Uint8Array: a StorageError naming the call", async () => {
  const base = memoryKv();
  await (await (await SessionStore.kv(base)).open("chat")).invoke((inv) => inv.appendMessage("kept"));
  const kv = remadeKv((bytes) => new foreign.Int8Array(bytes.buffer, bytes.byteOffset, bytes.length), base);
  const { StorageError } = await import("agent-session");
  await assert.rejects((await SessionStore.kv(kv)).open("chat"), (error) => {
    assert.ok(error instanceof StorageError, `got ${error}`);
    assert.match(error.message, /get\("h\/chat~"\) returned a malformed result/);
    return true;
  });
  assert.deepEqual((await (await SessionStore.kv(base)).open("chat")).messages(), ["kept"]);
});

test("memoryKv's put takes another realm's Uint8Array as the bytes of its view", async () => {
  const kv = memoryKv();
  await kv.put("k", foreignBytes(new Uint8Array([7, 8, 9])));
  assert.deepEqual((await kv.get("k")).value, new Uint8Array([7, 8, 9]));
});

test("the Strands Storage drop-in writes another realm's Uint8Array as its bytes", async () => {
  const storage = new AgentSessionStorage(await SessionStore.memory());
  const bytes = new TextEncoder().encode('{"a":1}');
  await storage.write("session/s1/x.json", foreignBytes(bytes));
  assert.deepEqual(new Uint8Array(await storage.read("session/s1/x.json")), bytes);
  await assert.rejects(storage.write("session/s1/y.json", new foreign.Int8Array(2)), /data must be a Uint8Array/);
});
