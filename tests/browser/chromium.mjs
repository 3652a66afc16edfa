// Debian's Chromium driven by playwright-core (never a downloaded browser), and the repository
// served on 127.0.0.1, for tests of the shipped artifact in a real browser.
import { chromium } from "playwright-core";
import { serve } from "../../scripts/serve.mjs";

const QUIET_NETWORK = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--disable-gpu", "--no-sandbox"];

export async function startBrowser() {
  const server = await serve(0);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: QUIET_NETWORK });
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    browser,
    async page(path) {
      const page = await browser.newPage();
      const errors = [];
      page.on("pageerror", (error) => errors.push(error));
      await page.goto(origin + path);
      page.errors = errors;
      return page;
    },
    async stop() {
      await browser.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
