// The demo's agent: scripted and deterministic (no network, no model). It streams its reply token by
// token with inv.emit(), calls pretend tools, and asks a human before it moves money, with
// inv.interrupt(reason, payload); the answer comes back as begin({ resume }).
//
// It runs wherever agentHost() is created: in the demo's service worker (www/agent-sw.js), so that a
// turn survives the reload of the page that asked for it, or in the page itself where service
// workers are not available. It imports nothing: `lib` is the package, given by the caller.

/** Ms between two streamed tokens, unless the page asks for another pace. */
export const PACE_MS = 35;
/** Lease of the agent's stores: what a refused sender is told to wait at most. */
export const LEASE_MS = 10000;

export const STORY =
  "Once upon a time a lighthouse keeper kept a logbook. Every night she wrote one line, and every line " +
  "had a number, so when a storm tore a page out she knew exactly which night was missing. One winter " +
  "two keepers arrived on the same evening, each sure it was their shift. The logbook had a rule: " +
  "whoever signed first held the pen, and the other waited by the lamp. They grumbled, then took " +
  "turns, and no line was ever written twice. Years later a traveller asked to read the book from the " +
  "start. The keeper gave her a summary of the early years and the pages since, and told her the old " +
  "pages were still in the cellar if she wanted them.";

export const HELP =
  "I am a scripted agent: no network, no model, the same answer every time. Try “weather in Lisbon”, " +
  "“what is 12 * 7”, “refund order 1042” (I will ask you to approve it) or “tell me a story” (a long " +
  "reply: reload the page or press Stop in the middle of it, or send from a second tab).";

/** A short title for a session, from its first message. */
export function titleFor(text) {
  const line = text.trim().replace(/\s+/g, " ");
  return line.length > 40 ? `${line.slice(0, 39)}…` : line || "New chat";
}

const hash = (text) => [...text].reduce((h, c) => (h * 31 + c.codePointAt(0)) >>> 0, 7);
const SKIES = ["sunny", "cloudy", "light rain", "windy", "foggy", "clear"];

/** The pretend tools: pure functions of their arguments. */
export const TOOLS = {
  get_weather: ({ city }) => ({ city, tempC: 8 + (hash(city.toLowerCase()) % 21), sky: SKIES[hash(city) % SKIES.length] }),
  calculate: ({ a, op, b }) => {
    const value = { "+": a + b, "-": a - b, "*": a * b, "/": b === 0 ? NaN : a / b }[op];
    return Number.isFinite(value) ? { value: Math.round(value * 1e6) / 1e6 } : { error: "division by zero" };
  },
  lookup_order: ({ order }) => ({ order, item: ["a kettle", "two mugs", "a tea tin", "a teapot"][order % 4], amount: 12 + (order % 40), paid: "card" }),
  issue_refund: ({ order, amount }) => ({ refund: `rf_${order}`, order, amount, status: "issued" }),
};

