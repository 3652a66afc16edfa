// The cost of one synchronous call of the Invocation API in Node on the memory store (setState,
// stateValue, appendMessage, with and without `{ agent }`), next to JSON.stringify of the same value:
// 10 rounds of 1000 calls (after 2 untimed), each round in a fresh invocation. Usage: node
// bench/binding-calls.mjs   (not part of scripts/bench)
import { SessionStore } from "agent-session";

const store = await SessionStore.memory();
const session = await store.open("calls");
let inv = await session.begin();
// A LangGraph checkpoint record of about 190 bytes of JSON.
const value = {
  id: "1ef-abc", parent: "1ef-abb", version: 12, c: { t: "json", s: '{"v":4,"ts":"2026","id":"x"}' },
  m: { t: "json", s: "{}" }, src: { messages: [3, 'b/["messages",3,"x"]'] },
};
const CALLS = 1000;
async function time(name, call) {
  let total = 0;
  for (let round = 0; round < 12; round++) {
    await inv.abort();
    inv = await session.begin();
    const start = performance.now();
    for (let i = 0; i < CALLS; i++) call(i);
    if (round >= 2) total += performance.now() - start;
  }
  console.log(`${name.padEnd(28)} ${((total / (10 * CALLS)) * 1000).toFixed(2)} µs`);
}
await time("setState", (i) => inv.setState(`k${i & 63}`, value));
await time("setState { agent }", (i) => inv.setState(`k${i & 63}`, value, { agent: "ns:" }));
await time("stateValue", (i) => inv.stateValue(`k${i & 63}`));
await time("stateValue { agent }", (i) => inv.stateValue(`k${i & 63}`, { agent: "ns:" }));
await time("appendMessage { agent }", (i) => inv.appendMessage({ checkpoint: `1ef-abc${i}`, step: 3 }, { agent: "ns:" }));
await time("JSON.stringify (reference)", () => JSON.stringify(value));
