// A/B of builds of agent-session on the smallest commit: setState of a number + checkpoint(), on a
// memory store that holds many records (every checkpoint adds one: 20,000 per round here), in one Node
// process. Each argument names a build: a copy of that build's js/ under test-results/js-NAME (ignored
// by git), or "." for this checkout's js/. Rounds alternate between the builds; prints µs per call.
// Usage: node bench/checkpoint-ab.mjs a .
import { buildName, buildsFromArgs, importFromBuild } from "./builds.mjs";

const builds = buildsFromArgs("bench/checkpoint-ab.mjs");
const CALLS = 20000;
const ROUNDS = 4;

const runs = [];
for (const build of builds) {
  const { SessionStore } = await importFromBuild(build, "entry/node.js");
  const session = await (await SessionStore.memory()).open("s");
  runs.push({ name: buildName(build), session, times: [] });
}
const options = { agent: "a" };
for (let round = 0; round < ROUNDS; round++) {
  for (const run of runs) {
    const inv = await run.session.begin();
    const start = performance.now();
    for (let i = 0; i < CALLS; i++) {
      inv.setState(`k${i % 50}`, i, options);
      await inv.checkpoint();
    }
    // The first round is a warm-up (and fills the store).
    if (round > 0) run.times.push(((performance.now() - start) / CALLS) * 1000);
    await inv.commit();
  }
}
for (const run of runs) console.log(`${run.name.padEnd(8)} ${run.times.map((t) => t.toFixed(2)).join(" ")} µs per setState + checkpoint`);
