// The package in real Deno (the `deno` npm package, a devDependency, so `npm ci` in scripts/setup
// installs it; no download), loaded as a Deno user who installed it loads it: each Deno program runs
// in a temporary directory holding a deno.json of {"nodeModulesDir": "manual", "unstable": ["kv"]}
// and node_modules/agent-session, a symlink to this repository. Deno then resolves "agent-session"
// through package.json "exports" with its "deno" condition (js/entry/deno.js, which reads the wasm
// with Deno.readFile) and never fetches anything from npm (--cached-only where a command takes it).
//
//   - tests/runtimes/deno/smoke.mjs: a turn, a refused second begin and the typed errors (instanceof)
//     on SessionStore.memory(), on denoKv(Deno.openKv(":memory:")) and on a KV file;
//   - tests/runtimes/deno/history-model.mjs: the history model (tests/browser/history-model-fixture.mjs)
//     on two connections to one Deno KV file;
//   - tests/runtimes/deno/contender.mjs: two Deno processes contend on one session in one KV file;
//     their merged logs are checked against the guard's invariants (tests/js/adapters/_history.mjs);
//   - examples/deno: `deno check server.ts`, then `deno task start`, driven from Node through 2000
//     turns on one session opened by id per request, a 409 while another process holds a session,
//     and the result read back by a fresh Deno process.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { copyFile, mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { newMarkers } from "./_markers.mjs";
import { checkHistory } from "./adapters/_history.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DENO = join(root, "node_modules", ".bin", "deno");
const RUNTIME = join(root, "tests", "runtimes", "deno");
const EXAMPLE = join(root, "examples", "deno");
const PROJECT_CONFIG = { nodeModulesDir: "manual", unstable: ["kv"] };
// No update check, no permission prompt (a missing permission fails instead of waiting), no colours.
const ENV = { ...process.env, DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1", NO_COLOR: "1" };

const temporary = [];
const running = new Set();

after(async () => {
  // A test that failed or timed out leaves its Deno processes running: stop them (whole process
  // groups for `deno task`, which runs the server as its child).
  for (const child of running) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    try {
      if (child.group) process.kill(-child.pid, "SIGKILL");
      else child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const dir of temporary) await rm(dir, { recursive: true, force: true });
});

/**
 * A directory laid out like a Deno project that installed this package: `deno.json` (the given one,
 * or PROJECT_CONFIG), `node_modules/agent-session` -> the repository, and `files` copied in.
 */
async function denoProject(name, files, config = PROJECT_CONFIG) {
  const dir = await mkdtemp(join(tmpdir(), `agent-session-deno-${name}-`));
  temporary.push(dir);
  await writeFile(join(dir, "deno.json"), `${JSON.stringify(config, null, 2)}\n`);
  await mkdir(join(dir, "node_modules"));
  await symlink(root, join(dir, "node_modules", "agent-session"), "dir");
  for (const file of files) await copyFile(file, join(dir, file.slice(file.lastIndexOf("/") + 1)));
  return dir;
}

/** Runs `deno ...args` to completion; resolves to its stdout, rejects with its stderr. */
async function deno(args, { cwd, timeout = 30_000 }) {
  try {
    const { stdout } = await promisify(execFile)(DENO, args, { cwd, env: ENV, timeout, maxBuffer: 64 << 20 });
    return stdout;
  } catch (error) {
    throw new Error(`deno ${args.join(" ")} failed (${error.code ?? error.signal}):\n${error.stderr ?? ""}${error.stdout ?? ""}`);
  }
}

/**
 * Starts a long-running Deno process that logs JSON lines. `events` collects them; `next(type)`
 * resolves at its next event of that type (rejects if it exits first); `send()` writes a line to
 * its stdin; `exited` resolves to [code, signal].
 */
function startDeno(args, { cwd, name = args.join(" "), env = {}, group = false }) {
  const child = spawn(DENO, args, { cwd, env: { ...ENV, ...env }, stdio: ["pipe", "pipe", "pipe"], detached: group });
  child.group = group;
  running.add(child);
  const events = [];
  const waiting = [];
  let stderr = "";
  let stdout = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  createInterface({ input: child.stdout }).on("line", (line) => {
    stdout += `${line}\n`;
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      event = { type: "text", line };
    }
    events.push(event);
    for (const w of waiting.filter((w) => w.matches(event))) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve(event);
    }
  });
  const exited = once(child, "exit");
  exited.then(() => running.delete(child));
  const next = (matches) =>
    new Promise((resolve, reject) => {
      const done = events.find(matches);
      if (done) return resolve(done);
      waiting.push({ matches, resolve });
      exited.then(([code, signal]) => reject(new Error(`${name} exited (${code ?? signal}):\n${stderr}${stdout}`)));
    });
  return {
    child,
    events,
    exited,
    next: (type) => next(typeof type === "function" ? type : (event) => event.type === type),
    send: () => child.stdin.write("go\n"),
    stderr: () => stderr,
  };
}

