// The browser part of bench/contention.mjs: N tabs (pages of one browser context of headless Chromium,
// sharing IndexedDB, Web Locks and BroadcastChannel), each running bench/contention.html with its own
// SessionStore.indexedDb on one fresh database, contending on one session.
import { crossOriginIsolate } from "./page.mjs";

const PATH = "/bench/contention.html";

/**
 * Runs one contention round of `contenders` tabs in a fresh browser context of `chrome` (startBrowser of
 * tests/browser/chromium.mjs). Resolves to { records, startAt, endedAt, startVersion, final, errors,
 * crossOriginIsolated }: every tab's turn records merged, and the session as stored afterwards.
 */
export async function contendTabs(chrome, { contenders, turns, warmup, waitMs }) {
  const tabs = await chrome.context();
  await crossOriginIsolate(tabs.context, PATH);
  const tag = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const database = `bench-contention-${contenders}-${tag}`;
  const id = "contended";
  try {
    const pages = [];
    for (let i = 1; i <= contenders; i++) {
      const page = await tabs.page(PATH, `tab-${i}`);
      await page.waitForFunction(() => window.bench, null, { timeout: 120_000 });
      pages.push(page);
    }
    // One after another, so that the first tab creates the session and the others find it.
    const prepared = [];
    for (const [i, page] of pages.entries()) {
      prepared.push(await page.evaluate((o) => window.bench.prepare(o), { database, id, label: `tab-${i + 1}`, warmup }));
    }
    const startAt = Date.now() + 500;
    const results = await Promise.all(pages.map((page) => page.evaluate((o) => window.bench.contend(o), { turns, waitMs, startAt })));
    const final = await pages[0].evaluate(() => window.bench.stored());
    for (const page of pages) await page.evaluate(() => window.bench.close());
    await new Promise((resolve) => setTimeout(resolve, 200)); // let late errors of the teardown arrive
    return {
      records: results.flatMap((r) => r.records),
      startAt,
      endedAt: Math.max(...results.map((r) => r.endedAt)),
      startVersion: prepared[0].version,
      final,
      errors: pages.flatMap((page) => page.errors),
      crossOriginIsolated: prepared.every((p) => p.crossOriginIsolated),
      userAgent: prepared[0].userAgent,
    };
  } finally {
    // Each context is off the record (IndexedDB in memory): closing it drops the database.
    await tabs.close();
  }
}
