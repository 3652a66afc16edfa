// A server turn on a KV store whose every call takes DELAY ms (memoryKv behind a timer, standing in
// for a remote KV: Redis, Deno KV, Upstash; given a one-call commit as redisKv, denoKv and
// durableObjectKv have, tests/js/adapters/_one-call-commit.mjs), or on a real redis-server on
// 127.0.0.1 (--redis: started and stopped here, node-redis and redisKv, plus DELAY ms a call, 0
// unless given), for each build named on the command line, in one Node process: open by id, begin,
// emit PARTS live parts (0 and 6), 2 messages, commit. Prints the median turn, the HostKv calls a turn
// makes, and the rounds: the calls a turn waited on one after the other (calls overlapping in time count
// once). The baseline, on the same KV in the same run: the same turn written by hand in the fewest round
// trips the protocol allows (read the head, compare-and-set a lease on it, then one commit call writing the
// batch, with the parts as a record of their own, and the head).
// Usage: node bench/kv-latency-turn.mjs [--delay=2] [--redis] [--json=path] BUILD...   (BUILD: test-results/js-NAME, or .)
import { createClient } from "redis";
import { buildName, buildsFromArgs, importFromBuild } from "./builds.mjs";
import { jsonPath, writeJson } from "./json.mjs";
import { message } from "./message.mjs";
import { oneCallCommit } from "../tests/js/adapters/_one-call-commit.mjs";

const onRedis = process.argv.includes("--redis");
const delay = Number(process.argv.find((a) => a.startsWith("--delay="))?.slice(8) ?? (onRedis ? 0 : 2));
const json = jsonPath();
process.argv = process.argv.filter((a) => !a.startsWith("--delay=") && !a.startsWith("--json=") && a !== "--redis");
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
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The turn written by hand over `kv`: read the head, compare-and-set a lease on it, then one commit call
 * (the batch, the parts as one record, the head released at the next version). */
async function handWrittenTurn(kv, id, k, parts) {
  const headKey = `h/${id}`;
  const read = await kv.get(headKey);
  const head = read === null ? { version: 0, token: 0 } : JSON.parse(decoder.decode(read.value));
  const token = head.token + 1;
  const leased = { ...head, token, lease: { owner: "hand-written", until: Date.now() + 30_000 } };
  const leaseVersion = await kv.put(headKey, encoder.encode(JSON.stringify(leased)), { expectedVersion: read === null ? null : read.version });
  if (leaseVersion === null) throw new Error("hand-written turn: the session is busy");
  const version = head.version + 1;
  const records = [{ key: `e/${id}/${version}/${token}`, value: encoder.encode(JSON.stringify([message(k), message(k + 1)])) }];
  if (parts > 0) {
    const flushed = Array.from({ length: parts }, (_, p) => ({ type: "delta", text: `chunk ${p}` }));
    records.push({ key: `t/${id}/${token}/0`, value: encoder.encode(JSON.stringify(flushed)) });
  }
  const next = { version, token };
  if ((await kv.commit(records, { key: headKey, value: encoder.encode(JSON.stringify(next)), expectedVersion: leaseVersion })) === null) {
    throw new Error("hand-written turn: the lease was lost");
  }
}

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
  const impls = [];
  for (const build of builds) {
    const { SessionStore } = await importFromBuild(build, "entry/node.js");
    const { memoryKv, redisKv } = await importFromBuild(build, "adapters/index.js");
    impls.push({
      name: buildName(build),
      start: async (parts) => {
        const kv = slowKv(onRedis ? redisKv(client) : memoryKv());
        const store = await SessionStore.kv(kv, { prefix: `${build}/${parts}/` });
        const turn = async (k) => {
          const session = await store.open(`s`);
          const inv = await session.begin();
          for (let p = 0; p < parts; p++) inv.emit({ type: "delta", text: `chunk ${p}` });
          inv.appendMessage(message(k));
          inv.appendMessage(message(k + 1));
          await inv.commit();
        };
        return { kv, turn, close: () => store.close() };
      },
    });
  }
  const { memoryKv, redisKv } = await import("agent-session/adapters");
  impls.push({
    name: "hand-written",
    start: async (parts) => {
      const kv = slowKv(onRedis ? redisKv(client) : memoryKv());
      const id = `hand-written/${parts}/${Date.now()}`;
      return { kv, turn: (k) => handWrittenTurn(kv, id, k, parts), close: () => {} };
    },
  });
  for (const parts of [0, 6]) {
    for (const impl of impls) {
      const { kv, turn, close } = await impl.start(parts);
      const times = [];
      let calls = 0;
      let rounds = 0;
      for (let k = 0; k < TURNS; k++) {
        const [c0, r0] = [kv.stats.calls, kv.stats.rounds];
        const t0 = performance.now();
        await turn(k);
        if (k >= 10) {
          times.push(performance.now() - t0);
          calls += kv.stats.calls - c0;
          rounds += kv.stats.rounds - r0;
        }
      }
      await close();
      times.sort((a, b) => a - b);
      const n = times.length;
      rows.push({ impl: impl.name, parts, medianMs: times[n >> 1], calls: calls / n, rounds: rounds / n });
    }
  }
} finally {
  await client?.quit();
  await server?.stop();
}
const baseline = (parts) => rows.find((row) => row.impl === "hand-written" && row.parts === parts).medianMs;
const where = onRedis ? `redis-server on 127.0.0.1 (node-redis, redisKv), plus ${delay} ms a call` : `memoryKv whose calls take ${delay} ms each`;
const printed = `A server turn (open by id, begin, 0 or 6 live parts, 2 messages, commit) on a KV store: ${where}.
Medians of ${TURNS - 10} turns after 10; "rounds" = calls a turn waited on one after the other. Baseline: the same
turn written by hand in the fewest round trips (read the head, compare-and-set a lease, one commit call).

| build | live parts | turn ms | KV calls | rounds | ÷ hand-written |
| --- | ---: | ---: | ---: | ---: | ---: |
${rows.map((row) => `| ${row.impl} | ${row.parts} | ${row.medianMs.toFixed(2)} | ${row.calls.toFixed(2)} | ${row.rounds.toFixed(2)} | ${(row.medianMs / baseline(row.parts)).toFixed(2)} |`).join("\n")}

Command: \`node bench/kv-latency-turn.mjs ${[...(onRedis ? ["--redis"] : []), ...(delay !== (onRedis ? 0 : 2) ? [`--delay=${delay}`] : []), ...builds].join(" ")}\`
Date: ${new Date().toISOString()}`;
console.log(printed);
writeJson(json, import.meta.url, {
  name: onRedis ? "kv-latency-redis" : "kv-latency",
  title: onRedis ? "A server turn on Redis (redis-server on 127.0.0.1)" : `A server turn on a KV store whose calls take ${delay} ms`,
  markdown: printed,
  data: { delay, onRedis, turns: TURNS, rows },
});