const seconds = (since) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

test("the history model in Deno, on two connections to one Deno KV file: every version read back every way matches what was committed", { timeout: 120_000 }, async () => {
  const fixtures = join(root, "tests", "browser");
  const dir = await denoProject("history-model", [
    join(RUNTIME, "history-model.mjs"),
    join(fixtures, "history-model-fixture.mjs"),
    join(fixtures, "model-checks.mjs"),
  ]);
  const out = await deno(["run", "--cached-only", "--allow-read", "--allow-write", "history-model.mjs", join(dir, "model.db"), "8"], { cwd: dir, timeout: 90_000 });
  const result = JSON.parse(out);
  assert.equal(result.error, undefined, result.error);
  assert.equal(result.trials, 8);
});

test("Deno imports the package through its deno export: a turn on memory, on Deno KV :memory: and on a KV file; typed errors", { timeout: 60_000 }, async (t) => {
  const started = performance.now();
  const dir = await denoProject("smoke", [join(RUNTIME, "smoke.mjs")]);
  const out = await deno(["run", "--cached-only", "--allow-read", "--allow-write", "smoke.mjs", join(dir, "smoke.db")], { cwd: dir });
  const result = JSON.parse(out);

  const entry = pathToFileURL(await realpath(join(root, "js", "entry", "deno.js"))).href;
  assert.equal(result.resolved.main, entry, "Deno resolves agent-session to the deno export condition");
  assert.equal(result.resolved.adapters, pathToFileURL(await realpath(join(root, "js", "adapters", "index.js"))).href);
  assert.match(result.deno, /^2\./);

  for (const backend of ["memory", "kvMemory", "kvFile"]) {
    const r = result[backend];
    assert.equal(r.committed, 2, `${backend}: the second turn committed version 2`);
    assert.equal(r.version, 2, backend);
    assert.equal(r.status, "idle", backend);
    assert.deepEqual(r.messages, [
      { role: "user", content: "hello from Deno" },
      { role: "assistant", content: "second turn" },
    ], backend);
    assert.deepEqual(r.state, { runtime: "deno" }, backend);
    const { secondBegin, commitTwice, openAbsent, badId } = r.checks;
    assert.deepEqual(
      [secondBegin.name, secondBegin.code, secondBegin.isConcurrencyError, secondBegin.isAgentSessionError, secondBegin.isError],
      ["ConcurrencyError", "CONCURRENT_INVOCATION", true, true, true],
      `${backend}: a second begin: ${JSON.stringify(secondBegin)}`,
    );
    assert.equal(typeof secondBegin.holder, "string");
    assert.ok(secondBegin.retryAfterMs > 0 && secondBegin.retryAfterMs <= 30_000, `retryAfterMs ${secondBegin.retryAfterMs}`);
    assert.deepEqual([commitTwice.name, commitTwice.code, commitTwice.isInvalidTransitionError], ["InvalidTransitionError", "INVALID_TRANSITION", true], backend);
    assert.deepEqual([openAbsent.name, openAbsent.code, openAbsent.isNotFoundError], ["NotFoundError", "NOT_FOUND", true], backend);
    assert.deepEqual([badId.name, badId.code, badId.isValidationError], ["ValidationError", "INVALID_INPUT", true], backend);
  }
  assert.deepEqual(result.kvFileReopened, { version: 2, status: "idle", count: 2 }, "the KV file keeps the session across handles");

  // In this repository, examples/deno (no node_modules of its own) resolves the package to this
  // checkout by its package.json name, with the same condition.
  const inPlace = await deno(["eval", 'console.log(import.meta.resolve("agent-session"))'], { cwd: EXAMPLE });
  assert.equal(inPlace.trim(), entry, "examples/deno in place resolves agent-session to js/entry/deno.js");
  t.diagnostic(`Deno ${result.deno}; ${seconds(started)}`);
});

