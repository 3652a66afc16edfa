// The demo page: a chat with a scripted agent (agent.js) over agent-session sessions in IndexedDB.
// The agent runs in the demo's service worker (agent-sw.js), so its turn outlives a reload of this
// page; this page follows the turn with session.follow(), keeping the last part it saw in
// sessionStorage so that a reload resumes the stream with follow({ after }) instead of replaying it.
import * as lib from "../js/entry/browser.js";
import { agentHost, LEASE_MS, PACE_MS } from "./agent.js";

const { SessionStore, ConcurrencyError, NotFoundError, ValidationError } = lib;

const params = new URLSearchParams(location.search);
const DATABASE = params.get("db") || "agent-session-demo";
const PACE = Number(params.get("pace")) || PACE_MS;
const IDLE_TTL_MS = 7 * 24 * 3600 * 1000;
const STOP_GRACE_MS = 3000;
const WAIT_MS = 30000;

const $ = (id) => document.getElementById(id);
const random = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => "abcdefghijkmnpqrstuvwxyz23456789"[b % 32]).join("");
const TAB = sessionStorage.getItem("demo:tab") || `tab-${random(4)}`;
sessionStorage.setItem("demo:tab", TAB);

/** A DOM element: el("li", { class: "x", onclick }, "text", child). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
const shortId = (id) => clip(id, 14);
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false }) + `.${String(ms % 1000).padStart(3, "0")}`;
function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${m % 60} min`;
  return h % 24 ? `${Math.floor(h / 24)} d ${h % 24} h` : `${h / 24} d`;
}
const expiry = (info) =>
  info.status === "expired" ? "expired" : info.expiresAt == null ? "never expires" : `expires in ${duration(info.expiresAt - Date.now())}`;

// ---------------------------------------------------------------------------------------------
// Store events: this tab's store and the agent's stores (through a BroadcastChannel)

// The log survives a reload of the tab (sessionStorage), like the stream does.
const eventList = $("log");
// (li.ok and li.denied without a type are the outcomes of "Race two turns", logged once rendered.)
const eventClass = { "lease.denied": "denied", conflict: "denied", commit: "committed", "lease.lost": "bad", corrupt: "bad" };
const LOG_KEY = "demo:log";
const logged = JSON.parse(sessionStorage.getItem(LOG_KEY) ?? "[]");
function remember(entry) {
  logged.push(entry);
  if (logged.length > 100) logged.splice(0, logged.length - 100);
  sessionStorage.setItem(LOG_KEY, JSON.stringify(logged));
}
function addLogItem(item) {
  eventList.prepend(item);
  while (eventList.children.length > 150) eventList.lastChild.remove();
}
function lineItem({ at, from, kind, text }) {
  return el("li", { class: kind }, el("time", {}, clock(at)), " ", el("b", {}, from), " ", text);
}
function eventItem({ at, from, event }) {
  const details = [
    event.version !== undefined && `v${event.version}`,
    event.token !== undefined && `token ${event.token}`,
    event.owner && event.owner !== from && `owner ${event.owner}`,
    event.durationMs !== undefined && `${Math.round(event.durationMs)} ms`,
    event.key && `key ${event.key}`,
  ].filter(Boolean);
  return el("li", { class: eventClass[event.type] ?? "", dataset: { type: event.type, session: event.session ?? "" } },
    el("time", {}, clock(at)), " ", el("b", {}, from), " ", el("span", { class: "type" }, event.type), " ",
    el("code", {}, shortId(event.session ?? "")), details.length ? ` ${details.join(", ")}` : "");
}
function logLine(kind, from, text) {
  const entry = { at: Date.now(), from, kind, text };
  remember(entry);
  addLogItem(lineItem(entry));
}
function showEvent(from, event) {
  const entry = { at: Date.now(), from, event: { ...event } };
  remember(entry);
  addLogItem(eventItem(entry));
}
for (const entry of logged) addLogItem(entry.event ? eventItem(entry) : lineItem(entry));

const store = await SessionStore.indexedDb({
  database: DATABASE,
  owner: TAB,
  leaseMs: LEASE_MS,
  idleTtlMs: IDLE_TTL_MS,
  onEvent: (event) => showEvent(TAB, event),
});

function onAgentMessage(message) {
  if (message?.database !== DATABASE) return;
  if (message.kind === "store-event") showEvent(message.from, message.event);
  if (message.kind === "agent-error" && message.error.code === "LIMIT_EXCEEDED") {
    // What the user sent is too large for the store: theirs to shorten, not a failure of the agent.
    notice(`Not sent: the message is too large to keep (${message.error.name}: ${message.error.message}).`, "failed");
  } else if (message.kind === "agent-error") {
    console.error(`the agent (${message.from}) failed: ${message.error.name}: ${message.error.message}`);
    notice(`The agent failed: ${message.error.name}: ${message.error.message}`, "failed");
  }
}
const channel = new BroadcastChannel(`agent-session-demo:${DATABASE}`);
channel.onmessage = (event) => onAgentMessage(event.data);

// ---------------------------------------------------------------------------------------------
// The agent: in the service worker, or in this tab where there is none

async function startAgent() {
  if ("serviceWorker" in navigator && params.get("agent") !== "tab") {
    try {
      await navigator.serviceWorker.register("./agent-sw.js", { type: "module", scope: "./" }).catch(async (error) => {
        // Offline, the update check of an installed worker fails: keep the installed one.
        if (!(await navigator.serviceWorker.getRegistration("./"))?.active) throw error;
      });
      const registration = await navigator.serviceWorker.ready;
      // Files this page loaded before the worker controlled it are fetched again through it, so that
      // its copy for offline use is whole from the first visit on.
      const keep = () => {
        const own = (url) => url.startsWith(`${location.origin}/www/`) || url.startsWith(`${location.origin}/js/`);
        const urls = [location.href.split("#")[0], ...performance.getEntriesByType("resource").map((entry) => entry.name)];
        for (const url of new Set(urls.filter(own))) fetch(url).catch(() => {});
      };
      if (!navigator.serviceWorker.controller) navigator.serviceWorker.addEventListener("controllerchange", keep, { once: true });
      return {
        where: "the service worker",
        request: (request) =>
          new Promise((resolve) => {
            const { port1, port2 } = new MessageChannel();
            port1.onmessage = (event) => {
              port1.close();
              resolve(event.data);
            };
            (registration.active ?? navigator.serviceWorker.controller).postMessage({ type: "turn", request }, [port2]);
          }),
      };
    } catch (error) {
      console.warn(`no service worker (${error?.message ?? error}): the agent runs in this tab, and a reload ends its turn`);
    }
  }
  const host = agentHost(lib, {
    post(message) {
      onAgentMessage(message);
      channel.postMessage(message);
    },
  });
  return { where: "this tab", request: (request) => host.handle(request).reply };
}
const agent = await startAgent();
$("tab-name").textContent = TAB;
$("agent-where").textContent = agent.where;

// ---------------------------------------------------------------------------------------------
// Notices

function notice(text, kind = "info", actions = []) {
  const box = $("notice");
  box.className = kind;
  box.dataset.kind = kind;
  box.replaceChildren(el("p", {}, text), el("div", { class: "row" }, ...actions, el("button", { class: "ghost", onclick: clearNotice }, "Dismiss")));
  box.hidden = false;
}
function clearNotice() {
  $("notice").hidden = true;
  $("notice").replaceChildren();
  delete $("notice").dataset.kind;
}
function reportError(error, what) {
  if (error instanceof ConcurrencyError) {
    notice(`${what}: the session is busy, retry in ${error.retryAfterMs} ms (${error.holder} holds it).`, "busy");
  } else if (error instanceof lib.AgentSessionError) {
    notice(`${what}: ${error.name}: ${error.message}`, "error");
  } else {
    console.error(error);
    notice(`${what}: ${error?.message ?? error}`, "error");
  }
}

// ---------------------------------------------------------------------------------------------
// The current session, its live turn, and rendering

let session = null;
let stopWatching = () => {};
let follower = null;
let live = null; // the followed turn: { session, invocation, seq, parts, resumedAt }
let followHead = true; // the version slider follows the latest version
// This tab's own turn, from Send (or an answer) until it ends: { session, text, invocation }. A second
// Send meanwhile would only be refused by it.
let ownTurn = null;

const liveKey = (id) => `demo:live:${id}`;
function saveLive() {
  if (live) sessionStorage.setItem(liveKey(live.session), JSON.stringify({ invocation: live.invocation, seq: live.seq, parts: live.parts }));
}
function dropLive(id) {
  sessionStorage.removeItem(liveKey(id));
  if (live?.session === id) live = null;
}

function partsOf(message) {
  const out = [];
  if (typeof message !== "object" || message === null || Array.isArray(message)) return [el("pre", {}, JSON.stringify(message))];
  if (message.summary) out.push(el("span", { class: "label" }, "summary"));
  if (message.content) out.push(el("div", { class: "text" }, String(message.content)));
  for (const call of message.tool_calls ?? []) {
    out.push(el("div", { class: "tool call" }, el("span", { class: "label" }, "tool call"), ` ${call.function?.name}(${call.function?.arguments ?? ""})`));
  }
  if (message.stopped) out.push(el("div", { class: "stopped" }, `stopped by ${message.stopped.by}`));
  return out;
}

function messageItem(message, index) {
  const role = message?.role ?? "other";
  if (role === "tool") {
    return el("li", { class: "msg tool", dataset: { index } }, el("span", { class: "label" }, message.name ?? "tool"), " → ", el("code", {}, String(message.content)));
  }
  return el("li", { class: `msg ${message?.summary ? "summary" : role}`, dataset: { index, role } }, ...partsOf(message));
}

function renderLive() {
  const box = $("live");
  if (!live || live.session !== session?.id) {
    box.hidden = true;
    box.replaceChildren();
    delete box.dataset.invocation;
    delete box.dataset.seq;
    return;
  }
  const nodes = [];
  let text = null;
  const tools = new Map();
  const resumedMark = () => el("div", { class: "resumed" }, `↻ resumed after a reload: follow({ after: { seq: ${live.resumedAt - 1} } })`);
  live.parts.forEach((part, index) => {
    if (index === live.resumedAt) {
      nodes.push(resumedMark());
      text = null;
    }
    if (part?.type === "token") {
      if (!text) nodes.push((text = el("span", { class: "text" })));
      text.textContent += part.text;
    } else if (part?.type === "tool") {
      text = null;
      const label = { running: "running…", done: "done", approval: "waiting for approval" }[part.state] ?? part.state;
      const node = el("div", { class: `tool ${part.state}` }, el("span", { class: "label" }, "tool"), ` ${part.name}(${JSON.stringify(part.args)}) `,
        el("i", {}, label), part.result ? el("code", {}, ` → ${JSON.stringify(part.result)}`) : null);
      // The row of a tool already shown is replaced in `nodes` (not yet on screen).
      if (tools.has(part.id)) nodes[nodes.indexOf(tools.get(part.id))] = node;
      else nodes.push(node);
      tools.set(part.id, node);
    }
  });
  if (live.parts.length === live.resumedAt) nodes.push(resumedMark());
  if (!live.parts.length || live.parts.length === live.resumedAt) nodes.push(el("span", { class: "thinking" }, "thinking…"));
  else nodes.push(el("span", { class: "cursor" }, ""));
  box.replaceChildren(...nodes);
  box.dataset.invocation = live.invocation;
  box.dataset.seq = String(live.seq);
  box.hidden = false;
  scrollThread();
}

function scrollThread() {
  const thread = $("thread");
  thread.scrollTop = thread.scrollHeight;
}

function render() {
  const s = session;
  if (!s) return;
  const state = s.state();
  // (A turn whose holder went away ended `lost`: the session reads idle, or interrupted, at once.)
  const status = s.status;
  const running = status === "running" || (live && live.session === s.id);
  $("title").textContent = state.title ?? "New chat";
  $("session-id").textContent = s.id;
  $("version").textContent = String(s.version);
  $("status").textContent = running ? "running" : status;
  $("status").dataset.status = running ? "running" : status;
  renderExpiry();
  $("stop").hidden = !running;
  document.title = `${state.title ?? "New chat"} · agent-session`;

  const shown = s.messages();
  $("messages").replaceChildren(...(shown.length || live
    ? shown.map(messageItem)
    : [el("li", { class: "msg empty" }, "A new session. Say something to the agent, or pick one of the suggestions below; open this page in a second tab to see both follow the same session.")]));

  const pending = status === "interrupted" ? s.pendingInterrupt() : null;
  $("approval").hidden = !pending;
  if (pending) {
    const payload = pending.payload ?? {};
    $("approval-question").textContent = payload.question ?? pending.reason;
    $("approval-call").textContent = `${payload.tool ?? "?"}(${JSON.stringify(payload.args ?? null)})`;
  }
  const closed = status === "closed" || status === "expired";
  $("input").disabled = closed || Boolean(pending);
  $("send").disabled = closed || Boolean(pending) || ownTurn?.session === s.id;
  for (const chip of document.querySelectorAll("[data-say]")) chip.disabled = $("send").disabled;
  $("input").placeholder = pending ? "Answer the approval above first" : closed ? `This session is ${status}` : "Message the agent (Enter sends)";
  renderLive();
  scrollThread();
  inspectSoon();
}

// The expiry shown counts down, and the session is read again when it passes (it then reads "expired").
let expiryTimer = null;
function renderExpiry() {
  const s = session;
  $("expiry").textContent = expiry(s);
  clearTimeout(expiryTimer);
  if (s.expiresAt == null || s.status === "expired") return;
  const left = s.expiresAt - Date.now();
  // Once a minute, then at the expiry itself (setTimeout waits at most 2^31 - 1 ms).
  const expired = () => {
    refreshSoon();
    sessionsSoon();
  };
  expiryTimer = setTimeout(left <= 60000 ? expired : renderExpiry, Math.max(0, Math.min(left + 50, 60000)));
}

let refreshing = null;
function refreshSoon() {
  refreshing ??= Promise.resolve().then(async () => {
    refreshing = null;
    const s = session;
    try {
      await s?.refresh();
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
    if (s === session) render();
  }).catch((error) => console.error(error));
}

/** Follows the current session's turns from now on (and the running one, or its rest). */
function follow(s) {
  follower?.abort();
  const controller = new AbortController();
  follower = controller;
  const options = { signal: controller.signal };
  if (live?.session === s.id && live.seq >= 0) options.after = { invocation: live.invocation, seq: live.seq };
  (async () => {
    for await (const event of s.follow(options)) {
      if (controller.signal.aborted) return;
      if (event.type === "part") onPart(s, event);
      else if (event.type === "end") await onEnd(s, event);
      else {
        if (live?.session === s.id && s.status !== "running") dropLive(s.id);
        render();
      }
    }
  })().catch((error) => {
    if (!controller.signal.aborted) console.error(`following ${s.id} failed:`, error);
  });
}

