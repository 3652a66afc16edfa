// The browser demo (www/), used as a person uses it, in Debian's headless Chromium against the page
// that scripts/serve.mjs serves: send and watch the reply stream, reload in the middle of it, stop it
// from a second tab, send from two tabs at once, approve an interrupt after a reload, slide to an
// earlier version, fork, compact, export and import. Clicks and keys only, except for reading what
// the page shows. Every test fails on any console error or uncaught error of its pages (the demo
// reports a gap or a duplicate in a followed stream, and a failure of its agent, as console errors).
//
// Screenshots of the demo are written to a temporary directory, or with UPDATE_SCREENSHOTS=1 to
// docs/screenshots/ (README.md shows them), so that running the tests changes no tracked file.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { startBrowser } from "./chromium.mjs";
import { STORY } from "../../www/agent.js";

const SHOTS = process.env.UPDATE_SCREENSHOTS
  ? new URL("../../docs/screenshots/", import.meta.url)
  : pathToFileURL(`${await mkdtemp(join(tmpdir(), "agent-session-demo-"))}/`);
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let chrome;
before(async () => {
  chrome = await startBrowser();
  await mkdir(SHOTS, { recursive: true });
});
after(async () => chrome?.stop());

// A fresh browser profile (its own IndexedDB, service worker and sessionStorage) for one test.
async function withTabs(t, body) {
  const tabs = await chrome.context();
  try {
    await body(tabs);
    const errors = tabs.logs().filter((line) => / (error|pageerror): /.test(line) || / crashed$/.test(line));
    assert.deepEqual(errors, [], "the pages reported errors");
  } catch (error) {
    console.log(`----- console of the pages of "${t.name}" -----\n${tabs.logs().join("\n") || "(nothing)"}\n-----`);
    throw error;
  } finally {
    await tabs.close();
  }
}

const ready = (page) => page.waitForFunction(() => document.body?.dataset.ready === "true", null, { timeout: 20000 });

