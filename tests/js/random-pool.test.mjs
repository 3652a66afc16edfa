// The random bytes the engine asks the host for (ids, tokens), drawn from a pool (js/runtime.js): every
// request gets bytes nobody else got, across refills of the pool, and requests larger than the pool's
// share go to the platform directly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fillRandom } from "../../js/runtime.js";

const hex = (bytes) => Buffer.from(bytes).toString("hex");

test("16- and 4-byte requests never repeat bytes, across many refills of the pool", () => {
  const seen = new Set();
  for (let i = 0; i < 5000; i++) {
    const bytes = new Uint8Array(i % 3 === 0 ? 4 : 16);
    fillRandom(bytes);
    if (bytes.length === 16) {
      assert.ok(!seen.has(hex(bytes)), `request ${i} repeated an earlier id`);
      seen.add(hex(bytes));
    }
  }
  // 16 random bytes are all zero with probability 2^-128: a pool handed out zeroed bytes.
  assert.ok(![...seen].includes("0".repeat(32)));
});

test("a request larger than 256 bytes is filled, not copied from the pool", () => {
  const bytes = new Uint8Array(10_000);
  fillRandom(bytes);
  const zeros = bytes.filter((b) => b === 0).length;
  assert.ok(zeros < 200, `${zeros} zero bytes of 10000`);
});