function onPart(s, event) {
  if (!live || live.session !== s.id || live.invocation !== event.invocation) {
    live = { session: s.id, invocation: event.invocation, seq: -1, parts: [], resumedAt: null };
  }
  if (event.seq !== live.seq + 1) {
    // follow() promises every part once and in order, across a reload with `after` too.
    console.error(`part ${event.seq} of ${event.invocation} after part ${live.seq}: a gap or a duplicate`);
  }
  if (event.seq <= live.seq) return;
  live.parts.push(event.data);
  live.seq = event.seq;
  saveLive();
  if (live.parts.length === 1 || $("stop").hidden) render();
  else renderLive();
}

async function onEnd(s, event) {
  if (live?.session === s.id) dropLive(s.id);
  if (ownTurn?.invocation === event.invocation) {
    // Aborted before the question was stored (over a limit, say): give the text back to edit.
    const kept = s.messages().findLast((m) => m?.role === "user")?.content === ownTurn.text;
    if (event.outcome === "aborted" && ownTurn.text && !kept && !$("input").value) $("input").value = ownTurn.text;
    ownTurn = null;
  }
  const text = {
    stopped: "The turn was stopped; the agent kept what it had said.",
    lost: "The turn was lost: the agent's tab or worker went away, and nothing it had not committed was kept.",
    aborted: "The agent aborted its turn: nothing of it was kept.",
  }[event.outcome];
  // The tab that pressed Stop says more (how long it took, how it ended) when stop() resolves.
  const stoppedHere = event.outcome === "stopped" && (stopPressed || $("notice").dataset.kind === "stopped");
  // The agent's own report of why it failed says more than "aborted", whichever arrives first.
  const failed = event.outcome === "aborted" && $("notice").dataset.kind === "failed";
  if (text && !stoppedHere && !failed) notice(text, event.outcome === "stopped" ? "info" : "error");
  render();
  sessionsSoon();
}

