// Live turns across two Node processes on a real redis-server (started and stopped by this script,
// tests/js/adapters/_redis-server.mjs), each process with its own node-redis client and
// SessionStore.kv(redisKv(client)): this process follows and stops, a child process (this script with
// --child) holds the turns.
// (i) Stop-to-signal: `session.stop()` here to the holder's `inv.signal` "abort" there, with stopPollMs
//     1000 (the default) and 100 and the holder idle, and with the holder emitting a part every 10 ms
//     (its flushes wake its watch for a stop); against, on the same stops, a hand-written stop on the
//     same Redis: a key the holder GETs every stopPollMs (the same rule), and a PUBLISH the holder
//     is SUBSCRIBEd to (push).
// (ii) Part-to-follower: the holder emits a part stamped with its clock every 10 ms for 2 s, with
//     liveFlushMs 50 (the default) and 0; `session.follow()` here measures to the part being yielded,
//     against a hand-written relay run side by side on the same parts: the same flush rule, each batch
//     PUBLISHed to a channel this process SUBSCRIBEs to.
// The two processes' clocks (performance.timeOrigin + performance.now()) are aligned by IPC pings.
// Usage: node bench/live-redis.mjs [--stops=30] [--stream-ms=2000] [--every-ms=10] [--json=path]
// Figures are ratios to baselines measured in the same run; nothing here is a pass/fail threshold.
import { fork } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { createClient } from "redis";
import { SessionStore } from "agent-session";
import { redisKv } from "agent-session/adapters";
import { jsonPath, printer, writeJson } from "./json.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const STOPS = Number(args.stops ?? 30);
const STREAM_MS = Number(args["stream-ms"] ?? 2000);
const EVERY_MS = Number(args["every-ms"] ?? 10);
const STOP_KEY = "bench:live:stop:";
const STOP_CHANNEL = "bench:live:stop";
const PARTS_CHANNEL = "bench:live:parts";

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ================================================================ the holder process
if (args.child) {
  const { url } = JSON.parse(args.child);
  const client = await createClient({ url }).connect();
  const raw = await createClient({ url }).connect(); // the hand-written baselines' commands
  const sub = await createClient({ url }).connect(); // the hand-written stop's subscription
  const stores = new Map();
  const storeFor = async (options) => {
    const key = JSON.stringify(options);
    if (!stores.has(key)) stores.set(key, await SessionStore.kv(redisKv(client), { owner: "holder", ...options }));
    return stores.get(key);
  };
  const published = new Map(); // stop number -> resolve(time heard)
  await sub.subscribe(STOP_CHANNEL, (message) => {
    const at = now();
    published.get(Number(message))?.(at);
  });
  const reply = (message) => new Promise((resolve) => process.send(message, resolve));

  const commands = {
    ping: () => reply({ type: "pong", t: now() }),

    // One turn held until a stop: reports its signal, the hand-written poll's and the PUBLISH's times.
    async hold({ id, n, stopPollMs, streaming }) {
      const store = await storeFor({ stopPollMs });
      const session = await store.open(id);
      const inv = await session.begin();
      let committed;
      const signaled = new Promise((resolve) => {
        inv.signal.addEventListener("abort", () => {
          const at = now();
          committed = inv.commit();
          resolve({ at, code: inv.signal.reason?.code });
        }, { once: true });
      });
      const heard = new Promise((resolve) => published.set(n, resolve));
      let polled;
      if (!streaming) {
        // The hand-written poll, the rule of the library's watch: read, then wait stopPollMs.
        polled = (async () => {
          for (;;) {
            if ((await raw.get(`${STOP_KEY}${n}`)) !== null) return now();
            await sleep(stopPollMs);
          }
        })();
      }
      let streamer;
      if (streaming) {
        streamer = (async () => {
          for (let k = 0; !inv.signal.aborted; k++) {
            inv.emit({ delta: `token ${String(k % 100).padStart(2, "0")}` });
            await sleep(EVERY_MS);
          }
        })();
      }
      await reply({ type: "holding", n });
      const { at, code } = await signaled;
      const [pollAt, pubsubAt] = await Promise.all([polled, heard]);
      published.delete(n);
      let error;
      try {
        await committed;
      } catch (e) {
        error = `${e.name}: ${e.code} ${e.message}`;
      }
      await streamer;
      await raw.del(`${STOP_KEY}${n}`);
      await reply({ type: "stopped", n, signalAt: at, code, pollAt, pubsubAt, error });
    },

    // One turn emitting { t } every everyMs for streamMs, and the same parts through the hand-written relay.
    async stream({ id, liveFlushMs, count, everyMs }) {
      const store = await storeFor({ liveFlushMs });
      const session = await store.open(id);
      const inv = await session.begin();
      let pending = [];
      let scheduled = false;
      const sent = [];
      const hand = () => {
        scheduled = false;
        const batch = pending;
        pending = [];
        if (batch.length) sent.push(raw.publish(PARTS_CHANNEL, JSON.stringify(batch)));
      };
      const start = performance.now();
      for (let k = 0; k < count; k++) {
        const wait = start + k * everyMs - performance.now();
        if (wait > 0) await sleep(wait);
        const p = { t: now() };
        inv.emit(p);
        pending.push(p);
        if (!scheduled) {
          scheduled = true;
          if (liveFlushMs > 0) setTimeout(hand, liveFlushMs);
          else queueMicrotask(hand);
        }
      }
      await sleep(liveFlushMs + 50); // let the last parts reach the follower before the commit forces them
      hand();
      await Promise.all(sent);
      await inv.commit();
      await reply({ type: "streamed" });
    },

    async exit() {
      for (const store of stores.values()) await store.close();
      await Promise.all([client.quit(), raw.quit(), sub.quit()]);
      await reply({ type: "bye" });
      process.disconnect();
    },
  };
  process.on("message", (message) => {
    commands[message.cmd](message).catch(async (error) => {
      await reply({ type: "error", cmd: message.cmd, error: String(error?.stack ?? error) });
      process.exit(1);
    });
  });
  await reply({ type: "ready" });
} else {
  await main();
}

