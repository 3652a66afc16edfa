// A server turn on a KV store whose every call takes DELAY ms (memoryKv behind a timer, standing in
// for a remote KV: Redis, Deno KV, Upstash; given a one-call commit as redisKv, denoKv and
// durableObjectKv have, tests/js/adapters/_one-call-commit.mjs), or on a real redis-server on
// 127.0.0.1 (--redis: started and stopped here, node-redis and redisKv, plus DELAY ms a call, 0
// unless given), for each build
// named on the command line, in one Node process: open by id, begin, emit PARTS live parts (0 and 6),
// 2 messages, commit. Prints the median turn, the HostKv calls a turn makes, and the rounds: the calls
// a turn waited on one after the other (calls overlapping in time count once).
// Usage: node bench/kv-latency-turn.mjs [--delay=2] [--redis] BUILD...   (BUILD: test-results/js-NAME, or .)
import { createClient } from "redis";
import { buildName, buildsFromArgs, importFromBuild } from "./builds.mjs";
import { message } from "./message.mjs";
import { oneCallCommit } from "../tests/js/adapters/_one-call-commit.mjs";

const onRedis = process.argv.includes("--redis");
const delay = Number(process.argv.find((a) => a.startsWith("--delay="))?.slice(8) ?? (onRedis ? 0 : 2));
process.argv = process.argv.filter((a) => !a.startsWith("--delay=") && a !== "--redis");
const TURNS = 60;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `kv` with every call delayed; counts calls and the call chain depth (overlapping calls once). */
function slowKv(kv) {
  const stats = { calls: 0, inFlight: 0, rounds: 0 };
  const slow = (fn) => async (...args) => {
    stats.calls++;
    if (stats.inFlight++ === 0) stats.rounds++;
    try {
      if (delay > 0) await sleep(delay);
      return await fn(...args);
    } finally {
      stats.inFlight--;
    }
  };
  const wrapped = { capabilities: kv.capabilities, stats };
  for (const method of ["get", "put", "delete", "list"]) wrapped[method] = slow(kv[method].bind(kv));
  // One delayed call for a commit, as redisKv's script makes it; memoryKv has no commit of its own.
  wrapped.commit = slow(typeof kv.commit === "function" ? kv.commit.bind(kv) : oneCallCommit(kv));
  return wrapped;
}

const builds = buildsFromArgs("bench/kv-latency-turn.mjs");
const rows = [];
let server;
let client;
if (onRedis) {
  const { startRedis } = await import("../tests/js/adapters/_redis-server.mjs");
  server = await startRedis();
  client = createClient({ url: server.url });
  await client.connect();
}
try {
  for (const build of builds) {
    const { SessionStore } = await importFromBuild(build, "entry/node.js");
    const { memoryKv, redisKv } = await importFromBuild(build, "adapters/index.js");
    for (const parts of [0, 6]) {
      const kv = slowKv(onRedis ? redisKv(client) : memoryKv());
      const store = await SessionStore.kv(kv, { prefix: `${build}/${parts}/` });
      const times = [];
      let calls = 0;
      let rounds = 0;
      for (let k = 0; k < TURNS; k++) {
        const [c0, r0] = [kv.stats.calls, kv.stats.rounds];
        const t0 = performance.now();
        const session = await store.open(`s`);
        const inv = await session.begin();
        for (let p = 0; p < parts; p++) inv.emit({ type: "delta", text: `chunk ${p}` });
        inv.appendMessage(message(k));
        inv.appendMessage(message(k + 1));
        await inv.commit();
        if (k >= 10) {
          times.push(performance.now() - t0);
          calls += kv.stats.calls - c0;
          rounds += kv.stats.rounds - r0;
        }
      }
      await store.close();
      times.sort((a, b) => a - b);
      const n = times.length;
      rows.push(`${buildName(build).padEnd(10)} ${parts} parts: median ${times[n >> 1].toFixed(2)} ms, ${(calls / n).toFixed(2)} KV calls, ${(rounds / n).toFixed(2)} rounds a turn`);
    }
  }
} finally {
  await client?.quit();
  await server?.stop();
}
console.log(onRedis ? `redis-server on 127.0.0.1, plus ${delay} ms a call` : `KV calls take ${delay} ms each`);
for (const row of rows) console.log(row);
