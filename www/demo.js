import { SessionStore, ConcurrencyError } from "../js/entry/browser.js";

// Every tab of this origin opens the same session in IndexedDB: run a turn in two tabs at once and
// one of them is refused; close a tab in the middle of a turn and the other takes over at once.
const tab = `tab-${Math.random().toString(36).slice(2, 6)}`;
const store = await SessionStore.indexedDb({ database: "agent-session-demo", owner: tab });
const session = await store.open("demo-chat");
const $ = (id) => document.getElementById(id);

function log(text, kind) {
  const item = document.createElement("li");
  item.textContent = text;
  item.className = kind;
  $("log").prepend(item);
}

function render() {
  $("id").textContent = session.id;
  $("version").textContent = String(session.version);
  $("status").textContent = session.status;
  $("messages").replaceChildren(
    ...session.messages().map((message) => {
      const item = document.createElement("li");
      item.textContent = `${message.role}: ${message.text}`;
      return item;
    }),
  );
}

let turns = 0;
async function turn(label) {
  try {
    await session.invoke(async (inv) => {
      const n = ++turns;
      inv.appendMessage({ role: "user", text: `question ${n} (${label})` });
      await new Promise((resolve) => setTimeout(resolve, 300)); // the model thinking
      inv.appendMessage({ role: "assistant", text: `answer ${n}` });
    });
    log(`${label}: committed version ${session.version}`, "ok");
  } catch (error) {
    if (!(error instanceof ConcurrencyError)) throw error;
    log(`${label}: refused, ${error.code}, held by ${error.holder} for ${error.retryAfterMs} ms`, "denied");
  }
}

session.onChange(render); // fires for commits made in other tabs too
$("turn").onclick = () => turn("turn");
$("race").onclick = () => Promise.all([turn("first"), turn("second")]);
$("interrupt").onclick = async () => {
  try {
    await session.invoke((inv) => inv.interrupt("approve the refund?", { amount: 20 }));
    log("interrupted: waiting for a human", "ok");
  } catch (error) {
    log(`${error.name}: ${error.message}`, "denied");
  }
  render();
};
$("resume").onclick = async () => {
  try {
    await session.invoke((inv) => inv.appendMessage({ role: "human", text: "approved" }), { resume: "approved" });
    log("resumed", "ok");
  } catch (error) {
    log(`${error.name}: ${error.message}`, "denied");
  }
  render();
};
render();
document.body.dataset.ready = "true";
