// Shared by tests/js/expiry-model.test.mjs (Node: memory, two KV stores) and
// tests/browser/expiry-model.test.mjs (a Chromium tab: two IndexedDB stores on one database); not a
// test file. It imports only model-checks.mjs, so a page loads it as it is.
//
// Expiry, listing and sweeping against a model, seeded random runs on a manual clock: sessions created
// with the store's idleTtlMs / maxLifetimeMs or their own, turns (committed, aborted, interrupted and
// resumed), closes, deletes, the clock moving on, through two stores over the same data (or one). After
// every step the model says each session's version, status (expired once the clock reaches
// min(updatedAt + idleTtlMs, createdAt + maxLifetimeMs); closed for good, and then never expiring),
// createdAt, updatedAt and expiresAt; what must agree with it: a fresh open's Session, list() paged by
// random limits under a prefix (every session exactly once), begin/close on an expired or closed
// session (SessionExpiredError / SessionClosedError, nothing written), and sweepExpired() (deletes
// exactly expired sessions: all of them, or `limit` of them when there are more).

import { check, same, seeded } from "./model-checks.mjs";

const is = (actual, expected, what) => check(actual === expected, `${what}: ${actual} where ${expected} was expected`);

/** A manual clock for the `now` store option. */
function clock() {
  let t = 1_700_000_000_000;
  const now = () => t;
  now.advance = (ms) => (t += ms);
  return now;
}

const IDS = ["p/a", "p/b", "p/c", "p/d", "q/a", "q/b"];

function expiresAt(s) {
  if (s.status === "closed") return null; // terminal: never expires
  const idle = s.idle === undefined ? undefined : s.updatedAt + s.idle;
  const life = s.life === undefined ? undefined : s.createdAt + s.life;
  if (idle === undefined) return life ?? null;
  return life === undefined ? idle : Math.min(idle, life);
}

function statusOf(s, now) {
  if (s.status === "closed") return "closed";
  const at = expiresAt(s);
  return at !== null && now >= at ? "expired" : s.status;
}

/** What list() and a Session say of a session, as the model has it. */
const infoOf = (id, s, now) => ({
  id,
  version: s.version,
  status: statusOf(s, now),
  createdAt: s.createdAt,
  updatedAt: s.updatedAt,
  expiresAt: expiresAt(s),
});

const infoOfSession = (session) => ({
  id: session.id,
  version: session.version,
  status: session.status,
  createdAt: session.createdAt,
  updatedAt: session.updatedAt,
  expiresAt: session.expiresAt,
});