async function show(id, { create = false } = {}) {
  let next;
  try {
    next = await store.open(id, { create });
  } catch (error) {
    if (!(error instanceof lib.AgentSessionError) || error instanceof lib.StorageError) throw error;
    notice(error instanceof NotFoundError || error instanceof ValidationError
      ? `There is no session “${id}” here (deleted, or from another browser).`
      : `Session “${id}” cannot be opened: ${error.name}: ${error.message}`, "error");
    next = await latestOrNew();
  }
  follower?.abort();
  stopWatching();
  if (next.id !== session?.id) {
    clearNotice();
    ownTurn = null; // its end may come while another chat is shown: a send refused by it says so
  }
  session = next;
  followHead = true;
  history.replaceState(null, "", `#${encodeURIComponent(next.id)}`);
  stopWatching = next.onChange(refreshSoon);
  const saved = JSON.parse(sessionStorage.getItem(liveKey(next.id)) ?? "null");
  if (saved && next.status === "running") {
    // A reload in the middle of a turn: show what was streamed so far, follow from the next part.
    live = { session: next.id, ...saved, resumedAt: saved.parts.length };
  } else {
    dropLive(next.id);
    live = null;
  }
  $("sidebar").classList.remove("open");
  render();
  follow(next);
  sessionsSoon();
}

