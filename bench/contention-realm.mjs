// Contention inside one realm (a server process that gets several requests for one session at once):
// 1, 2, 4 and 8 contenders in one Node process, each opening the session by id on one store and
// looping `session.invoke(fn, { onBusy: { waitMs } })`, fn appending two messages around a wait of
// --body-ms on a timer (the model call), on SessionStore.memory() and on SessionStore.kv(memoryKv()),
// for each build named (test-results/js-NAME, or "." for this checkout), one after the other. Prints
// committed turns per second and the median, p95 and largest latency of a turn (the wait for the guard
// included); the ideal with n contenders is 1000 / body-ms turns per second.
// Usage: node bench/contention-realm.mjs BUILD... [--turns=40] [--body-ms=5]   (not part of scripts/bench)
import { buildName, importFromBuild } from "./builds.mjs";

const option = (name, fallback) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const turns = option("turns", 40);
const bodyMs = option("body-ms", 5);

/** `turns` turns of one contender; resolves to each committed turn's latency (ms). */
async function contend(session) {
  const ms = [];
  for (let i = 0; i < turns; i++) {
    const started = performance.now();
    await session.invoke(
      async (inv) => {
        inv.appendMessage({ role: "user", i });
        await new Promise((resolve) => setTimeout(resolve, bodyMs));
        inv.appendMessage({ role: "assistant", i });
      },
      { onBusy: { waitMs: 60_000 } },
    );
    ms.push(performance.now() - started);
  }
  return ms;
}
const builds = process.argv.slice(2).filter((a) => !a.startsWith("--"));
if (builds.length === 0) throw new Error("usage: node bench/contention-realm.mjs BUILD... [--turns=50]");
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))];
console.log("| build | store | contenders | turns/s | median ms | p95 ms | max ms |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |");
for (const build of builds) {
  const { SessionStore } = await importFromBuild(build, "entry/node.js");
  const { memoryKv } = await importFromBuild(build, "adapters/index.js");
  for (const [kind, make] of [["memory", () => SessionStore.memory()], ["kv(memoryKv)", () => SessionStore.kv(memoryKv())]]) {
    for (const contenders of [1, 2, 4, 8]) {
      const store = await make();
      const id = `contended-${contenders}`;
      await (await store.open(id)).invoke((inv) => inv.appendMessage("warm"));
      const started = performance.now();
      const rounds = await Promise.all(Array.from({ length: contenders }, async () => contend(await store.open(id))));
      const seconds = (performance.now() - started) / 1000;
      const ms = rounds.flat();
      console.log(`| ${buildName(build)} | ${kind} | ${contenders} | ${(ms.length / seconds).toFixed(0)} | ${quantile(ms, 0.5).toFixed(2)} | ${quantile(ms, 0.95).toFixed(2)} | ${Math.max(...ms).toFixed(1)} |`);
      await store.close();
    }
  }
}