// ================================================================ this process: stopper and follower
async function main() {
  const { startRedis } = await import("../tests/js/adapters/_redis-server.mjs");
  const sorted = (xs) => [...xs].sort((a, b) => a - b);
  const quantile = (xs, q) => (xs.length ? sorted(xs)[Math.max(0, Math.ceil(q * xs.length) - 1)] : NaN);
  const median = (xs) => quantile(xs, 0.5);
  const f = (x) => (x === undefined || Number.isNaN(x) ? "-" : x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(1));
  const ratio = (a, b) => (a && b ? (a / b >= 100 ? (a / b).toFixed(0) : (a / b).toFixed(2)) : "-");

  const server = await startRedis();
  let child;
  const clients = [];
  try {
    child = fork(fileURLToPath(import.meta.url), [`--child=${JSON.stringify({ url: server.url })}`], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const exited = once(child, "exit");
    const inbox = [];
    let waiter;
    child.on("message", (message) => {
      inbox.push(message);
      waiter?.();
    });
    /** The child's next message (of `type`), failing on its error reports and its exit. */
    const next = async (type) => {
      for (;;) {
        const message = inbox.shift();
        if (message) {
          if (message.type === "error") throw new Error(`holder process, ${message.cmd}: ${message.error}`);
          if (message.type !== type) throw new Error(`holder process: expected ${type}, got ${JSON.stringify(message)}`);
          return message;
        }
        await Promise.race([
          new Promise((resolve) => (waiter = resolve)),
          exited.then(([code, signal]) => {
            throw new Error(`holder process exited (${code ?? signal}) early`);
          }),
        ]);
      }
    };
    await next("ready");

    // Clock alignment: the child's clock minus ours, from the ping with the shortest round trip.
    let best = { rtt: Infinity, offset: 0 };
    for (let i = 0; i < 30; i++) {
      const sent = now();
      child.send({ cmd: "ping" });
      const { t } = await next("pong");
      const back = now();
      if (back - sent < best.rtt) best = { rtt: back - sent, offset: t - (sent + back) / 2 };
    }
    const here = (childTime) => childTime - best.offset;
    console.error(`[bench] clocks aligned within ±${f(best.rtt / 2)} ms`);

    const client = await createClient({ url: server.url }).connect();
    const raw = await createClient({ url: server.url }).connect();
    const sub = await createClient({ url: server.url }).connect();
    clients.push(client, raw, sub);
    const store = await SessionStore.kv(redisKv(client), { owner: "stopper" });

    // ---------------------------------------------------------------- (i) stop-to-signal
    let stopNumber = 0;
    async function stops(stopPollMs, streaming) {
      const id = `stop-${stopPollMs}-${streaming ? "streaming" : "idle"}`;
      const session = await store.open(id);
      const signal = [], resolved = [], poll = [], pubsub = [];
      const outcomes = {};
      for (let i = 0; i < STOPS; i++) {
        const n = ++stopNumber;
        child.send({ cmd: "hold", id, n, stopPollMs, streaming });
        await next("holding");
        // A random moment of the turn: uniform over one poll period (idle) or a few flushes (streaming).
        await sleep(Math.random() * (streaming ? 100 : stopPollMs));
        const start = now();
        const stopped = session.stop({ reason: "bench" });
        await Promise.all([raw.set(`${STOP_KEY}${n}`, "1"), raw.publish(STOP_CHANNEL, String(n))]);
        const result = await stopped;
        const end = now();
        const report = await next("stopped");
        if (report.code !== "STOP_REQUESTED") throw new Error(`stop ${n}: the signal's reason is ${report.code}, not STOP_REQUESTED`);
        if (report.error) throw new Error(`stop ${n}: the holder's commit failed: ${report.error}`);
        outcomes[result.outcome] = (outcomes[result.outcome] ?? 0) + 1;
        signal.push(here(report.signalAt) - start);
        resolved.push(end - start);
        if (report.pollAt !== undefined) poll.push(here(report.pollAt) - start);
        pubsub.push(here(report.pubsubAt) - start);
      }
      return {
        stopPollMs, holder: streaming ? `emitting a part every ${EVERY_MS} ms` : "idle", stops: STOPS, outcomes,
        signalMedianMs: median(signal), signalP99Ms: quantile(signal, 0.99), signalMaxMs: Math.max(...signal),
        resolvedMedianMs: median(resolved), resolvedP99Ms: quantile(resolved, 0.99),
        pollMedianMs: median(poll), pollP99Ms: quantile(poll, 0.99),
        pubsubMedianMs: median(pubsub), pubsubP99Ms: quantile(pubsub, 0.99),
      };
    }
    const stopRows = [];
    for (const [stopPollMs, streaming] of [[1000, false], [100, false], [1000, true]]) {
      stopRows.push(await stops(stopPollMs, streaming));
      const r = stopRows.at(-1);
      console.error(`[bench] stop, stopPollMs ${stopPollMs}, holder ${r.holder}: median ${f(r.signalMedianMs)} ms, p99 ${f(r.signalP99Ms)} ms`);
    }

    // ---------------------------------------------------------------- (ii) part-to-follower
    async function followLatency(liveFlushMs) {
      const id = `follow-${liveFlushMs}`;
      const count = Math.floor(STREAM_MS / EVERY_MS);
      const session = await store.open(id);
      const ours = [], base = [], events = [];
      const deadline = AbortSignal.timeout(STREAM_MS + 20_000);
      const following = (async () => {
        for await (const event of session.follow({ signal: deadline })) {
          events.push(event.type);
          if (event.type === "part") {
            ours.push(now() - here(event.data.t));
            if (event.seq !== ours.length - 1) throw new Error(`liveFlushMs ${liveFlushMs}: part ${ours.length - 1} has seq ${event.seq}`);
          }
          if (event.type === "end") break;
        }
      })();
      let relayed;
      const relayDone = new Promise((resolve) => (relayed = resolve));
      await sub.subscribe(PARTS_CHANNEL, (message) => {
        const at = now();
        for (const p of JSON.parse(message)) base.push(at - here(p.t));
        if (base.length >= count) relayed();
      });
      await sleep(50); // the follower is waiting before the turn begins
      child.send({ cmd: "stream", id, liveFlushMs, count, everyMs: EVERY_MS });
      await next("streamed");
      await Promise.race([relayDone, sleep(5000)]);
      await following;
      await sub.unsubscribe(PARTS_CHANNEL);
      if (ours.length !== count) throw new Error(`liveFlushMs ${liveFlushMs}: the follower got ${ours.length} of ${count} parts (events: ${events.join(",")})`);
      if (base.length !== count) throw new Error(`liveFlushMs ${liveFlushMs}: the relay delivered ${base.length} of ${count} parts`);
      return {
        liveFlushMs, parts: count, everyMs: EVERY_MS,
        medianMs: median(ours), p99Ms: quantile(ours, 0.99), maxMs: Math.max(...ours),
        relayMedianMs: median(base), relayP99Ms: quantile(base, 0.99),
      };
    }
    const latencyRows = [];
    for (const liveFlushMs of [50, 0]) {
      latencyRows.push(await followLatency(liveFlushMs));
      console.error(`[bench] follow, liveFlushMs ${liveFlushMs}: median ${f(latencyRows.at(-1).medianMs)} ms`);
    }

    child.send({ cmd: "exit" });
    await next("bye");
    await exited;
    await store.close();

    // ---------------------------------------------------------------- report
    const out = printer();
    const title = "Live turns across two Node processes on Redis";
    out.log(`## ${title}

Two Node ${process.version} processes, each with its own node-redis client and \`SessionStore.kv(redisKv(client))\`, on one
redis-server started for this run: one holds the turns, the other follows and stops them. Times are between the
two processes' clocks, aligned by IPC pings to within ±${f(best.rtt / 2)} ms.

(i) Stop-to-signal: from \`session.stop()\` in one process to the holder's \`inv.signal\` "abort" event in the other, at a
random moment of the turn (uniform over one stopPollMs when the holder is idle, over 100 ms when it streams); the
holder then commits, and "stop() resolved" is from the call to \`stop()\` resolving. ${STOPS} stops per row. Baselines,
on the same stops: "poll", a hand-written stop key that the holder GETs every stopPollMs (the same rule: read,
then wait; idle rows only), and "pub/sub", a PUBLISH that the holder is SUBSCRIBEd to. Goal (API.md): within
stopPollMs, or at the holder's next flush (liveFlushMs 50) when it streams.

| stopPollMs | holder | outcomes | signal median ms | signal p99 ms | signal max ms | stop() resolved median ms | p99 ms | poll median ms | poll p99 ms | pub/sub median ms | median ÷ poll | p99 ÷ poll | median ÷ pub/sub |
|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`);
    for (const r of stopRows) {
      out.log(`| ${r.stopPollMs} | ${r.holder} | ${Object.entries(r.outcomes).map(([k, v]) => `${v} ${k}`).join(", ")} | ${f(r.signalMedianMs)} | ${f(r.signalP99Ms)} | ${f(r.signalMaxMs)} | ` +
        `${f(r.resolvedMedianMs)} | ${f(r.resolvedP99Ms)} | ${f(r.pollMedianMs)} | ${f(r.pollP99Ms)} | ${f(r.pubsubMedianMs)} | ${ratio(r.signalMedianMs, r.pollMedianMs)} | ${ratio(r.signalP99Ms, r.pollP99Ms)} | ${ratio(r.signalMedianMs, r.pubsubMedianMs)} |`);
    }
    out.log(`
(ii) Part-to-follower: the holder emits \`{ t }\` (its clock) every ${EVERY_MS} ms for ${STREAM_MS / 1000} s; \`session.follow()\` in the other
process measures from \`t\` to the part being yielded. The relay is the hand-written equivalent, run side by side on
the same parts: a buffer PUBLISHed \`liveFlushMs\` after its first unflushed part (0: in a microtask) to a channel the
follower's process SUBSCRIBEs to. A follower on a KV store polls (every 25 ms while parts keep coming, up to
250 ms when quiet: src/engine/live.rs).

| liveFlushMs | parts | median ms | p99 ms | max ms | relay median ms | relay p99 ms | median ÷ relay | p99 ÷ relay |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|`);
    for (const r of latencyRows) {
      out.log(`| ${r.liveFlushMs} | ${r.parts} | ${f(r.medianMs)} | ${f(r.p99Ms)} | ${f(r.maxMs)} | ${f(r.relayMedianMs)} | ${f(r.relayP99Ms)} | ${ratio(r.medianMs, r.relayMedianMs)} | ${ratio(r.p99Ms, r.relayP99Ms)} |`);
    }
    out.log(`
Command: \`${process.env.BENCH_COMMAND ?? `node bench/live-redis.mjs ${process.argv.slice(2).filter((a) => !a.startsWith("--json")).join(" ")}`.trim()}\`
Date: ${new Date().toISOString()}`);
    writeJson(jsonPath(), import.meta.url, {
      name: "live-redis", title, markdown: out.text(),
      data: { stops: STOPS, streamMs: STREAM_MS, everyMs: EVERY_MS, clockRttMs: best.rtt, stop: stopRows, latency: latencyRows },
    });
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    for (const c of clients) await c.quit().catch(() => {});
    await server.stop();
  }
}
