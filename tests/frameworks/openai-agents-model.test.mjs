// A seeded random model test of agent-session/openai-agents (AgentSessionItems) used the way servers use
// it: two or three "servers" (each its own SessionStore.kv, snapshotEvery 1 to 4 by trial) over one
// shared KV whose calls each take 0 to 2 macrotasks (slowKv: the stores interleave as processes over a
// network), all on one conversation id. Each request builds a new AgentSessionItems (open by id per
// request); sometimes a server keeps one across requests (never used by two requests at once, as
// docs/frameworks.md asks: "give each concurrent caller its own instance"), and sometimes a server
// restarts (a new store over the same KV). In each of 10 rounds per trial, 2 to 4 requests run at
// once (Promise.allSettled): addItems (1 to 3 items of the shapes the Agents runner stores: user and
// assistant messages, function_call + function_call_result pairs, `undefined` fields included),
// getItems (with and without a limit), popItem, clearSession, replaceHistoryWithCompaction, guard(fn)
// with several writes, reads and an SDK run inside (a third of them throw: nothing of them may stay),
// the drop-in's run(agent, input) with the real @openai/agents runner and a ScriptedModel (plain,
// streamed, with a tool call; some fail in the model: nothing of them may stay), and the user
// deleting the conversation (SessionStore.delete). Servers differ in `compact` (true/false) and
// `onBusy` ("reject" or { waitMs }); some trials use the `agent` option. The stores' clock is a
// counter, so a seed replays the same run.
//
// What must hold:
// - every rejection is typed: the ConcurrencyError (CONCURRENT_INVOCATION) of a busy session, or the
//   error a guarded fn or the scripted model threw on purpose; in a round with a delete also the
//   LeaseLostError or NotFoundError of a write the delete overtook, and the ConflictError of a delete
//   that met a commit. Reads never reject; nothing is untyped, a StorageError, a CorruptRecordError or
//   a trap;
// - linearizability: the requests of a round can be put in one order, consistent with the commit order
//   history() shows for the items they added, in which every answer (getItems, popItem, the reads
//   inside a guard, the history each run sent its model, compared with what MemorySession sends for
//   the same history) is what the model of the items says at that point, and after which the model
//   equals what a FRESH store's fresh AgentSessionItems reads (deepStrictEqual: undefined fields
//   included); a request that rejected changed nothing (a delete that conflicted: either);
// - the fresh reader's getItems(n) is the newest n, in order; every kept instance reads the same;
// - each addItems, popItem of an item, replaceHistoryWithCompaction and guard is one commit (a
//   clearSession one or none), all items of one addItems or guard in one version, in order;
// - a run refused the lease never called its model.
// Found so far (all in rounds with a delete; 2,000 trials without deletes: none): a store's cached view
// of the conversation overwritten by a load of the deleted incarnation that was in flight, then
// committed on: the store serves the deleted items, a snapshot writes them back into the KV for every
// reader, a turn's model is sent them, committed items vanish (trials 355, 944, 1323, 1786, 1933, 2159,
// 2816; test-results/hunt/openai-repro.mjs forces it with gates); a guard whose begin raced a delete
// rejected with CorruptRecordError (trial 1018).
// Run: node --test --test-reporter=spec tests/frameworks/openai-agents-model.test.mjs
// FUZZ_TRIALS=n runs n seeds (default 400, about 15 s), FUZZ_FIRST=n starts at seed n.
import assert from "node:assert/strict";
import { test } from "node:test";
import { isDeepStrictEqual, inspect } from "node:util";
import { Agent, MemorySession, run as sdkRun, setTracingDisabled, tool } from "@openai/agents";
import { ScriptedModel, assistantMessage, functionCall, modelError } from "@openai/agents/testing";
import { z } from "zod";
import { AgentSessionError, ConcurrencyError, ConflictError, LeaseLostError, NotFoundError, SessionStore } from "agent-session";
import { AgentSessionItems } from "agent-session/openai-agents";
import { slowKv } from "../js/_helpers.mjs";
import { canonical, seeded } from "../browser/model-checks.mjs";