// Opens the demo in a new tab of `tabs`: on session `id` when given, else on the latest or a new one;
// `query` passes the demo's URL options (pace: ms per streamed token).
async function openDemo(tabs, label, id, query = "") {
  const page = await tabs.page(`/www/${query}${id ? `#${encodeURIComponent(id)}` : ""}`, label);
  await page.setViewportSize(LAPTOP);
  await ready(page);
  return page;
}

const sessionId = (page) => page.evaluate(() => decodeURIComponent(location.hash.slice(1)));
const tabName = (page) => page.locator("#tab-name").textContent();

async function send(page, text) {
  await page.fill("#input", text);
  await page.press("#input", "Enter");
}

// What the streaming bubble shows: its invocation, the seq of its last part, its text.
const live = (page) =>
  page.evaluate(() => {
    const box = document.getElementById("live");
    return {
      hidden: box.hidden,
      invocation: box.dataset.invocation,
      seq: Number(box.dataset.seq ?? -1),
      text: [...box.querySelectorAll(".text")].map((node) => node.textContent).join(""),
      resumed: box.querySelector(".resumed")?.textContent ?? null,
    };
  });
// What the page shows, for the message of a failed wait.
const state = (page) =>
  page.evaluate(() => ({
    url: location.href,
    status: document.getElementById("status").textContent,
    version: document.getElementById("version").textContent,
    live: document.getElementById("live").hidden ? null : document.getElementById("live").dataset.seq,
    notice: document.getElementById("notice").textContent,
    messages: document.querySelectorAll("#messages > li:not(.empty)").length,
    log: [...document.querySelectorAll("#log li")].slice(0, 6).map((li) => li.textContent),
  })).catch((error) => ({ unreadable: error.message }));

// page.waitForFunction, whose timeout says what was awaited and what the page showed then.
const until = (page, what, fn, arg, timeout = 20000) =>
  page.waitForFunction(fn, arg, { timeout }).catch(async (error) => {
    throw new Error(`timed out waiting for ${what}; the page shows ${JSON.stringify(await state(page))}`, { cause: error });
  });
const partsSeen = (page, n) => until(page, `part ${n}`, (n) => Number(document.getElementById("live").dataset.seq ?? -1) >= n, n, 15000);
const idle = (page) =>
  until(page, "the session to be idle", () => document.getElementById("status").dataset.status === "idle" && document.getElementById("live").hidden);

// The chat as shown: one { role, text } per message.
const messages = (page) =>
  page.$$eval("#messages > li:not(.empty)", (items) => items.map((item) => ({
    role: item.classList.contains("summary") ? "summary" : item.dataset.role ?? "tool",
    text: item.querySelector(".text")?.textContent ?? item.textContent,
    stopped: item.querySelector(".stopped")?.textContent ?? null,
  })));

const shot = (page, name) => page.screenshot({ path: new URL(name, SHOTS).pathname });

test("send a message and watch the reply stream; reload in the middle and the stream resumes where it was, then a phone-width view and an offline reload", { timeout: 60000 }, async (t) => {
  await withTabs(t, async (tabs) => {
    // A slower pace than the default, so that the reload lands mid-reply on a loaded machine too.
    const page = await openDemo(tabs, "tab A", undefined, "?pace=50");
    assert.equal(await page.locator("#agent-where").textContent(), "the service worker");
    await send(page, "tell me a story");
    await partsSeen(page, 15);
    const before = await live(page);
    assert.ok(STORY.startsWith(before.text) && before.text.length > 0, `streamed so far: ${JSON.stringify(before.text)}`);

    await page.reload();
    await ready(page);
    const restored = await live(page);
    assert.equal(restored.hidden, false, "the stream is shown again after the reload");
    assert.equal(restored.invocation, before.invocation);
    assert.ok(restored.text.startsWith(before.text), "what was streamed before the reload is shown again");
    assert.match(restored.resumed ?? "", /resumed after a reload/);
    t.diagnostic(`reloaded at part ${before.seq}; resumed after part ${restored.seq}`);

    // Until the turn ends, what the bubble shows is always a prefix of the story: no part twice, none missing.
    let observed = 0;
    let shotTaken = false;
    for (;;) {
      const now = await live(page);
      if (now.hidden) break;
      assert.ok(STORY.startsWith(now.text), `after the reload the bubble shows ${JSON.stringify(now.text.slice(-80))}`);
      observed++;
      if (!shotTaken && now.seq > restored.seq + 10) {
        await shot(page, "chat-streaming.png");
        shotTaken = true;
      }
      await page.waitForTimeout(40);
    }
    await idle(page);
    assert.ok(observed > 5, `the stream was watched ${observed} times after the reload`);
    assert.deepEqual((await messages(page)).map(({ role, text }) => ({ role, text })), [
      { role: "user", text: "tell me a story" },
      { role: "assistant", text: STORY },
    ]);

    // Phone width: one column, nothing wider than the screen.
    await page.setViewportSize(PHONE);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than a phone`);
    await shot(page, "phone.png");

    // Offline: the service worker's copy of the demo loads, and the agent answers.
    await page.setViewportSize(LAPTOP);
    await tabs.context.setOffline(true);
    try {
      await page.reload();
      await ready(page);
      await send(page, "what is 12 * 7");
      await page.waitForFunction(() => document.querySelector("#messages > li:last-child .text")?.textContent === "12 * 7 = 84.", null, { timeout: 15000 });
      await idle(page);
    } finally {
      await tabs.context.setOffline(false);
    }
  });
});

test("a second tab stops the running turn: the agent keeps its partial answer, marked stopped by that tab", { timeout: 60000 }, async (t) => {
  await withTabs(t, async (tabs) => {
    const a = await openDemo(tabs, "tab A");
    const b = await openDemo(tabs, "tab B", await sessionId(a));
    await send(a, "tell me a story");
    await partsSeen(b, 10);
    assert.equal(await b.locator("#stop").isVisible(), true, "tab B shows Stop for a turn it did not start");
    await b.click("#stop");
    await idle(a);
    await idle(b);
    await b.waitForSelector('#notice[data-kind="stopped"]');
    const stopped = await b.locator("#notice p").textContent();
    assert.match(stopped, /^Stopped in \d+ ms: the agent ended its turn/);
    t.diagnostic(stopped);

    const bName = await tabName(b);
    for (const page of [a, b]) {
      const shown = await messages(page);
      assert.equal(shown.length, 2);
      assert.equal(shown[1].role, "assistant");
      assert.ok(STORY.startsWith(shown[1].text) && shown[1].text.length < STORY.length, `the partial answer: ${shown[1].text}`);
      assert.equal(shown[1].stopped, `stopped by ${bName}`);
    }
    await a.waitForSelector('#history li[data-type="stopped"]');
  });
});

test("two tabs send at once: one turn runs, the other is refused (busy, retry in N ms), waits and retries; then compact, time travel, export and import", { timeout: 60000 }, async (t) => {
  await withTabs(t, async (tabs) => {
    // Tab A's story streams for about 10 s (123 tokens, 80 ms apart): tab B's refusal, the screenshots
    // and its retry must all happen while it runs, also on a loaded machine (at the default 35 ms, 4.3 s,
    // a full test run once saw the retry go through at once, with no "waiting" to show).
    const a = await openDemo(tabs, "tab A", undefined, "?pace=80");
    const id = await sessionId(a);
    const b = await openDemo(tabs, "tab B", id);
    await send(a, "tell me a story");
    await partsSeen(b, 3);
    await send(b, "what is 12 * 7");
    await b.waitForSelector('#notice[data-kind="busy"]');
    const refusal = await b.locator("#notice p").textContent();
    assert.match(refusal, /busy, retry in \d+ ms/);
    assert.match(refusal, new RegExp(`agent@${await tabName(a)}`));
    t.diagnostic(refusal);
    assert.equal(await b.inputValue("#input"), "what is 12 * 7", "a refused message stays in the composer");
    assert.equal((await live(a)).hidden, false, "tab A's turn runs on");
    // The events panel (the stores' onEvent) shows the refusal, from the store of B's agent.
    await b.waitForSelector(`#log li[data-type="lease.denied"]`);
    assert.match(await b.locator('#log li[data-type="lease.denied"]').first().textContent(), new RegExp(`agent@${await tabName(b)} lease.denied`));

    // Both tabs side by side, one streaming, one refused.
    const [left, right] = await Promise.all([a.locator("#chat").screenshot(), b.locator("#chat").screenshot()]);
    await sideBySide([["tab A: its turn runs", left], ["tab B: refused, busy", right]], "two-tabs.png");

    await b.click("#retry");
    await b.waitForSelector('#notice[data-kind="waiting"]');
    await b.waitForFunction(() => document.querySelectorAll("#messages > li:not(.empty)").length >= 6, null, { timeout: 20000 });
    await idle(a);
    await idle(b);
    const shown = (await messages(b)).map(({ role, text }) => [role, text]);
    assert.deepEqual(shown.map(([role]) => role), ["user", "assistant", "user", "assistant", "tool", "assistant"]);
    assert.deepEqual([shown[0][1], shown[1][1], shown[2][1], shown[5][1]], ["tell me a story", STORY, "what is 12 * 7", "12 * 7 = 84."]);
    assert.equal(await b.locator("#notice").isHidden(), true, "the busy notice is gone once the retry went through");
    assert.equal(await b.inputValue("#input"), "", "the composer is emptied once the retry was accepted");

    // Compact: what came before the last question becomes one summary message.
    const headBefore = Number(await a.locator("#version").textContent());
    await a.click("#compact");
    await a.waitForSelector("#messages > li.summary");
    assert.deepEqual((await messages(a)).map(({ role }) => role), ["summary", "user", "assistant", "tool", "assistant"]);
    await a.waitForSelector('#history li[data-type="compacted"]');

    // Time travel: the version before the compaction still shows the original messages.
    await setSlider(a, headBefore);
    await a.waitForFunction((v) => document.getElementById("at-version").textContent === String(v), headBefore);
    const view = await a.locator("#view").textContent();
    assert.match(view, /tell me a story/);
    assert.match(view, new RegExp(`As of version ${headBefore}: idle, 6 messages`));
    await shot(a, "inspector.png");

    // Export, then import the file (under a new id: this one is taken here).
    if ((await a.evaluate(async () => typeof (await import("/js/entry/browser.js")).Session.prototype.export)) !== "function") {
      assert.equal(await a.locator("#export").textContent(), "export needs a newer build");
      assert.equal(await a.locator("#export").isDisabled(), true);
      t.diagnostic("session.export() is not in this build: export and import not tested");
      return;
    }
    const [download] = await Promise.all([a.waitForEvent("download"), a.click("#export")]);
    const file = await readFile(await download.path(), "utf8");
    const data = JSON.parse(file);
    assert.equal(data.format, "agent-session.export/1");
    assert.equal(data.id, id);
    assert.ok(data.events.some((e) => e.type === "compacted"));
    const before = await messages(a);
    await a.setInputFiles("#import-file", { name: download.suggestedFilename(), mimeType: "application/json", buffer: Buffer.from(file) });
    await a.waitForFunction((id) => decodeURIComponent(location.hash.slice(1)).startsWith(`${id}-copy-`), id);
    await a.waitForFunction((n) => document.querySelectorAll("#messages > li:not(.empty)").length === n, before.length);
    assert.deepEqual(await messages(a), before);
    assert.equal(await a.locator("#version").textContent(), String(data.version));
    t.diagnostic(`exported ${data.events.length} events (${file.length} bytes) and imported them as ${await sessionId(a)}`);

    // A file that is not JSON: the page says so (and logs no error).
    await a.setInputFiles("#import-file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not an export") });
    await a.waitForSelector('#notice[data-kind="error"]');
    assert.match(await a.locator("#notice p").textContent(), /^Import of notes\.txt: not a JSON file/);
  });
});