async function latestOrNew() {
  const sessions = await allSessions();
  const latest = sessions.filter((s) => s.status !== "expired").sort((a, b) => b.updatedAt - a.updatedAt)[0];
  return latest ? store.open(latest.id, { create: false }) : store.open();
}

// ---------------------------------------------------------------------------------------------
// Sending, answering, stopping

async function ask(input, { onBusy } = {}) {
  const target = session;
  const request = { database: DATABASE, tab: TAB, session: target.id, input, pace: PACE };
  if (onBusy) request.onBusy = onBusy;
  const turn = { session: target.id, text: input.text, invocation: null };
  ownTurn = turn;
  render(); // Send and the suggestions wait for this turn (a double click sends once)
  const reply = await agent.request(request).catch((error) => ({ ok: false, error: { name: error?.name ?? "Error", message: String(error?.message ?? error) } }));
  if (reply.ok) {
    turn.invocation = reply.invocation;
    if ($("notice").dataset.kind === "busy" || $("notice").dataset.kind === "waiting") clearNotice();
    // The text stays in the composer until the agent took it (unless it was edited since).
    if (input.kind === "send" && $("input").value.trim() === input.text) $("input").value = "";
    return true;
  }
  if (ownTurn === turn) ownTurn = null;
  if (target === session) render();
  const error = reply.error;
  const what = input.kind === "send" ? `Not sent: “${clip(input.text, 60)}”` : "The answer was not sent";
  if (error.code === "CONCURRENT_INVOCATION" && error.holder === `agent@${TAB}`) {
    // This tab's own turn (from before a reload): a retry would send the message a second time.
    notice(`${what}: this tab's previous message is still being answered; send it again once the reply ended.`, "busy");
  } else if (error.code === "CONCURRENT_INVOCATION") {
    notice(`${what}. The session is busy, retry in ${error.retryAfterMs} ms (${error.holder} is running a turn).`, "busy", [
      el("button", {
        class: "primary",
        id: "retry",
        onclick: () => {
          notice(`Waiting for ${error.holder}'s turn to end, then sending (begin({ onBusy: { waitMs: ${WAIT_MS} } }))…`, "waiting");
          ask(input, { onBusy: { waitMs: WAIT_MS } }).catch((e) => reportError(e, "Retry"));
        },
      }, "Wait and retry"),
    ]);
  } else if (error.code === "INVALID_TRANSITION" && error.from === "interrupted") {
    notice(`${what}: the agent is waiting for an approval; answer it first.`, "error");
  } else if (error.code === "SESSION_EXPIRED") {
    notice(`${what}: this chat expired (too long without a new message) and takes no more; it stays readable until it is swept. Start a new chat.`, "error");
    refreshSoon();
  } else {
    if (!error.code) console.error(`the agent failed to begin: ${error.name}: ${error.message}`); // not the library's refusal
    notice(`${what}: ${error.name}: ${error.message}`, "error");
  }
  return false;
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("input").value.trim();
  if (!text || ownTurn?.session === session.id) return;
  ask({ kind: "send", text }).catch((error) => reportError(error, "Send"));
});
$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
for (const chip of document.querySelectorAll("[data-say]")) {
  chip.addEventListener("click", () => {
    $("input").value = chip.dataset.say;
    $("composer").requestSubmit();
  });
}
const answer = async (approved) => {
  $("approve").disabled = $("deny").disabled = true;
  try {
    await ask({ kind: "resume", answer: { approved, by: TAB } });
  } catch (error) {
    reportError(error, "Answer");
  } finally {
    $("approve").disabled = $("deny").disabled = false;
  }
};
$("approve").onclick = () => answer(true);
$("deny").onclick = () => answer(false);

