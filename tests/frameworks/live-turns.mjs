// What the drop-ins' live-turn tests share (not a test file): following a turn, and the rejection of a
// stopped run.
import assert from "node:assert/strict";

/** Follows `session` until the first `end` or `commit` (or `ms`); every event, in order. */
export async function followTurn(session, ms = 5000) {
  const events = [];
  for await (const event of session.follow({ signal: AbortSignal.timeout(ms) })) {
    events.push(event);
    if (event.type === "end" || event.type === "commit") break;
  }
  return events;
}

/** An `assert.rejects` check: the run rejected with the StopRequestedError of a stop by `by` for `reason`. */
export function stoppedBy(by, reason) {
  return (error) => {
    assert.equal(error.code, "STOP_REQUESTED", `${error}`);
    assert.equal(error.by, by);
    assert.equal(error.reason, reason);
    return true;
  };
}
