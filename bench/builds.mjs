// The builds the A/B benchmarks compare in one Node process: a name under test-results/js-NAME (a copy
// of that build's js/, ignored by git), or "." for this checkout's js/. Each build has its own wasm
// instance, so the builds' turns can be interleaved.

/** Imports `path` (relative to a js/ directory, as "entry/node.js") from `build`. */
export function importFromBuild(build, path) {
  const root = build === "." ? "../js/" : `../test-results/js-${build}/`;
  return import(new URL(root + path, import.meta.url).href);
}

/** How a build is named in printed results. */
export const buildName = (build) => (build === "." ? "js/" : `js-${build}`);

/** The builds named on the command line (options, `--name`, are not builds); throws the usage when
 * there are none. */
export function buildsFromArgs(script) {
  const builds = process.argv.slice(2).filter((arg) => !arg.startsWith("--"));
  if (builds.length === 0) {
    throw new Error(`usage: node ${script} BUILD... (a name under test-results/js-NAME, or .)`);
  }
  return builds;
}

/** Prints each implementation's median time (`impl.times`, ms) and its ratio to the first one's. */
export function printMedians(impls) {
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const base = median(impls[0].times);
  const width = Math.max(...impls.map((impl) => impl.name.length)) + 2;
  for (const impl of impls) {
    const m = median(impl.times);
    console.log(`${impl.name.padEnd(width)} ${m.toFixed(3)} ms  ${(m / base).toFixed(3)}x ${impls[0].name}`);
  }
}
