// Exports as sessions leave them, and as files get damaged, seeded random runs. Each trial builds a
// session (turns of messages and state for two agents, deletes, compactions, checkpoints, interrupts
// and resumes, aborts, sometimes a prune at a random version, sometimes a close) and exports it:
// - the export as it is (a turn may be running: it is not in it) imports into a KV store, with the same version, status, messages, state
//   (both agents) and pending interrupt, and its own export is the same file (events, status,
//   version, metadata); a pruned session included, whatever version its oldest kept one is;
// - then one to three structural changes (an event dropped, doubled, swapped with the next, given
//   another type, version, agent, key, `before` or data; the status, expiry, createdAt or version
//   changed) and the import again: refused with a typed error (INVALID_INPUT or LIMIT_EXCEEDED)
//   naming its `path`, nothing written; or taken, and then its export imports to the same export (what
//   an import normalizes stays normalized), a fresh store reads it, and reads, `at()` of every
//   version, a fork, a turn, a compaction and a prune either work or fail with a typed error.
// FUZZ_TRIALS=n runs more seeds (1,500 trials: no failure).
import assert from "node:assert/strict";
import { test } from "node:test";
import { AgentSessionError, SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { canonical, seeded } from "../browser/model-checks.mjs";

const TRIALS = Number(process.env.FUZZ_TRIALS ?? 150);
const NOW = 1_800_000_000_000;
const TYPES = ["created", "message", "state.set", "state.delete", "interrupt", "resume", "closed", "forked", "stopped", "compacted", "migrated"];
const REFUSED = new Set(["INVALID_INPUT", "LIMIT_EXCEEDED"]);
const USE_REFUSED = new Set(["INVALID_INPUT", "INVALID_TRANSITION", "SESSION_CLOSED", "SESSION_EXPIRED", "NOT_FOUND"]);

/** A session built by seeded turns, and its export as a file holds it. */
async function sourceExport(random, trial) {
  let t = 1_700_000_000_000;
  const store = await SessionStore.memory({ now: () => (t += 7), snapshotEvery: 1 + (trial % 4) });
  const session = await store.open(`source-${trial}`, { metadata: { trial } });
  const turns = 2 + Math.floor(random() * 7);
  for (let k = 0; k < turns; k++) {
    const inv = await session.begin(session.status === "interrupted" ? { resume: { answer: k } } : {});
    const agent = random() < 0.3 ? { agent: "b" } : undefined;
    for (let j = Math.floor(random() * 3); j >= 0; j--) inv.appendMessage({ k, j }, agent);
    if (random() < 0.5) inv.setState(`s${k % 3}`, { k }, agent);
    if (random() < 0.2) inv.deleteState(`s${(k + 1) % 3}`);
    if (random() < 0.15 && inv.messages().length > 2) inv.compact({ before: 1, summary: [{ summary: k }], force: true });
    const end = random();
    if (end < 0.2) await inv.interrupt("why", { k });
    else if (end < 0.25) await inv.abort();
    else if (end < 0.3) {
      await inv.checkpoint();
      await inv.commit();
    } else await inv.commit();
  }
  if (random() < 0.4 && session.version > 1) await session.prune({ before: 1 + Math.floor(random() * session.version) });
  // Sometimes a turn still runs when the backup is taken (it checkpointed, or not yet).
  let running;
  if (random() < 0.2) {
    running = await session.begin(session.status === "interrupted" ? { resume: { answer: "running" } } : {});
    running.appendMessage({ running: true });
    if (random() < 0.5) await running.checkpoint();
    running.appendMessage({ uncommitted: true });
  }
  if (random() < 0.1 && session.status === "idle") await session.close();
  const data = JSON.parse(JSON.stringify(await session.export()));
  return { session, data, running };
}

/** One structural change to an export (in place); returns its name. */
function damage(data, random) {
  const pick = (list) => list[Math.floor(random() * list.length)];
  const index = Math.floor(random() * data.events.length);
  const event = data.events[index];
  const kind = pick(["drop", "double", "swap", "type", "version+", "version-", "status", "expiresAt", "createdAt", "version", "agent", "key", "before", "data", "retained", "base"]);
  switch (kind) {
    case "drop": data.events.splice(index, 1); break;
    case "double": if (event) data.events.splice(index, 0, structuredClone(event)); break;
    case "swap": if (index + 1 < data.events.length) [data.events[index], data.events[index + 1]] = [data.events[index + 1], data.events[index]]; break;
    case "type": if (event) event.type = pick(TYPES); break;
    case "version+": if (event) event.version += 1; break;
    case "version-": if (event) event.version = Math.max(0, event.version - 1); break;
    case "status": data.status = pick(["idle", "interrupted", "closed", "expired", "running"]); break;
    case "expiresAt": data.expiresAt = pick([null, 0, data.createdAt - 1, NOW + 1e9]); break;
    case "createdAt": data.createdAt = pick([0, data.updatedAt + 1000, -5]); break;
    case "version": data.version += pick([-1, 1, 5]); break;
    case "agent": if (event) event.agent = pick([undefined, "default", "b", "zz"]); break;
    case "key": if (event) event.key = pick([undefined, "s0", "new"]); break;
    case "before": if (event) event.before = pick([0, 1, 2, 50, undefined]); break;
    case "data": if (event) event.data = pick([null, [], [{ s: 1 }], { k: -1 }]); break;
    case "retained": data.retained = pick([undefined, 0, 1, data.version, data.version + 1, 2.5]); break;
    case "base":
      if (data.base?.length) {
        const entry = data.base[Math.floor(random() * data.base.length)];
        const change = pick(["version", "type", "drop"]);
        if (change === "version") entry.version += pick([-1, 1]);
        else if (change === "type") entry.type = pick(TYPES);
        else data.base.splice(data.base.indexOf(entry), 1);
      } else data.base = pick([[], [{ version: data.version, at: NOW, type: "message", agent: "default", data: "x" }]]);
      break;
  }
  return kind;
}

/** What an export says of a session, for comparing two exports of one (ids and times aside). */
const fileOf = (data) =>
  canonical({
    version: data.version,
    status: data.status,
    metadata: data.metadata,
    retained: data.retained,
    base: data.base?.map(({ at, invocation, ...rest }) => rest),
    events: data.events.map(({ at, invocation, ...rest }) => rest),
  });

/** What a session reads: version, status, each agent's messages and state, its pending interrupt. */
async function readsOf(session, status = session.status) {
  const history = await session.history();
  const last = history.filter((event) => event.version === session.version).at(-1);
  return canonical({
    version: session.version,
    status,
    messages: [session.messages(), session.messages({ agent: "b" })],
    state: [session.state(), session.state({ agent: "b" })],
    interrupt: status === "interrupted" ? [last?.type, last?.reason, last?.data] : null,
    // The retained history, event by event (a pruned session's too: its oldest kept version's own events).
    history: history.map(({ at, invocation, ...rest }) => rest),
  });
}

async function expectTyped(promise, codes, what) {
  try {
    return await promise;
  } catch (error) {
    assert.ok(error instanceof AgentSessionError && codes.has(error.code), `${what}: ${error?.name} ${error?.code}: ${error?.message}`);
    return error;
  }
}

test("exports import as they were, and damaged ones are refused with their path or taken consistently", async () => {
  for (let trial = 0; trial < TRIALS; trial++) {
    const random = seeded(9000 + trial);
    const { session, data, running } = await sourceExport(random, trial);
    const where = `trial ${trial}`;
    // As it is: the same session, and the same file again.
    const kv = memoryKv();
    const store = await SessionStore.kv(kv, { now: () => NOW });
    const copy = await store.import(structuredClone(data), { id: "copy" });
    // A turn running at the export is not in it: the session as it rests at its last commit.
    assert.equal(await readsOf(copy), await readsOf(session, running ? data.status : session.status), `${where}: the import reads as the source`);
    await running?.abort();
    assert.equal(fileOf(JSON.parse(JSON.stringify(await copy.export()))), fileOf(data), `${where}: the import exports the same file`);
    if (copy.status === "interrupted") await (await copy.begin({ resume: "yes" })).commit();

    // Damaged.
    const damaged = structuredClone(data);
    const kinds = [];
    for (let n = 1 + Math.floor(random() * 3); n > 0; n--) kinds.push(damage(damaged, random));
    const what = `${where}, ${kinds.join(" + ")}`;
    const target = memoryKv();
    const into = await SessionStore.kv(target, { now: () => NOW });
    let taken;
    try {
      taken = await into.import(damaged, { id: "taken" });
    } catch (error) {
      assert.ok(error instanceof AgentSessionError && REFUSED.has(error.code), `${what}: refused with ${error?.name} ${error?.code}: ${error?.message}`);
      assert.ok(typeof error.path === "string" && error.path.length > 0, `${what}: the refusal names its path (${error.message})`);
      assert.deepEqual((await target.list("")).keys, [], `${what}: nothing written`);
      continue;
    }
    const once = JSON.parse(JSON.stringify(await taken.export()));
    const twice = JSON.parse(JSON.stringify(await (await into.import(structuredClone(once), { id: "again" })).export()));
    assert.equal(fileOf(twice), fileOf(once), `${what}: an import's export imports to the same export`);
    const fresh = await (await SessionStore.kv(target, { now: () => NOW })).open("taken", { create: false });
    assert.equal(await readsOf(fresh), await readsOf(taken), `${what}: a fresh store reads the same`);
    for (let v = 0; v <= taken.version; v++) {
      const view = await expectTyped(taken.at(v), USE_REFUSED, `${what}: at(${v})`);
      if (!(view instanceof AgentSessionError)) view.messages() && view.state();
    }
    await expectTyped(taken.fork({ id: "fork" }), USE_REFUSED, `${what}: fork`);
    await expectTyped(
      (async () => {
        const inv = await taken.begin(taken.status === "interrupted" ? { resume: 1 } : {});
        inv.appendMessage("after");
        if (inv.messages().length > 1) inv.compact({ before: 1, summary: ["summary"], force: true });
        await inv.commit();
      })(),
      USE_REFUSED,
      `${what}: a turn`,
    );
    await expectTyped(taken.prune({ before: taken.version }), USE_REFUSED, `${what}: prune`);
  }
});
