// Checks shared by the model tests (history-model-fixture.mjs, expiry-model-fixture.mjs, and
// tests/js/*-model.test.mjs), which run in Node and in a Chromium page alike: no Node module, no
// import.

/** A seeded pseudo-random generator in [0, 1) (an LCG: the same seed gives the same run). */
export function seeded(seed) {
  let state = seed;
  return () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/** JSON text with object keys sorted: equal texts = deeply equal plain JSON values. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "undefined";
}

/** Throws, saying `what` and both values, unless `actual` and `expected` are deeply equal JSON. */
export function same(actual, expected, what) {
  const [a, e] = [canonical(actual), canonical(expected)];
  if (a !== e) throw new Error(`${what}:\n  actual   ${a.slice(0, 2000)}\n  expected ${e.slice(0, 2000)}`);
}

export function check(condition, what) {
  if (!condition) throw new Error(what);
}
