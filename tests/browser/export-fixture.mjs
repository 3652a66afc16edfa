// Shared by tests/js/export.test.mjs and tests/browser/export.test.mjs (not a test file): builds a set
// of sessions that use every kind of history event, and describes a session through the read API so
// that two stores can be compared. It imports nothing, so Node and a Chromium page load it as it is
// (the page gets it from the test server as /tests/browser/export-fixture.mjs).

/** The ids `buildSessions` creates (what a round trip must keep, each exactly once). */
export const FIXTURE_IDS = [
  "rich/multi",
  "rich/fork",
  "rich/closed",
  "rich/empty",
  "rich/expired",
  "rich/ü \u0000/💬 odd id",
  "rich/big",
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/**
 * Builds the fixture sessions in `store` (any backend). "rich/multi" ends interrupted with an
 * interrupt pending, after: three agents, state sets and deletes, a traceparent, a commit that staged
 * nothing, an interrupt that was resumed, a compaction, a turn stopped by its holder and one fenced,
 * and metadata. "rich/fork" is a fork of it (plus a turn), "rich/closed" is closed, "rich/empty" has
 * metadata and no commit, "rich/expired" passed its lifetime, and two more carry an id with `/`, NUL
 * and non-BMP characters, strings with lone surrogates, and a message larger than a Deno KV value.
 */
export async function buildSessions(store) {
  const s = await store.open("rich/multi", { metadata: { title: "Rich", tags: ["a", "b"], n: 1, nested: { ok: true } } });
  await s.invoke(
    (inv) => {
      inv.appendMessage({ role: "user", content: "plan it" }, { agent: "planner" });
      inv.setState("plan", { steps: [1, 2, 3] }, { agent: "planner" });
      inv.appendMessage({ role: "user", content: "code it" }, { agent: "coder" });
      inv.setState("file", "a.js", { agent: "coder" });
      inv.appendMessage("m1");
      inv.setState("tmp", 1);
      inv.setState("keep", "yes");
    },
    { traceparent: TRACEPARENT },
  );
  await s.invoke((inv) => {
    inv.deleteState("tmp");
    inv.deleteState("file", { agent: "coder" });
    inv.setState("file2", { deleted: "and set again" }, { agent: "coder" });
    inv.appendMessage("m2");
    inv.appendMessage("m3");
  });
  await s.invoke(() => {}); // a commit that staged nothing: a version without events
  const asking = await s.begin({ agent: "planner" });
  asking.appendMessage({ role: "assistant", content: "need approval" });
  await asking.interrupt("approve?", { cost: 3 });
  await s.invoke((inv) => inv.appendMessage({ role: "tool", content: "approved" }), { resume: { ok: true }, agent: "planner" });
  await s.invoke((inv) => {
    inv.compact({ before: 2, summary: [{ role: "system", content: "summary of m1 and m2" }] });
    inv.appendMessage("m4");
  });
  // A turn stopped by its holder: it commits its partial answer after the stop request.
  const holder = await s.begin();
  holder.appendMessage("partial answer");
  const stopping = s.stop({ reason: "user pressed stop", graceMs: 5000 });
  await new Promise((resolve) => (holder.signal.aborted ? resolve() : holder.signal.addEventListener("abort", resolve, { once: true })));
  await holder.commit();
  const stopped = await stopping;
  if (stopped.outcome !== "stopped") throw new Error(`fixture: stop ended ${stopped.outcome}`);
  // A turn fenced at once (graceMs 0): its staged message is never written.
  const fencedHolder = await s.begin({ agent: "coder" });
  fencedHolder.appendMessage("never written");
  const fenced = await s.stop({ reason: "fence it", graceMs: 0 });
  if (fenced.outcome !== "fenced") throw new Error(`fixture: fence ended ${fenced.outcome}`);
  await fencedHolder.abort().catch(() => {});
  const fork = await s.fork({ id: "rich/fork", at: 4 });
  await fork.invoke((inv) => inv.appendMessage("after the fork"), { agent: "coder" });
  await s.invoke((inv) => inv.setState("plan", { steps: [1, 2, 3, 4] }, { agent: "planner" }));
  const pending = await s.begin();
  pending.appendMessage("ask again");
  await pending.interrupt("pending question"); // no payload: null

  const closed = await store.open("rich/closed", { metadata: "a string as metadata", maxLifetimeMs: 30 * 86_400_000 });
  await closed.invoke((inv) => inv.appendMessage("bye"));
  await closed.close();

  await store.open("rich/empty", { metadata: { only: "metadata" } });

  const expired = await store.open("rich/expired", { maxLifetimeMs: 40 });
  await expired.invoke((inv) => inv.appendMessage("soon gone"));

  const odd = await store.open("rich/ü \u0000/💬 odd id");
  await odd.invoke((inv) => {
    inv.appendMessage({ text: "lone \uD800 high and \uDC00 low surrogates", emoji: "💬", nul: "a\u0000b" }, { agent: "agent/with/slashes" });
    inv.setState("ключ \u0000", [null, true, 0.5, -0, 1e21, "x"], { agent: "agent/with/slashes" });
  });

  const big = await store.open("rich/big");
  await big.invoke((inv) => inv.appendMessage({ blob: "0123456789abcdef".repeat(10_000) })); // 160 KB
  await big.invoke((inv) => inv.setState("blob", "b".repeat(100_000)));

  await sleep(60); // "rich/expired" is past its 40 ms lifetime
}

/**
 * Everything the read API says about `session`, as JSON: facts, pending interrupt, history, and the
 * messages and state of every agent (those in its history plus "default"), now and as of each
 * version.
 */
export async function describeSession(session) {
  const history = await session.history();
  const agents = [...new Set(["default", ...history.map((event) => event.agent).filter((agent) => agent !== undefined)])].sort();
  const perAgent = (view) => Object.fromEntries(agents.map((agent) => [agent, { messages: view.messages({ agent }), state: view.state({ agent }) }]));
  const versions = [];
  for (let version = 0; version <= session.version; version++) {
    const view = await session.at(version);
    versions.push({ version: view.version, status: view.status, agents: perAgent(view) });
  }
  return JSON.parse(
    JSON.stringify({
      id: session.id,
      version: session.version,
      status: session.status,
      createdAt: session.createdAt,
      updatedAt: session.updatedAt,
      expiresAt: session.expiresAt,
      pendingInterrupt: session.pendingInterrupt(),
      history,
      agents: perAgent(session),
      versions,
    }),
  );
}

/** Every export of `store` (its `export()`), as parsed JSON text, sorted by id. */
export async function exportAll(store, options) {
  const exports = [];
  for await (const data of store.export(options)) exports.push(JSON.parse(JSON.stringify(data)));
  return exports.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** `describeSession` of each id, opened with `create: false` from `store`. */
export async function describeAll(store, ids) {
  const out = {};
  for (const id of ids) out[id] = await describeSession(await store.open(id, { create: false }));
  return out;
}
