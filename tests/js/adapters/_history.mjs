// Checks a contention history against the guard's invariants. Not a test file.
//
// A history is a list of events logged by contenders (in one process or many, on one clock):
//   { type: "acquire", worker, t, token, base }       begin resolved; base = the version it started from
//   { type: "committing", worker, t, token }          just before commit() is called
//   { type: "commit", worker, t, token, version }     commit resolved with that version
//   { type: "denied", worker, t, name, code, holder, retryAfterMs }   begin rejected
// and `final` is the session as read afterwards: { version, messages } where each message is the
// { worker, token } its invocation appended (exactly one per invocation).
import assert from "node:assert/strict";

/**
 * @param {object[]} events
 * @param {{ version: number, messages: object[] }} final
 * @param {{ owners: string[], startVersion?: number }} options
 * @returns {{ commits: number, denials: number }}
 */
export function checkHistory(events, final, { owners, startVersion = 0 }) {
  const acquires = events.filter((e) => e.type === "acquire");
  const commits = events.filter((e) => e.type === "commit");
  const denials = events.filter((e) => e.type === "denied");
  const committing = events.filter((e) => e.type === "committing");
  const key = (e) => `${e.worker}/${e.token}`;

  // Every denial is a ConcurrencyError naming a holder that is one of the contenders.
  for (const denial of denials) {
    assert.equal(denial.name, "ConcurrencyError", `a denial was ${denial.name}: ${denial.message ?? ""}`);
    assert.equal(denial.code, "CONCURRENT_INVOCATION");
    assert.ok(owners.includes(denial.holder), `denial names holder ${denial.holder}`);
    assert.ok(denial.retryAfterMs > 0, `retryAfterMs ${denial.retryAfterMs}`);
  }

  // Every acquire has its commit (contenders always commit), tokens are unique.
  assert.equal(new Set(acquires.map(key)).size, acquires.length, "a (worker, token) acquired twice");
  assert.equal(commits.length, acquires.length, "every acquired invocation committed");
  const acquireOf = new Map(acquires.map((e) => [key(e), e]));
  const committingOf = new Map(committing.map((e) => [key(e), e]));

  // At most one holder at a time: [begin resolved, commit called] lies inside each holder's lease,
  // so no two of these intervals may overlap.
  const holds = commits
    .map((c) => ({ who: key(c), from: acquireOf.get(key(c))?.t, to: committingOf.get(key(c))?.t }))
    .sort((a, b) => a.from - b.from);
  for (const hold of holds) {
    assert.ok(Number.isFinite(hold.from) && Number.isFinite(hold.to), `incomplete log for ${hold.who}`);
  }
  for (let i = 1; i < holds.length; i++) {
    assert.ok(
      holds[i].from >= holds[i - 1].to,
      `${holds[i - 1].who} held [${holds[i - 1].from}, ${holds[i - 1].to}] while ${holds[i].who} acquired at ${holds[i].from}`,
    );
  }

  // Versions gapless from startVersion + 1, each commit one version on from where it began, tokens
  // increasing with the version.
  const byVersion = [...commits].sort((a, b) => a.version - b.version);
  byVersion.forEach((commit, i) => {
    assert.equal(commit.version, startVersion + 1 + i, `versions not gapless: ${byVersion.map((c) => c.version)}`);
    assert.equal(acquireOf.get(key(commit)).base, commit.version - 1, `${key(commit)} began at ${acquireOf.get(key(commit)).base} and committed ${commit.version}`);
    if (i > 0) assert.ok(commit.token > byVersion[i - 1].token, `token ${commit.token} after ${byVersion[i - 1].token}`);
  });

  // No lost or duplicated commit: the session holds exactly one message per commit, in version order.
  assert.equal(final.version, startVersion + commits.length, "session version == successful commits");
  assert.equal(final.messages.length, commits.length, "messages == successful commits");
  final.messages.forEach((message, i) => {
    assert.deepEqual(
      { worker: message.worker, token: message.token },
      { worker: byVersion[i].worker, token: byVersion[i].token },
      `message ${i} does not belong to the commit of version ${startVersion + 1 + i}`,
    );
  });
  return { commits: commits.length, denials: denials.length };
}

/** The fields of a begin rejection that the history records. */
export function denialOf(error) {
  return {
    name: error?.name,
    code: error?.code,
    holder: error?.holder,
    retryAfterMs: error?.retryAfterMs,
    message: error?.message,
  };
}

/**
 * A contender's loop: begins `session` until it has committed `commits` times, logging each denial,
 * lease and commit as `checkHistory` reads them (each commit appends one message naming the worker
 * and its token). Throws after `maxAttempts` begins.
 */
export async function commitTimes(session, worker, commits, log, maxAttempts) {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  for (let done = 0, attempt = 0; done < commits; attempt++) {
    if (attempt > maxAttempts) throw new Error(`${worker} could not commit ${commits} times`);
    let inv;
    try {
      inv = await session.begin();
    } catch (error) {
      log({ type: "denied", ...denialOf(error) });
      await sleep(Math.random() * 5);
      continue;
    }
    log({ type: "acquire", token: inv.token, base: inv.session.version });
    inv.appendMessage({ worker, token: inv.token });
    await sleep(Math.random() * 4);
    log({ type: "committing", token: inv.token });
    const version = await inv.commit();
    log({ type: "commit", token: inv.token, version });
    done++;
  }
}
