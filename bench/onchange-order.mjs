// The order in which a tab hears other tabs' commits (store.onChange and session.onChange): two tabs
// of one browser context take turns on one IndexedDB session (40 invokes each, onBusy waiting), a
// third listens; prints how many notices it heard and how many came after a newer one. Not part of
// scripts/bench (it times nothing). Run: node bench/onchange-order.mjs [--runs=3]
import { startBrowser } from "../tests/browser/chromium.mjs";

const runs = Number(process.argv.find((a) => a.startsWith("--runs="))?.slice(7) ?? 3);
const browser = await startBrowser();
try {
  for (let run = 0; run < runs; run++) {
    const context = await browser.context();
    const tabs = [];
    for (let i = 0; i < 3; i++) tabs.push(await context.page("/tests/browser/blank.html"));
    const database = `onchange-order-${Date.now()}-${run}`;
    for (const tab of tabs) {
      await tab.evaluate(async (database) => {
        window.lib = await import("/js/entry/browser.js");
        window.store = await lib.SessionStore.indexedDb({ database });
      }, database);
    }
    await tabs[0].evaluate(() => store.open("s", { create: true }));
    await tabs[2].evaluate(async () => {
      window.session = await store.open("s");
      window.heard = { session: [], store: [] };
      session.onChange((change) => heard.session.push(change.version));
      store.onChange((change) => change.id === "s" && heard.store.push(change.version));
    });
    await Promise.all(
      tabs.slice(0, 2).map((tab, k) =>
        tab.evaluate(async (k) => {
          const session = await store.open("s");
          for (let i = 0; i < 40; i++) await session.invoke((inv) => inv.appendMessage(`${k}-${i}`), { onBusy: { waitMs: 10000 } });
        }, k),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    const { heard, version } = await tabs[2].evaluate(() => ({ heard, version: session.version }));
    const late = (versions) => versions.filter((v, i) => i > 0 && v <= versions[i - 1]).length;
    console.log(
      `run ${run + 1}: session.onChange heard ${heard.session.length}, ${late(heard.session)} after a newer one; ` +
        `store.onChange heard ${heard.store.length}, ${late(heard.store)} after a newer one; the view is at version ${version}`,
    );
    await context.close();
  }
} finally {
  await browser.stop();
}
