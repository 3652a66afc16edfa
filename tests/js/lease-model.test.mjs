// The guard against a model, seeded random runs. Four actors open one session: three stores over one
// backend (three processes) and a second Session of the first store (its realm's busy mark), on one
// manual clock with leaseMs 1000 and no heartbeat; on the memory store, four Sessions of one store.
// Random steps: begins (alone, or several racing), staging, checkpoint, commit, interrupt, abort and
// renew by any invocation (the holder, a stale one, an ended one), stop({ graceMs: 0 }) by any actor,
// and the clock moving by less than, exactly, or more than a lease. The model knows who holds the lease
// and until when, and says what each call must do:
// - begin succeeds iff no lease is live (a lease is live while expiresAt > now); else ConcurrencyError
//   naming the holder's owner, retryAfterMs = expiresAt - now; of begins racing for a free session
//   exactly one succeeds, the others get ConcurrencyError (never ConflictError); an interrupted session
//   needs `resume`, another refuses it;
// - a new lease's token is above every earlier one, and its invocation reads the latest commit;
// - commit, checkpoint, interrupt and renew succeed iff the invocation holds the live lease; otherwise
//   LeaseLostError, and the invocation has ended: its staging then throws InvalidTransitionError;
// - stop({ graceMs: 0 }) fences a live lease (one version with a `stopped` event) and is `idle` otherwise;
// - at most one invocation holds a live lease at any time (checked on the recorded run);
// - a fresh store reads the version, the status and a history that is exactly the events of the calls
//   that resolved, each at the version it returned and with its invocation; the counter in the state
//   equals the increments committed (no lost update). Then on a real redis-server and on @deno/kv.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openKv } from "@deno/kv";
import { createClient } from "redis";
import { ConcurrencyError, InvalidTransitionError, LeaseLostError, SessionStore } from "agent-session";
import { denoKv, memoryKv, redisKv } from "agent-session/adapters";
import { manualClock } from "./_helpers.mjs";
import { startRedis } from "./adapters/_redis-server.mjs";
import { same, seeded } from "../browser/model-checks.mjs";

const LEASE_MS = 1000;
const STEPS = 70;
/** Clock moves: within a lease, to its very end (a lease at expiresAt == now is over), past it. */
const ADVANCES = [1, 10, 250, 499, 500, 999, 1000, 1001, 1500, 2500];

let redis;
const clients = [];
const denoDir = mkdtempSync(join(tmpdir(), "agent-session-lease-model-"));
const denoDbs = [];
before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const client of clients) await client.quit();
  for (const db of denoDbs) db.close();
  rmSync(denoDir, { recursive: true, force: true });
  await redis?.stop();
});

/** Four actors' stores over one backend made by `kvFor(i)` (three stores: actor 3 shares store 0). */
function processes(name, kvFor) {
  return {
    name,
    async open(now, prefix) {
      const options = { now, leaseMs: LEASE_MS, heartbeat: false, prefix };
      const stores = [];
      for (let i = 0; i < 3; i++) stores.push(await SessionStore.kv(await kvFor(i), { ...options, owner: `p${i}` }));
      return { stores: [...stores, stores[0]], owners: ["p0", "p1", "p2", "p0"], fresh: async () => SessionStore.kv(await kvFor(1), options) };
    },
  };
}

const memoryBackend = {
  name: "one memory store",
  async open(now) {
    const store = await SessionStore.memory({ now, leaseMs: LEASE_MS, heartbeat: false, owner: "m" });
    return { stores: [store, store, store, store], owners: ["m", "m", "m", "m"], fresh: async () => store };
  },
};

const isLive = (lease, now) => lease !== null && lease.expiresAt > now;