/** What the agent will do with a user's message. */
export function planFor(text) {
  const t = text.toLowerCase();
  let m;
  if ((m = t.match(/weather(?:\s+(?:in|for|at))?\s+([a-zà-ÿ][a-zà-ÿ .'-]*)/))) {
    const city = m[1].trim().replace(/[?.!]+$/, "").replace(/\b\w/g, (c) => c.toUpperCase());
    return { kind: "weather", city };
  }
  if (/\brefund\b/.test(t)) return { kind: "refund", order: Number(t.match(/(\d{1,9})/)?.[1] ?? 1042) };
  if ((m = t.match(/(-?\d+(?:\.\d+)?)\s*([-+*x×/])\s*(-?\d+(?:\.\d+)?)/))) {
    const op = { x: "*", "×": "*" }[m[2]] ?? m[2];
    return { kind: "calculate", a: Number(m[1]), op, b: Number(m[3]) };
  }
  if (/\b(story|long)\b/.test(t)) return { kind: "story" };
  return { kind: "help" };
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });

/** One turn of the agent on an open invocation: what it says, the tools it calls, what it stages. */
class Turn {
  constructor(inv, pace) {
    this.inv = inv;
    this.pace = pace;
    this.text = ""; // what the assistant said since its last staged message
  }

  async say(text) {
    for (const token of text.match(/\S+\s*/g) ?? []) {
      await sleep(this.pace, this.inv.signal);
      this.inv.emit({ type: "token", text: token });
      this.text += token;
    }
  }

  /** Stages what was said (and the tool calls given) as one assistant message. */
  message(extra = {}) {
    if (this.text || extra.tool_calls || extra.stopped) this.inv.appendMessage({ role: "assistant", content: this.text.trimEnd(), ...extra });
    this.text = "";
  }

  newCallId() {
    const calls = this.inv.messages().filter((m) => m?.tool_calls).length;
    return `call_${calls + 1}`;
  }

  static callOf(id, name, args) {
    return { id, type: "function", function: { name, arguments: JSON.stringify(args) } };
  }

  /** Calls a pretend tool: the call and its result are staged together, once it answered. */
  async tool(name, args, ms = 600) {
    const id = this.newCallId();
    this.inv.emit({ type: "tool", id, name, args, state: "running" });
    await sleep(ms, this.inv.signal);
    const result = TOOLS[name](args);
    this.inv.emit({ type: "tool", id, name, args, state: "done", result });
    this.message({ tool_calls: [Turn.callOf(id, name, args)] });
    this.inv.appendMessage({ role: "tool", tool_call_id: id, name, content: JSON.stringify(result) });
    return result;
  }
}

async function firstTurn(turn, text) {
  const plan = planFor(text);
  switch (plan.kind) {
    case "weather": {
      await turn.say(`Let me check the weather in ${plan.city}.`);
      const w = await turn.tool("get_weather", { city: plan.city });
      await turn.say(`It is ${w.tempC} °C and ${w.sky} in ${w.city} right now (pretend data, from a pretend tool).`);
      turn.message();
      return null;
    }
    case "calculate": {
      await turn.say("I will use the calculator for that.");
      const r = await turn.tool("calculate", { a: plan.a, op: plan.op, b: plan.b }, 300);
      await turn.say(r.error ? `That has no answer: ${r.error}.` : `${plan.a} ${plan.op} ${plan.b} = ${r.value}.`);
      turn.message();
      return null;
    }
    case "refund": {
      await turn.say(`Let me look up order ${plan.order}.`);
      const order = await turn.tool("lookup_order", { order: plan.order });
      await turn.say(`Order ${order.order} (${order.item}) was paid $${order.amount}.00 by ${order.paid}. ` +
        "A refund moves money, so I need a human to approve it before I issue it.");
      const id = turn.newCallId();
      const args = { order: order.order, amount: order.amount };
      turn.inv.emit({ type: "tool", id, name: "issue_refund", args, state: "approval" });
      turn.message({ tool_calls: [Turn.callOf(id, "issue_refund", args)] });
      return { reason: "approval", payload: { call_id: id, tool: "issue_refund", args, question: `Refund $${args.amount}.00 for order ${args.order}?` } };
    }
    case "story":
      await turn.say(STORY);
      turn.message();
      return null;
    default:
      await turn.say(`You said “${text.trim().slice(0, 80)}”. ${HELP}`);
      turn.message();
      return null;
  }
}

/** The turn after an approval: the pending call of the last assistant message, run or refused. */
async function resumedTurn(turn, answer) {
  const messages = turn.inv.messages();
  const call = [...messages].reverse().find((m) => m?.tool_calls)?.tool_calls?.[0];
  const answered = call && messages.some((m) => m?.role === "tool" && m.tool_call_id === call.id);
  if (!call || answered) {
    await turn.say("There was nothing waiting for an answer.");
    turn.message();
    return;
  }
  const args = JSON.parse(call.function.arguments);
  const who = answer?.by ? ` by ${answer.by}` : "";
  if (answer?.approved) {
    turn.inv.emit({ type: "tool", id: call.id, name: call.function.name, args, state: "running" });
    await sleep(500, turn.inv.signal);
    const result = TOOLS[call.function.name](args);
    turn.inv.emit({ type: "tool", id: call.id, name: call.function.name, args, state: "done", result });
    turn.inv.appendMessage({ role: "tool", tool_call_id: call.id, name: call.function.name, content: JSON.stringify(result) });
    await turn.say(`Done: refund ${result.refund} of $${result.amount}.00 for order ${result.order} is issued (approved${who}).`);
  } else {
    turn.inv.appendMessage({ role: "tool", tool_call_id: call.id, name: call.function.name, content: JSON.stringify({ error: `denied${who}` }) });
    await turn.say(`Understood: no refund for order ${args.order} (denied${who}).`);
  }
  turn.message();
}

/**
 * Runs one turn on `inv` (already begun) and ends it: commit, interrupt, or, when a stop was
 * requested, a commit of what was said so far. `input` is { kind: "send", text } or
 * { kind: "resume", answer }. Resolves to { outcome, version }.
 */
export async function runTurn(inv, input, { pace = PACE_MS } = {}) {
  const turn = new Turn(inv, pace);
  try {
    let interrupt = null;
    if (input.kind === "resume") {
      await resumedTurn(turn, input.answer);
    } else {
      inv.appendMessage({ role: "user", content: input.text });
      if (!inv.state().title) inv.setState("title", titleFor(input.text));
      await inv.checkpoint(); // the question is committed (every tab shows it) while the reply streams
      interrupt = await firstTurn(turn, input.text);
    }
    if (interrupt) return { outcome: "interrupted", version: await inv.interrupt(interrupt.reason, interrupt.payload) };
    return { outcome: "committed", version: await inv.commit() };
  } catch (error) {
    const reason = inv.signal.aborted ? inv.signal.reason : null;
    if (reason?.code === "STOP_REQUESTED") {
      // Stopped from some tab: keep the partial answer, marked as such, within the stopper's grace.
      turn.message({ stopped: { by: reason.by, reason: reason.reason } });
      try {
        return { outcome: "stopped", version: await inv.commit() };
      } catch (late) {
        if (late?.code === "LEASE_LOST") return { outcome: "fenced" };
        throw late;
      }
    }
    if (reason?.code === "LEASE_LOST") return { outcome: "lost" };
    await inv.abort().catch(() => {});
    throw error;
  }
}

/** An error as plain data (what crosses postMessage). */
export function describeError(error) {
  if (!(error instanceof Error)) return { name: typeof error, message: String(error) };
  const out = { name: error.name, message: error.message };
  for (const field of ["code", "holder", "retryAfterMs", "path", "from", "action", "reason", "by"]) {
    if (error[field] !== undefined && typeof error[field] !== "object") out[field] = error[field];
  }
  return out;
}

/**
 * Where the agent runs: one SessionStore per asking tab (owner `agent@<tab>`, so that a refusal names
 * the tab whose turn holds the session), its store events posted with `post`. `handle(request)`
 * begins the turn and resolves as soon as it began (or was refused); `done` resolves when it ended.
 * request: { database, tab, session, input, onBusy?, pace? }.
 */
export function agentHost(lib, { post }) {
  const stores = new Map();
  const storeFor = (database, tab) => {
    const key = `${database}\n${tab}`;
    if (!stores.has(key)) {
      const owner = `agent@${tab}`;
      stores.set(key, lib.SessionStore.indexedDb({
        database,
        owner,
        leaseMs: LEASE_MS,
        onEvent: (event) => post({ kind: "store-event", database, from: owner, event: { ...event } }),
      }));
    }
    return stores.get(key);
  };
  return {
    handle(request) {
      let ended;
      const done = new Promise((resolve) => (ended = resolve));
      const reply = (async () => {
        let inv;
        try {
          const store = await storeFor(request.database, request.tab);
          const session = await store.open(request.session, { create: false });
          const options = {};
          if (request.onBusy) options.onBusy = request.onBusy;
          if (request.input.kind === "resume") options.resume = request.input.answer;
          inv = await session.begin(options);
        } catch (error) {
          ended();
          return { ok: false, error: describeError(error) };
        }
        runTurn(inv, request.input, { pace: request.pace ?? PACE_MS }).then(
          (result) => ended(result),
          (error) => {
            post({ kind: "agent-error", database: request.database, from: `agent@${request.tab}`, error: describeError(error) });
            ended({ outcome: "error" });
          },
        );
        return { ok: true, invocation: inv.id, token: inv.token };
      })();
      return { reply, done };
    },
  };
}
