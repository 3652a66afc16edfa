// A seeded random model test of the Strands drop-in AgentSessionManager, run the way servers use it.
// Run: node --test --test-reporter=spec tests/frameworks/strands-model.test.mjs
// (FUZZ_TRIALS=n runs n trials; FUZZ_FIRST=k starts at trial k, so `FUZZ_FIRST=k FUZZ_TRIALS=1`
// replays the trial a failure names; FUZZ_TRACE=1 prints each round's requests and outcomes;
// FUZZ_MAX_FAILING=n stops after n failing trials, default 3.)
//
// What is run: two or three "servers", each a SessionStore.kv over one shared slow KV (every KV call
// takes 0 to 2 macrotasks, so the stores interleave like processes over a network; snapshotEvery 1 to
// 4 by trial), serve two sessions. Each round runs two to four requests at once: an agent turn on a
// NEW Agent + AgentSessionManager (what a server builds per request), or on a long-lived Agent of that
// server (a browser tab, a worker), now and then replaced by a new one. A turn is a text answer or a
// tool call (the tool sets, counts and deletes app state), some agents count their turns in app
// state from a BeforeInvocationEvent hook, and some turns fail: the scripted model throws at once,
// or after the tool ran. The agents use a sliding window of 4 to 10 messages (so the context is
// trimmed, and the manager compacts its log, often) or no conversation manager. Also:
// restoreSnapshot of a long-lived Agent to a listed version, a "rewind" request (restore a listed
// version, then a turn), listSnapshotIds, and deleteSession (through a per-request manager or a
// long-lived one).
//
// What must hold:
// - Every request that rejects does so with ConcurrencyError (CONCURRENT_INVOCATION) while another
//   request on that session was in flight, or with the scripted model's own error (only the turns
//   scripted to fail, and always they). Racing a deleteSession of its session, a request may also
//   fail with a typed agent-session error, and a deleteSession racing a turn with ConflictError
//   ("retry"). Anything else (an untyped error, a trap) is a failure. (Tolerated and counted: a
//   long-lived manager whose session another server deleted rejects listSnapshotIds/restoreSnapshot
//   with NotFoundError until its next invocation opens the session again.)
// - After each round, read through a fresh store: every version of the session is exactly one
//   successful turn (nothing of a failed or refused turn is ever stored, in any event), the versions
//   known before stay as they were unless the session was deleted in this round, and every successful
//   turn is in the session unless a deleteSession of it may have come after it. Versions never go
//   down for a live session.
// - Version by version, what a fresh Agent restores at that version (restoreSnapshot on a fresh
//   manager) equals the reference: a plain Agent with NO session manager and the same conversation
//   manager, tools and hooks, given the context and app state of the version before, running the
//   same scripted turn (its new messages renamed to the trackingIds the real turn gave them). The
//   one exception is a turn of an Agent restored to version r since it last ran: it may build on r
//   instead (when no commit came between the restore's read and the turn, no reload is due), if what
//   it restored is r's context in this incarnation of the session.
// - The Agent that committed a version holds exactly that version's context and state afterwards,
//   and an Agent restored to a version holds that version's.
// - A fresh Agent on a fresh store (its first invocation's load, agent.initialize()) restores the
//   latest version's context and state; an empty one after the session was deleted; when the
//   `strands:context` key is absent the message log (newest version of each trackingId) is the
//   context itself; listSnapshotIds lists the versions 1..n of the session, in order.
// - Each server's own cached view of a session (what its managers read and diff against), where it
//   is at the fresh store's version of the same incarnation, holds what is stored.
//
// Found so far (test-results/hunt/strands-repro.mjs reproduces each without randomness): a long-lived
// or in-flight Agent whose session another server deleted and created again, up to the version the
// Agent last saw, is not reloaded (it runs on, and commits from, the deleted conversation);
// restoreSnapshot racing a commit of another manager on the same store leaves the Agent marked as
// having seen the new version with the old diff base (the next turn stores a context the Agent does
// not hold); and, in the core, a refresh that reads the head between a commit's head write and its
// return makes the commit apply its events twice to the store's cached view (the managers then cut
// live messages away when they compact).
//
// Why versions and not the order the invokes resolved: the lease serializes the turns of one session
// and each successful turn is one commit, so the session's version numbers ARE the commit order
// (with a slow KV, the order in which the invoke() promises resolve need not be). Each turn's prompt
// is unique and its user message is stored first in the version that commits it, so the version where
// a prompt first appears in history() names the turn.
import { test } from "node:test";
import {
  Agent,
  ModelError,
  SlidingWindowConversationManager,
  NullConversationManager,
  FunctionTool,
  BeforeInvocationEvent,
  MessageAddedEvent,
} from "@strands-agents/sdk";
import { SessionStore, ConcurrencyError, ConflictError, AgentSessionError } from "agent-session";
import { AgentSessionManager } from "agent-session/strands";
import { slowKv } from "../js/_helpers.mjs";
import { seeded, canonical } from "../browser/model-checks.mjs";
import { ScriptedModel } from "./strands-scripted-model.mjs";