let stopPressed = false;
$("stop").onclick = async () => {
  const button = $("stop");
  stopPressed = true;
  button.disabled = true;
  button.textContent = "Stopping…";
  try {
    const started = performance.now();
    const result = await session.stop({ reason: `Stop pressed in ${TAB}`, graceMs: STOP_GRACE_MS });
    const took = Math.round(performance.now() - started);
    const text = {
      stopped: `Stopped in ${took} ms: the agent ended its turn and kept what it had said (version ${result.version}).`,
      fenced: `The agent did not stop within ${STOP_GRACE_MS / 1000} s: its lease was taken over, and its late writes are refused.`,
      idle: "Nothing was running.",
    }[result.outcome];
    notice(text, result.outcome === "idle" ? "info" : "stopped");
  } catch (error) {
    reportError(error, "Stop");
  } finally {
    stopPressed = false;
    button.disabled = false;
    button.textContent = "Stop";
  }
};

// ---------------------------------------------------------------------------------------------
// Sessions sidebar: new, switch, fork, delete; status and expiry

const titles = new Map(); // `${id}@${version}` -> title
async function titleOf(info) {
  const key = `${info.id}@${info.version}`;
  if (!titles.has(key)) {
    try {
      const s = await store.open(info.id, { create: false });
      titles.set(key, s.state().title ?? "New chat");
    } catch {
      titles.set(key, info.id);
    }
  }
  return titles.get(key);
}

