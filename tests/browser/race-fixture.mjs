// Shared by tests/js/race-fuzz.test.mjs (Node: a slow KV, Redis, Deno KV) and
// tests/browser/race-fuzz.test.mjs (a Chromium tab: IndexedDB); not a test file. It imports only
// model-checks.mjs, so a page loads it as it is.
//
// Operations of three stores (three processes, three tabs' stores) on two sessions at once, seeded
// random runs, interleaving: turns (messages, state, a compaction, ended by commit, checkpoint and
// commit, abort or interrupt; resumed when interrupted), reads, history(), at(), an export imported into a memory store, prune(), delete(), fork(),
// refresh(), list() and a backup of the store (store.export() imported), in rounds of two to four
// at once. What must hold: every failure is an AgentSessionError (a typed error; nothing traps);
// none is a StorageError or a refusal of the library's own input (INVALID_INPUT); an export that
// resolves imports; and after every round each session opens from a fresh store (or is not found):
// no race leaves a session whose head names records that are gone. (Races of a read with a
// delete or prune of another store are the NotFoundError of what went; rarely a read that lost
// three times running to deletes and re-creations still reports the record it missed, so
// CorruptRecordError is allowed of a single call, never of the state a round leaves.)
// Found so far: a KV delete that deleted the records of the session created again meanwhile; a
// prune racing a delete that reported the records the delete took as corrupt (IndexedDB).

import { check, seeded } from "./model-checks.mjs";

const IDS = ["a", "b"];
const REFUSED = new Set(["STORAGE", "INVALID_INPUT"]);

function operations(lib, random, trial) {
  const version = (session) => Math.floor(random() * (session.version + 1));
  const imported = async (data) => (await lib.SessionStore.memory()).import(JSON.parse(JSON.stringify(data)));
  return {
    async turn(store, id) {
      const session = await store.open(id);
      const inv = await session.begin(session.status === "interrupted" ? { resume: "yes" } : {});
      inv.appendMessage({ trial });
      inv.setState("k", random());
      if (random() < 0.2 && inv.messages().length > 3) inv.compact({ before: 2, summary: ["summary"], force: true });
      const end = random();
      if (end < 0.1) return inv.interrupt("why");
      if (end < 0.2) return inv.abort();
      if (end < 0.3) await inv.checkpoint();
      return inv.commit();
    },
    async read(store, id) {
      const session = await store.open(id, { create: false });
      session.messages();
      session.state();
    },
    history: async (store, id) => (await store.open(id, { create: false })).history(),
    async at(store, id) {
      const session = await store.open(id, { create: false });
      await session.at(version(session));
    },
    export: async (store, id) => imported(await (await store.open(id, { create: false })).export()),
    async prune(store, id) {
      const session = await store.open(id, { create: false });
      if (session.version > 1) await session.prune({ before: 1 + Math.floor(random() * session.version) });
    },
    delete: (store, id) => store.delete(id),
    async fork(store, id) {
      const session = await store.open(id, { create: false });
      await session.fork({ at: version(session) });
    },
    refresh: async (store, id) => (await store.open(id, { create: false })).refresh(),
    list: (store) => store.list(),
    async backup(store) {
      for await (const data of store.export()) await imported(data);
    },
  };
}

const WEIGHTS = { turn: 6, read: 2, history: 1, at: 1, export: 1, prune: 1, delete: 1, fork: 1, refresh: 1, list: 1, backup: 1 };
const POOL = Object.entries(WEIGHTS).flatMap(([name, weight]) => Array(weight).fill(name));

/**
 * Runs `trials` seeded trials from seed `first` on. `storesOf(trial, random)` gives three stores over one
 * backend's fresh data and `fresh()`, a new store over it; `lib` is the package.
 */
export async function runTrials({ lib, trials, first = 0, storesOf }) {
  const codes = {};
  for (let trial = first; trial < first + trials; trial++) {
    const random = seeded(1 + trial * 7919);
    const pick = (list) => list[Math.floor(random() * list.length)];
    const { stores, fresh } = await storesOf(trial, random);
    const ops = operations(lib, random, trial);
    for (let round = 0; round < 12; round++) {
      const calls = Array.from({ length: 2 + Math.floor(random() * 3) }, () => [pick(POOL), pick(stores), pick(IDS)]);
      const where = `trial ${trial}, round ${round} (${calls.map(([op, store, id]) => `${op} by p${stores.indexOf(store)} on ${id}`).join(", ")})`;
      const outcomes = await Promise.allSettled(calls.map(([op, store, id]) => ops[op](store, id)));
      outcomes.forEach((outcome, i) => {
        if (outcome.status === "fulfilled") return;
        const error = outcome.reason;
        check(error instanceof lib.AgentSessionError, `${where}: ${calls[i][0]} failed untyped: ${error?.stack ?? error}`);
        check(!REFUSED.has(error.code), `${where}: ${calls[i][0]}: ${error.code}: ${error.message}`);
        codes[error.code] = (codes[error.code] ?? 0) + 1;
      });
      for (const id of IDS) {
        const opened = await (await fresh()).open(id, { create: false }).then(
          (session) => session.messages(),
          (error) => error,
        );
        check(!(opened instanceof Error) || opened.code === "NOT_FOUND", `${where}: then ${id} does not open: ${opened?.name}: ${opened?.message}`);
      }
    }
  }
  // The races happened: turns refused because another held the session, reads of what was deleted.
  check(codes.CONCURRENT_INVOCATION > 0 && codes.NOT_FOUND > 0, `the races did not happen: ${JSON.stringify(codes)}`);
  return codes;
}

