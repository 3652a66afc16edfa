// Every version of a session, read back every way, against a model of what was committed: seeded
// random sequences of turns (messages, state sets and deletes, compactions, for the default agent and
// another; committed or aborted) and prunes, with snapshots every 1 to 5 commits (so segments and state
// layers of every shape), on the memory store, on kv(memoryKv) and on kv(memoryKv) with encryption at
// rest. Then, at a midpoint and at the end: the session's reads, a fresh store's load, `at(v)` of every
// kept version (and NotFoundError below them; a prune keeps from the newest snapshot at or below its
// `before`), `history()` replayed version by version, a fork at a
// kept version, and an export imported into another backend, each checked against the model.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { manualClock } from "./_helpers.mjs";

const AGENTS = ["default", "a"];
const KEYS = ["k1", "k2", "k3"];
const opt = (agent) => (agent === "default" ? undefined : { agent });

/** One version as the model has it: per agent, its messages and its state. */
const emptyVersion = () => ({ messages: { default: [], a: [] }, state: { default: {}, a: {} } });

function readOf(view) {
  const out = emptyVersion();
  for (const agent of AGENTS) {
    out.messages[agent] = view.messages(opt(agent));
    out.state[agent] = view.state(opt(agent));
  }
  return out;
}

/** A version's data without its status (what `replay` rebuilds, and what a fork or import starts from). */
const dataOf = ({ messages, state }) => ({ messages, state });

/** The model's versions rebuilt from `history()` (an unpruned session): one entry per version. */
function replay(events, version) {
  const versions = [emptyVersion()];
  let current = emptyVersion();
  for (const event of events) {
    while (versions.length <= event.version) versions.push(structuredClone(current));
    current = versions[event.version];
    const agent = event.agent ?? "default";
    switch (event.type) {
      case "message":
        current.messages[agent].push(event.data);
        break;
      case "state.set":
        current.state[agent][event.key] = event.data;
        break;
      case "state.delete":
        delete current.state[agent][event.key];
        break;
      case "compacted":
        current.messages[agent].splice(0, event.before, ...event.data);
        break;
      case "created":
      case "interrupt":
      case "resume":
        break;
      default:
        throw new Error(`unexpected event ${event.type}`);
    }
  }
  while (versions.length <= version) versions.push(structuredClone(current));
  return versions;
}

/**
 * The stores under test. `make` gives a store over `kv`; `second` (kv backends) another one over the
 * same `kv`, as another process would open it: for the encrypted one, mid-rotation (both have both
 * keys; one writes under the new key id).
 */
async function backends() {
  const aes = () => crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  const [key, next] = [await aes(), await aes()];
  // Mid-rotation: every process has both keys, one still writing under the old one.
  const keys = { default: key, next };
  return [
    { name: "memory", make: (options) => SessionStore.memory(options) },
    {
      name: "kv(memoryKv)",
      make: (options, kv) => SessionStore.kv(kv, options),
      second: (options, kv) => SessionStore.kv(kv, options),
    },
    {
      name: "kv(memoryKv), encrypted",
      make: (options, kv) => SessionStore.kv(kv, { ...options, encryptionKey: { current: "default", keys } }),
      second: (options, kv) => SessionStore.kv(kv, { ...options, encryptionKey: { current: "next", keys } }),
    },
  ];
}

/** Checks every way of reading `session` against `versions` (index = version); `retained` = oldest kept. */
async function checkAll(where, session, versions, retained, { backend, kv, now, random, all }) {
  const latest = versions.length - 1;
  const last = versions[latest];
  assert.equal(session.version, latest, `${where}: version`);
  assert.deepEqual(readOf(session), dataOf(last), `${where}: the session's reads`);
  assert.equal(session.status, last.status, `${where}: status`);
  assert.deepEqual(session.pendingInterrupt(), last.interrupt, `${where}: pendingInterrupt`);
  if (backend.second !== undefined) {
    const fresh = await backend.second({ now }, kv);
    const loaded = await fresh.open(session.id, { create: false });
    assert.deepEqual(readOf(loaded), dataOf(last), `${where}: a fresh store's load`);
    assert.deepEqual(loaded.pendingInterrupt(), last.interrupt, `${where}: a fresh store's pendingInterrupt`);
  }
  for (let v = 0; v <= latest; v++) {
    if (v < retained) {
      await assert.rejects(session.at(v), (error) => error.code === "NOT_FOUND", `${where}: at(${v}) was pruned`);
      continue;
    }
    const view = await session.at(v);
    assert.equal(view.version, v);
    assert.deepEqual(readOf(view), dataOf(versions[v]), `${where}: at(${v})`);
    if (versions[v].status !== "running") assert.equal(view.status, versions[v].status, `${where}: at(${v}).status`);
  }
  const history = await session.history({ from: retained });
  assert.ok(history.every((e, i) => i === 0 || history[i - 1].version <= e.version), `${where}: history in commit order`);
  if (retained === 0) {
    const replayed = replay(history, latest);
    for (let v = 0; v <= latest; v++) assert.deepEqual(replayed[v], dataOf(versions[v]), `${where}: history replayed to version ${v}`);
  }
  const forkAt = retained + Math.floor(random() * (latest - retained + 1));
  const fork = await session.fork({ at: forkAt });
  assert.deepEqual(readOf(fork), dataOf(versions[forkAt]), `${where}: fork at ${forkAt}`);
  const resume = fork.status === "interrupted" ? { resume: "fork's answer" } : undefined;
  await fork.invoke((inv) => inv.appendMessage("on the fork"), resume);
  assert.deepEqual(readOf(await session.refresh()), dataOf(last), `${where}: a turn on the fork leaves the session as it was`);

  const exported = JSON.parse(JSON.stringify(await session.export()));
  const target = all[Math.floor(random() * all.length)];
  const targetStore = await target.make({ now }, memoryKv());
  const copy = await targetStore.import(exported, { id: "copy" });
  assert.equal(copy.version, latest, `${where}: import into ${target.name}: version`);
  assert.deepEqual(readOf(copy), dataOf(last), `${where}: import into ${target.name}: reads`);
  assert.equal(copy.status, last.status === "running" ? "idle" : last.status, `${where}: import into ${target.name}: status`);
  assert.deepEqual(copy.pendingInterrupt(), last.interrupt, `${where}: import into ${target.name}: pendingInterrupt`);
  for (let v = retained; v <= latest; v++) {
    assert.deepEqual(readOf(await copy.at(v)), dataOf(versions[v]), `${where}: import into ${target.name}: at(${v})`);
  }
}

