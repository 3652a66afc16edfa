// The contention protocol of bench/contention.mjs, the same in a tab and in a Node process: a contender
// loops `session.invoke` with `onBusy: { waitMs }` on one shared session, each turn appending
// MESSAGES_PER_TURN messages that name it; and the check of the merged records against the session as
// stored. No imports: it runs in the browser and in node.

export const MESSAGES_PER_TURN = 2;
const FILLER = "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. ".repeat(3);

/** ~200 bytes of JSON, naming the contender and the fencing token of the turn that appended it. */
const message = (label, token, i) => ({ role: i % 2 ? "assistant" : "user", by: label, token, content: FILLER.slice(0, 120) });

/**
 * From `startAt` (ms since the epoch, so that every contender starts together), `turns` turns of
 * `session.invoke(fn, { onBusy: { waitMs } })`, each timed from the call to its settling (the wait for
 * the guard included). Resolves to one record per turn, { label, ms, version, token } when it
 * committed, { label, ms, error } when it did not, and the time (ms since the epoch) the last one ended.
 */
export async function contend(session, { label, turns, waitMs = 5000, startAt = Date.now() }) {
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())));
  const records = [];
  for (let i = 0; i < turns; i++) {
    const started = performance.now();
    try {
      const { base, token } = await session.invoke((inv) => {
        for (let m = 0; m < MESSAGES_PER_TURN; m++) inv.appendMessage(message(label, inv.token, m));
        return { base: inv.session.version, token: inv.token };
      }, { onBusy: { waitMs } });
      records.push({ label, ms: performance.now() - started, version: base + 1, token });
    } catch (error) {
      records.push({ label, ms: performance.now() - started, error: `${error?.name}: ${error?.code ?? ""} ${error?.message}` });
    }
  }
  return { records, endedAt: Date.now() };
}

/** What the check needs of the session as stored: its version and messages. */
export async function stored(session) {
  await session.refresh();
  return { version: session.version, messages: session.messages() };
}

/**
 * The invariant on the merged records of every contender and the session read afterwards (created at
 * `startVersion`, with no message): committed versions gapless from startVersion + 1, fencing tokens
 * rising with the version, the stored version = startVersion + commits, and the stored messages exactly
 * MESSAGES_PER_TURN per commit, in version order, each naming the contender and token of its commit.
 * Returns the list of violations (empty when it holds).
 */
export function violations(records, final, { startVersion = 0 } = {}) {
  const commits = records.filter((r) => r.version !== undefined).sort((a, b) => a.version - b.version);
  const problems = [];
  commits.forEach((c, i) => {
    if (c.version !== startVersion + 1 + i) problems.push(`versions not gapless: commit ${i + 1} of ${c.label} has version ${c.version}, expected ${startVersion + 1 + i}`);
    if (i > 0 && c.token <= commits[i - 1].token) problems.push(`token ${c.token} of version ${c.version} not above token ${commits[i - 1].token}`);
  });
  if (final.version !== startVersion + commits.length) problems.push(`stored version ${final.version}, expected ${startVersion} + ${commits.length} commits`);
  if (final.messages.length !== commits.length * MESSAGES_PER_TURN) {
    problems.push(`${final.messages.length} messages stored, expected ${commits.length} committed turns x ${MESSAGES_PER_TURN}`);
  } else {
    final.messages.forEach((m, i) => {
      const c = commits[Math.floor(i / MESSAGES_PER_TURN)];
      if (m.by !== c.label || m.token !== c.token) problems.push(`message ${i} is ${m.by}/${m.token}, expected ${c.label}/${c.token} (version ${c.version})`);
    });
  }
  return problems.slice(0, 20);
}