/** Runs one seeded trial of STEPS steps on `backend`, checking every call against the model. */
async function runTrial(backend, trial) {
  const random = seeded(4242 + trial * 97);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const now = manualClock();
  const { stores, owners, fresh } = await backend.open(now, `lm${trial}-${Math.floor(random() * 1e9)}:`);
  const id = `lease-${trial}`;
  const sessions = [];
  for (const store of stores) sessions.push(await store.open(id));
  const model = { version: 0, status: "idle", lease: null, counter: 0, versions: new Map(), maxToken: 0 };
  const invocations = []; // { inv, actor, token, ended, staged, counter, resuming }
  const log = [];
  const where = () => `${backend.name}, trial ${trial}, step ${log.length}: ${log.slice(-6).join(" | ")}`;

  async function expectRejects(promise, Class, what) {
    try {
      await promise;
    } catch (error) {
      assert.ok(error instanceof Class, `${what}: ${error?.name} (${error?.message}) instead of ${Class.name} at ${where()}`);
      return error;
    }
    assert.fail(`${what} resolved where ${Class.name} was due at ${where()}`);
  }

  /** The begin options for the model's status; `wrong` gives the refused combination. */
  const beginOptions = (wrong) => {
    const resume = model.status === "interrupted" ? !wrong : wrong;
    return resume ? { resume: { answer: log.length } } : {};
  };

  function granted(inv, actor, resuming) {
    assert.ok(inv.token > model.maxToken, `token ${inv.token} not above ${model.maxToken} at ${where()}`);
    model.maxToken = inv.token;
    assert.equal(inv.session.version, model.version, `a new invocation reads the latest version at ${where()}`);
    assert.equal(inv.stateValue("counter") ?? 0, model.counter, `a new invocation reads the latest counter at ${where()}`);
    const record = { inv, actor, token: inv.token, ended: false, staged: [], counter: model.counter, resuming };
    // The invocation a live lease holds is no longer live: the model's check of "one holder at a time".
    assert.ok(!isLive(model.lease, now()), `a second live lease at ${where()}`);
    model.lease = { record, expiresAt: now() + LEASE_MS };
    invocations.push(record);
  }

  const holds = (record) => model.lease?.record === record && isLive(model.lease, now()) && !record.ended;

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
      record.ended = true;
      return;
    }
    const events = [];
    if (record.resuming) events.push(["resume"]);
    for (const event of record.staged) events.push(event);
    const payload = { step: log.length };
    if (kind === "interrupt") events.push(["interrupt", "why", payload]);
    const version = kind === "interrupt" ? await record.inv.interrupt("why", payload) : await record.inv[kind]();
    assert.equal(version, model.version + 1, `${kind} returns the next version at ${where()}`);
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
      if (isLive(model.lease, now())) {
        const error = await expectRejects(call, ConcurrencyError, "begin while a lease is live");
        assert.equal(error.holder, owners[model.lease.record.actor], `ConcurrencyError.holder at ${where()}`);
        assert.equal(error.retryAfterMs, model.lease.expiresAt - now(), `retryAfterMs at ${where()}`);
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
          assert.ok(outcome.reason instanceof ConcurrencyError, `a racing begin lost with ${outcome.reason?.name}: ${outcome.reason?.message} at ${where()}`);
        }
      }
      assert.equal(won.length, isLive(model.lease, now()) ? 0 : 1, `racing begins that won at ${where()}`);
      for (const [inv, actor] of won) granted(inv, actor, model.status === "interrupted");
    },
    async stage() {
      const record = pick(invocations.slice(-4));
      if (record === undefined) return;
      log.push(`stage t${record.token}`);
      if (record.ended) {
        assert.throws(() => record.inv.appendMessage({ late: true }), InvalidTransitionError, `staging on an ended invocation at ${where()}`);
        return;
      }
      // While it holds the lease nothing else commits, so it reads what it began with and its own writes.
      // (A stale invocation reads what its store has learnt since: it can commit none of it.)
      if (holds(record)) assert.equal(record.inv.stateValue("counter") ?? 0, record.counter, `the holder reads its own writes at ${where()}`);
      const message = { token: record.token, step: log.length };
      record.inv.appendMessage(message);
      record.counter += 1;
      record.inv.setState("counter", record.counter);
      record.staged.push(["message", message], ["state.set", "counter", record.counter]);
    },
    async end() {
      const record = pick(invocations.slice(-4));
      if (record === undefined) return;
      const kind = pick(["commit", "commit", "checkpoint", "interrupt"]);
      // A session can be interrupted only from a turn that is not answering an interrupt it keeps.
      log.push(`${kind} t${record.token}`);
      await write(record, kind);
    },
    async abort() {
      const record = pick(invocations.slice(-4));
      if (record === undefined) return;
      log.push(`abort t${record.token}`);
      if (record.ended) {
        await record.inv.abort().catch((error) => assert.ok(error instanceof InvalidTransitionError, `abort of an ended invocation: ${error?.name} at ${where()}`));
        return;
      }
      const held = holds(record);
      // A stale holder's abort releases nothing (its lease is gone), whether it resolves or says so.
      await record.inv.abort().catch((error) => assert.ok(!held && error instanceof LeaseLostError, `abort: ${error?.name} at ${where()}`));
      record.ended = true;
      if (held) {
        model.lease = null;
        if (record.resuming) model.status = "interrupted";
      }
    },
    async renew() {
      const record = pick(invocations.slice(-4));
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
      if (!isLive(model.lease, now())) {
        assert.equal(result.outcome, "idle", `stop of a session no live lease holds at ${where()}`);
        assert.equal(result.version, model.version, `stop's version at ${where()}`);
        return;
      }
      const { record } = model.lease;
      assert.equal(result.outcome, "fenced", `stop({ graceMs: 0 }) of a live lease at ${where()}`);
      assert.equal(result.invocation, record.inv.id, `the fenced invocation at ${where()}`);
      assert.equal(result.version, model.version + 1, `the fence's version at ${where()}`);
      model.version = result.version;
      model.versions.set(result.version, { stopped: true });
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
      if (random() < 0.3) await new Promise((resolve) => setImmediate(resolve));
      else for (let k = Math.floor(random() * 40); k > 0; k--) await null;
      now.advance(LEASE_MS);
      const options = beginOptions(false);
      const beginning = sessions[actor].begin(options);
      const [commit, begin] = await Promise.allSettled([committing, beginning]);
      record.ended = true;
      if (commit.status === "fulfilled") {
        assert.equal(commit.value, model.version + 1, `the racing commit's version at ${where()}`);
        model.version = commit.value;
        model.versions.set(commit.value, { invocation: record.inv.id, events: [...(record.resuming ? [["resume"]] : []), ...record.staged] });
        model.counter = record.counter;
        model.status = "idle";
        model.lease = null;
      } else {
        assert.ok(commit.reason instanceof LeaseLostError, `the racing commit: ${commit.reason?.name} at ${where()}`);
      }
      if (begin.status === "fulfilled") {
        granted(begin.value, actor, model.status === "interrupted");
        assert.equal(!!options.resume, model.lease.record.resuming, `resume as the session's status at ${where()}`);
      } else if (commit.status === "fulfilled" && options.resume && begin.reason instanceof InvalidTransitionError) {
        // The commit answered the interrupt first: the session is idle, and `resume` no longer fits.
      } else {
        assert.ok(begin.reason instanceof ConcurrencyError, `the racing begin: ${begin.reason?.name} at ${where()}`);
        assert.equal(commit.status, "fulfilled", `neither the commit nor the takeover succeeded at ${where()}`);
      }
    },
    async tick() {
      const ms = pick(ADVANCES);
      log.push(`+${ms}ms`);
      now.advance(ms);
    },
  };
  const weights = [["begin", 4], ["race", 1], ["stage", 5], ["end", 3], ["abort", 1], ["renew", 1], ["stop", 1], ["overtake", 1], ["tick", 3]];
  const total = weights.reduce((sum, [, w]) => sum + w, 0);
  for (let step = 0; step < STEPS; step++) {
    let r = random() * total;
    const [name] = weights.find(([, w]) => (r -= w) < 0) ?? weights[0];
    await steps[name]();
    if (step % 10 === 9 || step === STEPS - 1) await checkStored();
  }

  /** What a fresh store reads of the session, against the model. */
  async function checkStored() {
    const session = await (await fresh()).open(id, { create: false });
    assert.equal(session.version, model.version, `a fresh store's version at ${where()}`);
    assert.equal(session.status, isLive(model.lease, now()) ? "running" : model.status, `a fresh store's status at ${where()}`);
    assert.equal(session.state().counter ?? 0, model.counter, `the counter (no lost update) at ${where()}`);
    const history = await session.history();
    for (let version = 1; version <= model.version; version++) {
      const events = history.filter((event) => event.version === version);
      const expected = model.versions.get(version);
      if (expected.stopped) {
        same(events.map((event) => event.type), ["stopped"], `the fence's events at version ${version}, ${where()}`);
        continue;
      }
      for (const event of events) assert.equal(event.invocation, expected.invocation, `version ${version}'s invocation at ${where()}`);
      const shape = (event) => {
        if (event.type === "message") return ["message", event.data];
        if (event.type === "state.set") return ["state.set", event.key, event.data];
        if (event.type === "interrupt") return ["interrupt", event.reason, event.data];
        return [event.type];
      };
      same(events.map(shape), expected.events, `the events of version ${version} at ${where()}`);
    }
    assert.ok(history.every((event) => event.version <= model.version), `no events above the version at ${where()}`);
  }
}

const memoryKvBackend = () => {
  const kv = memoryKv();
  return processes("three stores over one memoryKv", () => kv);
};

test("the guard against a model: one memory store with four Sessions, and three stores over one memoryKv", async () => {
  for (let trial = 0; trial < 60; trial++) {
    await runTrial(trial % 3 === 0 ? memoryBackend : memoryKvBackend(), trial);
  }
});

test("the guard against a model: three connections to one redis-server, and to one Deno KV file", async () => {
  for (let i = 0; i < 3; i++) clients.push(await createClient({ url: redis.url }).connect());
  const file = join(denoDir, "lease.sqlite");
  for (let i = 0; i < 3; i++) denoDbs.push(await openKv(file));
  const real = [
    processes("three node-redis clients", async (i) => redisKv(clients[i])),
    processes("three @deno/kv connections", async (i) => denoKv(denoDbs[i])),
  ];
  for (let trial = 0; trial < 8; trial++) await runTrial(real[trial % 2], 1000 + trial);
});
