// memoryKv's list() over a large keyspace, for builds side by side (bench/builds.mjs): a walk of 50,000
// keys in pages of 1,000 (what sweepExpired and store.export() do), and puts of new and existing keys
// (what every commit does), on each build's adapter in one process. Prints milliseconds a walk and
// microseconds a put. Not part of scripts/bench (the adapter is the in-process reference one).
// Usage: node bench/memorykv-walk.mjs a .      (test-results/js-a against js/)
import { buildName, buildsFromArgs, importFromBuild } from "./builds.mjs";

const KEYS = 50_000;
for (const build of buildsFromArgs("bench/memorykv-walk.mjs")) {
  const { memoryKv } = await importFromBuild(build, "adapters/index.js");
  const kv = memoryKv();
  let start = performance.now();
  for (let i = 0; i < KEYS; i++) await kv.put(`s${i % 1000}/e/${String((i * 7919) % KEYS).padStart(8, "0")}`, new Uint8Array([1]));
  const putNew = ((performance.now() - start) / KEYS) * 1000;
  start = performance.now();
  for (let i = 0; i < KEYS; i++) await kv.put(`s${i % 1000}/e/${String((i * 7919) % KEYS).padStart(8, "0")}`, new Uint8Array([2]));
  const putExisting = ((performance.now() - start) / KEYS) * 1000;
  const walks = [];
  for (let round = 0; round < 5; round++) {
    await kv.put(`s${round}/h`, new Uint8Array([1])); // a write between walks, as a running server makes
    start = performance.now();
    let cursor;
    let seen = 0;
    do {
      const page = await kv.list("", { cursor, limit: 1000 });
      seen += page.keys.length;
      cursor = page.cursor;
    } while (cursor);
    walks.push(performance.now() - start);
    if (seen !== KEYS + round + 1) throw new Error(`walked ${seen} keys`);
  }
  walks.sort((a, b) => a - b);
  console.log(
    `${buildName(build).padEnd(12)} walk of ${KEYS} keys: ${walks[2].toFixed(1)} ms (median of 5); put: ${putNew.toFixed(2)} µs new, ${putExisting.toFixed(2)} µs existing`,
  );
}
