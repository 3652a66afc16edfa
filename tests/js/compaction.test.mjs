// Compaction and retention (../../shared/API.md "Compaction and retention: long sessions stay small"):
// `inv.compact({ before, summary, agent?, force? })` is staged like appendMessage and committed with the
// turn; afterwards `messages()` is the summary followed by the rest, `history()` keeps every original
// message event plus one `compacted` event, and `at(v)` of an older version shows the originals. A cut
// between a tool call and its result is refused (ValidationError, path "before", naming the call id)
// unless `force`. `session.prune({ before })` takes the guard and deletes what only versions below
// `before` need; those versions are then a NotFoundError saying they were pruned, and everything from
// `before` on is unchanged.
//
// Every scenario runs on a memory store, on a KV store, and on two KV stores over one memoryKv() (a
// writer and a reader, two owners, as two processes share a session). Stores use a small
// `snapshotEvery` (3) so that snapshots are written before and after each compaction. A "fresh" load
// is a new store over the same KV (memory: the session's cached view disposed, then opened again).
import assert from "node:assert/strict";
import { describe } from "node:test";
import {
  ConcurrencyError,
  InvalidTransitionError,
  LimitExceededError,
  NotFoundError,
  SessionClosedError,
  SessionStore,
  ValidationError,
} from "agent-session";
import { memoryKv } from "agent-session/adapters";
import { assertDeepFrozen, assertError, callAsync, plain, rejection, test, thrown } from "./_helpers.mjs";

const SNAPSHOT_EVERY = 3;

// ---------------------------------------------------------------------------------------------
// Setups: `writer` runs the turns, `reader` reads (the same store when there is one); `fresh()` gives a
// store with nothing of the session cached; `kv` is the shared HostKv (null for memory).

const SETUPS = [
  {
    name: "memory",
    async stores(options = {}) {
      const snapshots = [];
      const store = await SessionStore.memory({ owner: "solo", snapshotEvery: SNAPSHOT_EVERY, onEvent: recordSnapshots(snapshots), ...options });
      return {
        writer: store,
        reader: store,
        kv: null,
        snapshots,
        // The memory backend is the store itself: drop the cached view so the next open loads it.
        async freshOpen(id) {
          (await store.open(id, { create: false })).dispose();
          return store.open(id, { create: false });
        },
      };
    },
  },
  {
    name: "kv(memoryKv)",
    async stores(options = {}) {
      const kv = memoryKv();
      const snapshots = [];
      const store = await SessionStore.kv(kv, { owner: "solo", snapshotEvery: SNAPSHOT_EVERY, onEvent: recordSnapshots(snapshots), ...options });
      return {
        writer: store,
        reader: store,
        kv,
        snapshots,
        async freshOpen(id) {
          return (await SessionStore.kv(kv, { owner: "fresh", snapshotEvery: SNAPSHOT_EVERY, ...options })).open(id, { create: false });
        },
      };
    },
  },
  {
    name: "two kv stores over one memoryKv (writer, reader)",
    async stores(options = {}) {
      const kv = memoryKv();
      const snapshots = [];
      const writer = await SessionStore.kv(kv, { owner: "writer", snapshotEvery: SNAPSHOT_EVERY, onEvent: recordSnapshots(snapshots), ...options });
      const reader = await SessionStore.kv(kv, { owner: "reader", snapshotEvery: SNAPSHOT_EVERY, ...options });
      return {
        writer,
        reader,
        kv,
        snapshots,
        async freshOpen(id) {
          return (await SessionStore.kv(kv, { owner: "fresh", snapshotEvery: SNAPSHOT_EVERY, ...options })).open(id, { create: false });
        },
      };
    },
  },
];

