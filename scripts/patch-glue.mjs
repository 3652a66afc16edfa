// Edits wasm-bindgen's JS glue (js/wasm/agent_session.js) after scripts/build generates it, in one
// place, and fails the build when that place is not found exactly once (a wasm-bindgen upgrade then
// has to look at it again).
//
// Strings cross into wasm through passStringToWasm0, which copies ASCII one character at a time in
// JS before it falls back to TextEncoder.encodeInto: about 1.5 ns a character in Node 20 and in
// Chromium, where encodeInto takes 0.1 µs for 1,000 characters in Node and 1.2 in Chromium (most of it
// the call; 2.0 for 4,000). Every JSON text the library stores crosses this way, so strings from
// ENCODE_INTO_FROM characters on go to encodeInto directly: from 64 in Node, from 1024 elsewhere.
// Measured with bench/string-crossing.mjs. Such a string is also allocated its worst-case size at
// once, then shrunk to what encodeInto wrote, instead of its length first and then grown.
import { readFileSync, writeFileSync } from "node:fs";

const file = new URL("../js/wasm/agent_session.js", import.meta.url);
const glue = readFileSync(file, "utf8");
const edits = [
  [
    "function passStringToWasm0(arg, malloc, realloc) {\n",
    "// agent-session (scripts/patch-glue.mjs): long strings go to encodeInto, not the per-character loop.\n" +
      "const ENCODE_INTO_FROM = globalThis.process?.versions?.node ? 64 : 1024;\n\n" +
      "function passStringToWasm0(arg, malloc, realloc) {\n",
  ],
  ["    for (; offset < len; offset++) {\n", "    for (const ascii = len < ENCODE_INTO_FROM ? len : 0; offset < ascii; offset++) {\n"],
  // A long string is given room for its worst case at once (3 bytes a UTF-16 unit), where the glue
  // allocated its length and then grew the allocation (a copy, when it cannot grow in place).
  ["    let ptr = malloc(len, 1) >>> 0;\n", "    if (len >= ENCODE_INTO_FROM) len *= 3;\n    let ptr = malloc(len, 1) >>> 0;\n"],
  [
    "        ptr = realloc(ptr, len, len = offset + arg.length * 3, 1) >>> 0;\n",
    "        if (len !== offset + arg.length * 3) ptr = realloc(ptr, len, len = offset + arg.length * 3, 1) >>> 0;\n",
  ],
];
let patched = glue;
for (const [from, to] of edits) {
  const count = patched.split(from).length - 1;
  if (count !== 1) throw new Error(`scripts/patch-glue.mjs: expected one ${JSON.stringify(from)} in the glue, found ${count}`);
  patched = patched.replace(from, to);
}
writeFileSync(file, patched);