const TRIALS = Number(process.env.FUZZ_TRIALS ?? 200);
const FIRST = Number(process.env.FUZZ_FIRST ?? 0);
const MAX_FAILING_TRIALS = Number(process.env.FUZZ_MAX_FAILING ?? 3); // then stop, and report them
const ROUNDS = 10;
const SESSION_IDS = ["chat-a", "chat-b"];
const NOTE_KEYS = ["k1", "k2", "k3"];
const AGENT = "agent"; // every Agent keeps the default agent.id: one conversation per session
const EMPTY = Object.freeze({ messages: [], state: {} });

const seedOf = (trial) => 1009 + trial * 7919;
const plain = (value) => JSON.parse(JSON.stringify(value));

// ---------------------------------------------------------------------------------------------
// The scripted model and the agents

/** What the scripted model throws: Strands wraps it in a ModelError whose `cause` it is. */
class ScriptedFailure extends Error {
  constructor(prompt) {
    super(`model down: ${prompt}`);
    this.prompt = prompt;
  }
}


/** A tool whose result depends on nothing but its input, and whose app state writes depend on the
 * state the agent loaded (the "notes" count), so a wrong reload shows in the state. */
const noteTool = () =>
  new FunctionTool({
    name: "note",
    description: "Notes a value.",
    inputSchema: {
      type: "object",
      properties: { key: { type: "string" }, value: { type: "string" }, drop: { type: "string" } },
      required: ["key", "value"],
    },
    callback: (input, context) => {
      const state = context.agent.appState;
      state.set(input.key, input.value);
      state.set("notes", (state.get("notes") ?? 0) + 1);
      if (input.drop !== undefined) state.delete(input.drop);
      return `noted ${input.key}`;
    },
  });

const conversationManagerOf = (cm) =>
  cm.window !== undefined ? new SlidingWindowConversationManager({ windowSize: cm.window }) : new NullConversationManager();

/**
 * An Agent as the servers and the reference build it: `config` = `{ cm, countsTurns }`. `added` collects
 * the messages its invocations add (MessageAddedEvent), to rename the reference's messages after the
 * real turn's trackingIds. `plugins` carries the AgentSessionManager (none for the reference).
 */
function buildAgent(config, more = {}) {
  const model = new ScriptedModel();
  const agent = new Agent({
    model,
    printer: false,
    retryStrategy: null,
    conversationManager: conversationManagerOf(config.cm),
    tools: [noteTool()],
    ...more,
  });
  if (config.countsTurns) {
    // Runs after the manager's own BeforeInvocationEvent hook (which takes the lease and reloads first).
    agent.addHook(BeforeInvocationEvent, (event) => {
      const state = event.agent.appState;
      state.set("turns", (state.get("turns") ?? 0) + 1);
    });
  }
  const added = [];
  agent.addHook(MessageAddedEvent, (event) => {
    added.push(event.message);
  });
  return { agent, model, added, config };
}

const heldBy = (agent) => ({ messages: agent.messages.map((m) => plain(m.toJSON())), state: plain(agent.appState.getAll()) });

