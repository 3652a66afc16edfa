// Turns the page's results into markdown; shared by the page (opened by hand) and bench/run.mjs, so
// both print the same tables. No imports: it runs in the browser and in node.

const AS = "agent-session";
const MEMORY = "agent-session memory";
const IDB = "idb";
const KEYVAL = "idb-keyval";
const DEXIE = "dexie";

export function ms(x) {
  if (x === undefined || Number.isNaN(x)) return "-";
  return x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(1);
}

const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : "-");
const count = (x) => (x === undefined ? "-" : String(Math.round(x * 10) / 10));
const kb = (bytes) => (bytes === undefined ? "-" : (bytes / 1024).toFixed(bytes < 10240 ? 1 : 0));

function table(header, rows) {
  const line = (cells) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---:")), ...rows.map(line)].join("\n");
}

/** The headline table: medians of a turn and of a cold load, and agent-session's ratios to (b), (a) and (c). */
export function summary(results) {
  return table(
    ["messages", "turn: agent-session", "turn: (b) idb", "turn: (a) idb-keyval", "turn: (c) Dexie", "turn as/(b)", "turn as/(a)", "turn as/(c)",
      "load: agent-session", "load: (b) idb", "load: (a) idb-keyval", "load: (c) Dexie", "load as/(b)", "load as/(a)", "load as/(c)"],
    results.sizes.map(({ size, impls }) => {
      // Results from before Dexie was measured have no (c): its cells print "-".
      const t = (k) => impls[k]?.turn.median;
      const l = (k) => impls[k]?.load.median;
      return [size, ms(t(AS)), ms(t(IDB)), ms(t(KEYVAL)), ms(t(DEXIE)), ratio(t(AS), t(IDB)), ratio(t(AS), t(KEYVAL)), ratio(t(AS), t(DEXIE)),
        ms(l(AS)), ms(l(IDB)), ms(l(KEYVAL)), ms(l(DEXIE)), ratio(l(AS), l(IDB)), ratio(l(AS), l(KEYVAL)), ratio(l(AS), l(DEXIE))];
    }),
  );
}

/** Where a turn's time goes: each implementation's two phases, transactions, snapshots, the engine alone. */
export function turnPhases(results) {
  const base = results.sizes[0].impls[AS].turn.median;
  return table(
    ["messages", "as begin", "as append+commit", "as tx/turn", "as turn vs smallest", "as mean turn", "as p99 turn", "(b) p99 turn",
      "p99 as/(b)", "as snapshot turns",
      "as turn on memory store", "(b) begin", "(b) append+commit", "(b) tx/turn", "(b) mean turn", "(a) get", "(a) push+set",
      "(c) begin", "(c) append+commit", "(c) tx/turn"],
    results.sizes.map(({ size, impls }) => {
      const as = impls[AS];
      return [size, ms(as.begin.median), ms(as.commit.median), count(as.turnTransactions), ratio(as.turn.median, base),
        ms(as.turn.mean), ms(as.turn.p99), ms(impls[IDB].turn.p99), ratio(as.turn.p99, impls[IDB].turn.p99),
        as.snapshotTurns.length ? as.snapshotTurns.map(ms).join(", ") : "none",
        ms(impls[MEMORY]?.turn.median),
        ms(impls[IDB].begin.median), ms(impls[IDB].commit.median), count(impls[IDB].turnTransactions), ms(impls[IDB].turn.mean),
        ms(impls[KEYVAL].begin.median), ms(impls[KEYVAL].commit.median),
        ms(impls[DEXIE]?.begin.median), ms(impls[DEXIE]?.commit.median), count(impls[DEXIE]?.turnTransactions)];
    }),
  );
}