let sessionsTimer = null;
function sessionsSoon() {
  clearTimeout(sessionsTimer);
  sessionsTimer = setTimeout(() => renderSessions().catch((error) => console.error("listing sessions failed:", error)), 60);
}

/** Every session of the store: list() gives a page at a time, in id order, and a cursor to the next. */
async function allSessions() {
  const sessions = [];
  let cursor;
  do {
    const page = await store.list({ limit: 100, cursor });
    sessions.push(...page.sessions);
    cursor = page.cursor;
  } while (cursor);
  return sessions;
}

async function renderSessions() {
  const sessions = await allSessions();
  sessions.sort((a, b) => b.updatedAt - a.updatedAt || a.id.localeCompare(b.id));
  const items = [];
  for (const info of sessions) {
    const current = info.id === session?.id;
    const status = current && live ? "running" : info.status;
    items.push(
      el("li", { class: current ? "current" : "", dataset: { id: info.id, status } },
        el("button", { class: "open", onclick: () => show(info.id) },
          el("span", { class: "name" }, await titleOf(info)),
          el("span", { class: "meta" }, el("span", { class: "badge", dataset: { status } }, status), ` v${info.version} · ${expiry(info)}`)),
        el("div", { class: "actions" },
          el("button", { class: "ghost small fork", title: "fork(): a new session with this one's history", onclick: () => forkSession(info.id) }, "Fork"),
          el("button", { class: "ghost small delete", title: "store.delete()", onclick: () => deleteSession(info.id) }, "Delete"))),
    );
  }
  $("sessions").replaceChildren(...items);
  if (session && !sessions.some((info) => info.id === session.id)) {
    // Deleted in another tab (or swept): move on, once the store confirms it is gone.
    const gone = session;
    const still = await store.open(gone.id, { create: false }).then(() => true, (error) => !(error instanceof NotFoundError));
    if (!still && gone === session) {
      await show((await latestOrNew()).id);
      notice(`Session ${shortId(gone.id)} was deleted in another tab.`, "info");
    }
  }
}

let forking = false; // one fork at a time: a double click makes one
async function forkSession(id, at) {
  if (forking) return;
  forking = true;
  try {
    const source = id === session?.id ? session : await store.open(id, { create: false });
    const version = at ?? source.version;
    const view = at === undefined ? source : await source.at(at);
    const forked = await source.fork(at === undefined ? {} : { at });
    if (forked.status === "idle") {
      const title = `${view.state().title ?? "New chat"} (fork of v${version})`;
      await forked.invoke((inv) => inv.setState("title", title));
    }
    await show(forked.id);
    notice(`Forked ${shortId(id)} at version ${version} into ${forked.id}.`, "ok");
  } catch (error) {
    reportError(error, "Fork");
  } finally {
    forking = false;
  }
}

