// A Strands agent in a server: every request builds a new Agent for its session (restored from the
// store) and invokes it once, as a server that keeps nothing between requests does. AgentSessionManager
// on a memory store against Strands' SessionManager over InMemoryStorage (and over AgentSessionStorage,
// the Storage drop-in), with a new Agent without persistence as the framework's own cost of a request
// (it has no history to restore). All requests go to one session; the implementations take turns, in an
// order rotated each request. Reported: the median request of the last WINDOW before each number of
// requests in --at, the messages the model was sent in the last of them, and what the store holds.
//
// Run: node bench/frameworks/strands-per-request.mjs [--at=50,200,1000] [--window=50] [--json=path]
import { performance } from "node:perf_hooks";
import { Agent, SessionManager } from "@strands-agents/sdk";
import { InMemoryStorage } from "@strands-agents/sdk/storage";
import { SessionStore } from "agent-session";
import { AgentSessionManager, AgentSessionStorage } from "agent-session/strands";
import { jsonPath, writeJson } from "../json.mjs";
import { EchoModel, prompt } from "./strands-agent.mjs";

const option = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const AT = option("at", "50,200,1000").split(",").map(Number);
const WINDOW = Number(option("window", "50"));
const REQUESTS = Math.max(...AT);
if (!AT.every((n) => Number.isInteger(n) && n >= WINDOW) || !(WINDOW > 0)) throw new Error("--at must list request counts of at least --window");

/** The scripted model, counting the messages each call is sent. */
class CountingModel extends EchoModel {
  sent = 0;
  async *stream(messages) {
    this.sent = messages.length;
    yield* super.stream(messages);
  }
}

const asStore = await SessionStore.memory();
const storage = new InMemoryStorage();
const asStorage = new AgentSessionStorage(await SessionStore.memory());
const impls = [
  { name: "AgentSessionManager (memory store)", options: () => ({ plugins: [new AgentSessionManager({ store: asStore, sessionId: "srv" })] }) },
  { name: "Strands SessionManager + InMemoryStorage", options: () => ({ sessionManager: new SessionManager({ storage, sessionId: "srv" }) }) },
  {
    name: "Strands SessionManager + AgentSessionStorage (memory store)",
    options: () => ({ sessionManager: new SessionManager({ storage: asStorage, sessionId: "srv" }) }),
  },
  { name: "a new Agent without persistence (no history)", options: () => ({}) },
];
for (const impl of impls) {
  impl.times = [];
  impl.at = [];
}

/** The messages each implementation's store holds for the agent (the next request restores them). */
async function stored() {
  const session = await asStore.open("srv");
  const snapshot = JSON.parse(new TextDecoder().decode(await storage.read("session/srv/scopes/agent/agent/snapshots/snapshot_latest.json")));
  return [session.messages({ agent: "agent" }).length, snapshot.data.messages.length];
}

for (let i = 0; i < REQUESTS; i++) {
  for (let k = 0; k < impls.length; k++) {
    const impl = impls[(i + k) % impls.length];
    const model = new CountingModel();
    const t0 = performance.now();
    await new Agent({ model, printer: false, ...impl.options() }).invoke(prompt(i));
    impl.times.push(performance.now() - t0);
    impl.sent = model.sent;
  }
  if (AT.includes(i + 1)) {
    const [asLog, smSnapshot] = await stored();
    for (const impl of impls) {
      const window = impl.times.slice(-WINDOW).sort((a, b) => a - b);
      impl.at.push({ requests: i + 1, medianMs: window[WINDOW >> 1], sent: impl.sent });
    }
    impls[0].at.at(-1).storedMessages = asLog;
    impls[1].at.at(-1).storedMessages = smSnapshot;
  }
}

const ms = (x) => (x < 1 ? x.toFixed(3) : x.toFixed(2));
const baseline = impls[1];
const rule = `| --- | ${AT.map(() => "---: | ---:").join(" | ")} |`;
const rows = impls.map(
  (impl) => `| ${impl.name} | ${impl.at.map((at, j) => `${ms(at.medianMs)} (${(at.medianMs / baseline.at[j].medianMs).toFixed(2)}) | ${at.sent}`).join(" | ")} |`,
);
const storedRow = AT.map((n, j) => `after ${n} requests ${impls[0].at[j].storedMessages} and ${impls[1].at[j].storedMessages}`).join("; ");
const printed = `Strands in a server: a new Agent per request, restored from the session and invoked once (~200-byte
prompt and answer, the default SlidingWindowConversationManager of 40 messages), ${REQUESTS} requests to one
session per implementation, in turns; the median of the ${WINDOW} requests before each count. "sent to the
model": the messages the model got in the last of them. @strands-agents/sdk 1.19.0, Node ${process.version}, ${process.platform}/${process.arch}.

| implementation | ${AT.map((n) => `after ${n} requests: median ms (× SessionManager) | messages sent to the model`).join(" | ")} |
${rule}
${rows.join("\n")}

Messages the store holds for the agent (what the next request restores), agent-session's log and the
SessionManager's latest snapshot: ${storedRow}. SessionManager saves the snapshot at AfterInvocationEvent
before the sliding window trims the context, so an agent restored from it starts from every message
stored so far, sends them all to the model, and the snapshot grows by a turn each request; a held Agent
trims in memory and stores 42. AgentSessionManager commits after the trim (its hook runs last) and
compacts its log to the context.

Command: \`node bench/frameworks/strands-per-request.mjs${process.argv.slice(2).map((a) => ` ${a}`).join("")}\`
Date: ${new Date().toISOString()}`;
console.log(printed);
writeJson(jsonPath(), import.meta.url, {
  name: "strands-per-request",
  title: "Strands in a server: a new Agent per request, AgentSessionManager vs SessionManager + InMemoryStorage",
  markdown: printed,
  data: { window: WINDOW, rows: impls.map((impl) => ({ name: impl.name, at: impl.at })) },
});
await asStore.close();
