// Tabs for the browser suites that drive pages of the built package (live, compaction, schema):
// a fresh browser context and database per test, a page that has loaded the package, and running a
// test's function inside a page. Not a test file (node --test picks only *.test.mjs).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before } from "node:test";
import { startBrowser } from "./chromium.mjs";

/**
 * The helpers of one suite: `browser()` gives its started browser (tests/browser/chromium.mjs),
 * `page` the tab page it opens, `database` the prefix of its databases' names.
 */
export function tabHelpers(browser, { page: path, database: prefix }) {
  // A fresh browser context (tabs of one origin) and database name for one test; the pages' console
  // is printed when the test fails, and the test fails on any uncaught error or console error of its
  // pages (worker errors are forwarded to their page's console).
  async function withTabs(t, body) {
    const tabs = await browser().context();
    const database = `${prefix}-${randomUUID()}`;
    try {
      await body(tabs, database);
      const errors = tabs.logs().filter((line) => / (error|pageerror): /.test(line) || / crashed$/.test(line));
      assert.deepEqual(errors, [], "the pages reported errors");
    } catch (error) {
      console.log(`----- console of the pages of "${t.name}" (database ${database}) -----\n${tabs.logs().join("\n") || "(nothing)"}\n-----`);
      throw error;
    } finally {
      await tabs.close();
    }
  }

  async function waitReady(page, label) {
    await page.waitForFunction(() => document.body?.dataset.ready);
    const ready = await page.evaluate(() => document.body.dataset.ready);
    assert.equal(ready, "true", `${label} did not load the package`);
  }

  async function openTab(tabs, label) {
    const page = await tabs.page(path, label);
    await waitReady(page, label);
    return page;
  }

  return { withTabs, waitReady, openTab, inTab };
}

/** A suite file's Chromium, started before its tests and stopped after them, and the tab helpers of
 * `tabHelpers` over it. */
export function chromiumSuite(options) {
  let chrome;
  before(async () => {
    chrome = await startBrowser();
  });
  after(async () => {
    await chrome?.stop();
  });
  return tabHelpers(() => chrome, options);
}

// Runs `fn(env, arg)` in a tab; `fn` is sent as source, so it may use only its arguments (env: what
// the tab's fixture gives: the package as `lib`, the fixture as `fx`, `ctx` kept across calls).
export const inTab = (page, fn, arg) => page.evaluate(([source, arg]) => window.run(source, arg), [fn.toString(), arg]);

/** For inTab: tries `ctx.session.begin()`; "began", or whether it was a ConcurrencyError and its holder. */
export async function tryBegin({ lib, ctx }) {
  try {
    await ctx.session.begin();
    return "began";
  } catch (error) {
    return { concurrency: error instanceof lib.ConcurrencyError, holder: error.holder };
  }
}