test("the agent asks for approval (an interrupt); after a reload the question is still there and Approve resumes the turn; slide back and fork from an earlier version", { timeout: 60000 }, async (t) => {
  await withTabs(t, async (tabs) => {
    const page = await openDemo(tabs, "tab A");
    await send(page, "refund order 1042");
    await page.waitForSelector("#approval:not([hidden])", { timeout: 15000 });
    await page.reload();
    await ready(page);
    await page.waitForSelector("#approval:not([hidden])");
    assert.equal(await page.locator("#status").textContent(), "interrupted");
    assert.match(await page.locator("#approval-question").textContent(), /^Refund \$\d+\.00 for order 1042\?$/);
    assert.equal(await page.locator("#send").isDisabled(), true, "the composer waits for the answer");
    await shot(page, "approval.png");

    await page.click("#approve");
    await page.waitForFunction(() => /^Done: /.test(document.querySelector("#messages > li:last-child .text")?.textContent), null, { timeout: 15000 });
    await idle(page);
    const last = (await messages(page)).at(-1);
    assert.match(last.text, new RegExp(`^Done: refund rf_1042 of \\$\\d+\\.00 for order 1042 is issued \\(approved by ${await tabName(page)}\\)\\.$`));

    // Version 1 is the question alone (the agent checkpointed it before it answered).
    const source = await sessionId(page);
    await setSlider(page, 1);
    await page.waitForFunction(() => /^As of version 1: \w+, 1 message$/.test(document.querySelector("#view .view-head")?.textContent));
    await page.dblclick("#fork-at"); // a double click makes one fork
    await page.waitForFunction((source) => decodeURIComponent(location.hash.slice(1)) !== source, source);
    await page.waitForFunction(() => document.getElementById("title").textContent.endsWith("(fork of v1)"));
    assert.deepEqual((await messages(page)).map(({ role, text }) => [role, text]), [["user", "refund order 1042"]]);
    await page.waitForFunction(() => document.querySelectorAll("#sessions > li").length === 2);
    await page.waitForTimeout(1000);
    assert.equal(await page.locator("#sessions > li").count(), 2, "one fork, not two");
    await page.waitForSelector('#history li[data-type="forked"]');

    // The sidebar: each session with its status and expiry; delete the fork, then start a new chat.
    assert.match(await page.locator("#sessions > li.current .meta").textContent(), /^idle v\d+ · expires in 7 d$/);
    await page.click("#sessions > li.current .delete");
    await page.waitForFunction((source) => decodeURIComponent(location.hash.slice(1)) === source, source);
    await page.waitForFunction(() => document.querySelectorAll("#sessions > li").length === 1);
    await page.click("#new-session");
    await page.waitForFunction(() => document.querySelectorAll("#sessions > li").length === 2 && document.getElementById("version").textContent === "0");
    assert.equal(await page.locator("#title").textContent(), "New chat");
    // Switch back by clicking it in the sidebar.
    await page.click(`#sessions > li[data-id="${source}"] .open`);
    await page.waitForFunction((source) => decodeURIComponent(location.hash.slice(1)) === source, source);
    await page.waitForFunction(() => document.getElementById("title").textContent === "refund order 1042");
  });
});

