// Debian's Chromium driven by playwright-core (never a downloaded browser), and the repository
// served on 127.0.0.1, for tests of the shipped artifact in a real browser.
import { chromium } from "playwright-core";
import { serve } from "../../scripts/serve.mjs";

const QUIET_NETWORK = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--disable-gpu", "--no-sandbox"];

// Collects what a page reports: uncaught errors in `page.errors`, console lines in `page.logs`
// (worker console lines included where Playwright reports them), each prefixed with `label`.
function watch(page, label) {
  const errors = [];
  const logs = [];
  page.on("pageerror", (error) => {
    errors.push(error);
    logs.push(`[${label}] pageerror: ${error.stack ?? error}`);
  });
  page.on("console", (message) => logs.push(`[${label}] ${message.type()}: ${message.text()}`));
  page.on("worker", (worker) => worker.on?.("console", (message) => logs.push(`[${label} worker ${worker.url()}] ${message.type()}: ${message.text()}`)));
  page.on("crash", () => logs.push(`[${label}] crashed`));
  page.errors = errors;
  page.logs = logs;
  return page;
}

// `host`: a name the browser resolves to 127.0.0.1, so that pages are served from http://<host>:<port>,
// which (unlike 127.0.0.1 or localhost) is not a secure context: no Web Locks, no crypto.subtle, no
// crypto.randomUUID, as on a plain-http intranet site.
export async function startBrowser({ host } = {}) {
  const server = await serve(0);
  const args = host ? [...QUIET_NETWORK, `--host-resolver-rules=MAP ${host} 127.0.0.1`] : QUIET_NETWORK;
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args });
  const origin = `http://${host ?? "127.0.0.1"}:${server.address().port}`;
  let pages = 0;
  return {
    origin,
    browser,
    // A page in a browser context of its own (shares no storage with any other page).
    async page(path) {
      const page = watch(await browser.newPage(), `page ${++pages}`);
      await page.goto(origin + path);
      return page;
    },
    // One browser context, the browser's profile for one user: every page opened through it is a tab
    // of the same origin, sharing IndexedDB, Web Locks and BroadcastChannel with the others (and
    // with their workers), and nothing with pages of other contexts.
    async context() {
      const context = await browser.newContext();
      const tabs = [];
      return {
        context,
        tabs,
        async page(path, label = `tab ${tabs.length + 1}`) {
          const page = watch(await context.newPage(), label);
          tabs.push(page);
          await page.goto(origin + path);
          return page;
        },
        // Every console line and error of every tab opened so far, in tab order.
        logs: () => tabs.flatMap((tab) => tab.logs),
        close: () => context.close(),
      };
    },
    async stop() {
      await browser.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
