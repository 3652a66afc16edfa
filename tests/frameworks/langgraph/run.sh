#!/usr/bin/env bash
# LangGraph.js drop-in tests (agent-session/langgraph). Runs:
#   1. vitest with @langchain/langgraph-checkpoint 1.1.x (the repo's): the validation suite on the
#      memory and kv stores, the saver's tests, and the guard tests and the comparison with
#      MemorySaver (against-memory-saver.test.mjs, and hitl-against-memory-saver.test.mjs with
#      interrupts, parallel nodes, a failing node and a subgraph) on a real StateGraph;
#   2. vitest with @langchain/langgraph-checkpoint 1.2.x (installed by ../langgraph-1.2/install.sh):
#      the validation suite on both stores, the saver's tests and a check that 1.2 is the one loaded;
#   3. tsc on a user program of the .d.ts.
# Prints per-run lines, then "# pass N" and "# fail M" (sums over every run; a skipped or todo test,
# a suite that failed to load, or a validation file without its 726 tests counts as a failure).
# Exits non-zero on any failure. Usage: tests/frameworks/langgraph/run.sh
set -uo pipefail
cd "$(dirname "$0")/../../.."
here=tests/frameworks/langgraph
bin=node_modules/.bin
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pass=0
fail=0

# Adds up one vitest JSON report. $1: label, $2: report, $3: vitest's exit code.
tally_vitest() {
  local label=$1 report=$2 code=$3 line p f
  if [ ! -s "$report" ]; then
    echo "# run $label: no report (vitest exit $code)"
    fail=$((fail + 1))
    return
  fi
  line=$(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    let p = r.numPassedTests, f = r.numFailedTests + r.numPendingTests + r.numTodoTests;
    const notes = [];
    for (const file of r.testResults) {
      const name = file.name.split("/").pop();
      const passed = file.assertionResults.filter((a) => a.status === "passed").length;
      const failed = file.assertionResults.filter((a) => a.status === "failed").length;
      if (file.status === "failed" && failed === 0) { f += 1; notes.push(`${name}: ${file.message || "failed to run"}`.split("\n")[0].slice(0, 100)); }
      if (name.startsWith("validate-") && passed !== 726) { f += 1; notes.push(`${name}: ${passed}/726`); }
    }
    console.log(p, f, r.numTotalTests, r.numPendingTests + r.numTodoTests, notes.join("; ") || "-");
  ' "$report")
  read -r p f total skipped notes <<<"$line"
  [ "$notes" = "-" ] && notes=""
  echo "# run $label: $p passed, $f failed, $skipped skipped, of $total tests${notes:+ ($notes)}"
  if [ "$code" != 0 ] && [ "$f" = 0 ]; then f=1; fi
  pass=$((pass + p))
  fail=$((fail + f))
}

echo "# LangGraph 1: @langchain/langgraph-checkpoint $(node -p 'require("@langchain/langgraph-checkpoint/package.json").version' 2>/dev/null)"
"$bin/vitest" run --config "$here/vitest.config.mjs" --reporter=default --reporter=json --outputFile.json="$out/v11.json"
tally_vitest "checkpoint 1.1.x (validation x2 stores, saver, guard)" "$out/v11.json" $?

echo "# LangGraph 2: @langchain/langgraph-checkpoint 1.2.x"
if tests/frameworks/langgraph-1.2/install.sh; then
  "$bin/vitest" run --config "$here/vitest.config.1.2.mjs" --reporter=default --reporter=json --outputFile.json="$out/v12.json"
  tally_vitest "checkpoint 1.2.x (validation x2 stores, saver, version check)" "$out/v12.json" $?
else
  echo "# run checkpoint 1.2.x: could not install @langchain/langgraph-checkpoint 1.2.x (network?)"
  fail=$((fail + 1))
fi

echo "# LangGraph 3: types"
if "$bin/tsc" -p "$here/tsconfig.types.json"; then
  echo "# run tsc (langgraph.d.ts, strict): 1 passed, 0 failed"
  pass=$((pass + 1))
else
  echo "# run tsc (langgraph.d.ts, strict): 0 passed, 1 failed"
  fail=$((fail + 1))
fi

echo "1..$((pass + fail))"
echo "# pass $pass"
echo "# fail $fail"
[ "$fail" = 0 ]