test("every version of a session, read back every way, matches what was committed", async () => {
  const all = await backends();
  for (let trial = 0; trial < 48; trial++) {
    let seed = 4242 + trial * 104729;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const pick = (list) => list[Math.floor(random() * list.length)];
    const backend = all[trial % all.length];
    const snapshotEvery = 1 + (Math.floor(trial / all.length) % 5);
    const now = manualClock();
    const kv = memoryKv();
    const store = await backend.make({ now, snapshotEvery }, kv);
    const session = await store.open("s");
    // The kv backends write through two stores (two processes), each turn through either.
    const writers = [session];
    if (backend.second !== undefined) writers.push(await (await backend.second({ now, snapshotEvery }, kv)).open("s"));
    const versions = [{ ...emptyVersion(), status: "idle", interrupt: null }];
    let retained = 0;
    let counter = 0;
    const steps = 30 + Math.floor(random() * 40);
    const context = { backend, kv, now, random, all };
    for (let step = 0; step < steps; step++) {
      now.advance(1);
      const where = `trial ${trial} (${backend.name}, snapshotEvery ${snapshotEvery}), step ${step}`;
      const writer = await pick(writers).refresh();
      if (random() < 0.06 && versions.length > 1) {
        const before = retained + Math.floor(random() * (versions.length - retained));
        await writer.prune({ before });
        // The oldest kept version is the newest snapshot at or below `before` (API.md, "prune"): the
        // first version from the old one on that at() still reads; checkAll checks those below fail.
        let kept = retained;
        while (kept < before && (await session.at(kept).then(() => false, (error) => error.code === "NOT_FOUND"))) kept++;
        retained = kept;
        continue;
      }
      const previous = versions[versions.length - 1];
      const inv = await writer.begin(previous.status === "interrupted" ? { resume: { answer: step } } : undefined);
      const next = { ...structuredClone(dataOf(previous)), status: "running", interrupt: null };
      const checkpointAt = random() < 0.15 ? 1 : -1;
      for (let i = 0, n = 1 + Math.floor(random() * 5); i < n; i++) {
        const agent = pick(AGENTS);
        const roll = random();
        if (roll < 0.5) {
          const message = random() < 0.5 ? `m${++counter}` : { role: pick(["user", "assistant"]), n: ++counter, text: "x".repeat(Math.floor(random() * 300)) };
          inv.appendMessage(message, opt(agent));
          next.messages[agent].push(message);
        } else if (roll < 0.75) {
          const key = pick(KEYS);
          const value = pick([counter, `v${counter}`, null, [counter, { nested: counter }], { at: step, list: [1, 2] }]);
          inv.setState(key, value, opt(agent));
          next.state[agent][key] = value;
        } else if (roll < 0.88) {
          const key = pick(KEYS);
          inv.deleteState(key, opt(agent));
          delete next.state[agent][key];
        } else {
          const before = Math.floor(random() * (inv.messages(opt(agent)).length + 1));
          const summary = Array.from({ length: Math.floor(random() * 3) }, (_, k) => ({ summary: `${step}.${k}` }));
          inv.compact({ before, summary, ...opt(agent) });
          next.messages[agent].splice(0, before, ...summary);
        }
        assert.deepEqual(inv.messages(opt(agent)), next.messages[agent], `${where}: the invocation reads its writes`);
        if (i === checkpointAt) {
          assert.equal(await inv.checkpoint(), versions.length, `${where}: checkpoint version`);
          versions.push(structuredClone(next));
        }
      }
      const end = random();
      if (end < 0.75) {
        assert.equal(await inv.commit(), versions.length, `${where}: commit version`);
        versions.push({ ...next, status: "idle" });
      } else if (end < 0.87) {
        const payload = pick([undefined, { ask: step }]);
        assert.equal(await inv.interrupt(`r${step}`, payload), versions.length, `${where}: interrupt version`);
        versions.push({ ...next, status: "interrupted", interrupt: { reason: `r${step}`, payload: payload ?? null } });
      } else {
        await inv.abort();
        // What a checkpoint wrote stays; the session rests at the status before the turn.
        if (checkpointAt >= 0 && versions[versions.length - 1].status === "running") {
          versions[versions.length - 1].status = previous.status === "interrupted" ? "idle" : previous.status;
        }
      }
      await session.refresh();
      if (step === Math.floor(steps / 2)) await checkAll(`${where} (midpoint)`, session, versions, retained, context);
    }
    await checkAll(`trial ${trial} (${backend.name}, snapshotEvery ${snapshotEvery}), end`, session, versions, retained, context);
  }
});
