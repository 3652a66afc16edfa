// Helpers shared by the live turn test pages (live-tab.html) and workers (live-worker.js): loading
// the package, running a test's function in this realm, a recording follower, a scripted "model"
// that streams parts, timestamps, and the worker driver.

// A timestamp comparable across the tabs and workers of one browser: ms since the epoch.
export const now = () => performance.timeOrigin + performance.now();
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const realm = typeof window !== "undefined" ? "window" : "dedicated worker";

// Loads the package entry for pages and module workers; the environment a test function receives.
export async function environment() {
  const lib = await import("/js/entry/browser.js");
  return { lib, fx: await import("./live-fixture.js"), ctx: {}, realm };
}

// What crosses postMessage and page.evaluate of an error: its class name, code and fields.
export function describeError(error) {
  if (!(error instanceof Error)) return { name: typeof error, message: String(error) };
  const out = { name: error.name, message: error.message, stack: error.stack };
  for (const field of ["code", "key", "holder", "retryAfterMs", "limit", "actual", "from", "action", "path", "reason", "by"]) {
    if (error[field] !== undefined) out[field] = error[field];
  }
  if (error.cause !== undefined) out.cause = String(error.cause?.stack ?? error.cause);
  return out;
}

// Runs a test function, given as source text, in this realm: `fn(env, arg)`.
export async function run(env, source, arg) {
  const fn = (0, eval)(`(${source})`);
  return fn(env, arg);
}

// A LiveEvent as plain data, with when it was received here (`at`: now(), `wall`: Date.now()).
export function plain(event) {
  const out = { type: event.type };
  for (const field of ["invocation", "seq", "data", "outcome", "version", "status"]) {
    if (event[field] !== undefined) out[field] = event[field];
  }
  out.at = now();
  out.wall = Date.now();
  return out;
}

// Follows `session` in the background and records every event it yields, until `until(event)` is
// true (by default: the first `end`), the returned `cancel()` is called, or the iteration ends.
// `onEvent(recorded, event)` runs for each event before `until` is asked. `done` resolves to
// { events, finished, error? } and never rejects.
export function follow(session, options = {}, { until = (event) => event.type === "end", onEvent } = {}) {
  const controller = new AbortController();
  const events = [];
  const recorder = { events, startedAt: now(), cancel: () => controller.abort() };
  recorder.done = (async () => {
    try {
      for await (const event of session.follow({ ...options, signal: controller.signal })) {
        const recorded = plain(event);
        if (event.type !== "part") recorded.sessionVersion = session.version;
        events.push(recorded);
        onEvent?.(recorded, event);
        if (until(event)) return { events, finished: "until" };
      }
      return { events, finished: controller.signal.aborted ? "cancelled" : "done" };
    } catch (error) {
      return { events, finished: "threw", error: describeError(error) };
    } finally {
      recorder.settled = true;
    }
  })();
  return recorder;
}

// A scripted "model": begins a turn on `session`, emits `parts` parts `{ delta: i }` paced over
// `spanMs` by a setTimeout loop, waits on `gate` (a promise) before emitting seq `gateAt` when given,
// then appends a message and commits. Resolves to what happened, with the emit time of every part.
export async function stream(session, { parts, spanMs, gate, gateAt, flushEvery } = {}) {
  const inv = await session.begin();
  const emitAt = [];
  const seqs = [];
  let gateWaitMs = 0;
  const startedAt = now();
  for (let i = 0; i < parts; i++) {
    await sleep(Math.max(0, startedAt + gateWaitMs + (i * spanMs) / parts - now()));
    if (gate && i === gateAt) {
      const waitStart = now();
      await gate;
      gateWaitMs += now() - waitStart;
    }
    emitAt.push(now());
    seqs.push(inv.emit({ delta: i }));
    if (flushEvery && (i + 1) % flushEvery === 0) await inv.flush();
  }
  const emittedAt = now();
  inv.appendMessage({ role: "assistant", text: `answer of ${parts} parts` });
  const version = await inv.commit();
  return { invocation: inv.id, token: inv.token, seqs, emitAt, startedAt, emittedAt, committedAt: now(), gateWaitMs, version };
}

// A dedicated module worker running live-worker.js, driven by `run(source, arg)` like a tab.
// Resolves once the worker has loaded the package.
export function spawn(name) {
  const worker = new Worker(new URL("./live-worker.js", import.meta.url), { type: "module", name });
  const pending = new Map();
  let next = 0;
  return new Promise((resolve, reject) => {
    worker.onerror = (event) => {
      console.error(`[${name}] worker error: ${event.message ?? event}`);
      reject(new Error(`worker ${name} failed to start: ${event.message ?? event}`));
    };
    worker.onmessage = ({ data }) => {
      if (data.log !== undefined) {
        console[data.level ?? "log"](`[${name}] ${data.log}`);
      } else if (data.ready !== undefined) {
        if (data.ready) {
          resolve({
            name,
            run(source, arg) {
              const id = next++;
              worker.postMessage({ id, source: String(source), arg });
              return new Promise((ok, fail) => pending.set(id, { ok, fail }));
            },
            terminate: () => worker.terminate(),
          });
        } else {
          reject(Object.assign(new Error(`worker ${name} could not load the package: ${data.error.message}`), data.error));
        }
      } else {
        const call = pending.get(data.id);
        pending.delete(data.id);
        if (data.ok) call.ok(data.value);
        else call.fail(Object.assign(new Error(`in worker ${name}: ${data.error.name}: ${data.error.message}`), data.error));
      }
    };
  });
}
