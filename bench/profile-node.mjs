// Summarizes a V8 .cpuprofile (node --cpu-prof) by self time: the functions, and the files, where a
// run spent its samples. Used to find where a framework turn's time goes (bench/README.md).
//
// Run: node bench/profile-node.mjs PROFILE.cpuprofile [--top=40]
import { readFileSync } from "node:fs";

const file = process.argv[2];
const top = Number(process.argv.find((a) => a.startsWith("--top="))?.slice(6) ?? 40);
const profile = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
const deltas = profile.timeDeltas;
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i]);
  self.set(node, (self.get(node) ?? 0) + (deltas[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
const sum = (keyOf) => {
  const m = new Map();
  for (const [node, t] of self) m.set(keyOf(node), (m.get(keyOf(node)) ?? 0) + t);
  return [...m].sort((a, b) => b[1] - a[1]);
};
const short = (url) => url.replace(/^file:\/\/.*node_modules\//, "nm/").replace(/^file:\/\/.*?\/(js|bench)\//, "$1/");
const show = (rows) => {
  for (const [key, t] of rows.slice(0, top)) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${key}`);
};
console.log(`total ${(total / 1000).toFixed(0)} ms sampled\n-- by function`);
show(sum((n) => `${n.callFrame.functionName || "(anonymous)"}  ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`));
console.log("-- by file");
show(sum((n) => short(n.callFrame.url) || n.callFrame.functionName));
