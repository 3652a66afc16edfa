// Shared by tests/js/history-model.test.mjs (Node: memory, KV, encrypted KV) and
// tests/browser/history-model.test.mjs (a Chromium tab: IndexedDB, encrypted IndexedDB); not a test
// file. It imports only model-checks.mjs, so a page loads it as it is.
//
// Every version of a session, read back every way, against a model of what was committed: seeded
// random sequences of turns (messages, state sets and deletes, compactions, for the default agent and
// another; checkpoints; ended by commit, abort or interrupt, the next turn resuming) and prunes, with
// snapshots every 1 to 5 commits (so segments and state layers of every shape), each turn opening the
// session by id through one of two stores over the same data (two processes, two tabs), with messages and state values about
// their limits (those over are refused with LIMIT_EXCEEDED and stage nothing). At a midpoint and at the end: the
// session's reads and status, a fresh store's load, `at(v)` of every kept version with its status
// (NotFoundError below them; a prune keeps from the newest snapshot at or below its `before`),
// `history()` replayed version by version, a fork at a kept version, and an export imported into
// another backend.

import { check, same, seeded } from "./model-checks.mjs";

/** The limits the stores under test are given, so that some writes go over them. */
export const LIMITS = { maxMessageBytes: 2048, maxStateValueBytes: 1024 };