/** Where a cold load's time goes: opening the store or connection, then reading the session. */
export function loadPhases(results) {
  return table(
    ["messages", "as connect", "as open+read", "as tx/load", "as records/load", "as KB/load", "(b) connect", "(b) read", "(b) tx/load",
      "(b) records/load", "(b) KB/load", "(a) connect", "(a) get", "(a) tx/load", "(c) connect", "(c) read", "(c) tx/load"],
    results.sizes.map(({ size, impls }) => [size,
      ...[AS, IDB].flatMap((k) => [ms(impls[k]?.connect.median), ms(impls[k]?.read.median), count(impls[k]?.loadTransactions),
        count(impls[k]?.loadRecords), kb(impls[k]?.loadBytes)]),
      ...[KEYVAL, DEXIE].flatMap((k) => [ms(impls[k]?.connect.median), ms(impls[k]?.read.median), count(impls[k]?.loadTransactions)])]),
  );
}

/** Cold load against the number of batches read after the newest snapshot, at ~1000 messages. */
export function tailLoads(results) {
  const of = (name, k) => results.tail.find((row) => row.name === name && row.turnsAfter === k);
  return table(
    ["2-message turns after the snapshot", "messages", "as load", "as batches read", "as tx/load", "(b) load", "(b) batches read", "load as/(b)"],
    [0, 24, 49].map((k) => {
      const as = of(AS, k), b = of(IDB, k);
      return [k, as.messages, ms(as.load.median), `${as.batches}${as.snapshot ? " + snapshot" : ""}`, count(as.loadTransactions),
        ms(b.load.median), b.batches, ratio(as.load.median, b.load.median)];
    }),
  );
}

/** The turn's median and tail with agent-session and (b) alone in the page (results from before it: none). */
export function aloneTails(results) {
  return table(
    ["messages", "as median", "(b) median", "median as/(b)", "as p99", "(b) p99", "p99 as/(b)", "as worst", "(b) worst", "as snapshot turns"],
    results.alone.map(({ size, as, idb, snapshotTurns }) => [size, ms(as.median), ms(idb.median), ratio(as.median, idb.median),
      ms(as.p99), ms(idb.p99), ratio(as.p99, idb.p99), ms(as.max), ms(idb.max), snapshotTurns]),
  );
}

export function markdown(results) {
  return [
    `Medians in ms of ${results.turns} turns (begin + 2 appended messages of ~${results.messageBytes} bytes + commit)`,
    `and ${results.loads} cold loads (a new store/connection opening the session and reading every message),`,
    `each implementation on its own fresh database, loads and turns interleaved across implementations, after`,
    `a first pass over every size that is not reported; "as" = agent-session, (b) = hand-written idb lease +`,
    `append protocol, (a) = idb-keyval rewriting the whole session per turn, (c) = Dexie, the same protocol as (b).`,
    `${results.userAgent}; performance.now() steps: ${results.crossOriginIsolated ? "5 us (cross-origin isolated)" : "100 us (not cross-origin isolated)"}.`,
    "",
    summary(results),
    "",
    "Where a turn's time goes (ms, medians unless said; the mean and p99 turns include the snapshot turns; tx = IndexedDB",
    "transactions; \"on memory store\" = the same turn on SessionStore.memory(), the engine without IndexedDB):",
    "",
    turnPhases(results),
    "",
    "Where a cold load's time goes (ms, medians; connect = opening the store or connection; records and KB read per load",
    "through get/getAll: agent-session's record bytes, the baseline's records as JSON text):",
    "",
    loadPhases(results),
    "",
    "Cold load by batches since the newest snapshot: ~1000 messages as 50 commits of 18 (a snapshot at version 50",
    "with the default snapshotEvery), then 2-message turns; (b) reads all its batches with one getAll:",
    "",
    tailLoads(results),
    ...(results.alone
      ? [
          "",
          `The turn with agent-session and (b) alone in the page (fresh databases, after the stores above are closed; the`,
          `same sizes and ${results.turns} turns each, interleaved), where no other implementation's stall lands on their turns:`,
          "",
          aloneTails(results),
        ]
      : []),
  ].join("\n");
}