async function deleteSession(id) {
  try {
    await store.delete(id);
    dropLive(id);
    if (id === session?.id) await show((await latestOrNew()).id);
    sessionsSoon();
  } catch (error) {
    reportError(error, "Delete");
  }
}

$("new-session").onclick = async () => {
  try {
    const created = await store.open();
    await show(created.id);
  } catch (error) {
    reportError(error, "New chat");
  }
};
$("menu").onclick = () => {
  const open = $("sidebar").classList.toggle("open");
  $("menu").setAttribute("aria-expanded", String(open));
};
$("toggle-inspector").onclick = () => {
  const hidden = document.body.classList.toggle("no-inspector");
  $("toggle-inspector").setAttribute("aria-expanded", String(!hidden));
};
store.onChange(sessionsSoon);
setInterval(sessionsSoon, 30000);
addEventListener("hashchange", () => {
  const id = decodeURIComponent(location.hash.slice(1));
  if (id && id !== session?.id) show(id).catch((error) => reportError(error, "Open"));
});

// ---------------------------------------------------------------------------------------------
// Inspector: history(), at() with a version slider, fork from a version, compact, export, import

let inspecting = null;
function inspectSoon() {
  inspecting ??= new Promise((resolve) => setTimeout(resolve, 30)).then(async () => {
    inspecting = null;
    await inspect();
  }).catch((error) => console.error("the inspector failed:", error));
}

function describeEvent(event) {
  const data = event.data;
  switch (event.type) {
    case "message":
      return `${data?.role ?? "message"}: ${clip(data?.content || (data?.tool_calls ? `calls ${data.tool_calls.map((c) => c.function?.name).join(", ")}` : JSON.stringify(data)), 60)}`;
    case "state.set":
      return `${event.key} = ${clip(JSON.stringify(data), 40)}`;
    case "interrupt":
      return `${event.reason}: ${clip(data?.question ?? JSON.stringify(data), 50)}`;
    case "resume":
      return clip(JSON.stringify(data), 60);
    case "stopped":
      return `${event.reason} (${data?.outcome})`;
    case "compacted":
      return `${event.before} messages → ${data?.length ?? 0} summary`;
    case "forked":
      return `from ${shortId(data?.from ?? "")} v${data?.version}`;
    default:
      return event.key ?? "";
  }
}

async function inspect() {
  const s = session;
  if (!s) return;
  const events = await s.history();
  if (s !== session) return;
  const slider = $("slider");
  slider.max = String(s.version);
  if (followHead || Number(slider.value) > s.version) slider.value = String(s.version);
  $("head-version").textContent = String(s.version);
  $("history").replaceChildren(
    ...events.slice(-200).map((event) =>
      el("li", { dataset: { version: event.version, type: event.type } },
        el("span", { class: "v" }, `v${event.version}`), " ", el("span", { class: "type" }, event.type), " ", describeEvent(event))),
  );
  await showVersion(Number(slider.value));
}

async function showVersion(version) {
  const s = session;
  let view;
  try {
    view = await s.at(version);
  } catch (error) {
    if (error instanceof NotFoundError) return; // the slider is ahead of this tab's view for a moment
    throw error;
  }
  if (s !== session) return;
  $("at-version").textContent = String(version);
  $("fork-at").textContent = `Fork from v${version}`;
  $("to-head").hidden = version === s.version;
  const messages = view.messages();
  $("view").replaceChildren(
    el("li", { class: "view-head" }, `As of version ${version}: ${view.status}, ${messages.length} message${messages.length === 1 ? "" : "s"}`),
    ...messages.map((m) => el("li", { class: `msg-line ${m?.role ?? ""}` }, el("b", {}, m?.summary ? "summary" : m?.role ?? "?"), " ",
      clip(m?.content || (m?.tool_calls ? `calls ${m.tool_calls.map((c) => c.function?.name).join(", ")}` : ""), 90))),
  );
  for (const item of $("history").children) item.classList.toggle("later", Number(item.dataset.version) > version);
}

