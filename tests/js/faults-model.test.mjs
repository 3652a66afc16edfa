// A backend that fails, seeded random runs: a HostKv (memoryKv underneath) whose calls fail at random,
// either before they reach the data or after they were applied (a timeout after a write: the caller
// cannot tell), and whose puts are at random applied twice, the caller answered by the second (a
// client that retried a write whose answer was lost: Upstash's REST client, ioredis' resend). Turns (with a live part; every other trial encrypted at rest) go through a store over
// it, with commits retried or abandoned after a failure; a store over the same data with no faults
// checks after every step. What must hold: every error is an AgentSessionError with a code (a failure
// of the backend is a StorageError; nothing traps); a turn is all or nothing: each one whose commit
// resolved is there, each one aborted is not, and one whose commit failed is either wholly there or
// wholly not, and stays so, and one whose commit failed with LeaseLostError is not there; versions count the turns that are there; the session stays usable once
// the faults stop. (Run with 300 trials and fault rates up to 25% before and 20% after: no failure.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { AgentSessionError, SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { manualClock } from "./_helpers.mjs";
import { seeded } from "../browser/model-checks.mjs";

/** `inner` with faults: while `faults.on`, a call fails before it runs (rate `before`) or after it ran
 * (rate `after`), and a put runs twice, answered by the second (rate `retried`). */
function faultyKv(inner, random, faults) {
  const wrap = (name) => async (...args) => {
    if (faults.on && random() < faults.before) throw new Error(`injected: ${name} failed before it ran`);
    if (faults.on && name === "put" && random() < faults.retried) await inner.put(...args);
    const result = await inner[name](...args);
    if (faults.on && random() < faults.after) throw new Error(`injected: ${name} timed out after it ran`);
    return result;
  };
  return { capabilities: inner.capabilities, get: wrap("get"), put: wrap("put"), delete: wrap("delete"), list: wrap("list") };
}

const CODES = new Set(["STORAGE", "CONCURRENT_INVOCATION", "LEASE_LOST", "VERSION_CONFLICT", "INVALID_TRANSITION"]);

function expectTyped(error, where) {
  assert.ok(error instanceof AgentSessionError, `${where}: ${error?.stack ?? error} is not an AgentSessionError`);
  assert.ok(CODES.has(error.code), `${where}: unexpected code ${error.code}: ${error.message}`);
}

test("a backend that fails before or after its writes: turns stay all or nothing, errors are typed", async () => {
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  for (let trial = 0; trial < 40; trial++) {
    const random = seeded(5150 + trial * 40503);
    const now = manualClock();
    const kv = memoryKv();
    const faults = { on: false, before: 0.04 + (trial % 4) * 0.02, after: 0.03 + (trial % 3) * 0.02, retried: 0.03 + (trial % 2) * 0.03 };
    // Every other trial encrypted at rest (its writes go through WebCrypto first).
    const sealed = trial % 2 === 1 ? { encryptionKey: key } : {};
    const options = { now, leaseMs: 1000, heartbeat: false, snapshotEvery: 1 + (trial % 4), ...sealed };
    const store = await SessionStore.kv(faultyKv(kv, random, faults), options);
    const checker = () => SessionStore.kv(kv, { now, leaseMs: 1000, heartbeat: false, ...sealed });
    await (await store.open("s")).invoke((inv) => inv.appendMessage("start"));
    // Each turn: its messages, and "in" (committed), "out" (aborted, or refused before it wrote) or
    // "unknown" (its commit failed: it may have been applied), settled by the first look after it.
    const turns = [];
    let errors = 0;
    faults.on = true;
    for (let step = 0; step < 40; step++) {
      const where = `trial ${trial}, step ${step}`;
      now.advance(1);
      const messages = [`t${step}.a`, `t${step}.b`];
      let inv;
      try {
        inv = await (await store.open("s")).begin();
      } catch (error) {
        expectTyped(error, `${where}: open or begin`);
        errors++;
        // A lease that was written before the failure holds the session until it runs out.
        if (error.code === "CONCURRENT_INVOCATION") now.advance(1001);
        continue;
      }
      for (const message of messages) inv.appendMessage(message);
      inv.emit({ step }); // a live part, written with the commit
      inv.setState("last", step);
      const turn = { step, messages, outcome: "out" };
      turns.push(turn);
      let failures = 0;
      for (;;) {
        try {
          await inv.commit();
          turn.outcome = "in";
          break;
        } catch (error) {
          expectTyped(error, `${where}: commit`);
          errors++;
          // LeaseLostError: nothing it staged is there (API.md); any other failure may have been applied.
          turn.outcome = error.code === "LEASE_LOST" ? "out" : "unknown";
          if (error.code === "LEASE_LOST" || ++failures > 3 || random() < 0.3) {
            await inv.abort().catch((abortError) => expectTyped(abortError, `${where}: abort`));
            break;
          }
        }
      }
      // What a store with no faults reads now.
      const session = await (await checker()).open("s", { create: false });
      const stored = session.messages().slice(1);
      let at = 0;
      for (const t of turns) {
        const there = stored[at] === t.messages[0];
        if (t.outcome === "unknown") t.outcome = there ? "in" : "out";
        if (t.outcome === "in") {
          assert.deepEqual(stored.slice(at, at + 2), t.messages, `${where}: turn ${t.step} is there whole`);
          at += 2;
        } else {
          assert.ok(!stored.includes(t.messages[0]) && !stored.includes(t.messages[1]), `${where}: turn ${t.step} is not there at all`);
        }
      }
      assert.equal(at, stored.length, `${where}: nothing else is there: ${stored.slice(at)}`);
      const present = turns.filter((t) => t.outcome === "in");
      assert.equal(session.version, 1 + present.length, `${where}: one version a turn`);
      assert.deepEqual(session.state().last, present.at(-1)?.step, `${where}: the state of the last turn there`);
    }
    // The faults stop: the session takes a turn again (once any lease a failure left has run out).
    faults.on = false;
    now.advance(1001);
    const session = await store.open("s");
    await session.invoke((inv) => inv.appendMessage("after"));
    const fresh = await (await checker()).open("s", { create: false });
    assert.equal(fresh.messages().at(-1), "after", `trial ${trial}: usable after the faults`);
    assert.ok(errors > 0, `trial ${trial}: some calls failed`);
  }
});
