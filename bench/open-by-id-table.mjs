// Turns the results of bench/open-by-id-idb.mjs into markdown; shared by the page (opened by hand) and
// bench/run-open-by-id.mjs, so both print the same tables. No imports: it runs in the browser and in node.

const f = (n, digits = 3) => n.toFixed(digits);
const mib = (bytes, digits = 1) => f(bytes / 2 ** 20, digits);

/** `held` and `open`: results of loop(); `distinct`: of distinct(); `onePage`: all three ran in one page. */
export function markdown({ held, open, distinct, onePage = false }) {
  const pages = onePage
    ? "all parts ran in this one page, so each wasm memory includes the parts before it"
    : "each loop runs in a fresh page, so each wasm memory is its own (it never shrinks)";
  const rows = [["held", held], ["per request", open]].map(([label, r]) =>
    `| IndexedDB | ${label} | ${f(r.first)} | ${f(r.last)} | ${f(r.last / r.first, 2)} | ${f(r.last / held.last, 2)} | ${mib(r.wasmStartBytes)} | ${mib(r.wasmBytes)} | ${mib(r.wasmBytes - held.wasmBytes)} | ${r.cache.sessions} | ${mib(r.cache.bytes, 2)} |`);
  const samples = distinct.samples.map((s) =>
    `| IndexedDB | ${s.opened} | ${mib(s.wasmBytes)} | ${mib(s.countedBytes, 2)} | ${s.cache.sessions} | ${mib(s.cache.bytes, 2)} | ${f(s.msPerSession)} |`);
  return `${held.userAgent}; performance.now() steps: ${held.crossOriginIsolated ? "5 us (cross-origin isolated)" : "100 us (not cross-origin isolated)"}.

${held.turns} turns of 2 messages (~200 bytes of JSON each) on one session of a fresh database; "per request" calls
\`await store.open("long")\` before each turn (timed with it), "held" keeps one Session object; both after ${held.warmup}
untimed turns on another session. Turn times are medians of the first and last ${held.window} turns (about ${2 * held.window} and
${2 * held.turns} messages); ${pages}.

| store | loop | turn ms, first | turn ms, last | last ÷ first | last ÷ held last | wasm MiB, start | wasm MiB, end | wasm − held | cached sessions | cached MiB |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join("\n")}

${distinct.sessions} distinct sessions opened by one store with the default cache (1000 sessions, 64 MiB), each given one
turn and dropped${onePage ? "" : ", in a fresh page"} (wasm memory ${mib(distinct.wasmStartBytes)} MiB before the store); ms per session = mean
open + turn since the previous row.

| store | opened | wasm memory MiB | counted MiB | cached sessions | cached MiB | ms per session |
|---|---:|---:|---:|---:|---:|---:|
${samples.join("\n")}`;
}