$("slider").addEventListener("input", () => {
  const version = Number($("slider").value);
  followHead = version === session.version;
  showVersion(version).catch((error) => console.error(error));
});
$("to-head").onclick = () => {
  followHead = true;
  inspectSoon();
};
$("fork-at").onclick = () => forkSession(session.id, Number($("slider").value));

$("compact").onclick = async () => {
  const messages = session.messages();
  const before = messages.findLastIndex((m) => m?.role === "user"); // keep the last question and what followed
  if (before < 2) {
    notice("Nothing to compact yet: compaction keeps the last question and its answer, and needs two earlier messages.", "info");
    return;
  }
  const earlier = messages.slice(0, before);
  const asked = earlier.filter((m) => m?.role === "user").map((m) => `“${clip(String(m.content), 40)}”`);
  const tools = [...new Set(earlier.flatMap((m) => m?.tool_calls?.map((c) => c.function?.name) ?? []))];
  const summarised = earlier.some((m) => m?.summary) ? "an earlier summary, then " : "";
  const summary = {
    role: "system",
    summary: true,
    content: `Summary of ${before} earlier messages: ${summarised}the user asked ${asked.join(", ") || "nothing"}` +
      (tools.length ? `; tools used: ${tools.join(", ")}.` : "."),
  };
  try {
    await session.invoke((inv) => inv.compact({ before, summary: [summary] }));
    notice(`Compacted ${before} messages into one summary (version ${session.version}). History keeps the originals, and the slider shows them at earlier versions.`, "ok");
  } catch (error) {
    reportError(error, "Compact");
  }
};

// Two turns at once in this tab (no agent): the guard lets one through and refuses the other before
// it touches anything.
$("race").onclick = async () => {
  const target = session;
  const turn = (label) =>
    target.invoke(async (inv) => {
      inv.appendMessage({ role: "user", content: `Race: the ${label} turn` });
      await new Promise((resolve) => setTimeout(resolve, 300)); // the model thinking
      inv.appendMessage({ role: "assistant", content: `The ${label} turn went through.` });
    }).then(
      () => {
        render();
        logLine("ok", TAB, `race, ${label} turn: committed version ${target.version}`);
      },
      (error) => {
        if (!(error instanceof ConcurrencyError)) return reportError(error, `Race, ${label} turn`);
        logLine("denied", TAB, `race, ${label} turn: refused (${error.code}), ${error.holder} holds it, retry in ${error.retryAfterMs} ms`);
      },
    );
  await Promise.all([turn("first"), turn("second")]);
};

const canExport = typeof lib.Session.prototype.export === "function";
const canImport = typeof lib.SessionStore.prototype.import === "function";
// Export and import came with a later build of the package than the rest of this demo.
for (const id of !canExport ? ["export", "import"] : !canImport ? ["import"] : []) {
  $(id).disabled = true;
  $(id).textContent = `${canExport ? id : "export"} needs a newer build`;
}
$("export").onclick = async () => {
  try {
    const data = await session.export();
    const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
    const name = `${session.id.replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, 60)}-v${data.version}.json`;
    const link = el("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    notice(`Exported ${data.events.length} events (version ${data.version}) as ${name}.`, "ok");
  } catch (error) {
    reportError(error, "Export");
  }
};
$("import").onclick = () => $("import-file").click();
$("import-file").addEventListener("change", async () => {
  const file = $("import-file").files[0];
  $("import-file").value = "";
  if (!file) return;
  let data;
  try {
    data = JSON.parse(await file.text());
  } catch {
    notice(`Import of ${file.name}: not a JSON file; Export saves a session as one.`, "error");
    return;
  }
  try {
    let imported;
    try {
      imported = await store.import(data);
    } catch (error) {
      if (!(error instanceof ValidationError && error.path === "id")) throw error;
      imported = await store.import(data, { id: `${data.id}-copy-${random(4)}` }); // that id is taken here
    }
    await show(imported.id);
    notice(`Imported ${file.name} as ${imported.id}: version ${imported.version}, ${imported.messages().length} messages.`, "ok");
  } catch (error) {
    reportError(error, `Import of ${file.name}`);
  }
});

// ---------------------------------------------------------------------------------------------

await store.sweepExpired({ limit: 20 });
const wanted = decodeURIComponent(location.hash.slice(1));
await show(wanted || (await latestOrNew()).id);
await renderSessions();
document.body.dataset.ready = "true";
