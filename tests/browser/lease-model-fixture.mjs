// Shared by tests/js/lease-model.test.mjs (Node: the memory store, KV stores over one memoryKv, Redis,
// Deno KV) and tests/browser/lease-model.test.mjs (a Chromium tab: IndexedDB stores on one database);
// not a test file. It imports only model-checks.mjs, so a page loads it as it is.
//
// The guard against a model, seeded random runs. Four actors open one session through the stores a
// backend gives (several stores over one backend are processes or tabs; two actors of one store share
// its realm's busy mark), on one manual clock with leaseMs 1000 and no heartbeat. Random steps: begins
// (alone, or several racing), staging, checkpoint, commit, interrupt, abort and renew by any invocation
// (the holder, a stale one, an ended one), stop({ graceMs: 0 }) by any actor, the holder's commit
// racing a takeover as its lease ends, an actor's store closed and replaced (a process that crashed and
// restarted, a tab reloaded), and the clock moving by less than, exactly, or more than a lease. The
// model knows who holds the lease and until when, and says what each call must do:
// - begin succeeds iff no lease blocks: a lease blocks while it is live (expiresAt > now) and, where the
//   backend has Web Locks, its holder's store is open; else ConcurrencyError naming the holder's owner,
//   retryAfterMs = expiresAt - now; of begins racing for a free session exactly one succeeds, the others
//   get ConcurrencyError (never ConflictError); an interrupted session needs `resume`, another refuses it;
// - a new lease's token is above every earlier one, and its invocation reads the latest commit;
// - commit, checkpoint, interrupt and renew succeed iff the invocation holds the live lease; otherwise
//   LeaseLostError, and the invocation has ended: its staging then throws InvalidTransitionError;
// - stop({ graceMs: 0 }) fences a live lease (one version with a `stopped` event) and is `idle` otherwise;
// - at most one invocation holds a lease that blocks, at any time (checked on the recorded run);
// - a fresh store reads the version, the status and a history that is exactly the events of the calls
//   that resolved, each at the version it returned and with its invocation; the counter in the state
//   equals the increments committed (no lost update).

import { check, same, seeded } from "./model-checks.mjs";

const eq = (actual, expected, what) => check(Object.is(actual, expected), `${what}: ${String(actual)} instead of ${String(expected)}`);
const fail = (what) => {
  throw new Error(what);
};
function throwsWith(fn, Class, what) {
  try {
    fn();
  } catch (error) {
    check(error instanceof Class, `${what}: ${error?.name} (${error?.message}) instead of ${Class.name}`);
    return;
  }
  fail(`${what}: nothing thrown where ${Class.name} was due`);
}

/** Adds the counts of `seen` (what runTrial returns) into `into`. */
export function addSeen(into, seen) {
  for (const [path, count] of Object.entries(seen)) into[path] = (into[path] ?? 0) + count;
  return into;
}

/** A clock the test moves (ms since epoch). */
function manualClock() {
  let t = 1_700_000_000_000;
  const now = () => t;
  now.advance = (ms) => (t += ms);
  return now;
}

export const LEASE_MS = 1000;
const STEPS = 70;
/** Clock moves: within a lease, to its very end (a lease at expiresAt == now is over), past it. */
const ADVANCES = [1, 10, 250, 499, 500, 999, 1000, 1001, 1500, 2500];

const isLive = (lease, now) => lease !== null && lease.expiresAt > now;

/**
 * Runs one seeded trial of STEPS steps, checking every call against the model. `lib` is the package;
 * `backend.open(now, prefix)` gives `actors` (four { store, owner }, a store may repeat), `fresh()` (a
 * new store over the same data) and, where a store can be closed and replaced, `replace()` (a new
 * { store, owner }); `backend.locks` says whether a closed store's lease stops blocking at once (Web
 * Locks) or only when it runs out.
 */

