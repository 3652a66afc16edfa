// The history checker of the contention tests (_history.mjs) must catch what it claims to catch:
// a valid history passes, and each broken invariant fails it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkHistory } from "./_history.mjs";

const owners = ["a", "b"];

/** Three commits, a then b then a, with one denial of b while a held the session. */
function valid() {
  return {
    events: [
      { type: "acquire", worker: "a", t: 10, token: 1, base: 0 },
      { type: "denied", worker: "b", t: 11, name: "ConcurrencyError", code: "CONCURRENT_INVOCATION", holder: "a", retryAfterMs: 900 },
      { type: "committing", worker: "a", t: 12, token: 1 },
      { type: "commit", worker: "a", t: 13, token: 1, version: 1 },
      { type: "acquire", worker: "b", t: 14, token: 2, base: 1 },
      { type: "committing", worker: "b", t: 16, token: 2 },
      { type: "commit", worker: "b", t: 17, token: 2, version: 2 },
      { type: "acquire", worker: "a", t: 18, token: 3, base: 2 },
      { type: "committing", worker: "a", t: 19, token: 3 },
      { type: "commit", worker: "a", t: 20, token: 3, version: 3 },
    ],
    final: {
      version: 3,
      messages: [
        { worker: "a", token: 1 },
        { worker: "b", token: 2 },
        { worker: "a", token: 3 },
      ],
    },
  };
}

test("a valid history passes", () => {
  const { events, final } = valid();
  assert.deepEqual(checkHistory(events, final, { owners }), { commits: 3, denials: 1 });
});

const broken = {
  "two holders at once": ({ events }) => {
    events.find((e) => e.type === "acquire" && e.token === 2).t = 11;
  },
  "a denial that is not a ConcurrencyError": ({ events }) => {
    Object.assign(events[1], { name: "StorageError", code: "STORAGE" });
  },
  "a denial naming a stranger": ({ events }) => {
    events[1].holder = "mallory";
  },
  "a version gap": ({ events, final }) => {
    events.find((e) => e.type === "commit" && e.token === 3).version = 4;
    final.version = 4;
  },
  "two commits from one base (lost update)": ({ events }) => {
    events.find((e) => e.type === "acquire" && e.token === 3).base = 1;
  },
  "tokens going back": ({ events, final }) => {
    for (const e of events) if (e.token === 3) e.token = 0;
    final.messages[2].token = 0;
  },
  "a lost commit": ({ final }) => {
    final.messages.splice(1, 1);
  },
  "a duplicated commit": ({ final }) => {
    final.messages.push({ worker: "a", token: 3 });
  },
  "a message from an invocation that never committed": ({ final }) => {
    final.messages[1] = { worker: "b", token: 99 };
  },
  "a session version beyond the commits": ({ final }) => {
    final.version = 4;
  },
  "an acquire without its commit": ({ events }) => {
    events.push({ type: "acquire", worker: "b", t: 30, token: 4, base: 3 });
  },
};

for (const [name, breakIt] of Object.entries(broken)) {
  test(`the checker catches ${name}`, () => {
    const history = valid();
    breakIt(history);
    assert.throws(() => checkHistory(history.events, history.final, { owners }), assert.AssertionError);
  });
}
