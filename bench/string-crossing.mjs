// How a string is copied into wasm memory: wasm-bindgen's glue copies ASCII one character at a time
// in JS (falling back to TextEncoder.encodeInto at the first non-ASCII character); scripts/patch-glue.mjs
// sends long strings to encodeInto at once. This prints both ways' cost per call by string length, in
// Node and in headless Chromium (where encodeInto's call costs more), which is what the thresholds in
// scripts/patch-glue.mjs come from, and what a setState of a value of that size costs with the build in
// js/ against JSON.stringify of the value (a baseline measured in the same run); and, the other way,
// what reading short ASCII strings out of wasm memory costs by TextDecoder (the glue's way) and by
// String.fromCharCode (docs/benchmarks.md, "Measured and not kept, 2026-12-05"). Not in scripts/bench.
// Usage: node bench/string-crossing.mjs
import { SessionStore } from "agent-session";
import { startBrowser } from "../tests/browser/chromium.mjs";
import { benchPage } from "./page.mjs";

const SIZES = [16, 64, 256, 1024, 4096, 20000, 100000];

/** Per-call µs of the two copies, for each size (runs in Node or, stringified, in a page). */
function encoders(sizes) {
  const memory = new Uint8Array(1 << 20);
  const encoder = new TextEncoder();
  const loop = (text, at) => {
    let i = 0;
    for (; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 0x7f) break;
      memory[at + i] = code;
    }
    return i;
  };
  const into = (text, at) => encoder.encodeInto(text, memory.subarray(at, at + text.length * 3)).written;
  const rows = [];
  for (const size of sizes) {
    const text = ('ab"cd' + "x".repeat(95)).repeat(Math.ceil(size / 100)).slice(0, size);
    const row = { size };
    for (const [name, copy] of [["loop", loop], ["encodeInto", into]]) {
      const n = Math.max(200, Math.floor(2e6 / size));
      for (let i = 0; i < n; i++) copy(text, 64);
      const start = performance.now();
      for (let i = 0; i < n; i++) copy(text, 64 + (i & 7));
      row[name] = ((performance.now() - start) / n) * 1000;
    }
    rows.push(row);
  }
  return rows;
}

/** Per-call µs of three ways to read `size` ASCII bytes of wasm memory as a string (the other way). */
function decoders(sizes) {
  const memory = new Uint8Array(1 << 16);
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  const ways = {
    TextDecoder: (at, len) => decoder.decode(memory.subarray(at, at + len)),
    fromCharCode: (at, len) => String.fromCharCode.apply(null, memory.subarray(at, at + len)),
    concatenation: (at, len) => {
      let text = "";
      for (let i = at; i < at + len; i++) text += String.fromCharCode(memory[i]);
      return text;
    },
  };
  for (let i = 0; i < memory.length; i++) memory[i] = 97 + (i % 26);
  const rows = [];
  for (const size of sizes) {
    const row = { size };
    for (const [name, read] of Object.entries(ways)) {
      const n = 200000;
      let length = 0;
      for (let i = 0; i < n; i++) length += read(64 + (i & 7), size).length;
      const start = performance.now();
      for (let i = 0; i < n; i++) length += read(64 + (i & 7), size).length;
      row[name] = ((performance.now() - start) / n) * 1000;
      if (length === 0) throw new Error("unreachable");
    }
    rows.push(row);
  }
  return rows;
}

const fmt = (x) => (x < 10 ? x.toFixed(3) : x.toFixed(1));
const table = (title, rows) => {
  console.log(`\n${title}\n\n| characters | per-character loop µs | encodeInto µs | loop ÷ encodeInto |\n| ---: | ---: | ---: | ---: |`);
  for (const r of rows) console.log(`| ${r.size} | ${fmt(r.loop)} | ${fmt(r.encodeInto)} | ${(r.loop / r.encodeInto).toFixed(2)} |`);
};

const DECODED = [4, 8, 16, 32, 64, 128];
const decodeTable = (title, rows) => {
  console.log(`\n${title}: reading ASCII from wasm memory\n\n| bytes | TextDecoder µs | String.fromCharCode.apply µs | concatenation µs |\n| ---: | ---: | ---: | ---: |`);
  for (const r of rows) console.log(`| ${r.size} | ${fmt(r.TextDecoder)} | ${fmt(r.fromCharCode)} | ${fmt(r.concatenation)} |`);
};
table(`Node ${process.version}`, encoders(SIZES));
decodeTable(`Node ${process.version}`, decoders(DECODED));
const chrome = await startBrowser();
try {
  const page = await benchPage(chrome, "/bench/idb.html");
  table("headless Chromium", await page.evaluate(`(${encoders})(${JSON.stringify(SIZES)})`));
  decodeTable("headless Chromium", await page.evaluate(`(${decoders})(${JSON.stringify(DECODED)})`));
} finally {
  await chrome.stop();
}

// setState of { text } with the build in js/, against JSON.stringify of the same value.
const store = await SessionStore.memory();
const session = await store.open("strings");
console.log("\n| characters | setState µs | JSON.stringify µs | setState ÷ stringify |\n| ---: | ---: | ---: | ---: |");
for (const size of SIZES.slice(2)) {
  const value = { text: "y".repeat(size) };
  const calls = Math.max(30, Math.min(1000, Math.floor(3e6 / size)));
  let set = 0;
  let stringify = 0;
  for (let round = 0; round < 6; round++) {
    const inv = await session.begin();
    let start = performance.now();
    for (let i = 0; i < calls; i++) inv.setState(`k${i % 10}`, value);
    if (round > 0) set += performance.now() - start;
    start = performance.now();
    for (let i = 0; i < calls; i++) JSON.stringify(value);
    if (round > 0) stringify += performance.now() - start;
    await inv.abort();
  }
  const per = (t) => (t / (5 * calls)) * 1000;
  console.log(`| ${size} | ${fmt(per(set))} | ${fmt(per(stringify))} | ${(set / stringify).toFixed(2)} |`);
}
console.log(`\nCommand: \`node bench/string-crossing.mjs\` (${new Date().toISOString().slice(0, 10)})`);