export async function runTrial({ lib, backend, trial }) {
  const { ConcurrencyError, InvalidTransitionError, LeaseLostError } = lib;
  const random = seeded(4242 + trial * 97);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const now = manualClock();
  const { actors, fresh, replace } = await backend.open(now, `lm${trial}-${Math.floor(random() * 1e9)}:`);
  const id = `lease-${trial}`;
  const sessions = [];
  for (const { store } of actors) sessions.push(await store.open(id));
  const model = { version: 0, status: "idle", lease: null, counter: 0, versions: new Map(), maxToken: 0 };
  const invocations = []; // { inv, actor, owner, store, token, ended, gone, staged, counter, resuming }
  /** A live lease blocks a begin unless its holder's store was closed where Web Locks tell so. */
  const blocks = (lease) => isLive(lease, now()) && !(backend.locks && lease.record.gone);
  /** One of the last four invocations whose store is open (those of a closed store are not called again). */
  const pickRecord = () => pick(invocations.filter((record) => !record.gone).slice(-4));
  const log = [];
  const where = () => `${backend.name}, trial ${trial}, step ${log.length}: ${log.slice(-6).join(" | ")}`;

  async function expectRejects(promise, Class, what) {
    try {
      await promise;
    } catch (error) {
      check(error instanceof Class, `${what}: ${error?.name} (${error?.message}) instead of ${Class.name} at ${where()}`);
      return error;
    }
    fail(`${what} resolved where ${Class.name} was due at ${where()}`);
  }

  /** The begin options for the model's status; `wrong` gives the refused combination. */
  const beginOptions = (wrong) => {
    const resume = model.status === "interrupted" ? !wrong : wrong;
    return resume ? { resume: { answer: log.length } } : {};
  };

  // How often the paths that matter were taken, returned so that a suite can check they were.
  const seen = { staleRefused: 0, takenOverExpired: 0, takenOverGone: 0, fenced: 0, raceCommitWon: 0, raceTakeoverWon: 0 };

  function granted(inv, actor, resuming) {
    if (model.lease !== null && !model.lease.record.ended) {
      if (isLive(model.lease, now())) seen.takenOverGone++;
      else seen.takenOverExpired++;
    }
    check(inv.token > model.maxToken, `token ${inv.token} not above ${model.maxToken} at ${where()}`);
    model.maxToken = inv.token;
    eq(inv.session.version, model.version, `a new invocation reads the latest version at ${where()}`);
    eq(inv.stateValue("counter") ?? 0, model.counter, `a new invocation reads the latest counter at ${where()}`);
    const { store, owner } = actors[actor];
    const record = { inv, actor, owner, store, token: inv.token, ended: false, gone: false, staged: [], counter: model.counter, resuming };
    // The lease before this one no longer blocks: the model's check of "one holder at a time".
    check(!blocks(model.lease), `a second lease that blocks at ${where()}`);
    model.lease = { record, expiresAt: now() + LEASE_MS };
    invocations.push(record);
  }

  const holds = (record) => model.lease?.record === record && isLive(model.lease, now()) && !record.ended && !record.gone;

  /** A commit, checkpoint or interrupt of `record`, against the model. */
  async function write(record, kind) {
    if (record.ended) {
      const call = kind === "interrupt" ? record.inv.interrupt("why") : record.inv[kind]();
      await expectRejects(call, InvalidTransitionError, `${kind} of an ended invocation`);
      return;
    }
    if (!holds(record)) {
      const call = kind === "interrupt" ? record.inv.interrupt("why") : record.inv[kind]();
      await expectRejects(call, LeaseLostError, `${kind} by a stale holder`);
      seen.staleRefused++;
      record.ended = true;
      return;
    }
    const events = [];
    if (record.resuming) events.push(["resume"]);
    for (const event of record.staged) events.push(event);
    const payload = { step: log.length };
    if (kind === "interrupt") events.push(["interrupt", "why", payload]);
    const version = kind === "interrupt" ? await record.inv.interrupt("why", payload) : await record.inv[kind]();
    eq(version, model.version + 1, `${kind} returns the next version at ${where()}`);
    model.version = version;
    model.versions.set(version, { invocation: record.inv.id, events });
    model.counter = record.counter;
    record.staged = [];
    record.resuming = false;
    if (kind === "checkpoint") {
      model.status = "idle"; // a checkpoint of a resumed turn answered the interrupt
      model.lease.expiresAt = now() + LEASE_MS;
      return;
    }
    model.status = kind === "interrupt" ? "interrupted" : "idle";
    model.lease = null;
    record.ended = true;
  }

  const steps = {
    async begin() {
      const actor = Math.floor(random() * sessions.length);
      const wrong = random() < 0.1;
      const options = beginOptions(wrong);
      log.push(`begin a${actor}${options.resume ? " resume" : ""}`);
      const call = sessions[actor].begin(options);
      if (blocks(model.lease)) {
        const error = await expectRejects(call, ConcurrencyError, "begin while a lease is live");
        eq(error.holder, model.lease.record.owner, `ConcurrencyError.holder at ${where()}`);
        eq(error.retryAfterMs, model.lease.expiresAt - now(), `retryAfterMs at ${where()}`);
        return;
      }
      if (wrong) {
        await expectRejects(call, InvalidTransitionError, "begin with the wrong resume");
        return;
      }
      const inv = await call;
      granted(inv, actor, model.status === "interrupted");
    },
    async race() {
      const actors = [0, 1, 2, 3].filter(() => random() < 0.6);
      if (actors.length < 2) return;
      log.push(`race ${actors.map((a) => `a${a}`).join(",")}`);
      const options = beginOptions(false);
      const outcomes = await Promise.allSettled(actors.map((actor) => sessions[actor].begin(options)));
      const won = outcomes.flatMap((outcome, i) => (outcome.status === "fulfilled" ? [[outcome.value, actors[i]]] : []));
      for (const outcome of outcomes) {
        if (outcome.status === "rejected") {
          check(outcome.reason instanceof ConcurrencyError, `a racing begin lost with ${outcome.reason?.name}: ${outcome.reason?.message} at ${where()}`);
        }
      }
      eq(won.length, blocks(model.lease) ? 0 : 1, `racing begins that won at ${where()}`);
      for (const [inv, actor] of won) granted(inv, actor, model.status === "interrupted");
    },
    async stage() {
      const record = pickRecord();
      if (record === undefined) return;
      log.push(`stage t${record.token}`);
      if (record.ended) {
        throwsWith(() => record.inv.appendMessage({ late: true }), InvalidTransitionError, `staging on an ended invocation at ${where()}`);
        return;
      }
      // While it holds the lease nothing else commits, so it reads what it began with and its own writes.
      // (A stale invocation reads what its store has learnt since: it can commit none of it.)
      if (holds(record)) eq(record.inv.stateValue("counter") ?? 0, record.counter, `the holder reads its own writes at ${where()}`);
      const message = { token: record.token, step: log.length };
      record.inv.appendMessage(message);
      record.counter += 1;
      record.inv.setState("counter", record.counter);
      record.staged.push(["message", message], ["state.set", "counter", record.counter]);
    },
    async end() {
      const record = pickRecord();
      if (record === undefined) return;
      const kind = pick(["commit", "commit", "checkpoint", "interrupt"]);
      // A session can be interrupted only from a turn that is not answering an interrupt it keeps.
      log.push(`${kind} t${record.token}`);
      await write(record, kind);
    },
    async abort() {
      const record = pickRecord();
      if (record === undefined) return;
      log.push(`abort t${record.token}`);
      if (record.ended) {
        await record.inv.abort().catch((error) => check(error instanceof InvalidTransitionError, `abort of an ended invocation: ${error?.name} at ${where()}`));
        return;
      }
      const held = holds(record);
      // A stale holder's abort releases nothing (its lease is gone), whether it resolves or says so.
      await record.inv.abort().catch((error) => check(!held && error instanceof LeaseLostError, `abort: ${error?.name} at ${where()}`));
      record.ended = true;
      if (held) {
        model.lease = null;
        if (record.resuming) model.status = "interrupted";
      }
    },
    async renew() {
      const record = pickRecord();
      if (record === undefined || record.ended) return;
      log.push(`renew t${record.token}`);
      if (!holds(record)) {
        await expectRejects(record.inv.renew(), LeaseLostError, "renew by a stale holder");
        record.ended = true;
        return;
      }
      await record.inv.renew();
      model.lease.expiresAt = now() + LEASE_MS;
    },
    async stop() {
      const actor = Math.floor(random() * sessions.length);
      log.push(`stop a${actor}`);
      const result = await sessions[actor].stop({ graceMs: 0 });
      // A lease whose holder's store is gone where Web Locks tell so is a lost turn: nothing to stop.
      if (!blocks(model.lease)) {
        eq(result.outcome, "idle", `stop of a session no live lease holds at ${where()}`);
        eq(result.version, model.version, `stop's version at ${where()}`);
        return;
      }
      const { record } = model.lease;
      eq(result.outcome, "fenced", `stop({ graceMs: 0 }) of a live lease at ${where()}`);
      eq(result.invocation, record.inv.id, `the fenced invocation at ${where()}`);
      eq(result.version, model.version + 1, `the fence's version at ${where()}`);
      model.version = result.version;
      model.versions.set(result.version, { stopped: true });
      seen.fenced++;
      model.maxToken += 1; // the stopper's takeover
      if (record.resuming) model.status = "interrupted";
      model.lease = null;
    },
    // The holder's commit racing a takeover: the clock passes the lease's end while the commit is on
    // its way, and another actor begins. Either may win; what must hold: a commit that resolved is
    // the next version and the begin (if it won too) reads it; one that did not left nothing; and
    // the session is not left unusable (one of the two succeeds).
    async overtake() {
      const record = model.lease?.record;
      if (record === undefined || !holds(record)) return;
      const actor = pick([0, 1, 2, 3].filter((a) => a !== record.actor));
      log.push(`overtake t${record.token} by a${actor}`);
      const message = { token: record.token, step: log.length };
      record.inv.appendMessage(message);
      record.staged.push(["message", message]);
      const committing = record.inv.commit();
      committing.catch(() => {});
      // The lease ends somewhere along the commit's way: after 0 to 40 microtasks, or a macrotask.
      if (random() < 0.3) await new Promise((resolve) => setTimeout(resolve, 0));
      else for (let k = Math.floor(random() * 40); k > 0; k--) await null;
      now.advance(LEASE_MS);
      const options = beginOptions(false);
      const beginning = sessions[actor].begin(options);
      const [commit, begin] = await Promise.allSettled([committing, beginning]);
      record.ended = true;
      seen[commit.status === "fulfilled" ? "raceCommitWon" : "raceTakeoverWon"]++;
      if (commit.status === "fulfilled") {
        eq(commit.value, model.version + 1, `the racing commit's version at ${where()}`);
        model.version = commit.value;
        model.versions.set(commit.value, { invocation: record.inv.id, events: [...(record.resuming ? [["resume"]] : []), ...record.staged] });
        model.counter = record.counter;
        model.status = "idle";
        model.lease = null;
      } else {
        check(commit.reason instanceof LeaseLostError, `the racing commit: ${commit.reason?.name} at ${where()}`);
      }
      if (begin.status === "fulfilled") {
        granted(begin.value, actor, model.status === "interrupted");
        eq(!!options.resume, model.lease.record.resuming, `resume as the session's status at ${where()}`);
      } else if (commit.status === "fulfilled" && options.resume && begin.reason instanceof InvalidTransitionError) {
        // The commit answered the interrupt first: the session is idle, and `resume` no longer fits.
      } else {
        check(begin.reason instanceof ConcurrencyError, `the racing begin: ${begin.reason?.name} at ${where()}`);
        eq(commit.status, "fulfilled", `neither the commit nor the takeover succeeded at ${where()}`);
      }
    },
    // An actor's store closed with whatever it holds, and a new one in its place: a process that
    // crashed and restarted, a tab reloaded. Its invocations are never called again; its lease blocks
    // until it runs out, or (Web Locks) not at all.
    async gone() {
      if (replace === undefined) return;
      const actor = Math.floor(random() * actors.length);
      const closed = actors[actor].store;
      log.push(`gone a${actor}`);
      await closed.close();
      const next = await replace();
      for (let k = 0; k < actors.length; k++) {
        if (actors[k].store !== closed) continue;
        actors[k] = next;
        sessions[k] = await next.store.open(id);
      }
      for (const record of invocations) if (record.store === closed) record.gone = true;
    },
    async tick() {
      const ms = pick(ADVANCES);
      log.push(`+${ms}ms`);
      now.advance(ms);
    },
  };
  const weights = [["begin", 4], ["race", 1], ["stage", 5], ["end", 3], ["abort", 1], ["renew", 1], ["stop", 1], ["overtake", 1], ["gone", 1], ["tick", 3]];
  const total = weights.reduce((sum, [, w]) => sum + w, 0);
  for (let step = 0; step < STEPS; step++) {
    let r = random() * total;
    const [name] = weights.find(([, w]) => (r -= w) < 0) ?? weights[0];
    await steps[name]();
    if (step % 10 === 9 || step === STEPS - 1) await checkStored();
  }
  return seen;

  /** What a fresh store reads of the session, against the model. */
  async function checkStored() {
    const session = await (await fresh()).open(id, { create: false });
    eq(session.version, model.version, `a fresh store's version at ${where()}`);
    eq(session.status, isLive(model.lease, now()) ? "running" : model.status, `a fresh store's status at ${where()}`);
    eq(session.state().counter ?? 0, model.counter, `the counter (no lost update) at ${where()}`);
    const history = await session.history();
    for (let version = 1; version <= model.version; version++) {
      const events = history.filter((event) => event.version === version);
      const expected = model.versions.get(version);
      if (expected.stopped) {
        same(events.map((event) => event.type), ["stopped"], `the fence's events at version ${version}, ${where()}`);
        continue;
      }
      for (const event of events) eq(event.invocation, expected.invocation, `version ${version}'s invocation at ${where()}`);
      const shape = (event) => {
        if (event.type === "message") return ["message", event.data];
        if (event.type === "state.set") return ["state.set", event.key, event.data];
        if (event.type === "interrupt") return ["interrupt", event.reason, event.data];
        return [event.type];
      };
      same(events.map(shape), expected.events, `the events of version ${version} at ${where()}`);
    }
    check(history.every((event) => event.version <= model.version), `no events above the version at ${where()}`);
  }
}

