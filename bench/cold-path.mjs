// A server turn's engine work warm and cold, for one or more builds in one Node process: begin, 7 small
// appended messages, commit on a memory store of 20 sessions, timed right after another such turn
// ("warm") and right after the process touched 6.5 MB of other memory and made 3,000 small objects
// ("cold": a framework's own work between its calls into agent-session evicts the caches), step by
// step; and, as a reference, two getters of the Invocation and an `await` of a resolved Promise, warm and
// cold. A tool to A/B a change that shrinks or reshapes the code a turn runs; tight loops of one call
// (bench/binding-calls.mjs) only see the warm figure. Builds are interleaved turn by turn, in a rotating
// order.
// Usage: node bench/cold-path.mjs BUILD... (a name under test-results/js-NAME, or "." for js/)
// (not part of scripts/bench)
import { buildName, buildsFromArgs, importFromBuild } from "./builds.mjs";

const TURNS = 2000;
const WARMUP = 200;
const SESSIONS = 20;

const impls = [];
for (const build of buildsFromArgs("bench/cold-path.mjs")) {
  const { SessionStore } = await importFromBuild(build, "entry/node.js");
  const store = await SessionStore.memory();
  const sessions = [];
  for (let i = 0; i <= SESSIONS; i++) sessions.push(await store.open(`s${i}`));
  impls.push({ name: buildName(build), sessions, cold: [], warm: [], reference: null });
}

// What runs between two cold turns: reads and writes 6.5 MB and leaves 3,000 objects of garbage.
const other = Array.from({ length: 200 }, () => new Float64Array(4096));
let sink = 0;
function otherWork() {
  for (const block of other) for (let i = 0; i < block.length; i += 8) sink += block[i]++;
  const garbage = [];
  for (let i = 0; i < 3000; i++) garbage.push({ i, text: `x${i}` });
  sink += garbage.length;
}

/** One turn, each step timed (ms): begin, the 7 appends, commit; then the references. */
async function turn(impl, k) {
  const t0 = performance.now();
  const inv = await impl.sessions[k % SESSIONS].begin();
  const t1 = performance.now();
  for (let j = 0; j < 7; j++) inv.appendMessage({ checkpoint: `1ef-${k}`, step: j });
  const t2 = performance.now();
  await inv.commit();
  const t3 = performance.now();
  return { turn: t3 - t0, begin: t1 - t0, appends: t2 - t1, commit: t3 - t2 };
}

/** The references: two getters of an Invocation, and an await of a resolved Promise. */
async function references(inv) {
  const t0 = performance.now();
  sink += inv.token + inv.id.length;
  const t1 = performance.now();
  await Promise.resolve();
  const t2 = performance.now();
  return { getters: t1 - t0, await: t2 - t1 };
}

// (The references' invocation holds a session of its own, outside the turns' 20.)
for (const impl of impls) impl.reference = await impl.sessions[SESSIONS].begin();
for (let k = 0; k < WARMUP + TURNS; k++) {
  for (let x = 0; x < impls.length; x++) {
    const impl = impls[(k + x) % impls.length];
    otherWork();
    const cold = await turn(impl, 2 * k);
    const warm = await turn(impl, 2 * k + 1);
    otherWork();
    const coldReference = await references(impl.reference);
    const warmReference = await references(impl.reference);
    if (k >= WARMUP) {
      impl.cold.push({ ...cold, ...coldReference });
      impl.warm.push({ ...warm, ...warmReference });
    }
  }
}
const median = (rows, key) => rows.map((row) => row[key]).sort((a, b) => a - b)[rows.length >> 1] * 1000;
const steps = ["turn", "begin", "appends", "commit", "getters", "await"];
console.log(`begin + 7 messages + commit on a memory store, cold and warm (µs, medians of ${TURNS}; "getters":`);
console.log(`inv.token and inv.id; "await": of a resolved Promise)${sink > 0 ? "" : " "}`);
console.log(`| build | ${steps.map((step) => `${step} cold | ${step} warm`).join(" | ")} | turn cold/warm |`);
console.log(`| --- | ${steps.map(() => "---: | ---:").join(" | ")} | ---: |`);
for (const impl of impls) {
  const cells = steps.map((step) => `${median(impl.cold, step).toFixed(1)} | ${median(impl.warm, step).toFixed(1)}`);
  const ratio = median(impl.cold, "turn") / median(impl.warm, "turn");
  console.log(`| ${impl.name} | ${cells.join(" | ")} | ${ratio.toFixed(2)} |`);
}
for (const impl of impls) await impl.reference.abort();