setTracingDisabled(true);

const TRIALS = Number(process.env.FUZZ_TRIALS ?? 400);
const FIRST = Number(process.env.FUZZ_FIRST ?? 0);
const ROUNDS = 10;
const T0 = 1_700_000_000_000;
const ID = "chat-42";

/** What a guarded fn or a scripted model throws on purpose: the turn failed, so nothing of it may stay. */
class TurnFailed extends Error {}

const show = (value) => inspect(value, { depth: 6, breakLength: Infinity });

/** Items by their tags (short), or in full when the tags agree but the items do not. */
function differ(actual, expected) {
  const tags = (value) => (Array.isArray(value) ? value.map(tagOf) : value === undefined ? undefined : tagOf(value));
  const [a, e] = [show(tags(actual)), show(tags(expected))];
  return a !== e ? `${a}, expected ${e}` : `${show(actual)}, expected ${show(expected)}`;
}

// ---------------------------------------------------------------------------------------------
// Items, in the shapes the Agents runner stores (agents-core protocol items), each carrying a tag
// unique in the trial so that history() events can be traced back to the request that wrote them.

function userItem(n) {
  const text = `u${n}`;
  return n % 2 === 0
    ? { type: "message", role: "user", content: text }
    : { type: "message", role: "user", content: [{ type: "input_text", text }] };
}

function assistantItem(n) {
  return {
    type: "message",
    role: "assistant",
    id: `msg_${n}`,
    status: "completed",
    content: [{ type: "output_text", text: `a${n}`, providerData: undefined }],
    providerData: undefined,
  };
}

function callItems(n) {
  const callId = `call_${n}`;
  const city = `city${n}`;
  return [
    { type: "function_call", name: "weather", callId, namespace: undefined, status: "completed", arguments: JSON.stringify({ city }), providerData: undefined },
    { type: "function_call_result", name: "weather", callId, status: "completed", output: { type: "text", text: `sunny in ${city}` } },
  ];
}

/** The tag of an item (or of a stored item, whose extra `~as` key does not matter here). */
function tagOf(item) {
  if (item.type === "function_call" || item.type === "function_call_result") return `${item.type}:${item.callId}`;
  if (item.type === "compaction") return `compaction:${item.encrypted_content}`;
  const content = item.content;
  return `${item.role}:${typeof content === "string" ? content : content.map((part) => part.text).join("")}`;
}

/** 1 to 3 items: messages and tool-call pairs (a pair is never split across batches). */
function itemBatch(random, next) {
  const size = 1 + Math.floor(random() * 3);
  const batch = [];
  while (batch.length < size) {
    const roll = random();
    if (roll < 0.35 && size - batch.length >= 2) batch.push(...callItems(next()));
    else if (roll < 0.7) batch.push(userItem(next()));
    else batch.push(assistantItem(next()));
  }
  return batch;
}

/** The newest `limit` items of `state` as getItems(limit) must return them (all when undefined). */
function newest(state, limit) {
  if (limit === undefined) return state;
  if (!(limit > 0)) return [];
  return state.slice(Math.max(state.length - limit, 0));
}

// ---------------------------------------------------------------------------------------------
// Scripted runs: the same script run once on a MemorySession gives the items the runner stores
// (they do not depend on the history), so the model knows what a successful run must add.

function weatherTool() {
  return tool({
    name: "weather",
    description: "Weather for a city.",
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => `sunny in ${city}`,
  });
}