test("two Deno processes contend on one session in one KV file: the merged history keeps the guard's invariants", { timeout: 60_000 }, async (t) => {
  const started = performance.now();
  const ATTEMPTS = 100;
  const dir = await denoProject("guard", [join(RUNTIME, "contender.mjs")]);
  const file = join(dir, "guard.db");
  const id = "contended";
  const owners = ["deno-a", "deno-b"];
  const run = (config) => ["run", "--cached-only", "--allow-read", "--allow-write", "contender.mjs", JSON.stringify({ file, id, ...config })];

  const workers = owners.map((worker) => startDeno(run({ worker, attempts: ATTEMPTS }), { cwd: dir, name: worker }));
  await Promise.all(workers.map((w) => w.next("ready")));
  for (const w of workers) {
    w.send();
    w.child.stdin.end();
  }
  const exits = await Promise.all(workers.map((w) => w.exited));
  exits.forEach(([code, signal], i) => assert.equal(code, 0, `${owners[i]} exited ${code ?? signal}: ${workers[i].stderr()}`));
  const contendedIn = seconds(started);

  const reader = startDeno(run({ worker: "reader", mode: "read" }), { cwd: dir, name: "reader" });
  const final = await reader.next("final");
  assert.equal((await reader.exited)[0], 0, reader.stderr());

  const events = workers.flatMap((w) => w.events).filter((e) => !["ready", "done", "text"].includes(e.type));
  const { commits, denials } = checkHistory(events, final, { owners });
  assert.equal(final.status, "idle");
  for (const [i, w] of workers.entries()) {
    const mine = w.events.filter((e) => ["acquire", "denied"].includes(e.type));
    assert.equal(mine.length, ATTEMPTS, `${owners[i]}: every attempt either acquired or was denied`);
    for (const denial of w.events.filter((e) => e.type === "denied")) {
      assert.equal(denial.isConcurrencyError, true, `${owners[i]}: denial is instanceof ConcurrencyError`);
      assert.equal(denial.holder, owners[1 - i], `${owners[i]} is only ever refused by the other process`);
    }
  }
  // Did the two loops run at the same time? (They start on one signal; timing decides the rest.)
  const span = (w) => {
    const times = w.events.filter((e) => ["acquire", "denied", "commit"].includes(e.type)).map((e) => e.t);
    return [Math.min(...times), Math.max(...times)];
  };
  const [a, b] = workers.map(span);
  const overlapped = a[0] <= b[1] && b[0] <= a[1];
  if (overlapped) assert.ok(denials > 0, "the two processes ran at the same time, yet no begin was refused");
  t.diagnostic(
    `${commits} commits (${workers.map((w, i) => `${owners[i]} ${w.events.filter((e) => e.type === "commit").length}`).join(", ")}), ` +
      `${denials} ConcurrencyErrors, loops overlapped: ${overlapped}; contention ${contendedIn}, total ${seconds(started)}`,
  );
});