async function listAll(store, prefix, random) {
  const out = [];
  let cursor;
  do {
    const page = await store.list({ prefix, limit: 1 + Math.floor(random() * 3), ...(cursor !== undefined && { cursor }) });
    out.push(...page.sessions);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}

/**
 * Runs one seeded trial: `makeStores(options)` gives the stores over one backend's (fresh) data, each
 * made with `options` (the clock, the store-level TTLs).
 */
export async function runTrial({ trial, name, makeStores }) {
  const random = seeded(31337 + trial * 2654435);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const maybe = (values) => (random() < 0.5 ? undefined : pick(values));
  const now = clock();
  const defaults = { idle: maybe([500, 1000, 3000]), life: maybe([2000, 5000]) };
  const stores = await makeStores({
    now,
    ...(defaults.idle !== undefined && { idleTtlMs: defaults.idle }),
    ...(defaults.life !== undefined && { maxLifetimeMs: defaults.life }),
  });
  const model = new Map(); // id -> { createdAt, updatedAt, idle, life, version, status }
  for (let step = 0; step < 60; step++) {
    const where = `${name}, trial ${trial}, step ${step}`;
    const store = pick(stores);
    const id = pick(IDS);
    const s = model.get(id);
    const roll = random();
    if (roll < 0.25) {
      now.advance(pick([0, 1, 100, 499, 500, 501, 1000, 2500]));
    } else if (roll < 0.35) {
      // Create with options of its own (or the store's), or open an existing one (options ignored).
      const own = s === undefined ? { idle: maybe([300, 800]), life: maybe([1500]) } : {};
      const session = await store.open(id, {
        ...(own.idle !== undefined && { idleTtlMs: own.idle }),
        ...(own.life !== undefined && { maxLifetimeMs: own.life }),
      });
      if (s === undefined) {
        model.set(id, {
          createdAt: now(),
          updatedAt: now(),
          idle: own.idle ?? defaults.idle,
          life: own.life ?? defaults.life,
          version: 0,
          status: "idle",
        });
      }
      same(infoOfSession(session), infoOf(id, model.get(id), now()), `${where}: open ${id}`);
    } else if (roll < 0.65 && s !== undefined) {
      const session = await store.open(id, { create: false });
      const status = statusOf(s, now());
      const resume = status === "interrupted" ? { resume: "yes" } : undefined;
      const begun = await session.begin(resume).then((inv) => inv, (error) => error);
      if (status === "expired" || status === "closed") {
        is(begun.code, status === "expired" ? "SESSION_EXPIRED" : "SESSION_CLOSED", `${where}: begin on a ${status} session`);
      } else {
        is(begun instanceof Error, false, `${where}: begin: ${begun}`);
        begun.appendMessage(`m${step}`);
        const end = random();
        if (end < 0.7) {
          s.version = await begun.commit();
          s.updatedAt = now();
          s.status = "idle";
        } else if (end < 0.85) {
          s.version = await begun.interrupt("ask");
          s.updatedAt = now();
          s.status = "interrupted";
        } else {
          await begun.abort();
        }
      }
    } else if (roll < 0.7 && s !== undefined) {
      const session = await store.open(id, { create: false });
      const status = statusOf(s, now());
      const closed = await session.close().then(() => undefined, (error) => error);
      if (status === "expired" || status === "closed") {
        is(closed?.code, status === "expired" ? "SESSION_EXPIRED" : "SESSION_CLOSED", `${where}: close of a ${status} session`);
      } else {
        is(closed, undefined, `${where}: close: ${closed}`);
        s.version += 1;
        s.updatedAt = now();
        s.status = "closed";
      }
    } else if (roll < 0.75) {
      is(await store.delete(id), s !== undefined, `${where}: delete ${id}`);
      model.delete(id);
    } else if (roll < 0.85) {
      const expired = [...model].filter(([, m]) => statusOf(m, now()) === "expired").map(([k]) => k);
      const limit = random() < 0.5 ? undefined : 1 + Math.floor(random() * 2);
      const swept = await store.sweepExpired(limit === undefined ? {} : { limit });
      is(swept, limit === undefined ? expired.length : Math.min(limit, expired.length), `${where}: sweepExpired(${limit ?? ""}) of ${expired}`);
      const left = new Set((await listAll(store, "", random)).map((info) => info.id));
      const gone = expired.filter((k) => !left.has(k));
      is(gone.length, swept, `${where}: the sessions swept are gone`);
      for (const k of gone) model.delete(k);
    } else {
      const prefix = pick(["", "p/", "q/"]);
      const listed = await listAll(store, prefix, random);
      const expected = [...model]
        .filter(([k]) => k.startsWith(prefix))
        .map(([k, m]) => infoOf(k, m, now()))
        .sort((a, b) => (a.id < b.id ? -1 : 1));
      same([...listed].sort((a, b) => (a.id < b.id ? -1 : 1)), expected, `${where}: list({ prefix: "${prefix}" })`);
    }
    // Every session, as a fresh open sees it.
    for (const [k, m] of model) {
      const session = await pick(stores).open(k, { create: false });
      same(infoOfSession(session), infoOf(k, m, now()), `${where}: ${k} after the step`);
    }
  }
}
