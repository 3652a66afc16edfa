// One tab of bench/live-chromium.mjs, loaded into /tests/browser/blank.html by dynamic import and
// driven through page.evaluate: the holder tab holds turns (and answers clock pings), the other tab
// stops and follows them. Each tab has its own SessionStore.indexedDb on one database (its own owner).
// The hand-written baselines travel on BroadcastChannels between the same two tabs.
import { SessionStore } from "/js/entry/browser.js";

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const clock = new BroadcastChannel("bench-live-clock");
const stopChannel = new BroadcastChannel("bench-live-stop");
const partsChannel = new BroadcastChannel("bench-live-parts");

let database, owner;
const stores = new Map();
async function storeFor(options = {}) {
  const key = JSON.stringify(options);
  if (!stores.has(key)) stores.set(key, await SessionStore.indexedDb({ database, owner, ...options }));
  return stores.get(key);
}

export async function setup(options) {
  ({ database, owner } = options);
  await storeFor();
  return { crossOriginIsolated, userAgent: navigator.userAgent, visibility: document.visibilityState };
}

export async function close() {
  for (const store of stores.values()) await store.close();
  stores.clear();
}

// ------------------------------------------------------------------ the holder tab
export function answerClock() {
  clock.onmessage = (event) => {
    if (event.data?.ping !== undefined) clock.postMessage({ pong: event.data.ping, t: now() });
  };
}

const held = new Map(); // stop number -> Promise of what the holder saw

/** Begins a turn that commits on its signal; resolves once begun. `stopped(n)` then gives the times. */
export async function hold({ id, n, streaming, everyMs }) {
  const session = await (await storeFor()).open(id);
  const inv = await session.begin();
  let committed;
  const signaled = new Promise((resolve) => {
    inv.signal.addEventListener("abort", () => {
      const at = now();
      committed = inv.commit();
      resolve({ at, code: inv.signal.reason?.code });
    }, { once: true });
  });
  const heard = new Promise((resolve) => {
    const listener = (event) => {
      if (event.data === n) {
        stopChannel.removeEventListener("message", listener);
        resolve(now());
      }
    };
    stopChannel.addEventListener("message", listener);
  });
  let streamer;
  if (streaming) {
    streamer = (async () => {
      for (let k = 0; !inv.signal.aborted; k++) {
        inv.emit({ delta: `token ${String(k % 100).padStart(2, "0")}` });
        await sleep(everyMs);
      }
    })();
  }
  held.set(n, (async () => {
    const { at, code } = await signaled;
    const bcAt = await heard;
    let error;
    try {
      await committed;
    } catch (e) {
      error = `${e.name}: ${e.code} ${e.message}`;
    }
    await streamer;
    return { signalAt: at, code, bcAt, error };
  })());
}

export async function stopped(n) {
  const result = await held.get(n);
  held.delete(n);
  return result;
}

/** One turn emitting { t } every everyMs, and the same parts through the hand-written relay. */
export async function stream({ id, liveFlushMs, count, everyMs }) {
  const session = await (await storeFor({ liveFlushMs })).open(id);
  const inv = await session.begin();
  let pending = [];
  let scheduled = false;
  const hand = () => {
    scheduled = false;
    if (pending.length) partsChannel.postMessage(pending);
    pending = [];
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
  await inv.commit();
}

// ------------------------------------------------------------------ the other tab
let offset = 0; // the holder tab's clock minus ours

/** Aligns the clocks: the ping to the holder tab with the shortest round trip. Resolves to ±ms. */
export async function calibrate() {
  let best = { rtt: Infinity, offset: 0 };
  for (let i = 0; i < 30; i++) {
    const sent = now();
    const t = await new Promise((resolve) => {
      clock.onmessage = (event) => event.data?.pong === i && resolve(event.data.t);
      clock.postMessage({ ping: i });
    });
    const back = now();
    if (back - sent < best.rtt) best = { rtt: back - sent, offset: t - (sent + back) / 2 };
  }
  offset = best.offset;
  return best.rtt / 2;
}
const here = (holderTime) => holderTime - offset;

/** After `delayMs`, stop() and the hand-written stop at the same moment; times on the holder's clock. */
export async function stop({ id, n, delayMs }) {
  const session = await (await storeFor()).open(id);
  await sleep(delayMs);
  const start = now();
  const stopping = session.stop({ reason: "bench" });
  stopChannel.postMessage(n);
  const result = await stopping;
  const end = now();
  return { start: start + offset, end: end + offset, outcome: result.outcome };
}

let following;
/** Starts following `id` (until its first `end`) and listening to the relay; `followed()` gives the latencies. */
export async function follow({ id, count }) {
  const session = await (await storeFor()).open(id);
  const ours = [], base = [], events = [];
  const deadline = AbortSignal.timeout(60_000);
  let relayed;
  const relayDone = new Promise((resolve) => (relayed = resolve));
  partsChannel.onmessage = (event) => {
    const at = now();
    for (const p of event.data) base.push(at - here(p.t));
    if (base.length >= count) relayed();
  };
  following = (async () => {
    for await (const event of session.follow({ signal: deadline })) {
      events.push(event.type);
      if (event.type === "part") {
        ours.push(now() - here(event.data.t));
        if (event.seq !== ours.length - 1) throw new Error(`part ${ours.length - 1} has seq ${event.seq}`);
      }
      if (event.type === "end") break;
    }
    await Promise.race([relayDone, sleep(5000)]);
    partsChannel.onmessage = null;
    return { ours, base, events };
  })();
}

export const followed = () => following;