/** The reference: a plain Agent (no session manager) given `base`, running `op`'s scripted turn. */
async function reference(base, op) {
  const { agent, model, added } = buildAgent(op.config, { messages: plain(base.messages), appState: plain(base.state) });
  model.replies = [...op.replies];
  await agent.invoke(op.prompt);
  if (added.length !== op.added.length) {
    throw new Error(`the reference turn added ${added.length} messages, the real one ${op.added.length}`);
  }
  const rename = new Map(added.map((message, i) => [message.trackingId, op.added[i].trackingId]));
  const held = heldBy(agent);
  for (const message of held.messages) if (rename.has(message.trackingId)) message.trackingId = rename.get(message.trackingId);
  return held;
}

/** A log read as the manager reads it: one entry per trackingId, its newest version in place of the first. */
function newestVersions(log) {
  const at = new Map();
  const out = [];
  for (const message of log) {
    if (at.has(message.trackingId)) out[at.get(message.trackingId)] = message;
    else at.set(message.trackingId, out.push(message) - 1);
  }
  return out;
}

const describeError = (error) => {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause ? ` [cause: ${error.cause?.message ?? error.cause}]` : "";
  return `${error.constructor?.name}(${error.code ?? "no code"}): ${error.message}${cause}\n${error.stack?.split("\n").slice(1, 6).join("\n")}`;
};

/** A context for failure messages: each message as role:text#<trackingId prefix>, then the app state. */
const short = (held) =>
  `${held.messages.map((m) => `${m.role}:${JSON.stringify(textOf(m))}#${String(m.trackingId).slice(0, 4)}`).join(" ")} | state ${canonical(held.state)}`;
const sameHeld = (a, b) => canonical(a) === canonical(b);

const textOf = (message) =>
  (message?.content ?? []).map((block) => block.text ?? block.toolUse?.name ?? (block.toolResult ? "result" : "?")).join("");

// ---------------------------------------------------------------------------------------------
// Planning a round (from the trial's `random` only, so a seed always plans the same requests)

function agentConfig(random) {
  return { cm: random() < 0.75 ? { window: 4 + Math.floor(random() * 7) } : {}, countsTurns: random() < 0.4 };
}

function planRound(random, trial, round, serverCount) {
  const ops = [];
  const residentsUsed = new Set(); // a long-lived Agent runs one request at a time
  const count = 2 + Math.floor(random() * 3);
  for (let i = 0; i < count; i++) {
    const server = Math.floor(random() * serverCount);
    const sid = random() < 0.6 ? SESSION_IDS[0] : SESSION_IDS[1];
    const prompt = `t${trial}.r${round}.o${i}:${sid}`;
    const roll = random();
    const config = agentConfig(random);
    const residentKey = `${server}/${sid}`;
    const wantsResident = random() < 0.45 && !residentsUsed.has(residentKey);
    const base = { server, sid, prompt, config, outcome: "pending" };
    if (roll < 0.72) {
      const shape = random() < 0.35 ? "tool" : "text";
      const failure = random() < 0.15 ? (shape === "tool" && random() < 0.5 ? "after-tool" : "first") : null;
      const note = { key: NOTE_KEYS[Math.floor(random() * 3)], value: prompt };
      if (random() < 0.3) note.drop = NOTE_KEYS[Math.floor(random() * 3)];
      // The model's replies for this turn: they name the prompt, and never depend on the context.
      let replies;
      if (failure === "first") replies = [new ScriptedFailure(prompt)];
      else if (shape === "text") replies = [`re:${prompt}`];
      else replies = [{ tool: "note", id: `tu-${prompt}`, input: note }, failure === "after-tool" ? new ScriptedFailure(prompt) : `re:${prompt}`];
      const renew = random() < 0.15;
      const rewind = random() < 0.12 ? random() : undefined;
      if (wantsResident) {
        residentsUsed.add(residentKey);
        ops.push({ ...base, kind: "turn", resident: true, renew, shape, failure, replies });
      } else {
        ops.push({ ...base, kind: "turn", resident: false, shape, failure, replies, rewind });
      }
    } else if (roll < 0.8 && wantsResident) {
      residentsUsed.add(residentKey);
      ops.push({ ...base, kind: "restore", resident: true, pick: random(), latest: random() < 0.2 });
    } else if (roll < 0.88) {
      ops.push({ ...base, kind: "list", resident: false });
    } else {
      if (wantsResident) residentsUsed.add(residentKey);
      ops.push({ ...base, kind: "delete", resident: wantsResident });
    }
  }
  return ops;
}

