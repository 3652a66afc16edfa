// The JSON validation every appendMessage, setState and emit runs (js/json.js toJsonText), timed on a
// ~300-byte message (200,000 calls) and a 40-message snapshot (5,000 calls); pass another json.js (an
// older copy, with its errors.js beside it) to compare. Usage: node bench/json-validate.mjs [path/to/json.js]
// (not part of scripts/bench)
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

const target = process.argv[2] ? pathToFileURL(resolve(process.argv[2])).href : new URL("../js/json.js", import.meta.url).href;
const { toJsonText } = await import(target);
const msg = (i) => ({ role: i % 2 ? "assistant" : "user", content: [{ type: "text", text: "x".repeat(150) + i }], metadata: { id: `m-${i}`, tokens: { in: 12, out: 40 }, tags: ["a", "b"] } });
const big = { messages: Array.from({ length: 40 }, (_, i) => msg(i)), state: { a: 1, b: { c: [1, 2, 3] } } };
for (const [name, value, calls] of [["message", msg(1), 200_000], ["40-message snapshot", big, 5_000]]) {
  let perCall = 0;
  for (let pass = 0; pass < 2; pass++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) toJsonText(value, "value");
    perCall = ((performance.now() - t0) / calls) * 1000; // the second pass is reported (the first warms up)
  }
  console.log(`${name}: ${perCall.toFixed(2)} µs per toJsonText`);
}