function recordSnapshots(into) {
  return (event) => {
    if (event.type === "snapshot") into.push(event.version);
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Message number `i` of the scripted conversation (user/assistant alternating). */
const msg = (i) => (i % 2 === 0 ? { role: "user", content: `u${i}` } : { role: "assistant", content: `a${i}` });
const msgs = (from, to) => Array.from({ length: to - from }, (_, k) => msg(from + k));

/** `count` turns of two messages each, continuing the numbering from the session's message count. */
async function turns(session, count, { agent, state = true } = {}) {
  for (let t = 0; t < count; t++) {
    await session.invoke((inv) => {
      const n = inv.messages().length;
      inv.appendMessage(msg(n));
      inv.appendMessage(msg(n + 1));
      if (state) inv.setState("turn", inv.session.version + 1);
    }, agent === undefined ? {} : { agent });
  }
}

/** What a read view shows, as plain data. */
async function stored(session) {
  await session.refresh();
  return plain({
    version: session.version,
    status: session.status,
    messages: session.messages(),
    state: session.state(),
    history: await session.history(),
  });
}

/** A SessionView as plain data. */
const viewOf = (view, agent) =>
  plain({
    version: view.version,
    status: view.status,
    messages: agent === undefined ? view.messages() : view.messages({ agent }),
    state: view.state(),
  });

/** The total size (key + value bytes) and count of the records a HostKv holds. */
async function kvContents(kv) {
  let bytes = 0;
  let snapshotBytes = 0;
  let records = 0;
  const byKind = {};
  let cursor;
  do {
    const page = await kv.list("", cursor ? { cursor } : {});
    for (const key of page.keys) {
      const entry = await kv.get(key);
      if (!entry) continue;
      const size = Buffer.byteLength(key) + (typeof entry.value === "string" ? Buffer.from(entry.value, "base64").length : entry.value.length);
      bytes += size;
      records++;
      const kind = key.slice(0, 2);
      byKind[kind] = (byKind[kind] ?? 0) + 1;
      if (kind === "s/" || kind === "g/") snapshotBytes += size;
    }
    cursor = page.cursor;
  } while (cursor);
  return { bytes, snapshotBytes, records, byKind };
}

function assertCompactedEvent(event, { version, agent = "default", before, summary }, what = "the compacted event") {
  assert.equal(event.type, "compacted", what);
  assert.equal(event.version, version, `${what}: version`);
  assert.equal(event.agent, agent, `${what}: agent`);
  assert.equal(event.before, before, `${what}: before`);
  assert.deepEqual(plain(event.data), plain(summary), `${what}: data is the summary`);
  assert.equal(typeof event.invocation, "string");
  assert.equal(typeof event.at, "number");
}

function assertPathBefore(error, what) {
  assertError(error, ValidationError, "INVALID_INPUT", what);
  assert.equal(error.path, "before", `${what}: path (message: ${error.message})`);
}

function assertPruned(error, what) {
  assertError(error, NotFoundError, "NOT_FOUND", what);
  assert.match(error.message, /prun/i, `${what}: the message must say the version was pruned (got ${JSON.stringify(error.message)})`);
}

/** Resolves to "pruned" when `promise` rejects with a NotFoundError saying so, otherwise its value. */
async function prunedOr(promise, what) {
  try {
    return await promise;
  } catch (error) {
    assertPruned(error, what);
    return "pruned";
  }
}

const SUMMARY = { role: "system", content: "summary of the conversation so far" };

// ---------------------------------------------------------------------------------------------
// Message shapes with tool calls, as each format documents them. Each has a call (`call`) answered
// by a result (`result`) under the id `id`.

const TOOL_FORMATS = [
  {
    // https://platform.openai.com/docs/api-reference/chat/object (message.tool_calls[]) and the
    // "tool" role message of the request (tool_call_id).
    name: "OpenAI Chat Completions",
    id: "call_abc123",
    call: {
      role: "assistant",
      content: null,
      tool_calls: [{ id: "call_abc123", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
    },
    result: { role: "tool", tool_call_id: "call_abc123", content: '{"temperature":18}' },
  },
  {
    // Responses API input/output items: { type: "function_call", call_id } and
    // { type: "function_call_output", call_id, output }.
    name: "OpenAI Responses items",
    id: "call_resp_9f2",
    call: { type: "function_call", id: "fc_67ca09c5efe0819096d0511c92b8c890", call_id: "call_resp_9f2", name: "get_weather", arguments: '{"city":"Paris"}', status: "completed" },
    result: { type: "function_call_output", call_id: "call_resp_9f2", output: '{"temperature":18}' },
  },
  {
    // Anthropic Messages API: an assistant message with a tool_use block, the next user message with
    // a tool_result block.
    name: "Anthropic content blocks",
    id: "toolu_01A09q90qw90lq917835lq9",
    call: {
      role: "assistant",
      content: [
        { type: "text", text: "I'll check the weather." },
        { type: "tool_use", id: "toolu_01A09q90qw90lq917835lq9", name: "get_weather", input: { city: "Paris" } },
      ],
    },
    result: { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_01A09q90qw90lq917835lq9", content: "18 degrees" }] },
  },
  {
    // Bedrock Converse ContentBlock.toolUse / toolResult, which is also what Strands' Message
    // serializes to (JSON.stringify of a @strands-agents/sdk Message, trackingId included).
    name: "Bedrock / Strands content blocks",
    id: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
    call: {
      role: "assistant",
      content: [{ toolUse: { name: "get_weather", toolUseId: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", input: { city: "Paris" } } }],
      trackingId: "553fb8bd-d349-4c6e-9789-640f4929c9aa",
    },
    result: {
      role: "user",
      content: [{ toolResult: { toolUseId: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", status: "success", content: [{ text: "18 degrees" }] } }],
      trackingId: "b5210804-f3cf-4bc1-bbf7-f69cece18328",
    },
  },
  {
    // @openai/agents-core protocol: FunctionCallItem / FunctionCallResultItem (callId).
    name: "OpenAI Agents JS items",
    id: "call_agents_77",
    call: { type: "function_call", id: "fc_1", callId: "call_agents_77", name: "get_weather", arguments: '{"city":"Paris"}', status: "completed" },
    result: { type: "function_call_result", callId: "call_agents_77", name: "get_weather", status: "completed", output: { type: "text", text: "18 degrees" } },
  },
  {
    // LangChain message fields: AIMessage tool_calls[] ({ id, name, args, type: "tool_call" }) and
    // ToolMessage tool_call_id.
    name: "LangChain messages (plain)",
    id: "call_lc_plain",
    call: { type: "ai", content: "", tool_calls: [{ id: "call_lc_plain", name: "get_weather", args: { city: "Paris" }, type: "tool_call" }] },
    result: { type: "tool", content: "18 degrees", tool_call_id: "call_lc_plain", name: "get_weather" },
  },
  {
    // What @langchain/core's AIMessage / ToolMessage toJSON() give (Serializable: lc, type, id, kwargs).
    name: "LangChain messages (serialized)",
    id: "call_lc_ser",
    call: {
      lc: 1,
      type: "constructor",
      id: ["langchain_core", "messages", "AIMessage"],
      kwargs: {
        content: "",
        tool_calls: [{ id: "call_lc_ser", name: "get_weather", args: { city: "Paris" }, type: "tool_call" }],
        invalid_tool_calls: [],
        additional_kwargs: {},
        response_metadata: {},
      },
    },
    result: {
      lc: 1,
      type: "constructor",
      id: ["langchain_core", "messages", "ToolMessage"],
      kwargs: { content: "18 degrees", tool_call_id: "call_lc_ser", name: "get_weather", additional_kwargs: {}, response_metadata: {} },
    },
  },
];

const QUESTION = { role: "user", content: "What is the weather in Paris?" };
const ANSWER = { role: "assistant", content: "It is 18 degrees in Paris." };

// ---------------------------------------------------------------------------------------------

for (const setup of SETUPS) {
  describe(`compaction on ${setup.name}`, () => {
    test("compact() committed with the turn: messages() is summary + the rest (writer, reader after refresh, fresh store); history keeps the originals plus one compacted event; at(v) before it shows the originals; later turns append normally", async () => {
      const { writer, reader, snapshots, freshOpen } = await setup.stores();
      const id = "compact-basic";
      const session = await writer.open(id);
      await turns(session, 5); // 10 messages, versions 1..5 (snapshot at 3)
      assert.equal(session.version, 5);
      const readerSession = await reader.open(id);
      assert.deepEqual(plain(readerSession.messages()), msgs(0, 10));

      const historyBefore = plain(await session.history());
      const viewsBefore = [];
      for (let v = 0; v <= 5; v++) viewsBefore.push(viewOf(await session.at(v)));
      assert.ok(snapshots.some((v) => v < 6), `a snapshot is written before the compaction (snapshots at ${snapshots})`);

      const inv = await session.begin();
      inv.compact({ before: 4, summary: [SUMMARY] });
      inv.appendMessage({ role: "user", content: "after the summary" });
      const v6 = await inv.commit();
      assert.equal(v6, 6);
      const expected = [SUMMARY, ...msgs(4, 10), { role: "user", content: "after the summary" }];

      assert.deepEqual(plain(session.messages()), expected, "the writer's session shows the compacted view");
      await readerSession.refresh();
      assert.equal(readerSession.version, 6);
      assert.deepEqual(plain(readerSession.messages()), expected, "the reader shows it after refresh()");
      assert.deepEqual(plain((await freshOpen(id)).messages()), expected, "a fresh load shows it");
      await session.refresh();

      const history = plain(await session.history());
      assert.deepEqual(history.slice(0, historyBefore.length), historyBefore, "every original event is kept, unchanged");
      const added = history.slice(historyBefore.length);
      assert.deepEqual(added.map((e) => `${e.version}:${e.type}`), ["6:compacted", "6:message"]);
      assertCompactedEvent(added[0], { version: 6, before: 4, summary: [SUMMARY] });
      assert.deepEqual(added[1].data, { role: "user", content: "after the summary" });
      assert.equal(history.filter((e) => e.type === "message").length, 11, "10 original message events + 1");
      assertDeepFrozen(await session.history());

      for (let v = 0; v <= 5; v++) {
        assert.deepEqual(viewOf(await session.at(v)), viewsBefore[v], `at(${v}) still shows the originals`);
        assert.deepEqual(viewOf(await readerSession.at(v)), viewsBefore[v], `reader: at(${v}) still shows the originals`);
      }
      assert.deepEqual(viewOf(await session.at(6)).messages, expected, "at(6) is the compacted view");

      // Later turns append after the compacted view, across the next snapshots (6, 9, ...).
      await turns(session, 4);
      assert.equal(session.version, 10);
      const later = [...expected, ...msgs(expected.length, expected.length + 8)];
      assert.deepEqual(plain(session.messages()), later);
      assert.ok(snapshots.some((v) => v > 6), `a snapshot is written after the compaction (snapshots at ${snapshots})`);
      await readerSession.refresh();
      assert.deepEqual(plain(readerSession.messages()), later);
      const fresh = await freshOpen(id);
      assert.deepEqual(plain(fresh.messages()), later, "a fresh load after later snapshots");
      assert.deepEqual(plain(await fresh.history()), plain(await session.history()), "a fresh load has the same history");
      for (let v = 0; v <= 5; v++) assert.deepEqual(viewOf(await fresh.at(v)), viewsBefore[v], `fresh: at(${v}) still shows the originals`);
      assert.deepEqual(viewOf(await fresh.at(6)).messages, expected, "fresh: at(6)");
      assert.deepEqual(viewOf(await fresh.at(8)).messages, [...expected, ...msgs(expected.length, expected.length + 4)], "fresh: at(8)");
    });

    test("inv.messages() shows the compaction before commit (read your writes); staged appends before compact() count toward `before`; the committed view is unchanged until commit", async () => {
      const { writer, reader, freshOpen } = await setup.stores();
      const id = "compact-ryw";
      const session = await writer.open(id);
      await turns(session, 1); // m0, m1
      const inv = await session.begin();
      inv.appendMessage(msg(2));
      inv.appendMessage(msg(3));
      const seenBefore = inv.messages();
      const copy = plain(seenBefore);
      inv.compact({ before: 3, summary: [SUMMARY] });
      assert.deepEqual(plain(inv.messages()), [SUMMARY, msg(3)], "two committed and one staged message replaced");
      assert.deepEqual(plain(seenBefore), copy, "an array inv.messages() returned earlier is not changed by compact()");
      assert.deepEqual(plain(session.messages()), msgs(0, 2), "the committed view does not show staged work");
      assert.deepEqual(plain((await reader.open(id)).messages()), msgs(0, 2));
      inv.appendMessage(msg(4));
      assert.deepEqual(plain(inv.messages()), [SUMMARY, msg(3), msg(4)]);
      const v = await inv.commit();
      assert.deepEqual(plain(session.messages()), [SUMMARY, msg(3), msg(4)]);
      assert.deepEqual(plain((await freshOpen(id)).messages()), [SUMMARY, msg(3), msg(4)]);
      const history = plain(await session.history());
      assert.deepEqual(
        history.map((e) => `${e.version}:${e.type}`),
        ["0:created", "1:message", "1:message", "1:state.set", `${v}:message`, `${v}:message`, `${v}:compacted`, `${v}:message`],
        "the batch keeps the staged order",
      );
      assertCompactedEvent(history[6], { version: v, before: 3, summary: [SUMMARY] });
      assert.deepEqual(history.filter((e) => e.type === "message").map((e) => e.data), msgs(0, 5), "every original message event is kept");
    });

    test("compact() then abort() discards it: nothing changes, for the writer, a reader and a fresh load", async () => {
      const { writer, reader, freshOpen } = await setup.stores();
      const id = "compact-abort";
      const session = await writer.open(id);
      await turns(session, 4);
      const before = await stored(session);
      const inv = await session.begin();
      inv.compact({ before: 6, summary: [SUMMARY] });
      assert.deepEqual(plain(inv.messages()), [SUMMARY, msg(6), msg(7)]);
      await inv.abort();
      assert.deepEqual(await stored(session), before);
      assert.deepEqual(await stored(await reader.open(id)), before);
      assert.deepEqual(await stored(await freshOpen(id)), before);
      // A later turn sees no trace of it.
      await turns(session, 1);
      assert.deepEqual(plain(session.messages()), msgs(0, 10));
      assert.ok(!(await session.history()).some((e) => e.type === "compacted"));
    });

    test("compaction is per agent: the agent option (or the invocation's agent) compacts that agent only", async () => {
      const { writer, reader, freshOpen } = await setup.stores();
      const id = "compact-agents";
      const session = await writer.open(id);
      await turns(session, 2, { agent: "planner" }); // planner: m0..m3
      await turns(session, 2, { agent: "coder" }); // coder: m0..m3
      await turns(session, 1); // default: m0, m1
      const first = await session.begin();
      first.compact({ before: 2, summary: [{ role: "system", content: "planner summary" }], agent: "planner" });
      assert.deepEqual(plain(first.messages({ agent: "planner" })), [{ role: "system", content: "planner summary" }, msg(2), msg(3)]);
      assert.deepEqual(plain(first.messages()), msgs(0, 2), "the invocation's default agent untouched");
      await first.commit();
      assert.deepEqual(plain(session.messages({ agent: "planner" })), [{ role: "system", content: "planner summary" }, msg(2), msg(3)]);
      assert.deepEqual(plain(session.messages({ agent: "coder" })), msgs(0, 4), "coder untouched");
      assert.deepEqual(plain(session.messages()), msgs(0, 2), "default agent untouched");

      // Without the option, compact() applies to the invocation's agent (BeginOptions.agent).
      const inv = await session.begin({ agent: "coder" });
      inv.compact({ before: 3, summary: [{ role: "system", content: "coder summary" }] });
      assert.deepEqual(plain(inv.messages({ agent: "coder" })), [{ role: "system", content: "coder summary" }, msg(3)]);
      assert.deepEqual(plain(inv.messages({ agent: "planner" })), [{ role: "system", content: "planner summary" }, msg(2), msg(3)]);
      const vc = await inv.commit();

      for (const s of [session, await reader.open(id), await freshOpen(id)]) {
        await s.refresh();
        assert.deepEqual(plain(s.messages({ agent: "planner" })), [{ role: "system", content: "planner summary" }, msg(2), msg(3)]);
        assert.deepEqual(plain(s.messages({ agent: "coder" })), [{ role: "system", content: "coder summary" }, msg(3)]);
        assert.deepEqual(plain(s.messages()), msgs(0, 2));
      }
      const compacted = plain(await session.history()).filter((e) => e.type === "compacted");
      assert.equal(compacted.length, 2);
      assert.equal(compacted[0].agent, "planner");
      assert.equal(compacted[0].before, 2);
      assertCompactedEvent(compacted[1], { version: vc, agent: "coder", before: 3, summary: [{ role: "system", content: "coder summary" }] });
      assert.deepEqual(viewOf(await session.at(vc - 1), "coder").messages, msgs(0, 4), "at() before: coder's originals");
    });

    test("summary [] drops the first `before` messages; before 0 prepends the summary; before = the message count replaces everything", async () => {
      const { writer, freshOpen } = await setup.stores();
      const id = "compact-edges";
      const session = await writer.open(id);
      await turns(session, 3); // m0..m5
      let inv = await session.begin();
      inv.compact({ before: 2, summary: [] });
      assert.deepEqual(plain(inv.messages()), msgs(2, 6));
      const v1 = await inv.commit();
      assert.deepEqual(plain(session.messages()), msgs(2, 6));
      assertCompactedEvent((await session.history()).at(-1), { version: v1, before: 2, summary: [] });

      inv = await session.begin();
      inv.compact({ before: 0, summary: ["note"] });
      assert.deepEqual(plain(inv.messages()), ["note", ...msgs(2, 6)]);
      await inv.commit();
      assert.deepEqual(plain(session.messages()), ["note", ...msgs(2, 6)]);

      inv = await session.begin();
      inv.compact({ before: 5, summary: ["all of it", { n: 5 }] });
      await inv.commit();
      assert.deepEqual(plain(session.messages()), ["all of it", { n: 5 }]);
      assert.deepEqual(plain((await freshOpen(id)).messages()), ["all of it", { n: 5 }]);

      inv = await session.begin();
      inv.compact({ before: 2, summary: [] });
      await inv.commit();
      assert.deepEqual(plain(session.messages()), [], "an empty view");
      await turns(session, 1);
      assert.deepEqual(plain(session.messages()), msgs(0, 2));
      assert.deepEqual(plain((await freshOpen(id)).messages()), msgs(0, 2));
    });

    test("several compactions in a row (in one invocation and across commits) each apply to the view before them", async () => {
      const { writer, reader, freshOpen } = await setup.stores();
      const id = "compact-repeat";
      const session = await writer.open(id);
      await turns(session, 5); // m0..m9, v5
      const views = { 5: plain(session.messages()) };

      // Two in one invocation: the second sees the first.
      let inv = await session.begin();
      inv.compact({ before: 3, summary: ["S1"] }); // S1 m3..m9
      inv.compact({ before: 2, summary: ["S2", "S2b"] }); // S2 S2b m4..m9
      assert.deepEqual(plain(inv.messages()), ["S2", "S2b", ...msgs(4, 10)]);
      const v6 = await inv.commit();
      views[v6] = ["S2", "S2b", ...msgs(4, 10)];

      await turns(session, 1, { state: false }); // numbered from the count (8): msg(8), msg(9)
      views[session.version] = [...views[v6], msg(8), msg(9)];

      inv = await session.begin();
      inv.compact({ before: 4, summary: ["S3"] });
      const v8 = await inv.commit();
      views[v8] = ["S3", ...views[v6].slice(4), msg(8), msg(9)];

      inv = await session.begin();
      inv.compact({ before: 1, summary: ["S4"] });
      inv.appendMessage("tail");
      const v9 = await inv.commit();
      views[v9] = ["S4", ...views[v8].slice(1), "tail"];
      await turns(session, 3, { state: false });
      const final = plain(session.messages());
      assert.deepEqual(final.slice(0, views[v9].length), views[v9]);
      assert.equal(final.length, views[v9].length + 6);

      for (const [v, expected] of Object.entries(views)) {
        assert.deepEqual(viewOf(await session.at(Number(v))).messages, expected, `at(${v})`);
      }
      const compacted = plain(await session.history()).filter((e) => e.type === "compacted");
      assert.deepEqual(
        compacted.map((e) => [e.version, e.before, e.data]),
        [
          [v6, 3, ["S1"]],
          [v6, 2, ["S2", "S2b"]],
          [v8, 4, ["S3"]],
          [v9, 1, ["S4"]],
        ],
      );
      assert.equal(plain(await session.history()).filter((e) => e.type === "message").length, 10 + 2 + 1 + 6, "every message event is kept");
      const r = await reader.open(id);
      await r.refresh();
      assert.deepEqual(plain(r.messages()), final);
      assert.deepEqual(plain((await freshOpen(id)).messages()), final);
    });

    test("a frozen messages() array read before the compaction is not mutated; a read after shows the new view", async () => {
      const { writer, reader } = await setup.stores();
      const id = "compact-frozen";
      const session = await writer.open(id);
      await turns(session, 4);
      const readerSession = await reader.open(id);
      const oldWriter = session.messages();
      const oldReader = readerSession.messages();
      const oldAgentRead = session.messages({ agent: "default" });
      assertDeepFrozen(oldWriter);
      const copy = plain(oldWriter);
      const inv = await session.begin();
      inv.compact({ before: 5, summary: [SUMMARY] });
      await inv.commit();
      await readerSession.refresh();
      for (const [what, old] of [["writer", oldWriter], ["reader", oldReader], ["writer (agent option)", oldAgentRead]]) {
        assert.deepEqual(plain(old), copy, `${what}: the array read before is unchanged`);
        assert.ok(Object.isFrozen(old));
      }
      const expected = [SUMMARY, ...msgs(5, 8)];
      assert.deepEqual(plain(session.messages()), expected);
      assert.deepEqual(plain(readerSession.messages()), expected);
      assert.notEqual(session.messages(), oldWriter);
      assertDeepFrozen(session.messages());
    });

    test("compact() with checkpoint(): the checkpointed version is compacted for every reader, and an abort afterwards keeps it; with interrupt() it is committed with the interrupt", async () => {
      const { writer, reader, freshOpen } = await setup.stores();
      const id = "compact-checkpoint";
      const session = await writer.open(id);
      await turns(session, 3);
      let inv = await session.begin();
      inv.compact({ before: 4, summary: ["CP"] });
      const v = await inv.checkpoint();
      const expected = ["CP", msg(4), msg(5)];
      const r = await reader.open(id);
      await r.refresh();
      assert.equal(r.version, v);
      assert.deepEqual(plain(r.messages()), expected, "a reader sees the checkpointed compaction");
      inv.compact({ before: 1, summary: ["lost"] });
      inv.appendMessage("lost too");
      await inv.abort();
      assert.deepEqual(plain((await freshOpen(id)).messages()), expected, "the abort discards only what was staged after the checkpoint");
      await session.refresh();
      assert.deepEqual(plain(session.messages()), expected);

      inv = await session.begin();
      inv.compact({ before: 2, summary: ["INT"] });
      const vi = await inv.interrupt("need input", { q: 1 });
      assert.equal(session.status, "interrupted");
      assert.deepEqual(plain(session.messages()), ["INT", msg(5)]);
      assertCompactedEvent((await session.history()).find((e) => e.type === "compacted" && e.version === vi), { version: vi, before: 2, summary: ["INT"] });
      inv = await session.begin({ resume: "yes" });
      inv.appendMessage("resumed");
      await inv.commit();
      assert.deepEqual(plain((await freshOpen(id)).messages()), ["INT", msg(5), "resumed"]);
    });

    test("compaction leaves state alone, and the summary's own messages take part in the tool-pair rule of later compactions", async () => {
      const { writer } = await setup.stores();
      const session = await writer.open("compact-summary-tools");
      await turns(session, 2);
      const state = plain(session.state());
      const call = { role: "assistant", content: null, tool_calls: [{ id: "call_in_summary", type: "function", function: { name: "f", arguments: "{}" } }] };
      const result = { role: "tool", tool_call_id: "call_in_summary", content: "r" };
      let inv = await session.begin();
      inv.appendMessage(result);
      // The summary holds the call whose result stays after it: the pair is intact.
      inv.compact({ before: 4, summary: ["S", call] });
      assert.deepEqual(plain(inv.messages()), ["S", call, result]);
      await inv.commit();
      assert.deepEqual(plain(session.state()), state, "state unchanged by compaction");
      inv = await session.begin();
      const error = thrown(() => inv.compact({ before: 2, summary: [] }), "a cut between the summary's call and its result");
      assertPathBefore(error, "summary call");
      assert.ok(error.message.includes("call_in_summary"), error.message);
      inv.compact({ before: 1, summary: ["T"] });
      inv.compact({ before: 3, summary: ["U"] });
      await inv.commit();
      assert.deepEqual(plain(session.messages()), ["U"]);
    });

    test("fork({ at }) of a version before the compaction has the originals; fork of the latest has the compacted view", async () => {
      const { writer } = await setup.stores();
      const session = await writer.open("compact-fork");
      await turns(session, 4);
      const inv = await session.begin();
      inv.compact({ before: 6, summary: ["F"] });
      const v = await inv.commit();
      const old = await session.fork({ id: "compact-fork-old", at: v - 1 });
      assert.deepEqual(plain(old.messages()), msgs(0, 8));
      const now = await session.fork({ id: "compact-fork-now" });
      assert.deepEqual(plain(now.messages()), ["F", msg(6), msg(7)]);
      await turns(now, 1);
      assert.deepEqual(plain(now.messages()), ["F", msg(6), msg(7), msg(3), msg(4)]);
      assert.deepEqual(plain(session.messages()), ["F", msg(6), msg(7)], "the source is unchanged");
    });

    // ------------------------------------------------------------------ the tool-pair rule
    for (const format of TOOL_FORMATS) {
      test(`tool pairs, ${format.name}: a cut between call and result is a ValidationError naming "${format.id}" (nothing staged, stored data unchanged); force: true allows it; cuts before the call or after the result are fine`, async () => {
        const { writer, reader, freshOpen } = await setup.stores();
        const id = `tools-${format.name}`;
        const session = await writer.open(id);
        const conversation = [QUESTION, format.call, format.result, ANSWER];
        await session.invoke((inv) => {
          for (const m of conversation) inv.appendMessage(m);
        });
        const before = await stored(session);

        // Cuts that keep the pair together (the whole pair on one side).
        for (const cut of [0, 1, 3, 4]) {
          const inv = await session.begin();
          inv.compact({ before: cut, summary: [SUMMARY] });
          assert.deepEqual(plain(inv.messages()), plain([SUMMARY, ...conversation.slice(cut)]), `cut at ${cut}`);
          await inv.abort();
        }

        // The cut between them: refused, nothing staged, the invocation goes on and commits other work.
        let inv = await session.begin();
        inv.appendMessage("other work");
        const error = thrown(() => inv.compact({ before: 2, summary: [SUMMARY] }), "compact() between a call and its result");
        assertPathBefore(error, format.name);
        assert.ok(error.message.includes(format.id), `the message names the call id ${format.id}: ${error.message}`);
        assert.deepEqual(plain(inv.messages()), plain([...conversation, "other work"]), "nothing of the refused compaction is staged");
        const withForceFalse = thrown(() => inv.compact({ before: 2, summary: [SUMMARY], force: false }), "force: false");
        assertPathBefore(withForceFalse, `${format.name}, force: false`);
        await inv.abort();
        assert.deepEqual(await stored(session), before, "stored data unchanged");

        inv = await session.begin();
        inv.appendMessage("other work");
        thrown(() => inv.compact({ before: 2, summary: [SUMMARY] }));
        const v = await inv.commit();
        assert.equal(v, before.version + 1);
        assert.deepEqual(plain(session.messages()), plain([...conversation, "other work"]));
        assert.ok(!(await session.history()).some((e) => e.type === "compacted"), "no compacted event");

        // force: true cuts there anyway.
        inv = await session.begin();
        inv.compact({ before: 2, summary: [SUMMARY], force: true });
        const vf = await inv.commit();
        const forced = plain([SUMMARY, format.result, ANSWER, "other work"]);
        assert.deepEqual(plain(session.messages()), forced);
        const r = await reader.open(id);
        await r.refresh();
        assert.deepEqual(plain(r.messages()), forced);
        assert.deepEqual(plain((await freshOpen(id)).messages()), forced);
        assertCompactedEvent((await session.history()).at(-1), { version: vf, before: 2, summary: [SUMMARY] });
      });
    }

    test("tool pairs: parallel calls in one message; the id named is the one whose result is after the cut; a result staged in the invocation counts", async () => {
      const { writer } = await setup.stores();
      const session = await writer.open("tools-parallel");
      const call = {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_A", type: "function", function: { name: "a", arguments: "{}" } },
          { id: "call_B", type: "function", function: { name: "b", arguments: "{}" } },
        ],
      };
      const resultA = { role: "tool", tool_call_id: "call_A", content: "A" };
      const resultB = { role: "tool", tool_call_id: "call_B", content: "B" };
      const anthropicCall = {
        role: "assistant",
        content: [
          { type: "tool_use", id: "toolu_X", name: "x", input: {} },
          { type: "tool_use", id: "toolu_Y", name: "y", input: {} },
        ],
      };
      const anthropicResults = {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_X", content: "x" },
          { type: "tool_result", tool_use_id: "toolu_Y", content: "y" },
        ],
      };
      await session.invoke((inv) => {
        for (const m of [QUESTION, call, resultA, resultB, anthropicCall]) inv.appendMessage(m);
      });
      const inv = await session.begin();
      // call_A and call_B are both answered after a cut at 2.
      let error = thrown(() => inv.compact({ before: 2, summary: [] }));
      assertPathBefore(error, "cut at 2");
      assert.match(error.message, /call_A|call_B/);
      // A cut at 3 leaves only call_B's result after it.
      error = thrown(() => inv.compact({ before: 3, summary: [] }));
      assertPathBefore(error, "cut at 3");
      assert.ok(error.message.includes("call_B"), error.message);
      assert.ok(!error.message.includes("call_A"), `call_A is answered before the cut: ${error.message}`);
      // Cut at 5 (after the Anthropic call) is fine while its result is not there yet ...
      inv.compact({ before: 4, summary: ["S"] });
      assert.deepEqual(plain(inv.messages()), ["S", anthropicCall]);
      // ... but once the result is staged, a cut between them is refused (as the invocation sees them).
      inv.appendMessage(anthropicResults);
      error = thrown(() => inv.compact({ before: 2, summary: [] }));
      assertPathBefore(error, "staged result");
      assert.match(error.message, /toolu_X|toolu_Y/);
      assert.deepEqual(plain(inv.messages()), ["S", anthropicCall, anthropicResults]);
      inv.compact({ before: 3, summary: ["T"] });
      await inv.commit();
      assert.deepEqual(plain(session.messages()), ["T"]);
    });

    test("tool pairs: messages of no known shape never block a cut (strings, numbers, literals, arrays, objects without these fields, look-alikes)", async () => {
      const { writer } = await setup.stores();
      const session = await writer.open("tools-unknown");
      const call = { role: "assistant", content: null, tool_calls: [{ id: "call_U", type: "function", function: { name: "u", arguments: "{}" } }] };
      const unknown = [
        call,
        "plain text",
        '{"role":"tool","tool_call_id":"call_U","content":"a string holding JSON text"}',
        42,
        -0.5,
        true,
        null,
        [1, "two", { three: 3 }],
        [{ role: "tool", tool_call_id: "call_U" }],
        {},
        { role: "user", content: "hi" },
        { role: "assistant", content: [{ type: "text", text: "hello" }] },
        { call_id: "call_U", output: "no type field" },
        { callId: "call_U", output: "no type field" },
        { toolUseId: "call_U", note: "not inside a toolResult block" },
        { id: "call_U" },
        { deep: { nested: { tool_call_id: "call_U" } } },
        { type: "message", role: "assistant", content: [{ type: "output_text", text: "done" }] },
      ];
      await session.invoke((inv) => {
        for (const m of unknown) inv.appendMessage(m);
      });
      for (let cut = 0; cut <= unknown.length; cut++) {
        const inv = await session.begin();
        try {
          inv.compact({ before: cut, summary: ["S"] });
        } catch (error) {
          assert.fail(`a cut at ${cut} was refused: ${error.name}: ${error.message}`);
        }
        assert.deepEqual(plain(inv.messages()), plain(["S", ...unknown.slice(cut)]));
        await inv.abort();
      }
    });

    test("tool pairs: the refusal names the id as written (quotes, backslashes, control characters, non-ASCII; a lone surrogate as its escape)", async () => {
      const { writer } = await setup.stores();
      const call = (id) => ({ role: "assistant", content: null, tool_calls: [{ id, type: "function", function: { name: "f", arguments: "{}" } }] });
      const result = (id) => ({ role: "tool", tool_call_id: id, content: "r" });
      for (const id of ['call_"quoted"\\back', "call_é🎉", "call_\u0001ctl", "call_\u2028ls", "call_\ud800lone"]) {
        const session = await writer.open(`ids-${JSON.stringify(id)}`);
        await session.invoke((inv) => {
          inv.appendMessage(call(id));
          inv.appendMessage(result(id));
        });
        const inv = await session.begin();
        const error = thrown(() => inv.compact({ before: 1, summary: [] }), `cut inside the pair ${JSON.stringify(id)}`);
        assertPathBefore(error, JSON.stringify(id));
        // A lone surrogate has no UTF-8 form, so messages (built in Rust) carry it as its JSON escape.
        const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
        const written = id.replace(lone, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
        assert.ok(error.message.includes(written), `the message names ${JSON.stringify(id)} as written: ${JSON.stringify(error.message)}`);
        await inv.abort();
      }
    });

    test("tool pairs: ids are compared exactly: two calls whose ids differ only in a lone surrogate are two calls, and a cut between the pairs is fine", async () => {
      const { writer } = await setup.stores();
      const call = (id) => ({ role: "assistant", content: null, tool_calls: [{ id, type: "function", function: { name: "f", arguments: "{}" } }] });
      const result = (id) => ({ role: "tool", tool_call_id: id, content: "r" });
      const session = await writer.open("ids-lone-surrogates");
      await session.invoke((inv) => {
        for (const m of [call("c\ud800"), result("c\ud800"), call("c\udbff"), result("c\udbff")]) inv.appendMessage(m);
      });
      const inv = await session.begin();
      try {
        inv.compact({ before: 2, summary: [] });
      } catch (error) {
        assert.fail(`a cut between two complete pairs was refused: ${error.message}`);
      }
      assert.deepEqual(plain(inv.messages()), plain([call("c\udbff"), result("c\udbff")]));
      await inv.abort();
    });

    test("tool pairs: an id that a later turn uses again (call_0 in every reply) pairs turn by turn: a cut between the turns is fine, a cut inside either pair is refused", async () => {
      const { writer } = await setup.stores();
      const call = (id) => ({ role: "assistant", content: null, tool_calls: [{ id, type: "function", function: { name: "f", arguments: "{}" } }] });
      const result = (id, n) => ({ role: "tool", tool_call_id: id, content: `r${n}` });
      const log = [call("call_0"), result("call_0", 1), call("call_0"), result("call_0", 2)];
      const session = await writer.open("ids-used-again");
      await session.invoke((inv) => {
        for (const m of log) inv.appendMessage(m);
      });
      for (const before of [1, 3]) {
        const inv = await session.begin();
        const error = thrown(() => inv.compact({ before, summary: [] }), `cut at ${before}, inside a pair`);
        assertPathBefore(error, `cut at ${before}`);
        assert.ok(error.message.includes('"call_0"'), `the message names the call: ${error.message}`);
        assert.deepEqual(plain(inv.messages()), plain(log), `cut at ${before}: nothing staged`);
        await inv.abort();
      }
      const inv = await session.begin();
      try {
        inv.compact({ before: 2, summary: [] });
      } catch (error) {
        assert.fail(`a cut between two turns that both call "call_0" was refused: ${error.message}`);
      }
      await inv.commit();
      assert.deepEqual(plain((await session.refresh()).messages()), plain(log.slice(2)));
    });

    // ------------------------------------------------------------------ bad input
    test("bad before: negative, non-integer, not a number, missing or past the message count is a ValidationError with path \"before\"; nothing staged", async () => {
      const { writer } = await setup.stores();
      const session = await writer.open("bad-before");
      await turns(session, 2); // 4 messages
      const inv = await session.begin();
      inv.appendMessage("staged"); // 5 as the invocation sees them
      const paths = {};
      for (const [what, before] of [
        ["-1", -1],
        ["1.5", 1.5],
        ["NaN", Number.NaN],
        ["Infinity", Infinity],
        ['"2"', "2"],
        ["null", null],
        ["undefined", undefined],
        ["6 (past the 5 messages)", 6],
        ["100", 100],
      ]) {
        const error = thrown(() => inv.compact({ before, summary: [SUMMARY] }), `compact({ before: ${what} })`);
        assertError(error, ValidationError, "INVALID_INPUT", `before: ${what}`);
        paths[what] = error.path;
        assert.deepEqual(plain(inv.messages()), [...msgs(0, 4), "staged"], `before: ${what}: nothing staged`);
      }
      const missing = thrown(() => inv.compact({ summary: [SUMMARY] }), "compact() without before");
      assertError(missing, ValidationError, "INVALID_INPUT", "no before");
      paths["(missing)"] = missing.path;
      assert.deepEqual(paths, Object.fromEntries(Object.keys(paths).map((what) => [what, "before"])), "ValidationError.path of each bad before");
      inv.compact({ before: 5, summary: ["ok"] }); // exactly the count is fine
      assert.deepEqual(plain(inv.messages()), ["ok"]);
      await inv.commit();
      assert.deepEqual(plain(session.messages()), ["ok"]);
    });

    test("bad summary: not an array, or holding what JSON cannot carry, is a ValidationError naming summary[i]; a summary message over maxMessageBytes is a LimitExceededError", async () => {
      const { writer } = await setup.stores({ limits: { maxMessageBytes: 256 } });
      const session = await writer.open("bad-summary");
      await turns(session, 2);
      const before = await stored(session);
      const inv = await session.begin();
      for (const [what, summary] of [
        ["a string", "summary"],
        ["an object", { 0: "a" }],
        ["null", null],
        ["undefined", undefined],
        ["a number", 3],
      ]) {
        const error = thrown(() => inv.compact({ before: 1, summary }), `summary: ${what}`);
        assertError(error, ValidationError, "INVALID_INPUT", `summary: ${what}`);
        assert.equal(error.path, "summary", `summary: ${what}: path`);
      }
      for (const [what, summary, path] of [
        ["a function at 1", ["ok", () => 1], /^summary\[1\]$/],
        ["a function nested in 0", [{ a: [1, () => 1] }], /^summary\[0\]/],
        ["a BigInt at 2", ["a", "b", 10n], /^summary\[2\]$/],
        ["undefined at 0", [undefined], /^summary\[0\]$/],
        ["NaN at 1", [1, Number.NaN], /^summary\[1\]$/],
        ["a symbol at 0", [Symbol("s")], /^summary\[0\]$/],
        // Read through a getter that throws: an error of this call, not an exception through the engine.
        ["an element whose getter throws", Object.defineProperty(["a"], 1, { get() { throw new Error("getter"); }, enumerable: true }), /^summary$/],
      ]) {
        const error = thrown(() => inv.compact({ before: 1, summary }), `summary: ${what}`);
        assertError(error, ValidationError, "INVALID_INPUT", `summary: ${what}`);
        assert.match(error.path ?? "", path, `summary: ${what}: path ${JSON.stringify(error.path)}`);
        assert.ok(error.message.includes(error.path), `summary: ${what}: the message names the path: ${error.message}`);
      }
      const big = { role: "system", content: "x".repeat(400) };
      const error = thrown(() => inv.compact({ before: 1, summary: ["short", big] }), "a summary message over the limit");
      assertError(error, LimitExceededError, "LIMIT_EXCEEDED", "a summary message over the limit");
      assert.equal(error.limit, 256);
      assert.ok(error.actual > 256, `actual ${error.actual}`);
      assert.deepEqual(plain(inv.messages()), msgs(0, 4), "nothing staged by the refused calls");
      await inv.commit();
      const after = await stored(session);
      assert.equal(after.version, before.version + 1);
      assert.deepEqual(after.messages, before.messages);
      assert.ok(!after.history.some((e) => e.type === "compacted"));
    });

    test("bad options: not an object, a bad agent name, a non-boolean force are ValidationErrors; nothing staged", async () => {
      const { writer } = await setup.stores();
      const session = await writer.open("bad-options");
      await turns(session, 1);
      const inv = await session.begin();
      for (const [what, call] of [
        ["no options", () => inv.compact()],
        ["null", () => inv.compact(null)],
        ["a number", () => inv.compact(2)],
        ["a string", () => inv.compact("before")],
        ['agent ""', () => inv.compact({ before: 0, summary: [], agent: "" })],
        ["agent of 257 bytes", () => inv.compact({ before: 0, summary: [], agent: "a".repeat(257) })],
        ["agent 5", () => inv.compact({ before: 0, summary: [], agent: 5 })],
        ['force "yes"', () => inv.compact({ before: 0, summary: [], force: "yes" })],
        ["force 1", () => inv.compact({ before: 0, summary: [], force: 1 })],
      ]) {
        const error = thrown(call, `compact(${what})`);
        assertError(error, ValidationError, "INVALID_INPUT", what);
      }
      // A compaction of an agent with no messages yet: before 0 gives it the summary.
      inv.compact({ before: 0, summary: ["first"], agent: "newcomer" });
      assert.deepEqual(plain(inv.messages()), msgs(0, 2));
      await inv.commit();
      assert.deepEqual(plain(session.messages({ agent: "newcomer" })), ["first"]);
      assert.deepEqual(plain(session.messages()), msgs(0, 2));
    });

    test("compact() after commit, abort or interrupt is an InvalidTransitionError", async () => {
      const { writer } = await setup.stores();
      const session = await writer.open("after-end");
      await turns(session, 1);
      for (const end of ["commit", "abort", "interrupt"]) {
        if (session.status === "interrupted") {
          const inv = await session.begin({ resume: "ok" });
          await inv.commit();
        }
        const inv = await session.begin();
        if (end === "interrupt") await inv.interrupt("ask");
        else await inv[end]();
        const error = thrown(() => inv.compact({ before: 1, summary: [] }), `compact() after ${end}`);
        assert.ok(error instanceof InvalidTransitionError, `after ${end}: got ${error?.name}: ${error?.message}`);
        assert.equal(error.code, "INVALID_TRANSITION");
      }
      assert.deepEqual(plain(session.messages()), msgs(0, 2));
    });

    // ------------------------------------------------------------------ prune
    test("prune() takes the guard: ConcurrencyError while an invocation holds the session (this store or another), works once it ends", async () => {
      const { writer, reader } = await setup.stores();
      const id = "prune-guard";
      const session = await writer.open(id);
      await turns(session, 7);
      const before = await stored(session);
      const inv = await session.begin();
      inv.appendMessage("held");
      for (const [what, s] of [["the holding session", session], ["another Session of the reader store", await reader.open(id)]]) {
        const error = await rejection(callAsync(() => s.prune({ before: 4 }), `prune() on ${what}`), `prune() on ${what}`);
        assertError(error, ConcurrencyError, "CONCURRENT_INVOCATION", `prune() on ${what}`);
        assert.equal(typeof error.holder, "string");
      }
      assert.deepEqual(viewOf(await session.at(1)).messages, msgs(0, 2), "nothing pruned");
      const v = await inv.commit();
      assert.equal(v, before.version + 1);
      const n = await session.prune({ before: 4 });
      assert.ok(n > 0, `prune removed ${n} records`);
      assert.deepEqual(plain(session.messages()), [...before.messages, "held"]);
      // The guard was released: a turn begins at once.
      await turns(session, 1);
    });

    test("prune({ before }) after many turns with snapshots: returns a count > 0; versions below the kept range are a NotFoundError saying pruned; at(before), history({ from: before }) and later are unchanged; fresh loads agree; new turns work", async () => {
      const { writer, reader, freshOpen } = await setup.stores();
      const id = "prune-many";
      const session = await writer.open(id);
      await turns(session, 20); // versions 1..20, snapshots every 3
      const readerSession = await reader.open(id);
      const latest = session.version;
      const views = [];
      const histories = [];
      for (let v = 0; v <= latest; v++) {
        views.push(viewOf(await session.at(v)));
        histories.push(plain(await session.history({ from: v })));
      }
      const rangeBefore = plain(await session.history({ from: 12, to: 15 }));
      const BEFORE = 12;

      const n = await callAsync(() => session.prune({ before: BEFORE }), "prune()");
      assert.equal(typeof n, "number");
      assert.ok(Number.isInteger(n) && n > 0, `prune returned ${n}`);
      assert.equal(session.version, latest, "prune commits no version");

      for (const [name, s] of [["writer", session], ["reader (opened before the prune)", readerSession], ["fresh store", await freshOpen(id)]]) {
        await assertPrunedBelow(s, BEFORE, latest, views, histories, name);
        assert.deepEqual(plain(await s.history({ from: 12, to: 15 })), rangeBefore, `${name}: history({ from: 12, to: 15 })`);
        await s.refresh();
        assert.deepEqual(plain(s.messages()), views[latest].messages, `${name}: messages()`);
        assert.deepEqual(plain(s.state()), views[latest].state, `${name}: state()`);
      }
      // at(1) is certainly gone: nothing can rebuild it.
      assertPruned(await rejection(session.at(1), "at(1)"), "at(1)");
      assertPruned(await rejection(session.history({ from: 1 }), "history({ from: 1 })"), "history({ from: 1 })");
      assertPruned(await rejection(session.history({ from: 0, to: 3 }), "history({ from: 0, to: 3 })"), "history({ from: 0, to: 3 })");
      // A `to` below the kept range, with `from` left to it, names the pruned version too.
      assertPruned(await rejection(session.history({ to: 3 }), "history({ to: 3 })"), "history({ to: 3 })");

      // Pruning again with the same bound removes nothing more.
      assert.equal(await session.prune({ before: BEFORE }), 0, "a second prune with the same before");
      assert.equal(await session.prune({ before: 0 }), 0, "prune({ before: 0 }) removes nothing");

      // New turns work and extend the kept history.
      await turns(session, 4);
      assert.deepEqual(plain(session.messages()), msgs(0, 48));
      const h = plain(await session.history({ from: BEFORE }));
      assert.deepEqual(h.slice(0, histories[BEFORE].length), histories[BEFORE]);
      assert.deepEqual(h.slice(histories[BEFORE].length).map((e) => e.version), [21, 21, 21, 22, 22, 22, 23, 23, 23, 24, 24, 24]);
      const fresh = await freshOpen(id);
      assert.deepEqual(plain(fresh.messages()), msgs(0, 48));
      assert.deepEqual(viewOf(await fresh.at(BEFORE)), views[BEFORE]);
      assertPruned(await rejection(fresh.at(2), "fresh at(2)"), "fresh at(2)");
    });

    test("prune({ before: latest }) right after a compaction: the stored records and bytes shrink to the compacted view; the compacted view, at(latest) and new turns work; older versions are pruned", async (t) => {
      const { writer, reader, kv, freshOpen } = await setup.stores();
      const id = "prune-compacted";
      const session = await writer.open(id);
      const body = (i) => ({ role: i % 2 ? "assistant" : "user", content: `message ${i} `.padEnd(200, "lorem ipsum ") });
      for (let t = 0; t < 30; t++) {
        await session.invoke((inv) => {
          inv.appendMessage(body(2 * t));
          inv.appendMessage(body(2 * t + 1));
          inv.setState("turn", t);
        });
      }
      const inv = await session.begin();
      inv.compact({ before: 58, summary: [SUMMARY] });
      const latest = await inv.commit();
      const compacted = plain([SUMMARY, body(58), body(59)]);
      assert.deepEqual(plain(session.messages()), compacted);
      const atLatest = viewOf(await session.at(latest));
      const historyLatest = plain(await session.history({ from: latest }));
      const sizeBefore = kv ? await kvContents(kv) : null;

      const n = await session.prune({ before: latest });
      assert.ok(n > 0, `prune returned ${n}`);
      if (kv) {
        const sizeAfter = await kvContents(kv);
        const report = `before ${JSON.stringify(sizeBefore)}, after ${JSON.stringify(sizeAfter)}, prune returned ${n}`;
        t.diagnostic(`stored in the HostKv: ${report}`);
        assert.ok(sizeAfter.bytes < sizeBefore.bytes, `stored bytes shrink: ${report}`);
        assert.ok(sizeAfter.bytes * 4 < sizeBefore.bytes, `stored bytes shrink to a fraction: ${report}`);
        assert.ok(sizeAfter.records < sizeBefore.records, `fewer records: ${report}`);
        assert.equal(sizeBefore.records - sizeAfter.records <= n, true, `prune counts at least the records that went: ${report}`);
      }
      assert.deepEqual(viewOf(await session.at(latest)), atLatest);
      assert.deepEqual(plain(await session.history({ from: latest })), historyLatest);
      assertCompactedEvent(historyLatest.find((e) => e.type === "compacted"), { version: latest, before: 58, summary: [SUMMARY] });
      assertPruned(await rejection(session.at(latest - 1), `at(${latest - 1})`), `at(${latest - 1})`);
      assertPruned(await rejection(session.history({ from: 1 }), "history({ from: 1 })"), "history({ from: 1 })");
      for (const s of [await reader.open(id), await freshOpen(id)]) {
        await s.refresh();
        assert.deepEqual(plain(s.messages()), compacted);
        assert.deepEqual(plain(s.state()), { turn: 29 });
        assertPruned(await rejection(s.at(5), "at(5)"), "at(5)");
      }
      await turns(session, 2);
      const grown = [...compacted, ...msgs(3, 7)];
      assert.deepEqual(plain(session.messages()), grown);
      assert.deepEqual(plain((await freshOpen(id)).messages()), grown);
    });

    test("prune by another store: the writer's at() and history() of pruned versions are a NotFoundError saying pruned, fork at one too; its session goes on", async (t) => {
      const { writer, reader, freshOpen } = await setup.stores();
      const id = "prune-other";
      const session = await writer.open(id);
      await turns(session, 12);
      for (let v = 0; v <= 12; v++) await session.at(v); // the writer has read every version
      const views = [];
      for (let v = 0; v <= 12; v++) views.push(viewOf(await session.at(v)));
      const n = await (await reader.open(id)).prune({ before: 10 });
      assert.ok(n > 0);
      assertPruned(await rejection(session.at(1), "writer at(1)"), "writer at(1)");
      assertPruned(await rejection(session.history({ from: 2 }), "writer history({ from: 2 })"), "writer history({ from: 2 })");
      assertPruned(await rejection(session.fork({ id: "forked-from-pruned", at: 1 }), "fork at a pruned version"), "fork at a pruned version");
      for (let v = 10; v <= 12; v++) assert.deepEqual(viewOf(await session.at(v)), views[v]);
      const all = await prunedOr(session.history(), "history() without from");
      t.diagnostic(`history() without options after a prune: ${all === "pruned" ? "NotFoundError (pruned)" : `${all.length} events from version ${all[0]?.version}`}`);
      await turns(session, 1);
      assert.deepEqual(plain((await freshOpen(id)).messages()), msgs(0, 26));
    });

    if (setup.name !== "memory") {
      test("a cold load after a compaction (once the next snapshot is written) reads bytes in proportion to the compacted view, not the session's age", async (t) => {
        const { writer, kv } = await setup.stores();
        let readBytes = 0;
        let reads = 0;
        const counting = {
          capabilities: kv.capabilities,
          async get(key) {
            const entry = await kv.get(key);
            reads++;
            if (entry) readBytes += typeof entry.value === "string" ? Buffer.from(entry.value, "base64").length : entry.value.length;
            return entry;
          },
          put: (...a) => kv.put(...a),
          delete: (...a) => kv.delete(...a),
          list: (...a) => kv.list(...a),
        };
        const coldLoad = async () => {
          readBytes = 0;
          reads = 0;
          const store = await SessionStore.kv(counting, { owner: "cold" });
          const s = await store.open(id, { create: false });
          const count = s.messages().length;
          return { bytes: readBytes, reads, count };
        };
        const id = "cold-load";
        const session = await writer.open(id);
        const body = (i) => ({ role: "user", content: `m${i} `.padEnd(200, "x") });
        for (let turn = 0; turn < 30; turn++) {
          await session.invoke((inv) => {
            inv.appendMessage(body(2 * turn));
            inv.appendMessage(body(2 * turn + 1));
          });
        }
        const before = await coldLoad();
        const inv = await session.begin();
        inv.compact({ before: 58, summary: ["S"] });
        await inv.commit();
        for (let turn = 0; turn < 2 * SNAPSHOT_EVERY; turn++) await session.invoke((i) => i.appendMessage(`t${turn}`));
        const after = await coldLoad();
        t.diagnostic(`cold load before compaction: ${JSON.stringify(before)}; after compaction and ${2 * SNAPSHOT_EVERY} turns: ${JSON.stringify(after)}`);
        assert.equal(before.count, 60);
        assert.equal(after.count, 3 + 2 * SNAPSHOT_EVERY);
        assert.ok(after.bytes * 4 < before.bytes, `bytes read by a cold load: before ${before.bytes}, after ${after.bytes}`);
      });
    }

    test("prune() of an interrupted session (no invocation holds it) works, and the pending interrupt stays", async () => {
      const { writer, freshOpen } = await setup.stores();
      const id = "prune-interrupted";
      const session = await writer.open(id);
      await turns(session, 7);
      const inv = await session.begin();
      inv.appendMessage("question");
      const v = await inv.interrupt("approve?", { amount: 3 });
      const view = viewOf(await session.at(v));
      const n = await callAsync(() => session.prune({ before: v }), "prune() of an interrupted session");
      assert.ok(n > 0, `prune returned ${n}`);
      assert.equal(session.status, "interrupted");
      assert.deepEqual(plain(session.pendingInterrupt()), { reason: "approve?", payload: { amount: 3 } });
      assert.deepEqual(viewOf(await session.at(v)), view);
      const fresh = await freshOpen(id);
      assert.equal(fresh.status, "interrupted");
      assert.deepEqual(plain(fresh.pendingInterrupt()), { reason: "approve?", payload: { amount: 3 } });
      const resumed = await session.begin({ resume: "yes" });
      resumed.appendMessage("approved");
      await resumed.commit();
      assert.deepEqual(plain(session.messages()), [...msgs(0, 14), "question", "approved"]);
    });

    test("prune() of a closed session works and leaves it closed: an archive stays small; a begin is still a SessionClosedError", async () => {
      const { writer, reader, freshOpen } = await setup.stores();
      const id = "prune-closed";
      const session = await writer.open(id);
      await turns(session, 8);
      await session.close();
      const closedAt = session.version;
      const view = viewOf(await session.at(closedAt));
      // Pruned by the reader (another process, on the two-store setup).
      const pruner = reader === writer ? session : await reader.open(id);
      const n = await callAsync(() => pruner.prune({ before: closedAt }), "prune() of a closed session");
      assert.ok(n > 0, `prune returned ${n}`);
      for (const [name, s] of [["writer", session], ["fresh store", await freshOpen(id)]]) {
        await s.refresh();
        assert.equal(s.status, "closed", `${name}: status`);
        assert.equal(s.version, closedAt, `${name}: a prune commits no version`);
        assert.equal(s.expiresAt, null, `${name}: a closed session never expires`);
        assert.deepEqual(viewOf(await s.at(closedAt)), view, `${name}: at(closed version)`);
        assertPruned(await rejection(s.at(1), `${name}: at(1)`), `${name}: at(1)`);
        const error = await rejection(s.begin(), `${name}: begin()`);
        assertError(error, SessionClosedError, "SESSION_CLOSED", `${name}: begin() on the pruned closed session`);
        assert.ok(error instanceof InvalidTransitionError);
      }
      assert.equal(await session.prune({ before: 2 }), 0, "a prune below the kept range removes nothing");
    });

    test("while a prune of a closed session holds its lease, begin, close and invoke on every store get SessionClosedError, not ConcurrencyError (audit55)", async () => {
      let onLease = null;
      const { writer, reader } = await setup.stores({
        onEvent: (event) => {
          if (event.type === "lease.acquired" && onLease) {
            const call = onLease;
            onLease = null;
            call();
          }
        },
      });
      const id = "prune-closed-busy";
      const session = await writer.open(id);
      await turns(session, 4);
      await session.close();
      const same = await writer.open(id);
      const other = await reader.open(id);
      let calls = [];
      onLease = () => {
        calls = [
          ["begin (this store)", same.begin()],
          ["close (this store)", same.close()],
          ["invoke (this store)", same.invoke(() => {})],
          ["begin (the other store)", other.begin()],
        ];
      };
      assert.ok((await session.prune({ before: session.version })) > 0);
      assert.equal(calls.length, 4, "the calls were made while the prune held its lease");
      for (const [what, call] of calls) assertError(await rejection(call, what), SessionClosedError, "SESSION_CLOSED", what);
    });

    test("a prune({ before: 0 }) takes no lease, at version 0 too", async () => {
      const events = [];
      const { writer } = await setup.stores({ onEvent: (event) => events.push(event.type) });
      for (const [id, count] of [["prune-zero-empty", 0], ["prune-zero", 3]]) {
        const session = await writer.open(id);
        await turns(session, count);
        events.length = 0;
        assert.equal(await session.prune({ before: 0 }), 0, id);
        assert.deepEqual(events, [], `${id}: no lease taken`);
      }
    });

    test("a prune past the latest version, or with nothing to prune, takes no lease and writes nothing: another store's begin meanwhile is not refused", async () => {
      const events = [];
      const { writer, kv } = await setup.stores({ onEvent: (event) => events.push(event.type) });
      const id = "prune-refused";
      const session = await writer.open(id);
      await turns(session, 8);
      assert.ok((await session.prune({ before: 6 })) > 0);
      const stored = async () => {
        if (!kv) return null;
        const entries = [];
        for (const key of (await kv.list("")).keys) entries.push([key, (await kv.get(key))?.version]);
        return entries;
      };
      const before = await stored();
      events.length = 0;
      const latest = session.version;
      for (const past of [latest + 1, 1e9]) {
        const error = await rejection(session.prune({ before: past }), `prune({ before: ${past} })`);
        assertError(error, NotFoundError, "NOT_FOUND", `prune({ before: ${past} })`);
        assert.match(error.message, new RegExp(`has no version ${past}; its latest version is ${latest}`));
      }
      for (const below of [0, 3, 6]) assert.equal(await session.prune({ before: below }), 0, `prune({ before: ${below} }) at or below the kept range`);
      assert.deepEqual(events, [], "no lease taken, nothing written (onEvent)");
      assert.deepEqual(await stored(), before, "no record written (the KV's versions)");
    });

    test("prune({ before: latest }) without a compaction keeps the whole view; the count returned is the number of records that went", async () => {
      const { writer, kv, freshOpen } = await setup.stores();
      const id = "prune-latest";
      const session = await writer.open(id);
      await turns(session, 8);
      await turns(session, 2, { agent: "planner" });
      const keysOf = async () => (kv ? (await kv.list("")).keys : null);
      const keysBefore = await keysOf();
      const latest = session.version;
      const view = viewOf(await session.at(latest));
      const n = await session.prune({ before: latest });
      assert.ok(n > 0);
      if (kv) {
        const keysAfter = new Set(await keysOf());
        const gone = keysBefore.filter((key) => !keysAfter.has(key));
        assert.equal(n, gone.length, `prune() returned ${n}; records that went: ${gone.length} (${gone.join(", ")})`);
      }
      const fresh = await freshOpen(id);
      assert.deepEqual(plain(fresh.messages()), msgs(0, 16));
      assert.deepEqual(plain(fresh.messages({ agent: "planner" })), msgs(0, 4));
      assert.deepEqual(plain(fresh.state({ agent: "planner" })), { turn: 10 });
      assert.deepEqual(viewOf(await fresh.at(latest)), view);
      assert.deepEqual(viewOf(await fresh.at(latest), "planner"), viewOf(await session.at(latest), "planner"));
      assertPruned(await rejection(fresh.at(latest - 1), `at(${latest - 1})`), `at(${latest - 1})`);
      const h = plain(await fresh.history({ from: latest }));
      assert.deepEqual(h.map((e) => `${e.version}:${e.type}`), [`${latest}:message`, `${latest}:message`, `${latest}:state.set`]);
      await turns(session, 1);
      assert.deepEqual(plain((await freshOpen(id)).messages()), msgs(0, 18));
    });

    test("prune() with before above the version is a NotFoundError; a bad before is a ValidationError; nothing is removed", async () => {
      const { writer, kv } = await setup.stores();
      const session = await writer.open("prune-bad");
      await turns(session, 5);
      const before = await stored(session);
      const size = kv ? await kvContents(kv) : null;
      const above = await rejection(callAsync(() => session.prune({ before: 6 }), "prune({ before: 6 })"), "prune({ before: 6 })");
      assertError(above, NotFoundError, "NOT_FOUND", "prune above the version");
      for (const [what, options] of [
        ["before -1", { before: -1 }],
        ["before 1.5", { before: 1.5 }],
        ['before "3"', { before: "3" }],
        ["before NaN", { before: Number.NaN }],
        ["before Infinity", { before: Infinity }],
        ["before null", { before: null }],
        ["no before", {}],
        ["no options", undefined],
      ]) {
        const error = await rejection(callAsync(() => session.prune(options), `prune(${what})`), `prune(${what})`);
        assertError(error, ValidationError, "INVALID_INPUT", `prune(${what})`);
      }
      assert.deepEqual(await stored(session), before);
      if (kv) assert.deepEqual(await kvContents(kv), size, "no record removed");
      for (let v = 0; v <= 5; v++) await session.at(v);
    });
  });
}

/**
 * After prune({ before }): every version at or above `before` reads as it did (`views`, `histories`
 * captured before the prune); below it, a version is either unchanged or a NotFoundError saying it
 * was pruned, and the pruned ones are all below the kept ones.
 */
async function assertPrunedBelow(session, before, latest, views, histories, name) {
  let keptFrom;
  for (let v = 0; v < before; v++) {
    const view = await prunedOr(session.at(v), `${name}: at(${v})`);
    const history = await prunedOr(session.history({ from: v }), `${name}: history({ from: ${v} })`);
    if (view === "pruned") {
      assert.equal(keptFrom, undefined, `${name}: at(${v}) is pruned but at(${keptFrom}) below it was kept`);
      assert.equal(history, "pruned", `${name}: at(${v}) is pruned, so history({ from: ${v} }) is too`);
    } else {
      keptFrom ??= v;
      assert.deepEqual(viewOf(view), views[v], `${name}: at(${v}) kept unchanged`);
      assert.deepEqual(plain(history), histories[v], `${name}: history({ from: ${v} }) kept unchanged`);
    }
  }
  for (let v = before; v <= latest; v++) {
    assert.deepEqual(viewOf(await session.at(v)), views[v], `${name}: at(${v}) unchanged`);
    assert.deepEqual(plain(await session.history({ from: v })), histories[v], `${name}: history({ from: ${v} }) unchanged`);
  }
}

/** `kv` whose deletes wait until `open()`; `deleteStarted` resolves at the first one. */
function deletesHeld(kv) {
  let open;
  const gate = new Promise((resolve) => (open = resolve));
  let deleting;
  const deleteStarted = new Promise((resolve) => (deleting = resolve));
  const gated = {
    capabilities: kv.capabilities,
    get: (...a) => kv.get(...a),
    put: (...a) => kv.put(...a),
    list: (...a) => kv.list(...a),
    async delete(...a) {
      deleting();
      await gate;
      return kv.delete(...a);
    },
  };
  return { gated, deleteStarted, open };
}

describe("two prunes at the latest version, the second while the first deletes", () => {
  test("the first prune's deletes keep the snapshot the second wrote at the same version (the head names it); the session reads back whole", async () => {
    const kv = memoryKv();
    // The first pruner's deletes wait: it has written its snapshot and head and given the lease back.
    const { gated, deleteStarted, open } = deletesHeld(kv);
    const first = await SessionStore.kv(gated, { owner: "first", snapshotEvery: SNAPSHOT_EVERY });
    const second = await SessionStore.kv(kv, { owner: "second", snapshotEvery: SNAPSHOT_EVERY });
    const id = "two-prunes";
    const session = await first.open(id);
    await turns(session, 10);
    const latest = session.version;
    const view = viewOf(await session.at(latest));
    const pruning = session.prune({ before: latest });
    pruning.catch(() => {});
    await Promise.race([deleteStarted, pruning]);
    // The second prune, at the same version, from another store: it writes its own snapshot of it.
    const again = await second.open(id);
    assert.ok((await again.prune({ before: latest })) > 0, "the second prune replaced the first one's snapshot");
    open();
    await pruning;
    const fresh = await (await SessionStore.kv(kv, { owner: "fresh" })).open(id, { create: false });
    assert.equal(fresh.version, latest);
    assert.deepEqual(viewOf(await fresh.at(latest)), view);
    assert.deepEqual(plain(fresh.messages()), msgs(0, 20));
    await fresh.invoke((inv) => inv.appendMessage("after"));
    assert.equal((await (await SessionStore.kv(kv, { owner: "fresh2" })).open(id)).messages().at(-1), "after");
  });
});

describe("prune and a turn that runs while its records are being deleted", () => {
  test("a turn from another store that commits while prune() deletes keeps every record it wrote; the kept versions and the new one read back", async (t) => {
    const kv = memoryKv();
    const { gated, deleteStarted, open } = deletesHeld(kv);
    const pruner = await SessionStore.kv(gated, { owner: "pruner", snapshotEvery: SNAPSHOT_EVERY });
    const other = await SessionStore.kv(kv, { owner: "other", snapshotEvery: SNAPSHOT_EVERY });
    const id = "prune-while-turn";
    const session = await pruner.open(id);
    await turns(session, 10);
    const latest = session.version;
    const view = viewOf(await session.at(latest));
    const pruning = session.prune({ before: latest });
    pruning.catch(() => {});
    await Promise.race([deleteStarted, pruning]);
    // prune() is deleting (or already done): a turn from another store, three of them (a snapshot among them).
    const otherSession = await other.open(id);
    const outcomes = [];
    for (let k = 0; k < 3; k++) {
      try {
        await turns(otherSession, 1);
        outcomes.push("committed");
      } catch (error) {
        assert.ok(error instanceof ConcurrencyError, `a turn during the prune: ${error?.name}: ${error?.message}`);
        outcomes.push("busy");
      }
    }
    open();
    const n = await pruning;
    assert.ok(n > 0);
    const committed = outcomes.filter((o) => o === "committed").length;
    t.diagnostic(`turns started while prune() was deleting: ${outcomes.join(", ")}; prune() returned ${n}`);
    const fresh = await (await SessionStore.kv(kv, { owner: "fresh" })).open(id, { create: false });
    assert.equal(fresh.version, latest + committed);
    assert.deepEqual(plain(fresh.messages()), msgs(0, 20 + 2 * committed), `outcomes of the turns: ${outcomes}`);
    assert.deepEqual(viewOf(await fresh.at(latest)), view);
    for (let v = latest + 1; v <= latest + committed; v++) await fresh.at(v);
    assertPruned(await rejection(fresh.at(1), "at(1)"), "at(1)");
  });
});