// ---------------------------------------------------------------------------------------------
// Running a trial

async function runTrial(trial, totals) {
  const seed = seedOf(trial);
  const random = seeded(seed);
  // The KV's delays draw from their own stream: how the stores interleave must not change the plan.
  const kv = slowKv(seeded(seed * 3 + 1));
  const serverCount = 2 + Math.floor(random() * 2);
  const snapshotEvery = 1 + (trial % 4);
  const servers = [];
  for (let s = 0; s < serverCount; s++) {
    const store = await SessionStore.kv(kv, { snapshotEvery, owner: `server${s}` });
    // A Session object of each session on this server, only ever read synchronously: it shows the
    // store's cached view, which every manager of this server reads and builds its diff base from.
    const views = {};
    for (const sid of SESSION_IDS) views[sid] = await store.open(sid, { create: true });
    servers.push({ store, residents: {}, views });
  }
  // Per session: the versions of its current incarnation as checked so far ({ version, op, context }),
  // the last version seen, and every deleteSession ever started on it (which restores it may spoil).
  const model = Object.fromEntries(SESSION_IDS.map((sid) => [sid, { versions: [], lastVersion: 0, deletes: [] }]));
  let seq = 0; // a logical clock: requests' starts and ends, in the order they happen
  const failures = [];

  for (let round = 0; round < ROUNDS; round++) {
    const where = `trial ${trial} (seed ${seed}, FUZZ_FIRST=${trial} FUZZ_TRIALS=1) round ${round}`;
    const fail = (what) => failures.push(`${where}: ${what}`);
    const ops = planRound(random, trial, round, serverCount);

    /** The long-lived Agent of a server for a session: created on first use, or anew when asked. */
    const resident = (op) => {
      const residents = servers[op.server].residents;
      if (residents[op.sid] === undefined || op.renew) {
        const manager = new AgentSessionManager({ store: servers[op.server].store, sessionId: op.sid });
        residents[op.sid] = { ...buildAgent(op.config, { plugins: [manager] }), manager, restore: null, builtAt: seq };
        totals.residentsBuilt++;
      }
      return residents[op.sid];
    };
    const requestAgent = (op) => {
      const manager = new AgentSessionManager({ store: servers[op.server].store, sessionId: op.sid });
      return { ...buildAgent(op.config, { plugins: [manager] }), manager, restore: null };
    };

    async function run(op) {
      op.start = ++seq;
      try {
        if (op.kind === "delete") {
          model[op.sid].deletes.push(op);
          const manager = op.resident ? resident(op).manager : new AgentSessionManager({ store: servers[op.server].store, sessionId: op.sid });
          await manager.deleteSession();
        } else if (op.kind === "list") {
          const manager = new AgentSessionManager({ store: servers[op.server].store, sessionId: op.sid });
          const probe = buildAgent(op.config, { plugins: [manager] });
          op.ids = await manager.listSnapshotIds({ target: probe.agent });
        } else if (op.kind === "restore") {
          const handle = resident(op);
          op.config = handle.config;
          op.residentBuiltAt = handle.builtAt;
          const ids = await handle.manager.listSnapshotIds({ target: handle.agent });
          op.ids = ids;
          if (op.latest || ids.length === 0) {
            await handle.manager.restoreSnapshot({ target: handle.agent });
            handle.restore = null; // the latest: the next turn builds on the latest either way
          } else {
            op.restoredTo = Number(ids[Math.floor(op.pick * ids.length)]);
            op.hadData = await handle.manager.restoreSnapshot({ target: handle.agent, snapshotId: ids[Math.floor(op.pick * ids.length)] });
            op.restoredHeld = heldBy(handle.agent);
            handle.restore = op;
          }
        } else {
          const handle = op.resident ? resident(op) : requestAgent(op);
          op.config = handle.config;
          if (op.rewind !== undefined) {
            const ids = await handle.manager.listSnapshotIds({ target: handle.agent });
            op.ids = ids;
            if (ids.length > 0) {
              op.restoredTo = Number(ids[Math.floor(op.rewind * ids.length)]);
              op.hadData = await handle.manager.restoreSnapshot({ target: handle.agent, snapshotId: String(op.restoredTo) });
              op.restoredHeld = heldBy(handle.agent);
              handle.restore = op;
            }
          }
          // A turn of an Agent restored since it last ran may build on the restored version.
          if (handle.restore !== null) {
            op.restore = { to: handle.restore.restoredTo, held: handle.restore.restoredHeld };
          }
          handle.model.replies = [...op.replies];
          handle.added.length = 0;
          try {
            await handle.agent.invoke(op.prompt);
          } finally {
            op.added = handle.added.map((message) => ({ trackingId: message.trackingId, json: plain(message.toJSON()) }));
          }
          op.held = heldBy(handle.agent);
          handle.restore = null;
        }
        op.outcome = "ok";
      } catch (error) {
        op.outcome = "error";
        op.error = error;
        // A refused turn changed nothing in the Agent (its restore still stands); a failed one was
        // put back at the latest committed version.
        if (op.kind === "turn" && !(error instanceof ConcurrencyError)) {
          const handle = op.resident ? servers[op.server].residents[op.sid] : undefined;
          if (handle !== undefined) handle.restore = null;
        }
      } finally {
        op.end = ++seq;
      }
    }

    await Promise.allSettled(ops.map(run));
    if (process.env.FUZZ_TRACE) {
      for (const op of ops) {
        const details = [
          `server ${op.server}${op.resident ? " long-lived" : ""}${op.renew ? " renewed" : ""}`,
          `[${op.start}-${op.end}] ${op.outcome}${op.error ? ` ${op.error.code ?? op.error.name}` : ""}`,
          op.restoredTo !== undefined ? `restored to ${op.restoredTo}` : "",
          op.ids ? `ids ${op.ids}` : "",
          `cm ${JSON.stringify(op.config.cm)} counts ${op.config.countsTurns}`,
        ];
        console.log(`# ${where} ${op.kind} ${op.prompt} ${details.filter(Boolean).join(" ")}`);
      }
    }

    // --- what each request's outcome must be
    const overlaps = (a, b) => a !== b && a.start < b.end && b.start < a.end;
    const deleteRaced = (op) => ops.some((other) => other.kind === "delete" && other.sid === op.sid && overlaps(op, other));
    for (const op of ops) {
      const what = `${op.kind} ${op.prompt} (server ${op.server}${op.resident ? ", long-lived agent" : ""}${op.failure ? `, scripted to fail ${op.failure}` : ""})`;
      if (op.outcome === "ok") {
        if (op.kind === "turn" && op.failure) fail(`${what} resolved although its model threw`);
        if (op.ids !== undefined && !op.ids.every((id, i) => id === String(i + 1))) {
          fail(`${what}: listSnapshotIds gave ${JSON.stringify(op.ids)}, not the versions 1..n in order`);
        }
        if (op.hadData !== undefined && op.hadData !== true) fail(`${what}: restoreSnapshot of listed version ${op.restoredTo} said nothing was stored`);
        continue;
      }
      const error = op.error;
      if (op.kind === "turn" && error instanceof ConcurrencyError && error.code === "CONCURRENT_INVOCATION") {
        op.outcome = "busy";
        totals.busy++;
        // The holder: a turn on that session that was not refused itself (or a delete, leniently).
        const holder = ops.some(
          (other) =>
            other.sid === op.sid &&
            ((other.kind === "turn" && !(other.error instanceof ConcurrencyError)) || other.kind === "delete") &&
            overlaps(op, other),
        );
        if (!holder) fail(`${what} was refused as busy while no other request on ${op.sid} was in flight`);
      } else if (op.kind === "turn" && error instanceof ModelError && error.cause instanceof ScriptedFailure) {
        op.outcome = "model-failed";
        totals.modelFailed++;
        if (error.cause.prompt !== op.prompt || !op.failure) fail(`${what} rejected with another turn's or an unscripted model error: ${describeError(error)}`);
      } else if (
        op.kind === "delete" &&
        error instanceof ConflictError &&
        ops.some((other) => other.sid === op.sid && other.kind === "turn" && overlaps(op, other))
      ) {
        // The head changed under the delete (a turn committed): documented, typed, "retry".
        op.outcome = "delete-conflict";
        totals.deleteConflicts++;
      } else if (
        op.kind === "restore" &&
        error?.code === "NOT_FOUND" &&
        model[op.sid].deletes.some((d) => d.start > op.residentBuiltAt && d.start < op.end)
      ) {
        // A long-lived manager whose session another server deleted since it opened it: its
        // listSnapshotIds and restoreSnapshot reject with NotFoundError ("was deleted") until its next
        // invocation opens the session again (that invocation itself reloads empty and works). Typed and
        // harmless, though a Strands SessionManager would list nothing instead: counted, not failed.
        op.outcome = "not-found-after-delete";
        totals.notFoundAfterDelete++;
      } else if (error instanceof AgentSessionError && deleteRaced(op)) {
        op.outcome = "lost-to-delete";
        totals.lostToDelete[error.code] = (totals.lostToDelete[error.code] ?? 0) + 1;
      } else {
        fail(`${what} rejected with an error outside the contract: ${describeError(error)}`);
      }
    }

    for (const op of ops) totals.ops[`${op.kind}:${op.outcome}`] = (totals.ops[`${op.kind}:${op.outcome}`] ?? 0) + 1;

    // --- each session, read through a fresh store
    const fresh = await SessionStore.kv(kv, { owner: "checker" });
    for (const sid of SESSION_IDS) {
      const known = model[sid];
      const roundOps = ops.filter((op) => op.sid === sid);
      const byPrompt = new Map(roundOps.filter((op) => op.kind === "turn").map((op) => [op.prompt, op]));
      const deletedThisRound = roundOps.some((op) => op.kind === "delete");
      let session;
      try {
        session = await fresh.open(sid, { create: false });
      } catch (error) {
        if (error?.code !== "NOT_FOUND") {
          fail(`${sid}: a fresh store cannot open it: ${describeError(error)}`);
          continue;
        }
      }
      const history = session === undefined ? [] : await session.history();
      // Each server's cached view, where it is at this version of this incarnation, holds what is stored.
      for (const [i, server] of servers.entries()) {
        const view = server.views[sid];
        let cached;
        try {
          if (session === undefined || view.version !== session.version || view.createdAt !== session.createdAt) continue;
          cached = { messages: plain(view.messages({ agent: AGENT })), state: plain(view.state({ agent: AGENT })) };
        } catch {
          continue; // evicted from the cache: nothing cached to compare
        }
        const truth = { messages: plain(session.messages({ agent: AGENT })), state: plain(session.state({ agent: AGENT })) };
        if (!sameHeld(cached, truth)) {
          fail(`${sid}: server ${i}'s cached view at version ${session.version} is\n    ${short(cached)}\n  what is stored\n    ${short(truth)}`);
        }
      }
      const version = session?.version ?? 0;
      // Which turn each version is: the turn whose prompt first appears in it.
      const seen = new Set();
      const turnAt = new Map();
      let broken = false;
      for (const event of history) {
        if (event.type !== "message" || event.data?.role !== "user") continue;
        const text = textOf(event.data);
        if (!text.startsWith("t") || seen.has(text)) continue;
        seen.add(text);
        if (turnAt.has(event.version)) {
          fail(`${sid}: version ${event.version} holds two turns' prompts, ${turnAt.get(event.version)} and ${text}`);
          broken = true;
        }
        turnAt.set(event.version, text);
      }
      for (let v = 1; v <= version; v++) {
        if (!turnAt.has(v)) {
          fail(`${sid}: version ${v} of ${version} names no turn (history: ${JSON.stringify(plain(history.filter((e) => e.version === v))).slice(0, 600)})`);
          broken = true;
        }
      }
      // The same incarnation as checked before, or a new one (only after a deleteSession this round).
      const sameIncarnation = known.versions.length > 0 && turnAt.get(1) === known.versions[0].op.prompt;
      if (!sameIncarnation && known.versions.length > 0 && !deletedThisRound) {
        fail(`${sid}: the session lost its versions (had ${known.versions.length}, now ${version}, version 1 is ${turnAt.get(1)}) with no deleteSession`);
        broken = true;
      }
      if (!deletedThisRound && version < known.lastVersion) fail(`${sid}: the version went down from ${known.lastVersion} to ${version}`);
      if (sameIncarnation && roundOps.some((op) => op.kind === "delete" && op.outcome === "ok")) {
        fail(`${sid}: a deleteSession resolved this round, yet the versions from before it are still there`);
        broken = true;
      }
      if (broken) continue;
      const versions = sameIncarnation ? known.versions.slice() : [];
      for (let v = 1; v <= Math.min(versions.length, version); v++) {
        if (turnAt.get(v) !== versions[v - 1].op.prompt) {
          fail(`${sid}: version ${v} was ${versions[v - 1].op.prompt}, now ${turnAt.get(v)}`);
          broken = true;
        }
      }
      if (version < versions.length) {
        fail(`${sid}: the session went back from version ${versions.length} to ${version} without a delete`);
        broken = true;
      }
      if (broken) continue;

      // The new versions, one by one, against the reference.
      const checker = (config) => {
        const manager = new AgentSessionManager({ store: fresh, sessionId: sid });
        return { ...buildAgent(config, { plugins: [manager] }), manager };
      };
      for (let v = versions.length + 1; v <= version; v++) {
        const prompt = turnAt.get(v);
        const op = byPrompt.get(prompt);
        if (op === undefined) {
          fail(`${sid}: version ${v} is ${prompt}, not a turn of this round`);
          broken = true;
          break;
        }
        if (op.outcome !== "ok") {
          fail(`${sid}: version ${v} stores ${prompt}, a turn that ${op.outcome === "busy" ? "was refused" : "failed"} (${describeError(op.error)})`);
          broken = true;
          break;
        }
        const previous = v === 1 ? EMPTY : versions[v - 2].context;
        const candidates = [{ from: `version ${v - 1}`, context: await reference(previous, op) }];
        // An Agent restored to version r since it last ran builds on r when no commit came between
        // the restore's read and the turn (no reload is due then). Only on r of THIS incarnation: what
        // it restored must be r's context here (after a deleteSession in between, r was another
        // session's, and the Agent must reload).
        const r = op.restore?.to;
        if (r !== undefined && r < v && r >= 1 && sameHeld(op.restore.held, versions[r - 1].context)) {
          candidates.push({ from: `restored version ${r}`, context: await reference(versions[r - 1].context, op) });
        }
        const probe = checker(op.config);
        const hadData = await probe.manager.restoreSnapshot({ target: probe.agent, snapshotId: String(v) });
        const stored = heldBy(probe.agent);
        const match = candidates.find((candidate) => sameHeld(candidate.context, stored));
        if (!hadData || match === undefined) {
          fail(
            `${sid}: version ${v} (${prompt}, ${op.resident ? "long-lived" : "per-request"} agent, cm ${JSON.stringify(op.config.cm)}${
              op.restore ? `, restored to ${op.restore.to}` : ""
            }) restores as\n    ${short(stored)}\n  expected (from ${candidates.map((c) => c.from).join(" or ")})\n    ${candidates
              .map((c) => short(c.context))
              .join("\n    ")}\n  the agent that committed it holds\n    ${short(op.held)}`,
          );
          broken = true;
          break;
        }
        if (match.from.startsWith("restored")) totals.builtOnRestore++;
        versions.push({ version: v, op, context: match.context });
        if (!sameHeld(op.held, match.context)) {
          fail(`${sid}: the agent that committed version ${v} (${prompt}) holds\n    ${short(op.held)}\n  not what it committed\n    ${short(match.context)}`);
        }
      }
      if (broken) continue;
      totals.versionsChecked += version - (sameIncarnation ? known.versions.length : 0);

      // An Agent restored to a version of this incarnation held that version.
      for (const op of roundOps) {
        if (op.restoredHeld === undefined || op.outcome === "error") continue;
        const restoredFrom = versions[op.restoredTo - 1];
        // (While a deleteSession was in flight, the version restored may be the deleted session's.)
        const quiet = !known.deletes.some((d) => d.end > op.start && d.start < op.end);
        if (quiet && restoredFrom !== undefined && !sameHeld(op.restoredHeld, restoredFrom.context)) {
          fail(`${sid}: ${op.kind} ${op.prompt} restored version ${op.restoredTo} as\n    ${short(op.restoredHeld)}\n  expected\n    ${short(restoredFrom.context)}`);
        }
      }

      // Every successful turn is stored, unless a deleteSession that may have come after it ran.
      const stored = new Set(versions.map((entry) => entry.op.prompt));
      for (const op of roundOps) {
        if (op.kind !== "turn" || op.outcome !== "ok" || stored.has(op.prompt)) continue;
        const deletedAfter = roundOps.some((d) => d.kind === "delete" && d.end > op.start);
        if (!deletedAfter) fail(`${sid}: ${op.prompt} succeeded but is not in the session (version ${version}), and no deleteSession came after it started`);
      }
      // Nothing of a failed or refused turn is stored, in any event.
      const historyText = JSON.stringify(plain(history));
      for (const op of roundOps) {
        if (op.kind === "turn" && op.outcome !== "ok" && historyText.includes(`"${op.prompt}"`)) {
          fail(`${sid}: ${op.prompt} (${op.outcome}) left its prompt in the history`);
        }
      }

      // A fresh Agent's first load, and the log against the context.
      const latest = versions.length > 0 ? versions[versions.length - 1].context : EMPTY;
      const probe = checker({ cm: {}, countsTurns: false });
      await probe.agent.initialize();
      const loaded = heldBy(probe.agent);
      if (!sameHeld(loaded, latest)) fail(`${sid}: a fresh Agent loads\n    ${short(loaded)}\n  expected version ${versions.length}\n    ${short(latest)}`);
      if (session !== undefined) {
        await session.refresh();
        if (session.version === version) {
          if (session.state({ agent: AGENT })["strands:context"] === undefined) {
            const log = plain(newestVersions(session.messages({ agent: AGENT })));
            if (canonical(log) !== canonical(latest.messages)) {
              fail(`${sid}: no strands:context key, but the log is not the context:\n    ${short({ messages: log, state: {} })}\n  expected\n    ${short({ messages: latest.messages, state: {} })}`);
            }
          } else {
            totals.contextKeys++;
          }
          const checkedBefore = sameIncarnation ? known.versions.length : 0;
          totals.compactions += history.filter((event) => event.type === "compacted" && event.version > checkedBefore).length;
        }
      }
      known.versions = versions;
      known.lastVersion = version;
    }
    if (failures.length > 0) break;
  }
  return failures;
}