test("Race two turns: two invocations at once in one tab, one commits and the other is refused before it touches anything", { timeout: 30000 }, async (t) => {
  await withTabs(t, async (tabs) => {
    const page = await openDemo(tabs, "tab A");
    await page.click("#race");
    await page.waitForSelector("#log li.denied");
    await page.waitForSelector("#log li.ok");
    assert.equal(await page.textContent("#version"), "1");
    assert.equal(await page.locator("#messages li").count(), 2);
    assert.match(await page.locator("#log li.denied:not([data-type])").textContent(), /race, (first|second) turn: refused \(CONCURRENT_INVOCATION\), tab-\w+ holds it, retry in \d+ ms/);
  });
});

test("the agent in the page (?agent=tab): a reload ends its turn lost, and both tabs say so at once (idle, no Stop); a lost approved turn shows its question again, and Approve resumes it", { timeout: 60000 }, async (t) => {
  await withTabs(t, async (tabs) => {
    const a = await openDemo(tabs, "tab A", undefined, "?agent=tab&pace=50");
    assert.equal(await a.locator("#agent-where").textContent(), "this tab");
    const b = await openDemo(tabs, "tab B", await sessionId(a), "?agent=tab");
    await send(a, "tell me a story");
    await partsSeen(b, 10);
    await a.reload();
    await ready(a);
    // Well within the agent's lease (10 s): until it runs out, the library's session.status still says
    // running, while the followers' end already says how the turn ended.
    for (const page of [a, b]) {
      await until(page, "the lost turn to show as ended", () =>
        document.getElementById("status").dataset.status === "idle" && document.getElementById("stop").hidden &&
        document.getElementById("live").hidden && document.querySelector("#sessions > li.current")?.dataset.status === "idle", null, 5000);
      assert.match(await page.locator("#notice p").textContent(), /^The turn was lost/);
      assert.equal(await page.locator("#send").isDisabled(), false);
    }

    // An approved turn lost: the question waits again, in both tabs, and either can answer it.
    await send(a, "refund order 1042");
    await a.waitForSelector("#approval:not([hidden])", { timeout: 15000 });
    await a.click("#approve");
    await a.waitForSelector("#live .tool.running", { timeout: 5000 });
    await a.reload();
    await ready(a);
    for (const page of [a, b]) {
      await until(page, "the question to be shown again", () =>
        !document.getElementById("approval").hidden && document.getElementById("status").dataset.status === "interrupted" &&
        document.getElementById("stop").hidden && document.getElementById("live").hidden, null, 5000);
      assert.match(await page.locator("#approval-question").textContent(), /^Refund \$\d+\.00 for order 1042\?$/);
      assert.equal(await page.locator("#send").isDisabled(), true, "the composer waits for the answer");
    }
    await b.click("#approve");
    await b.waitForFunction(() => /^Done: /.test(document.querySelector("#messages > li:last-child .text")?.textContent), null, { timeout: 15000 });
    await idle(a);
    await idle(b);
  });
});

