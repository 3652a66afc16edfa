// The `now` store option: a clock for tests. It is read once when the store is made, and refused
// unless it gives a time; a later reading that throws or is not a time reads as the last good one, so
// that the store's leases end no earlier than they should (it once read as 0, which ended every lease
// this store wrote at once: another store then took the session while it was held).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConcurrencyError, SessionStore, ValidationError } from "agent-session";
import { memoryKv } from "agent-session/adapters";

test("a `now` that throws or gives what is not a time is a ValidationError when the store is made", async () => {
  const cause = new Error("no clock");
  const cases = [
    [() => { throw cause; }, /options\.now threw/],
    [() => Number.NaN, /options\.now returned a number that is not a time/],
    [() => -1, /options\.now returned a number that is not a time/],
    [() => Infinity, /options\.now returned a number that is not a time/],
    [() => "1700000000000", /options\.now returned string/],
    [() => 1700000000000n, /options\.now returned bigint/],
    [() => undefined, /options\.now returned undefined/],
  ];
  for (const [now, message] of cases) {
    for (const make of [() => SessionStore.memory({ now }), () => SessionStore.kv(memoryKv(), { now })]) {
      const error = await make().then(() => assert.fail(`${now} was accepted`), (e) => e);
      assert.ok(error instanceof ValidationError, `${now}: ${error}`);
      assert.equal(error.code, "INVALID_INPUT");
      assert.equal(error.path, "options.now");
      assert.match(error.message, message);
      assert.match(error.message, /ms since the epoch/);
      if (message.source.includes("threw")) assert.equal(error.cause, cause);
    }
  }
  const zero = await SessionStore.memory({ now: () => 0 });
  assert.equal((await zero.open("epoch")).createdAt, 0, "0 is a time");
});

test("a clock that throws later stands still: the lease it writes does not end early, and a second store cannot take it", async () => {
  const kv = memoryKv();
  const T0 = 1_800_000_000_000;
  let t = T0;
  let broken = null; // null: the clock works; else what it does instead
  const first = await SessionStore.kv(kv, {
    owner: "first",
    now: () => {
      if (broken === "throw") throw new Error("clock");
      if (broken === "nan") return Number.NaN;
      return t;
    },
  });
  const second = await SessionStore.kv(kv, { owner: "second", now: () => t + 1 });
  await (await first.open("s")).invoke((inv) => inv.appendMessage("before"));
  for (const mode of ["throw", "nan"]) {
    const session = await first.open("s");
    broken = mode;
    const inv = await session.begin();
    inv.appendMessage(`held while the clock is broken (${mode})`);
    const taken = await (await second.open("s")).begin().then((other) => other, (error) => error);
    assert.ok(taken instanceof ConcurrencyError, `${mode}: the second store began while the first held the lease: ${taken}`);
    assert.equal(taken.holder, "first");
    await inv.commit();
    broken = null;
  }
  const history = (await (await second.open("s")).history()).filter((e) => e.type === "message");
  assert.deepEqual(history.map((e) => e.data), ["before", "held while the clock is broken (throw)", "held while the clock is broken (nan)"]);
});