test("Strands AgentSessionManager under concurrent servers: every version is the reference Agent's context, nothing of a failed turn is kept", async () => {
  const totals = {
    ops: {},
    busy: 0,
    modelFailed: 0,
    lostToDelete: {},
    deleteConflicts: 0,
    notFoundAfterDelete: 0,
    versionsChecked: 0,
    builtOnRestore: 0,
    compactions: 0,
    contextKeys: 0,
    residentsBuilt: 0,
  };
  const failures = [];
  let failingTrials = 0;
  let ran = 0;
  for (let trial = FIRST; trial < FIRST + TRIALS; trial++) {
    ran++;
    const found = await runTrial(trial, totals);
    failures.push(...found);
    if (found.length > 0 && ++failingTrials === MAX_FAILING_TRIALS) break; // each replayable alone
  }
  console.log(`# ${ran} trials from ${FIRST}: ${JSON.stringify(totals)}`);
  if (failures.length > 0) throw new Error(`${failures.length} failure(s):\n${failures.join("\n\n")}`);
  // Not vacuous: the runs reached the cases this test is about.
  if (TRIALS >= 20) {
    if (totals.busy === 0 || totals.modelFailed === 0 || totals.compactions === 0 || totals.versionsChecked < TRIALS * 5) {
      throw new Error(`the runs missed cases: ${JSON.stringify(totals)}`);
    }
  }
});
