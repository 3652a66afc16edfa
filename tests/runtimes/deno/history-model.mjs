// Run by tests/js/deno.test.mjs in real Deno: the history model (history-model-fixture.mjs, copied
// beside this file with model-checks.mjs) on Deno KV, two connections to one KV file, each trial's
// stores under a prefix of their own; imports go to the memory store or another prefix. Prints one
// JSON object: { trials } or { error, trial }.
//
//   deno run --allow-read --allow-write history-model.mjs <kv file> <trials>
import { SessionStore } from "agent-session";
import { denoKv } from "agent-session/adapters";
import { LIMITS, runTrial } from "./history-model-fixture.mjs";

const [file, count] = Deno.args;
const connections = [await Deno.openKv(file), await Deno.openKv(file)];
let prefixes = 0;
const backend = () => {
  let prefix;
  return {
    name: "Deno KV",
    async open(snapshotEvery) {
      prefix = `hm${++prefixes}:`;
      const options = { prefix, snapshotEvery, limits: LIMITS };
      return [await SessionStore.kv(denoKv(connections[0]), options), await SessionStore.kv(denoKv(connections[1]), options)];
    },
    fresh: () => SessionStore.kv(denoKv(connections[1]), { prefix }),
  };
};
const target = backend();
const targets = [
  { name: "memory", make: () => SessionStore.memory() },
  { name: "Deno KV (import)", make: async () => (await target.open(1))[0] },
];
let result = { trials: Number(count) };
for (let trial = 0; trial < Number(count); trial++) {
  try {
    await runTrial({ trial, backend: backend(), snapshotEvery: 1 + (trial % 5), targets });
  } catch (error) {
    result = { error: String(error?.stack ?? error), trial };
    break;
  }
}
for (const connection of connections) connection.close();
console.log(JSON.stringify(result));