test("a tool's row in the streaming reply shows it done, with its result, while the reply goes on", { timeout: 30000 }, async (t) => {
  await withTabs(t, async (tabs) => {
    const page = await openDemo(tabs, "tab A", undefined, "?pace=80");
    await send(page, "weather in Lisbon");
    await page.waitForSelector("#live .tool.running", { timeout: 10000 });
    await until(page, "the tool shown done while the reply streams", () => {
      const tool = document.querySelector("#live .tool");
      return !document.getElementById("live").hidden && tool?.classList.contains("done") && /^It is /.test(document.querySelectorAll("#live .text")[1]?.textContent ?? "");
    }, null, 10000);
    assert.equal(await page.locator("#live .tool").count(), 1, "one row per tool call");
    assert.match(await page.locator("#live .tool.done").textContent(), /get_weather\(\{"city":"Lisbon"\}\) done → \{"city":"Lisbon","tempC":\d+,/);
    await idle(page);
  });
});

test("more than one page of sessions: the sidebar lists them all, and a tab opened without a session id opens the latest", { timeout: 60000 }, async (t) => {
  await withTabs(t, async (tabs) => {
    const a = await openDemo(tabs, "tab A");
    // Another store of the same database (as another tab would) makes 105 chats, then updates the last,
    // whose id comes after theirs: store.list() gives it on its second page of 100.
    await a.evaluate(async () => {
      const lib = await import("/js/entry/browser.js");
      const seeder = await lib.SessionStore.indexedDb({ database: "agent-session-demo", owner: "seeder" });
      for (let i = 0; i < 105; i++) await seeder.open(`chat-${String(i).padStart(3, "0")}`);
      const latest = await seeder.open("zz-latest");
      await latest.invoke((inv) => inv.setState("title", "the latest chat"));
      await seeder.close();
    });
    const b = await openDemo(tabs, "tab B");
    assert.equal(await sessionId(b), "zz-latest");
    assert.equal(await b.locator("#title").textContent(), "the latest chat");
    await until(b, "every session in the sidebar", () => document.querySelectorAll("#sessions > li").length === 107 && document.querySelector("#sessions > li.current")?.dataset.id === "zz-latest");
    await until(a, "every session in tab A's sidebar", () => document.querySelectorAll("#sessions > li").length === 107);
  });
});

test("a double-clicked suggestion sends once, with no busy notice; the composer waits for this tab's own turn, and a send refused by it (after a reload) offers no retry", { timeout: 60000 }, async (t) => {
  await withTabs(t, async (tabs) => {
    const page = await openDemo(tabs, "tab A", undefined, "?pace=50");
    await page.dblclick('button.chip[data-say="what is 12 * 7"]');
    assert.equal(await page.locator("#send").isDisabled(), true, "Send waits for this tab's turn");
    assert.equal(await page.locator('button.chip[data-say="tell me a story"]').isDisabled(), true, "so do the suggestions");
    await page.waitForFunction(() => document.querySelector("#messages > li:last-child .text")?.textContent === "12 * 7 = 84.", null, { timeout: 15000 });
    await idle(page);
    await page.waitForTimeout(300);
    assert.equal(await page.locator("#notice").isHidden(), true, `no notice; it says ${await page.locator("#notice").textContent()}`);
    assert.deepEqual((await messages(page)).map(({ role }) => role), ["user", "assistant", "tool", "assistant"]);
    assert.equal(await page.locator("#send").isDisabled(), false);

    // After a reload the page no longer knows that the running turn is its own; the agent refuses the
    // send, and the page says why, with nothing to retry (it would send twice).
    await page.click('button.chip[data-say="tell me a story"]');
    await partsSeen(page, 5);
    await page.reload();
    await ready(page);
    await send(page, "hello");
    await page.waitForSelector('#notice:not([hidden])');
    assert.match(await page.locator("#notice p").textContent(), /^Not sent: “hello”: this tab's previous message is still being answered/);
    assert.equal(await page.locator("#retry").count(), 0, "no retry");
    assert.equal(await page.inputValue("#input"), "hello", "the text stays");
    await idle(page);
  });
});

test("a chat that expires while shown says so (and Send waits), and a send that meets the expiry says it in words", { timeout: 30000 }, async (t) => {
  await withTabs(t, async (tabs) => {
    const page = await openDemo(tabs, "tab A");
    await page.evaluate(async () => {
      const lib = await import("/js/entry/browser.js");
      const other = await lib.SessionStore.indexedDb({ database: "agent-session-demo", owner: "other" });
      const s = await other.open("short-lived", { idleTtlMs: 3000 });
      await s.invoke((inv) => inv.setState("title", "expires in 3 s"));
      await other.close();
      location.hash = "#short-lived";
    });
    await until(page, "the short-lived chat", () => document.getElementById("title").textContent === "expires in 3 s");
    assert.match(await page.locator("#expiry").textContent(), /^expires in [1-3] s$/);
    await until(page, "the chat to show as expired", () =>
      document.getElementById("status").dataset.status === "expired" && document.getElementById("expiry").textContent === "expired" &&
      document.getElementById("send").disabled && document.querySelector("#sessions > li.current")?.dataset.status === "expired", null, 8000);
    // A send that was on its way when it expired (the page submits what is in the composer).
    await page.evaluate(() => {
      document.getElementById("input").value = "are you there?";
      document.getElementById("composer").requestSubmit();
    });
    await page.waitForSelector('#notice[data-kind="error"]');
    const text = await page.locator("#notice p").textContent();
    assert.match(text, /^Not sent: “are you there\?”: this chat expired/);
    assert.doesNotMatch(text, /sweepExpired|SessionExpiredError/);
  });
});

test("a message over the size limit stays in the composer, and the page says why it was not sent", { timeout: 30000 }, async (t) => {
  await withTabs(t, async (tabs) => {
    const page = await openDemo(tabs, "tab A");
    const big = "y".repeat(2 * 1024 * 1024);
    await send(page, big);
    await page.waitForSelector('#notice:not([hidden])', { timeout: 15000 });
    await page.waitForTimeout(1000); // the turn's end comes too: it must not hide the cause
    assert.match(await page.locator("#notice p").textContent(), /LimitExceededError/);
    assert.equal((await page.inputValue("#input")).length, big.length, "the text is still there");
    assert.equal(await page.locator("#messages > li:not(.empty)").count(), 0);
    assert.equal(await page.locator("#send").isDisabled(), false);
  });
});

// Moves the inspector's version slider as a keyboard user does (Home, then ArrowRight).
async function setSlider(page, version) {
  const slider = page.locator("#slider");
  await slider.focus();
  await slider.press("Home");
  for (let i = 0; i < version; i++) await slider.press("ArrowRight");
  assert.equal(Number(await slider.inputValue()), version);
}

// Two screenshots side by side, captioned, as one PNG in docs/screenshots/.
async function sideBySide(images, name) {
  const page = await chrome.browser.newPage({ viewport: { width: 1380, height: 820 } });
  try {
    const cells = images
      .map(([caption, png]) => `<figure><figcaption>${caption}</figcaption><img src="data:image/png;base64,${png.toString("base64")}"></figure>`)
      .join("");
    await page.setContent(`<!doctype html><style>
      body { margin: 0; padding: 12px; background: #c9ced8; font: 600 15px system-ui, sans-serif; display: flex; gap: 12px; }
      figure { margin: 0; } figcaption { margin: 0 0 6px; } img { display: block; max-width: 672px; border: 1px solid #8d95a3; }
    </style>${cells}`);
    await page.locator("body").screenshot({ path: new URL(name, SHOTS).pathname });
  } finally {
    await page.close();
  }
}