function scriptedAgent(n, { withTool, fail }) {
  const responses = fail
    ? [modelError(new TurnFailed(`the model failed (run ${n})`))]
    : withTool
      ? [[functionCall("weather", { city: `rcity${n}` }, { callId: `rcall_${n}` })], [assistantMessage(`ra${n}`)]]
      : [[assistantMessage(`ra${n}`)]];
  const model = new ScriptedModel(responses);
  return { model, agent: new Agent({ name: `agent${n}`, model, tools: withTool ? [weatherTool()] : [] }) };
}

async function scriptedRun(n, random, { mayFail = true } = {}) {
  const shape = { withTool: random() < 0.4, fail: mayFail && random() < 0.25 };
  const input = `r${n}`;
  let expected = [];
  if (!shape.fail) {
    const memory = new MemorySession();
    await sdkRun(scriptedAgent(n, shape).agent, input, { session: memory });
    expected = await memory.getItems();
  }
  return { n, input, shape, expected, stream: random() < 0.4, ...scriptedAgent(n, shape) };
}

/**
 * The model input the SDK itself makes of the stored `history` and `input` (it drops tool calls without
 * their result, and everything before the newest compaction item): the first request of the same run
 * on a MemorySession holding `history`. Cached, since the linearization check asks for many orders.
 */
const sdkInputs = new Map();
async function sdkInputFor(history, input) {
  const key = `${canonical(JSON.parse(JSON.stringify(history)))}|${input}`;
  if (!sdkInputs.has(key)) {
    const memory = new MemorySession();
    await memory.addItems(structuredClone(history));
    const model = new ScriptedModel([[assistantMessage("probe")]]);
    await sdkRun(new Agent({ name: "probe", model }), input, { session: memory });
    sdkInputs.set(key, model.calls[0].request.input);
  }
  return sdkInputs.get(key);
}

