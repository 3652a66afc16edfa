// How AgentSessionManager shrinks an agent's message log when the conversation manager shrank the
// context: with `inv.compact`, which replaces a prefix of the log by a summary, at the commit of the
// turn. The context (agent.messages) is the source of truth; the log holds every message version the
// session has stored, and the state key "strands:context" says which of them make up the context.
//
// A log entry is live when it is the newest version of a message that the context holds unchanged;
// every other entry is dead (trimmed by a SlidingWindowConversationManager, summarized away by a
// SummarizingConversationManager, or an older version of a rewritten message). A cut at `before`
// drops the entries below it; the live ones among them are written again in the summary, with the
// messages that lead the context and were never stored as messages of their own (the summarizing
// manager's summary message), so the summary is the head of the context. A cut is taken only where it
// drops more dead entries than it writes live ones again (the best such cut), so the log stays within
// about twice the context, and the history grows by less than the compacted view shrinks.
import { indexLog, logKey } from "./stored-agent.js";

/** How many cuts to offer the core before giving up for this turn (each one it refuses is a tool pair). */
const MAX_TRIES = 8;

/**
 * Stages the compaction of `agent`'s log that the context allows, if any, into `invocation`, and
 * returns the log index of the compacted log (`{ recon, keys, logKeys }`, as readLog gives it);
 * undefined when nothing was compacted. The log is never read: `base.logKeys` and `base.recon` say
 * what it holds, and the compacted log is the summary followed by the entries from the cut on.
 *
 * @param context `{ ids, texts, jsons }`: the context's trackingIds, JSON texts and JSON values, in order
 * @param base `{ recon, keys, logKeys }`: the log index before this call (committed + staged)
 * @param added the trackingIds of the messages this turn added (MessageAddedEvent): they are
 *   messages of their own, never part of a summary
 */
export function compactLog(invocation, agent, context, base, added) {
  const { recon, keys, logKeys } = base;
  const size = logKeys.length;
  if (size === 0) return undefined;
  // The log entry (as an index into recon) that each context message is, when stored unchanged.
  const stored = context.ids.map((id, j) => {
    const r = keys.get(id);
    return r !== undefined && recon[r] === context.texts[j] ? r : -1;
  });
  const liveRecon = new Set(stored.filter((r) => r >= 0));
  // Every entry live (each distinct message has one entry): nothing to drop.
  if (liveRecon.size === size) return undefined;

  // The newest log position of each recon entry, keyed as readLog keys them.
  const reconOf = new Map();
  const last = [];
  for (let i = 0; i < size; i++) {
    const key = logKeys[i];
    let r = reconOf.get(key);
    if (r === undefined) {
      r = reconOf.size;
      reconOf.set(key, r);
    }
    last[r] = i;
  }
  // The index no longer matches the log (a message stored without a trackingId and rewritten since):
  // leave the log as it is rather than guess.
  if (last.length !== recon.length) return undefined;
  const live = new Uint8Array(size);
  for (const r of liveRecon) live[last[r]] = 1;

  // Cuts before a live entry (or at the end) that drop more dead entries than they write live ones
  // again, best first: most dead entries dropped net of live ones written again, then the shortest
  // summary.
  const cuts = [];
  let dead = 0;
  for (let i = 0; i <= size; i++) {
    if ((i === size || live[i]) && dead > i - dead) cuts.push({ before: i, score: 2 * dead - i });
    if (i < size && !live[i]) dead++;
  }
  cuts.sort((a, b) => b.score - a.score || a.before - b.before);

  for (const { before } of cuts.slice(0, MAX_TRIES)) {
    const heads = summaryFor(before, context, stored, last, keys, added);
    const summary = heads.map((j) => context.jsons[j]);
    try {
      invocation.compact({ before, summary, agent });
    } catch (error) {
      // The core refuses a cut between a tool call and its result (ValidationError, path "before"):
      // try the next one. Nothing was staged.
      if (error?.code === "INVALID_INPUT" && error.path === "before") continue;
      throw error;
    }
    return compactedIndex(heads, before, context, logKeys, reconOf, recon);
  }
  return undefined;
}

/**
 * The index of the log after a cut at `before` whose summary is the context messages `heads`: what
 * readLog gives for the log the core now holds, the summary's messages then the entries from `before`
 * on (each with its key's newest text, `recon[reconOf.get(key)]`), so nothing is read back.
 */
function compactedIndex(heads, before, context, logKeys, reconOf, recon) {
  const count = heads.length;
  const kept = logKeys.slice(before);
  const texts = heads.map((j) => context.texts[j]);
  const compactedKeys = heads.map((j, k) => logKey(context.jsons[j], k));
  kept.forEach((key, i) => {
    texts.push(recon[reconOf.get(key)]);
    // An entry without a trackingId is keyed by its position, which the cut moved.
    compactedKeys.push(key === `#${before + i}` ? `#${count + i}` : key);
  });
  return indexLog(compactedKeys, (i) => texts[i]);
}

/**
 * The summary of a cut at `before`, as positions in the context: the head of the context up to its
 * first message that stays in the log (or that this turn added), then the other live messages below
 * the cut, in context order.
 */
function summaryFor(before, context, stored, last, keys, added) {
  const summary = [];
  let j = 0;
  for (; j < context.ids.length; j++) {
    const r = stored[j];
    if (r >= 0) {
      if (last[r] >= before) break;
    } else {
      if (added.has(context.ids[j])) break;
      // A rewritten message: only when no older version of it stays in the log (the newest version
      // of a message wins, by log order, so an older one after the summary would win over it).
      const old = keys.get(context.ids[j]);
      if (old !== undefined && last[old] >= before) break;
    }
    summary.push(j);
  }
  for (; j < context.ids.length; j++) {
    const r = stored[j];
    if (r >= 0 && last[r] < before) summary.push(j);
  }
  return summary;
}
