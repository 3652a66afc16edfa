// Opens a bench page in headless Debian Chromium (tests/browser/chromium.mjs), in a browser context of
// its own, cross-origin isolated, and waits for its `window.bench`; the page's "[bench]" console lines
// go to stderr. Shared by bench/run.mjs, bench/run-open-by-id.mjs and bench/contention-tabs.mjs.
export async function benchPage(chrome, path) {
  const page = await chrome.page("/tests/browser/blank.html");
  await crossOriginIsolate(page, path);
  page.on("console", (message) => message.text().startsWith("[bench]") && console.error(message.text()));
  await page.goto(`${chrome.origin}${path}`);
  await page.waitForFunction(() => window.bench, null, { timeout: 120_000 });
  return page;
}

/**
 * Serves `path` with COOP/COEP headers to `target` (a Playwright page, or a browser context for every
 * tab of it). Cross-origin isolation narrows performance.now() from 100 us to 5 us steps, and turns take
 * about a millisecond; the headers go on the bench page only, so scripts/serve.mjs stays as the tests use it.
 */
export async function crossOriginIsolate(target, path) {
  await target.route(`**${path}`, async (route) => {
    const response = await route.fetch();
    const headers = { ...response.headers(), "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
    await route.fulfill({ response, headers });
  });
}