/** Whether the run's model was sent what MemorySession holding `before` would have sent. */
async function checkModelInput(script, before) {
  if (script.model.calls.length === 0) return `run r${script.n} never called its model`;
  const sent = script.model.calls[0].request.input;
  const expected = await sdkInputFor(before, script.input);
  // Compared as JSON: what the model gets over the wire (undefined fields do not matter there).
  const json = (value) => canonical(JSON.parse(JSON.stringify(value)));
  if (json(sent) !== json(expected)) {
    return `run r${script.n} sent the model ${show(sent.map(tagOf))}, MemorySession with the history ${show(before.map(tagOf))} sends ${show(expected.map(tagOf))}`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Operations. Each one is { label, start(), apply(state, outcome), versions(outcome) }: start() makes
// the request (all of a round are started together); apply, given the model's items at the point where
// the request takes effect, says whether its answer fits ({ mismatch }) and what the items are after it
// ({ next }, or { either } when the outcome leaves it open); versions gives the least and most commits
// it may have made. `tags` lists the fresh items it adds, to find its commit in history(); `reads`,
// `deletes` and `failsOnPurpose` say what it may reject with.

function addOp(items, target) {
  return {
    label: `addItems(${items.map(tagOf).join(" ")})`,
    tags: items.map(tagOf),
    start: () => target.addItems(structuredClone(items)),
    apply: (state, outcome) => ({ next: outcome.status === "fulfilled" ? [...state, ...items] : state }),
    versions: (outcome) => (outcome.status === "fulfilled" ? [1, 1] : [0, 0]),
  };
}

function getOp(limit, target) {
  return {
    label: `getItems(${limit ?? ""})`,
    reads: true,
    start: () => target.getItems(limit),
    apply(state, outcome) {
      const expected = newest(state, limit);
      if (!isDeepStrictEqual(outcome.value, expected)) return { mismatch: `getItems(${limit ?? ""}) returned ${differ(outcome.value, expected)}` };
      return { next: state };
    },
    versions: () => [0, 0],
  };
}

function popOp(target) {
  return {
    label: "popItem()",
    start: () => target.popItem(),
    apply(state, outcome) {
      if (outcome.status !== "fulfilled") return { next: state };
      const expected = state.at(-1);
      if (!isDeepStrictEqual(outcome.value, expected)) return { mismatch: `popItem returned ${differ(outcome.value, expected)}` };
      return { next: state.slice(0, -1) };
    },
    versions: (outcome) => (outcome.status === "fulfilled" && outcome.value !== undefined ? [1, 1] : [0, 0]),
  };
}

function clearOp(target) {
  return {
    label: "clearSession()",
    start: () => target.clearSession(),
    apply: (state, outcome) => ({ next: outcome.status === "fulfilled" ? [] : state }),
    // It writes nothing when the log is empty and no view is stored, which the model does not know.
    versions: (outcome) => (outcome.status === "fulfilled" ? [0, 1] : [0, 0]),
  };
}

function replaceOp(items, target) {
  return {
    label: `replaceHistoryWithCompaction(${items.map(tagOf).join(" ")})`,
    start: () => target.replaceHistoryWithCompaction(structuredClone(items)),
    apply: (state, outcome) => ({ next: outcome.status === "fulfilled" ? items : state }),
    versions: (outcome) => (outcome.status === "fulfilled" ? [1, 1] : [0, 0]),
  };
}

/** The user deletes the conversation: SessionStore.delete(id) on a server's store. */
function deleteOp(store) {
  return {
    label: "store.delete(id)",
    deletes: true,
    start: () => store.delete(ID),
    // A delete that met a commit of the session (ConflictError) may have removed the head before it:
    // either the items are gone or not.
    apply: (state, outcome) => (outcome.status === "fulfilled" ? { next: [] } : { either: [state, []] }),
    versions: () => [0, Infinity],
  };
}

/** The drop-in's run(agent, input): one guarded, live turn of the real runner. */
function runOp(script, target) {
  const label = `run(r${script.n}${script.shape.withTool ? ", tool" : ""}${script.stream ? ", stream" : ""}${script.shape.fail ? ", model fails" : ""})`;
  return {
    label,
    tags: script.expected.map(tagOf),
    failsOnPurpose: script.shape.fail,
    async start() {
      const result = await target.run(script.agent, script.input, script.stream ? { stream: true } : {});
      return { finalOutput: result.finalOutput, cancelled: result.cancelled };
    },
    async apply(state, outcome) {
      if (outcome.status === "rejected" && script.model.calls.length === 0) {
        // Refused before its turn began (busy), or its lease went with a delete: nothing happened.
        return { next: state };
      }
      if (outcome.reason instanceof ConcurrencyError) return { mismatch: `${label} was refused the lease but called its model` };
      const mismatch = await checkModelInput(script, state);
      if (mismatch) return { mismatch };
      if (outcome.status !== "fulfilled") return { next: state };
      // A streamed run is consumed by the drop-in and committed after `completed`: never cut short.
      if (outcome.value.cancelled) return { mismatch: `${label} resolved with a cancelled stream` };
      return { next: [...state, ...script.expected] };
    },
    versions: (outcome) => (outcome.status === "fulfilled" ? [1, 1] : [0, 0]),
  };
}

/**
 * guard(fn) with several steps inside on the same instance (writes staged, reads of committed +
 * staged); `fail`: fn throws after its steps, so the turn is aborted. The steps' answers are recorded
 * and checked, as one atomic request, against the items at the point where the guard took the lease.
 */
function guardOp(steps, fail, onBusy, target) {
  const answers = [];
  const label = `guard(${steps.map((s) => s.label).join(", ")}${fail ? ", then throws" : ""}${onBusy ? ", waits" : ""})`;
  return {
    label,
    tags: steps.flatMap((step) => step.tags ?? []),
    failsOnPurpose: fail,
    start: () =>
      target.guard(
        async (inv) => {
          assert.equal(typeof inv.commit, "function", "fn receives the Invocation");
          for (const step of steps) answers.push(await step.call());
          if (fail) throw new TurnFailed("the turn failed");
          return "done";
        },
        onBusy ? { onBusy } : undefined,
      ),
    async apply(state, outcome) {
      if (answers.length < steps.length) {
        // fn did not run (the lease was refused), or a step failed, which the round reports.
        return answers.length === 0 ? { next: state } : { mismatch: `${label} stopped after ${answers.length} steps` };
      }
      let local = state;
      for (let i = 0; i < steps.length; i++) {
        const result = await steps[i].apply(local, answers[i]);
        if (result.mismatch) return { mismatch: `${label}, step ${i}: ${result.mismatch}` };
        local = result.next;
      }
      return { next: outcome.status === "fulfilled" ? local : state };
    },
    versions: (outcome) => (outcome.status === "fulfilled" ? [1, 1] : [0, 0]),
  };
}

/**
 * The steps of a guard, each { label, tags?, call(), apply(state, answer) }: writes, reads, and at most
 * one run of the real runner (the documented pattern: guard(() => run(agent, input, { session }))).
 */
async function guardSteps(random, next, target) {
  const steps = [];
  let runs = 0;
  for (let i = 0, count = 2 + Math.floor(random() * 3); i < count; i++) {
    const roll = random();
    if (roll < 0.4) {
      const items = itemBatch(random, next);
      steps.push({
        label: `addItems(${items.map(tagOf).join(" ")})`,
        tags: items.map(tagOf),
        call: () => target.addItems(structuredClone(items)),
        apply: (state) => ({ next: [...state, ...items] }),
      });
    } else if (roll < 0.6) {
      const limit = random() < 0.5 ? undefined : Math.floor(random() * 4);
      const read = getOp(limit, target);
      steps.push({ label: `getItems(${limit ?? ""})`, call: read.start, apply: (state, value) => read.apply(state, { status: "fulfilled", value }) });
    } else if (roll < 0.78) {
      const pop = popOp(target);
      steps.push({ label: "popItem()", call: pop.start, apply: (state, value) => pop.apply(state, { status: "fulfilled", value }) });
    } else if (roll < 0.85) {
      steps.push({ label: "clearSession()", call: () => target.clearSession(), apply: () => ({ next: [] }) });
    } else if (runs++ === 0) {
      // A model that fails inside a guard is the same as fn throwing (below): these runs succeed, so
      // that the steps after them run and are checked.
      const script = await scriptedRun(next(), random, { mayFail: false });
      steps.push({
        label: `run(r${script.n}${script.shape.withTool ? ", tool" : ""})`,
        tags: script.expected.map(tagOf),
        call: () => sdkRun(script.agent, script.input, { session: target }).then((result) => result.finalOutput),
        apply: async (state) => {
          const mismatch = await checkModelInput(script, state);
          return mismatch ? { mismatch } : { next: [...state, ...script.expected] };
        },
      });
    }
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------
// The linearizability check of one round.

function* permutations(indexes) {
  if (indexes.length <= 1) {
    yield indexes;
    return;
  }
  for (let i = 0; i < indexes.length; i++) {
    const rest = [...indexes.slice(0, i), ...indexes.slice(i + 1)];
    for (const tail of permutations(rest)) yield [indexes[i], ...tail];
  }
}

/**
 * The orders of `ops` in which every answer fits the model, starting from `before`; each with the
 * items it ends with. `committedAt[i]`, when known, is the version op i committed in: an order must
 * follow those. Returns the orders and, for the report, why the others failed.
 */
async function linearizations(ops, outcomes, before, committedAt) {
  const valid = [];
  const refused = [];
  for (const order of permutations(ops.map((_, i) => i))) {
    const versions = order.map((i) => committedAt[i]).filter((v) => v !== undefined);
    if (versions.some((v, j) => j > 0 && v < versions[j - 1])) continue;
    // A request whose effect the outcome leaves open (a delete that conflicted) branches: `{ either }`.
    let states = [before];
    let mismatch = null;
    for (const i of order) {
      const after = [];
      for (const state of states) {
        const result = await ops[i].apply(state, outcomes[i]);
        if (result.mismatch) mismatch ??= `${ops[i].label}: ${result.mismatch}`;
        else after.push(...(result.either ?? [result.next]));
      }
      states = after;
      if (states.length === 0) break;
    }
    if (states.length === 0) refused.push(`  order ${order.join(",")}: ${mismatch}`);
    for (const final of states) valid.push({ order, final });
  }
  return { valid, refused };
}

// ---------------------------------------------------------------------------------------------

const WEIGHTS = { add: 4, get: 2, pop: 2, clear: 1, replace: 1, guard: 2, run: 1, delete: 1 };
const POOL = Object.entries(WEIGHTS).flatMap(([name, weight]) => Array(weight).fill(name));

async function runTrial(trial, totals) {
  const random = seeded(17 + trial * 7919);
  const pick = (list) => list[Math.floor(random() * list.length)];
  let made = 0;
  const next = () => ++made;
  const kv = slowKv(random);
  const snapshotEvery = 1 + (trial % 4);
  const agent = trial % 5 === 3 ? "assistant" : undefined;
  // The stores' clock (createdAt, leases) moves 1 ms every `step` reads, so that a trial does not
  // depend on the wall clock; a large step puts several sessions' creations in one millisecond,
  // which the store must still tell apart.
  const step = [1, 7, 50][trial % 3];
  let reads = 0;
  const now = () => T0 + Math.floor(reads++ / step);
  const newStore = (owner) => SessionStore.kv(kv, { snapshotEvery, owner, now });
  const servers = [];
  for (let i = 0, count = 2 + Math.floor(random() * 2); i < count; i++) {
    servers.push({
      name: `s${i}`,
      store: await newStore(`s${i}`),
      options: {
        agent,
        compact: random() < 0.3 ? false : undefined,
        onBusy: random() < 0.25 ? { waitMs: 2_000 } : undefined,
      },
      kept: null,
    });
  }
  let model = [];
  let lastVersion = 0;

  const playRound = async (round) => {
    // A server restarts now and then: a new store over the same KV, its kept instance gone.
    for (const server of servers) {
      if (random() < 0.08) {
        server.store = await newStore(server.name);
        server.kept = null;
      }
    }
    // The instance a request uses: a new one (open by id per request), or the server's kept one when
    // no other request of this round has it.
    const usedKept = new Set();
    const instanceFor = (server) => {
      if (random() < 0.3 && !usedKept.has(server)) {
        usedKept.add(server);
        server.kept ??= new AgentSessionItems(server.store, ID, server.options);
        return { target: server.kept, how: "kept" };
      }
      return { target: new AgentSessionItems(server.store, ID, server.options), how: "new" };
    };

    const ops = [];
    const count = 2 + Math.floor(random() * 3);
    for (let i = 0; i < count; i++) {
      const server = pick(servers);
      const { target, how } = instanceFor(server);
      const kind = pick(POOL);
      let op;
      if (kind === "add") op = addOp(itemBatch(random, next), target);
      else if (kind === "get") op = getOp(random() < 0.5 ? undefined : Math.floor(random() * 5) - 1, target);
      else if (kind === "pop") op = popOp(target);
      else if (kind === "clear") op = clearOp(target);
      else if (kind === "delete") op = deleteOp(server.store);
      else if (kind === "replace") {
        // As the runner does after a server-side compaction: the compaction item, then (sometimes) the
        // newest items it already stored, which the drop-in keeps in place, then maybe a new one.
        const tail = model.slice(Math.max(model.length - Math.floor(random() * 3), 0));
        const items = [{ type: "compaction", encrypted_content: `enc_${next()}` }, ...structuredClone(tail)];
        if (random() < 0.4) items.push(assistantItem(next()));
        op = replaceOp(items, target);
      } else if (kind === "run") {
        op = runOp(await scriptedRun(next(), random), target);
      } else {
        op = guardOp(await guardSteps(random, next, target), random() < 0.3, random() < 0.2 ? { waitMs: 2_000 } : undefined, target);
      }
      op.label = `${server.name}/${how}: ${op.label}`;
      ops.push(op);
    }
    const where = `trial ${trial}, round ${round} (${ops.map((op) => op.label).join("; ")})`;

    const outcomes = await Promise.allSettled(ops.map((op) => op.start()));
    const deleted = ops.some((op) => op.deletes);

    // Every rejection is typed: a busy session, or the failure the test caused on purpose.
    outcomes.forEach((outcome, i) => {
      if (outcome.status === "fulfilled") return;
      const error = outcome.reason;
      if (ops[i].failsOnPurpose && error instanceof TurnFailed) {
        totals.failedOnPurpose++;
        return;
      }
      assert.ok(
        error instanceof AgentSessionError,
        `${where}: ${ops[i].label} rejected with an untyped error: ${error?.stack ?? error}`,
      );
      assert.ok(
        !ops[i].reads,
        `${where}: ${ops[i].label}, a read, rejected with ${error.name} (${error.code}): ${error.message}`,
      );
      // A write whose session a delete of this round took from under its lease loses the lease
      // (LeaseLostError: nothing it staged was written); anything else is the busy session's
      // ConcurrencyError.
      const lostToDelete = deleted && error instanceof LeaseLostError && error.code === "LEASE_LOST";
      // A delete racing a commit: "changed while this operation was writing it; retry".
      const deleteConflict = ops[i].deletes && error instanceof ConflictError && error.code === "VERSION_CONFLICT";
      // A write racing a delete may also report the delete (NotFoundError "was deleted"), having
      // written nothing: the drop-in opens a deleted session again only when its begin finds it
      // gone, not when the open itself meets the delete (SessionHandle.session rethrows it).
      const deletedUnder = deleted && error instanceof NotFoundError && error.code === "NOT_FOUND";
      assert.ok(
        lostToDelete || deleteConflict || deletedUnder || (error instanceof ConcurrencyError && error.code === "CONCURRENT_INVOCATION"),
        `${where}: ${ops[i].label} rejected with ${error.name} (${error.code}), not the ConcurrencyError of a busy session${deleted ? " (or the LeaseLostError, NotFoundError or a delete's ConflictError of a delete)" : ""}: ${error.message}`,
      );
      totals.codes[error.code] = (totals.codes[error.code] ?? 0) + 1;
    });

    // What a fresh process reads now, and the commits of this round in its history.
    const freshStore = await newStore("reader");
    const reader = new AgentSessionItems(freshStore, ID, { agent });
    const read = await reader.getItems();
    const session = await freshStore.open(ID, { create: false });
    // A delete this round may have started the session over at version 0: then its history is read
    // whole, and what committed before the delete is gone from it.
    const from = deleted ? 1 : lastVersion + 1;
    const events = session.version >= from ? await session.history({ from }) : [];
    const messages = events.filter((event) => event.type === "message");

    // Each request that added fresh items: all of them in one version, in order, or none if it failed.
    const committedAt = ops.map((op, i) => {
      if (!op.tags?.length) return undefined;
      const found = messages.filter((event) => op.tags.includes(tagOf(event.data)));
      if (outcomes[i].status !== "fulfilled") {
        assert.deepEqual(found.map((e) => e.version), [], `${where}: ${op.label} rejected (${outcomes[i].reason?.message}) but its items were committed`);
        return undefined;
      }
      if (deleted && found.length === 0) return undefined;
      assert.deepEqual(found.map((e) => tagOf(e.data)), op.tags, `${where}: ${op.label} resolved: its items must be committed, in order`);
      const versions = new Set(found.map((e) => e.version));
      assert.equal(versions.size, 1, `${where}: ${op.label}: its items in one commit, found in versions ${[...versions]}`);
      return found[0].version;
    });

    // One commit per write (a clearSession one or none), none for what rejected.
    const [least, most] = ops.reduce(([lo, hi], op, i) => {
      const [l, h] = op.versions(outcomes[i]);
      return [lo + l, hi + h];
    }, [0, 0]);
    const commits = session.version - lastVersion;
    assert.ok(deleted || (least <= commits && commits <= most), `${where}: ${commits} new versions, expected ${least} to ${most}`);

    const { valid, refused } = await linearizations(ops, outcomes, model, committedAt);
    const answer = (value) => show(Array.isArray(value) ? value.map(tagOf) : value?.type !== undefined ? tagOf(value) : value);
    const outcomeText = outcomes.map((o, i) => `  ${ops[i].label} -> ${o.status === "fulfilled" ? answer(o.value) : `${o.reason?.name}: ${o.reason?.message}`}`).join("\n");
    assert.ok(
      valid.length > 0,
      `${where}: no order of the requests explains their answers\n${outcomeText}\n${refused.join("\n")}\nbefore: ${show(model.map(tagOf))}`,
    );
    const matching = valid.find((candidate) => isDeepStrictEqual(candidate.final, read));
    assert.ok(
      matching,
      `${where}: a fresh reader got ${show(read.map(tagOf))}; the orders that explain the answers end with ${show(valid.map((v) => v.final.map(tagOf)))}\n${outcomeText}\nbefore: ${show(model.map(tagOf))}\nexact read: ${show(read)}`,
    );
    model = matching.final;
    lastVersion = session.version;
    const writes = outcomes.filter((o, i) => o.status === "fulfilled" && !ops[i].reads).length;
    if (writes >= 2) totals.serializedRounds++;

    // The newest n, in order, for limits around the edges; and every kept instance reads the same.
    for (const limit of [0, 1, 2, model.length - 1, model.length, model.length + 1, -1]) {
      assert.deepStrictEqual(await reader.getItems(limit), newest(model, limit), `${where}: a fresh reader's getItems(${limit})`);
    }
    for (const server of servers) {
      if (!server.kept) continue;
      const kept = await server.kept.getItems();
      assert.ok(
        isDeepStrictEqual(kept, model),
        `${where}: the kept instance of ${server.name} reads ${show(kept.map(tagOf))}, a fresh reader ${show(model.map(tagOf))}\n${outcomeText}`,
      );
    }
    totals.rounds++;
    totals.items = Math.max(totals.items, model.length);
  };

  for (let round = 0; round < ROUNDS; round++) {
    try {
      await playRound(round);
    } catch (error) {
      // Every failure names its trial and round (the assertions above name the requests too).
      const prefix = `trial ${trial}, round ${round}`;
      if (String(error?.message).startsWith(prefix)) throw error;
      throw new Error(`${prefix}: ${error?.name}: ${error?.message}`, { cause: error });
    }
  }
}

test(`OpenAI Agents drop-in on a shared slow KV: ${TRIALS} seeded trials of ${ROUNDS} rounds of concurrent requests from 2-3 servers`, async () => {
  const totals = { rounds: 0, serializedRounds: 0, failedOnPurpose: 0, items: 0, codes: {} };
  for (let trial = FIRST; trial < FIRST + TRIALS; trial++) await runTrial(trial, totals);
  // The races happened: requests refused because another held the session, rounds where several
  // writes went through one after the other, turns that failed on purpose.
  if (TRIALS >= 10) {
    assert.ok(totals.codes.CONCURRENT_INVOCATION > 0, `no request was refused: ${show(totals)}`);
    assert.ok(totals.serializedRounds > 0 && totals.failedOnPurpose > 0, `the races did not happen: ${show(totals)}`);
  }
  console.log(`# ${show(totals)}`);
});