/** The error `write()` throws, or undefined. */
function refusal(write) {
  try {
    write();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** A write over a limit is refused with LIMIT_EXCEEDED and stages nothing; one within it is taken. */
function checkLimit(refused, over, what) {
  check(over ? refused?.code === "LIMIT_EXCEEDED" : refused === undefined, `${what}: ${refused?.code ?? "taken"} (over the limit: ${over})`);
}

const AGENTS = ["default", "a"];
const KEYS = ["k1", "k2", "k3"];
const opt = (agent) => (agent === "default" ? undefined : { agent });

/** One version as the model has it: per agent, its messages and its state. */
const emptyVersion = () => ({ messages: { default: [], a: [] }, state: { default: {}, a: {} } });

/** A version's data without its status (what `replay` rebuilds, and what a fork starts from). */
const dataOf = ({ messages, state }) => ({ messages, state });

function readOf(view) {
  const out = emptyVersion();
  for (const agent of AGENTS) {
    out.messages[agent] = view.messages(opt(agent));
    out.state[agent] = view.state(opt(agent));
  }
  return out;
}

/** The versions' data rebuilt from `history()` of an unpruned session: one entry per version. */
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
 * Checks every way of reading `session` against `versions` (index = version; `retained` = the oldest
 * kept). `backend.fresh()` gives a new store over the same data; `targets` are the stores an export
 * may be imported into.
 */
async function checkAll(where, session, versions, retained, { backend, random, targets }) {
  const latest = versions.length - 1;
  const last = versions[latest];
  check(session.version === latest, `${where}: version ${session.version}, expected ${latest}`);
  same(readOf(session), dataOf(last), `${where}: the session's reads`);
  check(session.status === last.status, `${where}: status ${session.status}, expected ${last.status}`);
  same(session.pendingInterrupt(), last.interrupt, `${where}: pendingInterrupt`);
  const loaded = await (await backend.fresh()).open(session.id, { create: false });
  same(readOf(loaded), dataOf(last), `${where}: a fresh store's load`);
  same(loaded.pendingInterrupt(), last.interrupt, `${where}: a fresh store's pendingInterrupt`);
  for (let v = 0; v <= latest; v++) {
    if (v < retained) {
      const refused = await session.at(v).then(() => undefined, (error) => error);
      check(refused?.code === "NOT_FOUND", `${where}: at(${v}) of a pruned version: ${refused?.code ?? "resolved"}`);
      continue;
    }
    const view = await session.at(v);
    check(view.version === v, `${where}: at(${v}).version ${view.version}`);
    same(readOf(view), dataOf(versions[v]), `${where}: at(${v})`);
    // A checkpoint's version was "running" while its turn went on; at() does not say so.
    if (versions[v].status !== "running") {
      check(view.status === versions[v].status, `${where}: at(${v}).status ${view.status}, expected ${versions[v].status}`);
    }
  }
  const history = await session.history({ from: retained });
  check(history.every((e, i) => i === 0 || history[i - 1].version <= e.version), `${where}: history in commit order`);
  if (retained === 0) {
    const replayed = replay(history, latest);
    for (let v = 0; v <= latest; v++) same(replayed[v], dataOf(versions[v]), `${where}: history replayed to version ${v}`);
  }
  const forkAt = retained + Math.floor(random() * (latest - retained + 1));
  const fork = await session.fork({ at: forkAt });
  same(readOf(fork), dataOf(versions[forkAt]), `${where}: fork at ${forkAt}`);
  await fork.invoke((inv) => inv.appendMessage("on the fork"));
  same(readOf(await session.refresh()), dataOf(last), `${where}: a turn on the fork leaves the session as it was`);

  const exported = JSON.parse(JSON.stringify(await session.export()));
  const target = targets[Math.floor(random() * targets.length)];
  const copy = await (await target.make()).import(exported, { id: "copy" });
  check(copy.version === latest, `${where}: import into ${target.name}: version ${copy.version}`);
  same(readOf(copy), dataOf(last), `${where}: import into ${target.name}: reads`);
  const restingStatus = last.status === "running" ? "idle" : last.status;
  check(copy.status === restingStatus, `${where}: import into ${target.name}: status ${copy.status}`);
  same(copy.pendingInterrupt(), last.interrupt, `${where}: import into ${target.name}: pendingInterrupt`);
  for (let v = retained; v <= latest; v++) {
    same(readOf(await copy.at(v)), dataOf(versions[v]), `${where}: import into ${target.name}: at(${v})`);
  }
}

/**
 * Runs one seeded trial. `backend` = { name, open(snapshotEvery) -> [store, otherStore] over the same
 * data, fresh() -> a new store over it }; `targets` = [{ name, make() }] for imports; `tick()` moves
 * the stores' clock (if any) by 1 ms.
 */
export async function runTrial({ trial, backend, snapshotEvery, targets, tick = () => {} }) {
  const random = seeded(4242 + trial * 104729);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const stores = await backend.open(snapshotEvery);
  const session = await stores[0].open("s");
  const versions = [{ ...emptyVersion(), status: "idle", interrupt: null }];
  let retained = 0;
  let counter = 0;
  const steps = 30 + Math.floor(random() * 40);
  const context = { backend, random, targets };
  const name = `trial ${trial} (${backend.name}, snapshotEvery ${snapshotEvery})`;
  for (let step = 0; step < steps; step++) {
    tick();
    const where = `${name}, step ${step}`;
    // Each turn opens the session by id, as a server does on every request, through either store.
    const writer = await pick(stores).open("s");
    if (random() < 0.06 && versions.length > 1) {
      const before = retained + Math.floor(random() * (versions.length - retained));
      await writer.prune({ before });
      // The first version from the old oldest on that at() still reads; checkAll checks those below fail.
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
        const size = random();
        const message =
          size < 0.45
            ? `m${++counter}`
            : size < 0.93
              ? { role: pick(["user", "assistant"]), n: ++counter, text: "x".repeat(Math.floor(random() * 300)) }
              : { n: ++counter, text: "y".repeat(1950 + Math.floor(random() * 200)) }; // about the limit
        const over = JSON.stringify(message).length > LIMITS.maxMessageBytes;
        checkLimit(refusal(() => inv.appendMessage(message, opt(agent))), over, `${where}: a message of ${JSON.stringify(message).length} bytes`);
        if (!over) next.messages[agent].push(message);
      } else if (roll < 0.75) {
        const key = pick(KEYS);
        const big = "z".repeat(980 + Math.floor(random() * 80)); // about the limit
        const value = pick([counter, `v${counter}`, null, [counter, { nested: counter }], { at: step, list: [1, 2] }, big]);
        const over = JSON.stringify(value).length > LIMITS.maxStateValueBytes;
        checkLimit(refusal(() => inv.setState(key, value, opt(agent))), over, `${where}: a state value of ${JSON.stringify(value).length} bytes`);
        if (!over) next.state[agent][key] = value;
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
      same(inv.messages(opt(agent)), next.messages[agent], `${where}: the invocation reads its writes`);
      if (i === checkpointAt) {
        const version = await inv.checkpoint();
        check(version === versions.length, `${where}: checkpoint version ${version}`);
        versions.push(structuredClone(next));
      }
    }
    const end = random();
    if (end < 0.75) {
      const version = await inv.commit();
      check(version === versions.length, `${where}: commit version ${version}`);
      versions.push({ ...next, status: "idle" });
    } else if (end < 0.87) {
      const payload = pick([undefined, { ask: step }]);
      const version = await inv.interrupt(`r${step}`, payload);
      check(version === versions.length, `${where}: interrupt version ${version}`);
      versions.push({ ...next, status: "interrupted", interrupt: { reason: `r${step}`, payload: payload ?? null } });
    } else {
      await inv.abort();
      // What a checkpoint wrote stays; the session rests at "idle" (the answer of a resume was committed).
      if (checkpointAt >= 0 && versions[versions.length - 1].status === "running") {
        versions[versions.length - 1].status = "idle";
      }
    }
    await session.refresh();
    if (step === Math.floor(steps / 2)) await checkAll(`${where} (midpoint)`, session, versions, retained, context);
  }
  await checkAll(`${name}, end`, session, versions, retained, context);
  return { versions: versions.length - 1, retained };
}
