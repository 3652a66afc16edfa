// The server loop of the README's examples, in Node: one store, `store.open(id)` on every request,
// one turn (2 messages) per request, against the same loop holding one Session object. Each loop runs
// in its own child process so that its RSS is its own (wasm memory never shrinks).
// Usage: node bench/open-by-id.mjs [--turns=5000] [--sessions=10000] [--json=path]
// Figures are ratios to baselines measured in the same run; nothing here is a pass/fail threshold.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { jsonPath, printer, writeJson } from "./json.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, "").split("=")));
const TURNS = Number(args.turns ?? 5000);
const SESSIONS = Number(args.sessions ?? 10000);
const WINDOW = 50;

const body = "x".repeat(160);
const userMsg = (i) => ({ role: "user", content: `question ${i} ${body}` });
const assistantMsg = (i) => ({ role: "assistant", content: `answer ${i} ${body}` });

async function makeStore(backend) {
  const { SessionStore } = await import("agent-session");
  if (backend === "memory") return SessionStore.memory();
  const { memoryKv } = await import("agent-session/adapters");
  return SessionStore.kv(memoryKv());
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/** One loop of `TURNS` turns: per-turn times of the first and last windows, and RSS at the end. */
async function loop(backend, mode) {
  const store = await makeStore(backend);
  const held = mode === "held" ? await store.open("long") : undefined;
  const times = [];
  for (let i = 0; i < TURNS; i++) {
    const started = performance.now();
    const session = held ?? (await store.open("long"));
    await session.invoke((inv) => {
      inv.appendMessage(userMsg(i));
      inv.appendMessage(assistantMsg(i));
    });
    times.push(performance.now() - started);
  }
  const session = await store.open("long");
  return {
    first: median(times.slice(0, WINDOW)),
    last: median(times.slice(-WINDOW)),
    messages: session.messages().length,
    rssMiB: process.memoryUsage().rss / 2 ** 20,
  };
}

/** `SESSIONS` distinct sessions opened, given one turn and dropped, each in a task of its own as a
 * server's requests are (the garbage collector finalizes dropped objects between tasks; a loop that
 * never yields cannot, docs/storage-layout.md); RSS and cache use as it goes. */
async function distinct(backend) {
  const store = await makeStore(backend);
  const samples = [];
  for (let i = 1; i <= SESSIONS; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    const session = await store.open(`s-${i}`);
    await session.invoke((inv) => {
      inv.appendMessage(userMsg(i));
      inv.appendMessage(assistantMsg(i));
    });
    if (i % (SESSIONS / 5) === 0) {
      const usage = store.cacheUsage();
      const { SessionStore } = await import("agent-session");
      const memory = SessionStore.memoryUsage();
      samples.push({
        opened: i,
        rssMiB: process.memoryUsage().rss / 2 ** 20,
        wasmMiB: memory.wasmBytes / 2 ** 20,
        heapMiB: memory.heapBytes / 2 ** 20,
        cached: usage.sessions,
        cachedMiB: usage.bytes / 2 ** 20,
      });
    }
  }
  return samples;
}

if (args.child) {
  const [what, backend] = args.child.split(",");
  const result = what === "distinct" ? await distinct(backend) : await loop(backend, what);
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

const self = fileURLToPath(import.meta.url);
const run = (what, backend) =>
  JSON.parse(execFileSync(process.execPath, [self, `--child=${what},${backend}`, `--turns=${TURNS}`, `--sessions=${SESSIONS}`], { encoding: "utf8", maxBuffer: 1 << 24 }));

const f = (n, digits = 3) => n.toFixed(digits);
const out = printer();
const data = { turns: TURNS, sessions: SESSIONS, window: WINDOW, loops: {}, distinct: {} };
out.log(`## Opening a session by id on every request (Node ${process.version})

${TURNS} turns of 2 messages (~200 bytes each) on one session; "per request" calls \`store.open("long")\` before each
turn, "held" keeps one Session object. Turn times are medians of the first and last ${WINDOW} turns (about ${2 * WINDOW} and
${2 * TURNS} messages); each loop runs in its own process, RSS at its end.

| store | loop | turn ms, first | turn ms, last | last ÷ first | last ÷ held last | RSS MiB | RSS − held |
|---|---|---:|---:|---:|---:|---:|---:|`);
for (const backend of ["memory", "kv"]) {
  const held = run("held", backend);
  const open = run("open", backend);
  const name = backend === "memory" ? "memory" : "kv(memoryKv)";
  data.loops[name] = { held, open };
  for (const [label, r] of [["held", held], ["per request", open]]) {
    out.log(`| ${name} | ${label} | ${f(r.first)} | ${f(r.last)} | ${f(r.last / r.first, 2)} | ${f(r.last / held.last, 2)} | ${f(r.rssMiB, 0)} | ${f(r.rssMiB - held.rssMiB, 0)} |`);
    if (r.messages !== 2 * TURNS) throw new Error(`${name} ${label}: ${r.messages} messages, expected ${2 * TURNS}`);
  }
}

out.log(`
${SESSIONS} distinct sessions opened, given one turn each and dropped, each in a task of its own (as a server's
requests are), default cache (1000 sessions, 64 MiB). RSS includes what the backend stores (a memory store keeps
every session in wasm memory, memoryKv in the JS heap). "heap" is the wasm heap's live allocations
(\`memoryUsage().heapBytes\`): for the kv store, the cache plus the Session and Invocation objects the garbage
collector has not finalized yet.

| store | opened | RSS MiB | wasm memory MiB | heap MiB | cached sessions | cached MiB |
|---|---:|---:|---:|---:|---:|---:|`);
for (const backend of ["memory", "kv"]) {
  const samples = run("distinct", backend);
  data.distinct[backend === "memory" ? "memory" : "kv(memoryKv)"] = samples;
  for (const s of samples) {
    out.log(`| ${backend === "memory" ? "memory" : "kv(memoryKv)"} | ${s.opened} | ${f(s.rssMiB, 0)} | ${f(s.wasmMiB, 1)} | ${f(s.heapMiB, 1)} | ${s.cached} | ${f(s.cachedMiB, 2)} |`);
  }
}
out.log(`
Command: \`${process.env.BENCH_COMMAND ?? `node bench/open-by-id.mjs ${process.argv.slice(2).join(" ")}`.trim()}\`
Date: ${new Date().toISOString()}`);
writeJson(jsonPath(), import.meta.url, { name: "open-by-id", title: `Opening a session by id on every request (Node ${process.version})`, markdown: out.text(), data });
