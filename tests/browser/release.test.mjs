// The release build (wasm-opt -Oz) loaded in headless Chromium from a page on 127.0.0.1, through the
// browser entry point a bundler would pick: an optimizer miscompile cannot ship unnoticed.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startBrowser } from "./chromium.mjs";

let chrome;
let page;
before(async () => {
  chrome = await startBrowser();
  page = await chrome.page("/tests/browser/blank.html");
});
after(async () => chrome?.stop());

const run = (fn) => page.evaluate(`(async () => { const lib = await import("/js/entry/browser.js"); return (${fn})(lib); })()`);

test("overlapping invocations: the second is refused before its body runs, the first's writes are all there is", async () => {
  const result = await run(async ({ SessionStore, ConcurrencyError }) => {
    const store = await SessionStore.memory({ owner: "tab-a" });
    const session = await store.open("race");
    let secondRan = false;
    const [first, second] = await Promise.allSettled([
      session.invoke(async (inv) => {
        inv.appendMessage({ n: 1 });
        await new Promise((r) => setTimeout(r, 20));
        inv.setState("k", "first");
        return "first";
      }),
      session.invoke(async (inv) => {
        secondRan = true;
        inv.appendMessage({ n: 2 });
      }),
    ]);
    return {
      first: first.value,
      isConcurrency: second.reason instanceof ConcurrencyError,
      code: second.reason?.code,
      holder: second.reason?.holder,
      retryAfterMs: second.reason?.retryAfterMs,
      secondRan,
      messages: session.messages(),
      state: session.state(),
      version: session.version,
    };
  });
  assert.equal(result.first, "first");
  assert.equal(result.isConcurrency, true);
  assert.equal(result.code, "CONCURRENT_INVOCATION");
  assert.equal(result.holder, "tab-a");
  assert.ok(result.retryAfterMs > 0);
  assert.equal(result.secondRan, false);
  assert.deepEqual(result.messages, [{ n: 1 }]);
  assert.deepEqual(result.state, { k: "first" });
  assert.equal(result.version, 1);
});

test("a throwing invoke aborts, rethrows the same error and releases", async () => {
  const result = await run(async ({ SessionStore }) => {
    const session = await (await SessionStore.memory()).open("throw");
    const boom = new Error("boom");
    let caught;
    try {
      await session.invoke((inv) => {
        inv.appendMessage("never");
        throw boom;
      });
    } catch (error) {
      caught = error;
    }
    await session.invoke((inv) => inv.appendMessage("after"));
    return { same: caught === boom, messages: session.messages(), version: session.version };
  });
  assert.deepEqual(result, { same: true, messages: ["after"], version: 1 });
});

test("every error class is exported and thrown with instanceof and a stable code", async () => {
  const result = await run(async (lib) => {
    const session = await (await lib.SessionStore.memory()).open("errors");
    const caught = {};
    const grab = async (name, fn) => {
      try {
        await fn();
        caught[name] = "no error";
      } catch (error) {
        caught[name] = { code: error.code, name: error.name, base: error instanceof lib.AgentSessionError, own: error instanceof lib[name] };
      }
    };
    await grab("ValidationError", () => session.invoke((inv) => inv.appendMessage({ n: 10n })));
    await grab("NotFoundError", async () => (await lib.SessionStore.memory()).open("x", { create: false }));
    await grab("LimitExceededError", async () => {
      const small = await (await lib.SessionStore.memory({ limits: { maxMessageBytes: 8 } })).open("l");
      await small.invoke((inv) => inv.appendMessage("a string longer than eight bytes"));
    });
    const inv = await session.begin();
    await inv.commit();
    await grab("InvalidTransitionError", () => inv.commit());
    await session.close();
    await grab("SessionClosedError", () => session.begin());
    return caught;
  });
  assert.deepEqual(result, {
    ValidationError: { code: "INVALID_INPUT", name: "ValidationError", base: true, own: true },
    NotFoundError: { code: "NOT_FOUND", name: "NotFoundError", base: true, own: true },
    LimitExceededError: { code: "LIMIT_EXCEEDED", name: "LimitExceededError", base: true, own: true },
    InvalidTransitionError: { code: "INVALID_TRANSITION", name: "InvalidTransitionError", base: true, own: true },
    SessionClosedError: { code: "SESSION_CLOSED", name: "SessionClosedError", base: true, own: true },
  });
});