test("examples/deno: deno check, then deno task start; 2000 turns on one session opened by id per request, a 409 while another process holds a session, read back by a fresh process", { timeout: 120_000 }, async (t) => {
  const started = performance.now();
  const TURNS = 2000;
  const config = JSON.parse(await readFile(join(EXAMPLE, "deno.json"), "utf8"));
  assert.equal(config.nodeModulesDir, "manual", "the example uses the node_modules it is given (no npm fetch)");
  assert.ok(config.unstable?.includes("kv"), "the example enables Deno KV");
  const dir = await denoProject("example", [join(EXAMPLE, "server.ts"), join(RUNTIME, "contender.mjs")], config);

  // Type-checks the example against the package's .d.ts files, as `deno check` or an editor would.
  let phase = performance.now();
  await deno(["check", "--cached-only", "server.ts"], { cwd: dir });
  const checkedIn = seconds(phase);

  const kvFile = join(dir, "example.db");
  const server = startDeno(["task", "start"], { cwd: dir, name: "deno task start", env: { PORT: "0", KV_PATH: kvFile }, group: true });
  const listening = await server.next((e) => e.type === "text" && /^listening on http:\/\/127\.0\.0\.1:\d+$/.test(e.line));
  const base = listening.line.slice("listening on ".length);
  const call = async (method, path, body) => {
    const init = { method };
    if (body !== undefined) Object.assign(init, { headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
    const response = await fetch(`${base}${path}`, init);
    return { status: response.status, headers: response.headers, body: await response.json() };
  };

  phase = performance.now();
  for (let i = 1; i <= TURNS; i++) {
    const { status, body } = await call("POST", "/sessions/long/turn", { message: `turn ${i}` });
    if (status !== 200 || body.version !== i || body.reply !== `You said: turn ${i}`) {
      assert.fail(`turn ${i}: ${status} ${JSON.stringify(body)}`);
    }
  }
  const turnsIn = seconds(phase);
  assert.deepEqual((await call("GET", "/sessions/long")).body, { id: "long", version: TURNS, status: "idle", count: 2 * TURNS });

  // A session held by another Deno process (its own store on the same KV file): 409 with the holder
  // and retryAfterMs, nothing written; after the holder aborts, the next turn commits.
  assert.equal((await call("POST", "/sessions/held/turn", { message: "first" })).body.version, 1);
  const holder = startDeno(
    ["run", "--cached-only", "--allow-read", "--allow-write", "contender.mjs", JSON.stringify({ file: kvFile, id: "held", worker: "deno-holder", mode: "hold" })],
    { cwd: dir, name: "holder" },
  );
  await holder.next("ready");
  holder.send();
  await holder.next("acquire");
  const refused = await call("POST", "/sessions/held/turn", { message: "while held" });
  assert.equal(refused.status, 409, JSON.stringify(refused.body));
  assert.equal(refused.body.error, "CONCURRENT_INVOCATION");
  assert.equal(refused.body.holder, "deno-holder");
  assert.ok(refused.body.retryAfterMs > 0, `retryAfterMs ${refused.body.retryAfterMs}`);
  assert.match(refused.headers.get("retry-after") ?? "", /^\d+$/);
  holder.send();
  await holder.next("released");
  holder.child.stdin.end();
  assert.equal((await holder.exited)[0], 0, holder.stderr());
  const afterRelease = await call("POST", "/sessions/held/turn", { message: "after" });
  assert.deepEqual([afterRelease.status, afterRelease.body.version], [200, 2], "the holder wrote nothing; the next turn commits version 2");

  // The other answers: an unknown session, a body that is not JSON.
  assert.deepEqual(await call("GET", "/sessions/nobody").then((r) => [r.status, r.body.error]), [404, "NOT_FOUND"]);
  assert.deepEqual(await call("POST", "/sessions/long/turn", "not json").then((r) => [r.status, r.body.error]), [400, "INVALID_INPUT"]);

  // SIGTERM to deno task, which forwards it: the server shuts down, closes its store and the KV
  // file, and exits 0 (a signal it did not handle would be exit code 143).
  server.child.kill("SIGTERM");
  const [code, signal] = await server.exited;
  assert.equal(code, 0, `deno task start exited ${code ?? signal}: ${server.stderr()}`);

  const reader = startDeno(
    ["run", "--cached-only", "--allow-read", "--allow-write", "contender.mjs", JSON.stringify({ file: kvFile, id: "long", worker: "reader", mode: "read" })],
    { cwd: dir, name: "reader" },
  );
  const final = await reader.next("final");
  assert.equal(final.version, TURNS);
  assert.equal(final.status, "idle");
  assert.equal(final.messages.length, 2 * TURNS);
  assert.deepEqual(final.messages.slice(-2), [
    { role: "user", content: `turn ${TURNS}` },
    { role: "assistant", content: `You said: turn ${TURNS}` },
  ]);
  t.diagnostic(`deno check ${checkedIn}; ${TURNS} sequential turns in ${turnsIn}; total ${seconds(started)}`);
});

// Encryption at rest in real Deno (tests/runtimes/deno/encryption.mjs): a key from Deno's WebCrypto,
// stores over denoKv(Deno.openKv(file)); the KV file dumped raw (every entry, mid-turn and after, and
// the SQLite file's bytes) holds no marker, while the same scenario without a key (the control) holds
// them all; a new store with the key reads everything back; no key, another key and an unknown key id
// are CorruptRecordError naming the head; keys that are not AES-GCM are ValidationError.
test("Deno: encryption at rest on a Deno KV file: no marker in the raw file (the control without a key holds them all), read back with the key, CorruptRecordError without it, ValidationError for a bad key", { timeout: 60_000 }, async (t) => {
  const started = performance.now();
  const dir = await denoProject("encryption", [join(RUNTIME, "encryption.mjs")]);
  const markers = { clear: newMarkers("CLEAR"), sealed: newMarkers("SEALED") };
  const out = await deno(["run", "--cached-only", "--allow-read", "--allow-write", "encryption.mjs", JSON.stringify({ dir, markers })], { cwd: dir });
  const result = JSON.parse(out);
  assert.equal(result.resolved, pathToFileURL(await realpath(join(root, "js", "entry", "deno.js"))).href, "Deno resolves agent-session to the deno export condition");
  assert.deepEqual(result.keyInfo, { type: "secret", algorithm: "AES-GCM", extractable: false, usages: ["encrypt", "decrypt"] });

  const names = Object.keys(markers.clear);
  const holding = (dump, name) => dump.filter((record) => record.markers.includes(name));
  // A dumped record's kind: the first letter of its string key part (h, e, s, g, t).
  const kindsHolding = (dump, name) => [...new Set(holding(dump, name).map(({ key }) => key.replace(/^agent-session\|/, "")[0]))].sort();
  const kinds = (dump) => [...new Set(dump.map(({ key }) => key.replace(/^agent-session\|/, "")[0]))].sort().join("");

  // The control: without a key, the same dumps hold every marker, in the record kinds that carry it,
  // and the SQLite file's bytes hold the durable ones.
  const clear = result.clear;
  const clearAll = [...clear.mid, ...clear.end, ...clear.files];
  for (const name of names) assert.ok(holding(clearAll, name).length > 0, `control: marker ${name} not in the dump`);
  assert.ok(kindsHolding(clearAll, "message").includes("e"), `control: batches hold messages: ${kindsHolding(clearAll, "message")}`);
  assert.ok(kindsHolding(clearAll, "message").includes("g"), `control: segments hold messages: ${kindsHolding(clearAll, "message")}`);
  assert.ok(kindsHolding(clearAll, "state").includes("g"), `control: segments hold state values: ${kindsHolding(clearAll, "state")}`);
  assert.ok(kindsHolding(clear.mid, "live").includes("t"), `control: live flushes hold parts mid-turn: ${kindsHolding(clear.mid, "live")}`);
  for (const name of ["metadata", "reason", "payload"]) assert.ok(kindsHolding(clear.end, name).includes("h"), `control: the head holds ${name}`);
  assert.ok(clear.files.length > 0, "control: the SQLite file was found");
  for (const name of ["message", "messageKey", "state", "stateKey", "metadata", "reason", "payload", "agent"]) {
    assert.ok(holding(clear.files, name).length > 0, `control: the SQLite file's bytes hold ${name}`);
  }

  // With the key: none of the markers anywhere, though the same kinds of records are there.
  const sealed = result.sealed;
  for (const [what, dump] of [["mid-turn entries", sealed.mid], ["final entries", sealed.end], ["SQLite file bytes", sealed.files]]) {
    assert.ok(dump.length > 0, `${what}: the dump is empty`);
    const leaks = dump.flatMap((record) => record.markers.map((name) => `${name} in ${record.key} (${record.where})`));
    assert.deepEqual(leaks, [], `${what}: markers stored in the clear`);
  }
  assert.ok(sealed.mid.every((record) => record.where === "entry (Uint8Array)"), "denoKv stores bytes");
  assert.ok(kinds(sealed.mid).includes("t"), `the mid-turn dump holds live flushes: ${kinds(sealed.mid)}`);
  for (const kind of "hesg") assert.ok(kinds(sealed.end).includes(kind), `the final dump holds ${kind}/ records: ${kinds(sealed.end)}`);

  // The follower (a second store with the key, on a second handle) read the live parts.
  const M = markers.sealed;
  const parts = [0, 1, 2, 3, 4, 5].map((k) => (k % 2 === 0 ? { delta: `${M.live}:${k}` } : [`${M.live}:${k}`, k]));
  assert.deepEqual(sealed.seen.filter((e) => e.type === "part").map((e) => e.data), parts);
  assert.deepEqual(sealed.seen.at(-1), { type: "end", invocation: sealed.invocation, outcome: "interrupted", version: sealed.version, status: "interrupted" });

  // A new store with the key (alone, or in a keyring under "default") reads everything back.
  const messages = [
    ...Array.from({ length: 12 }, (_, i) => ({ role: "user", content: `${M.message}:${i + 1}`, [M.messageKey]: i + 1 })),
    { role: "assistant", content: `${M.message}:final` },
  ];
  const expected = {
    version: 13,
    status: "interrupted",
    messages,
    agentMessages: [4, 8, 12].map((i) => ({ content: `${M.message}:agent:${i}` })),
    state: { notes: { text: `${M.state}:12` }, [M.stateKey]: [M.state, 12] },
    interrupt: { reason: `${M.reason} needs approval`, payload: { question: M.payload, n: 7 } },
    metadata: { owner: M.metadata, tags: [M.metadata, 1] },
    history: sealed.history,
    at7: { messages: messages.slice(0, 7), state: { notes: { text: `${M.state}:7` }, [M.stateKey]: [M.state, 7] } },
  };
  assert.equal(sealed.version, 13);
  assert.deepEqual(result.readBack, expected, "a new store with the key");
  assert.deepEqual(result.readBackKeyring, expected, "a new store with { current: 'k2', keys: { default, k2 } }");
  assert.ok(sealed.history.some((e) => e.type === "interrupt" && e.reason === expected.interrupt.reason), "the history holds the interrupt");
  assert.equal(sealed.history.filter((e) => e.type === "message").length, messages.length + 3);

  // Without the key, with another key, with an unknown key id: CorruptRecordError naming the head
  // (its metadata is sealed) and the key id it needs.
  for (const what of ["noKey", "wrongKey", "unknownKeyId"]) {
    const { error } = result[what];
    assert.ok(error, `${what}: read without an error`);
    assert.deepEqual([error.name, error.code, error.isCorruptRecordError, error.isAgentSessionError], ["CorruptRecordError", "CORRUPT_RECORD", true, true], `${what}: ${JSON.stringify(error)}`);
    assert.equal(error.key, "h/leak%2Fdeno~", `${what}: the error names the record: ${error.message}`);
    assert.ok(error.message.includes('"default"'), `${what}: the message names key id "default": ${error.message}`);
  }

  // Keys that are not AES-GCM encrypt+decrypt keys: ValidationError at store creation, on denoKv and
  // on memory; the control key is accepted by the same calls.
  for (const [what, byFactory] of Object.entries(result.validation)) {
    for (const [factory, outcome] of Object.entries(byFactory)) {
      if (what === "aesGcm") {
        assert.deepEqual(outcome, { created: true }, `${factory}() with an AES-GCM key`);
        continue;
      }
      assert.deepEqual([outcome.name, outcome.code, outcome.isValidationError], ["ValidationError", "INVALID_INPUT", true], `${factory}() with ${what}: ${JSON.stringify(outcome)}`);
      assert.ok(outcome.path?.startsWith("options.encryptionKey"), `${factory}() with ${what}: path ${outcome.path}`);
    }
  }
  assert.deepEqual(Object.keys(result.validation).sort(), ["aesCbc", "aesGcm", "aesGcmEncryptOnly", "hmac", "keyringWithCbc", "rawBytes"]);
  t.diagnostic(`Deno ${result.deno}; ${sealed.end.length} entries, ${sealed.files.map((f) => `${f.key} ${f.size} B`).join(", ")}; ${seconds(started)}`);
});
