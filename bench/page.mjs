// Opens a bench page in headless Debian Chromium (tests/browser/chromium.mjs), in a browser context of
// its own, cross-origin isolated, and waits for its `window.bench`; the page's "[bench]" console lines
// go to stderr. Shared by bench/run.mjs and bench/run-open-by-id.mjs.
export async function benchPage(chrome, path) {
  const page = await chrome.page("/tests/browser/blank.html");
  // Cross-origin isolation narrows performance.now() from 100 us to 5 us steps, and turns take about
  // a millisecond; the headers go on the bench page only, so scripts/serve.mjs stays as the tests use it.
  await page.route(`**${path}`, async (route) => {
    const response = await route.fetch();
    const headers = { ...response.headers(), "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
    await route.fulfill({ response, headers });
  });
  page.on("console", (message) => message.text().startsWith("[bench]") && console.error(message.text()));
  await page.goto(`${chrome.origin}${path}`);
  await page.waitForFunction(() => window.bench, null, { timeout: 120_000 });
  return page;
}