test("history, time travel, fork and snapshots through the optimized build", async () => {
  const result = await run(async ({ SessionStore }) => {
    const store = await SessionStore.memory({ snapshotEvery: 4 });
    const session = await store.open("travel");
    for (let n = 1; n <= 10; n++) await session.invoke((inv) => inv.appendMessage({ n, text: "é\ud800" }));
    const view = await session.at(6);
    const fork = await session.fork({ at: 3 });
    const history = await session.history({ from: 9, to: 10 });
    return {
      version: session.version,
      view: view.messages().map((m) => m.n),
      fork: fork.messages().map((m) => m.n),
      lone: session.messages()[0].text === "é\ud800",
      history: history.map((e) => [e.version, e.type, e.data.n]),
      frozen: Object.isFrozen(session.messages()) && Object.isFrozen(session.messages()[0]),
    };
  });
  assert.deepEqual(result, {
    version: 10,
    view: [1, 2, 3, 4, 5, 6],
    fork: [1, 2, 3],
    lone: true,
    history: [[9, "message", 9], [10, "message", 10]],
    frozen: true,
  });
});

test("the www demo page loads and shows a refused concurrent turn", async () => {
  const demo = await chrome.page("/www/");
  await demo.waitForSelector("body[data-ready=true]");
  await demo.click("#race");
  await demo.waitForSelector("#log li.denied");
  await demo.waitForSelector("#log li.ok");
  assert.equal(await demo.textContent("#version"), "1");
  assert.equal(await demo.locator("#messages li").count(), 2);
  assert.deepEqual(demo.errors, []);
});

test("an iframe's Map, RegExp and Error are refused as this page's are; its plain objects are stored", async () => {
  const result = await run(async ({ SessionStore, ValidationError }) => {
    const frame = document.createElement("iframe");
    document.body.append(frame);
    const other = frame.contentWindow;
    const store = await SessionStore.memory();
    const session = await store.open("realms");
    const inv = await session.begin();
    const refused = [];
    for (const value of [new other.Map([["a", 1]]), new other.RegExp("a+"), new other.Error("boom"), new other.Number(NaN)]) {
      try {
        inv.setState("k", { deep: [value] });
        refused.push("stored");
      } catch (error) {
        refused.push(error instanceof ValidationError ? `${error.path}: ${error.message.split(",")[0]}` : String(error));
      }
    }
    const plain = other.JSON.parse('{"a":[1,2]}');
    plain.n = new other.Number(3);
    inv.setState("plain", plain);
    await inv.commit();
    frame.remove();
    return { refused, state: JSON.parse(JSON.stringify(session.state())) };
  });
  assert.deepEqual(result.refused, [
    'state["k"].deep[0]: state["k"].deep[0] is a Map',
    'state["k"].deep[0]: state["k"].deep[0] is a RegExp',
    'state["k"].deep[0]: state["k"].deep[0] is an Error',
    'state["k"].deep[0]: state["k"].deep[0] is a Number object of NaN',
  ]);
  assert.deepEqual(result.state, { plain: { a: [1, 2], n: 3 } });
});

test("an iframe's CryptoKey is an encryptionKey as this page's is; an iframe's look-alike object is refused", async () => {
  const result = await run(async ({ SessionStore, ValidationError }) => {
    const frame = document.createElement("iframe");
    document.body.append(frame);
    const other = frame.contentWindow;
    const key = await other.crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    const database = `realm-key-${Math.random().toString(36).slice(2)}`;
    const store = await SessionStore.indexedDb({ database, encryptionKey: key });
    await (await store.open("sealed")).invoke((inv) => inv.appendMessage({ text: "secret" }));
    await store.close();
    const again = await SessionStore.indexedDb({ database, encryptionKey: key });
    const messages = (await again.open("sealed")).messages();
    await again.close();
    const lookAlike = other.eval('({ algorithm: { name: "AES-GCM" }, usages: ["encrypt", "decrypt"], [Symbol.toStringTag]: "CryptoKey" })');
    const refused = await SessionStore.memory({ encryptionKey: lookAlike }).then(
      () => "accepted",
      (error) => (error instanceof ValidationError ? error.path : String(error)),
    );
    frame.remove();
    return { foreign: !(key instanceof CryptoKey), messages, refused };
  });
  assert.deepEqual(result, { foreign: true, messages: [{ text: "secret" }], refused: "options.encryptionKey" });
});
