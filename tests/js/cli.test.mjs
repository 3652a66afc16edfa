// The backup command (bin/agent-session.mjs, `npx agent-session export|import`), run as a child
// process against a real redis-server (started by _redis-server.mjs) and @deno/kv SQLite files in a
// temp dir: export, import into another prefix or database, compare through the library; a
// malformed line stops the import naming the line (the lines before it stay imported); a bad URL,
// an unreadable file and bad usage give a non-zero exit and a clear message.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { openKv } from "@deno/kv";
import { createClient } from "redis";
import { SessionStore } from "agent-session";
import { denoKv, redisKv } from "agent-session/adapters";
import { FIXTURE_IDS, buildSessions, describeAll, exportAll } from "../browser/export-fixture.mjs";
import { freePort, startRedis } from "./adapters/_redis-server.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "bin/agent-session.mjs");
const dir = mkdtempSync(join(tmpdir(), "agent-session-cli-"));
const sortedIds = [...FIXTURE_IDS].sort();

let server;
let client;
let source; // { exports, views } of the fixture as stored in Redis under "src:"
before(async () => {
  server = await startRedis();
  client = await createClient({ url: server.url }).connect();
  const store = await SessionStore.kv(redisKv(client), { prefix: "src:" });
  await buildSessions(store);
  source = { exports: await exportAll(store), views: await describeAll(store, sortedIds) };
  await store.close();
});
after(async () => {
  await client?.quit();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the command; resolves to { code, signal, stdout, stderr }. */
function run(args, { input, timeout = 30_000 } = {}) {
  return runProcess(process.execPath, [BIN, ...args], { input, timeout });
}

/** Runs the command with umask 022, as most shells have it (the modes of the files it creates depend on it). */
function runUmask022(args, options) {
  return runProcess("/bin/sh", ["-c", 'umask 022 && exec "$0" "$@"', process.execPath, BIN, ...args], options);
}

/** `spawned(child)` is called with the child process, to signal it. */
function runProcess(command, args, { input, timeout = 30_000, cwd = ROOT, spawned } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
    spawned?.(child);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${args.join(" ")}: no exit within ${timeout} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeout);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
  });
}

/**
 * A TCP proxy to the Redis server that passes everything until a client sends SCAN (the listing an
 * export starts with, once its temporary file is open) and holds that client's commands from then
 * on: the export waits there, its temporary file in place, for as long as the test needs.
 */
async function proxyHoldingScan() {
  const sockets = new Set();
  let held;
  const holding = new Promise((resolve) => (held = resolve));
  const proxy = net.createServer((downstream) => {
    const upstream = net.connect(server.port, "127.0.0.1");
    for (const [socket, other] of [[downstream, upstream], [upstream, downstream]]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => other.destroy());
    }
    upstream.pipe(downstream);
    let tail = "";
    let hold = false;
    downstream.on("data", (chunk) => {
      const text = tail + chunk.toString("latin1");
      tail = text.slice(-8); // "\r\nSCAN\r\n" may be split between two chunks
      if (!hold && text.includes("\r\nSCAN\r\n")) {
        hold = true;
        held();
      }
      if (!hold) upstream.write(chunk);
    });
  });
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
  return {
    url: `redis://127.0.0.1:${proxy.address().port}`,
    holding,
    close() {
      for (const socket of sockets) socket.destroy();
      proxy.close();
    },
  };
}

const show = (result) => `exit ${result.code}\nstderr: ${result.stderr}\nstdout: ${result.stdout.slice(0, 500)}`;
const linesOf = (text) => text.split("\n").filter((line) => line !== "");
const parseLines = (text) => linesOf(text).map((line) => JSON.parse(line));
const byId = (exports) => [...exports].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

/** Exports and descriptions of a Redis prefix, read through the library. */
async function readRedis(prefix) {
  const store = await SessionStore.kv(redisKv(client), { prefix });
  try {
    return { exports: await exportAll(store), views: await describeAll(store, sortedIds) };
  } finally {
    await store.close();
  }
}

/** The session ids of a Redis prefix. */
async function redisIds(prefix) {
  const store = await SessionStore.kv(redisKv(client), { prefix });
  try {
    return (await store.list()).sessions.map((info) => info.id).sort();
  } finally {
    await store.close();
  }
}

/** Exports and descriptions of a Deno KV file, read through the library. */
async function readDenoKv(path) {
  const db = await openKv(path);
  try {
    const store = await SessionStore.kv(denoKv(db));
    return { exports: await exportAll(store), views: await describeAll(store, sortedIds) };
  } finally {
    db.close();
  }
}

function assertSameSessions(got, what) {
  assert.deepEqual(got.exports.map((e) => e.id), sortedIds, `${what}: every session, once`);
  assert.deepEqual(got.exports, source.exports, `${what}: the exports are the source's`);
  for (const id of sortedIds) assert.deepEqual(got.views[id], source.views[id], `${what}: ${JSON.stringify(id)} reads as in the source`);
}

test("package.json names the command, and --help prints the usage", async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  assert.equal(pkg.bin?.["agent-session"], "bin/agent-session.mjs");
  assert.ok(!pkg.files || pkg.files.some((entry) => entry === "bin/" || entry === "bin/agent-session.mjs"), "the package ships bin/");
  assert.match(readFileSync(BIN, "utf8"), /^#!\/usr\/bin\/env node\n/);
  for (const flag of ["--help", "-h"]) {
    const result = await run([flag]);
    assert.equal(result.code, 0, show(result));
    for (const word of ["Usage:", "agent-session export", "agent-session import", "--redis URL", "--deno-kv PATH", "--prefix", "--file PATH"]) {
      assert.ok(result.stdout.includes(word), `--help mentions ${word}: ${result.stdout}`);
    }
  }
});

test("--version prints the package's version (audit42c N6)", async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const result = await run(["--version"]);
  assert.equal(result.code, 0, show(result));
  assert.equal(result.stdout, `${pkg.version}\n`);
});

test("bad usage is exit 2 with the reason and the usage on stderr", async () => {
  for (const [args, reason] of [
    [[], /a command is needed/],
    [["backup", "--redis", server.url], /unknown command "backup"/],
    [["export"], /exactly one backend/],
    [["export", "--redis", server.url, "--deno-kv", join(dir, "x.sqlite")], /exactly one backend/],
    [["export", "--redis", server.url, "--bogus"], /--bogus/],
    [["import", "--redis", server.url, "--max-message-bytes", "lots"], /--max-message-bytes must be a positive integer/],
    [["import", "--redis", server.url, "--idle-ttl-ms", "0"], /--idle-ttl-ms must be a positive integer/],
    [["export", "--redis", server.url, "--max-lifetime-ms", "5"], /--max-lifetime-ms is an import option/],
  ]) {
    const result = await run(args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${show(result)}`);
    assert.match(result.stderr, reason, args.join(" "));
    assert.match(result.stderr, /Usage:/);
    assert.equal(result.stdout, "");
  }
});

test("Redis: export to a file, import into another prefix; the sessions read as the source's; stdout gives the same lines", async () => {
  const file = join(dir, "redis-backup.ndjson");
  const exported = await run(["export", "--redis", server.url, "--prefix", "src:", "--file", file]);
  assert.equal(exported.code, 0, show(exported));
  assert.equal(exported.stdout, "", "the data went to the file");
  assert.match(exported.stderr, /7 sessions exported/);
  assert.ok(!exported.stderr.includes("\r"), "no progress bar when stderr is not a terminal");
  const text = readFileSync(file, "utf8");
  assert.ok(text.endsWith("\n"));
  const lines = parseLines(text);
  assert.deepEqual(lines.map((e) => e.id).sort(), sortedIds, "one line per session");
  assert.deepEqual(byId(lines), source.exports, "each line is the session's export");
  assert.deepEqual(readdirSync(dir).filter((name) => name.includes("partial")), [], "no temporary file left");

  const toStdout = await run(["export", "--redis", server.url, "--prefix", "src:"]);
  assert.equal(toStdout.code, 0, show(toStdout));
  assert.equal(toStdout.stdout, text, "stdout carries the same NDJSON");

  const imported = await run(["import", "--redis", server.url, "--prefix", "dst:", "--file", file]);
  assert.equal(imported.code, 0, show(imported));
  assert.match(imported.stderr, /7 sessions were imported/);
  assertSameSessions(await readRedis("dst:"), "Redis dst:");

  // Only some sessions.
  const some = await run(["export", "--redis", server.url, "--prefix", "src:", "--id-prefix", "rich/c"]);
  assert.equal(some.code, 0, show(some));
  assert.deepEqual(parseLines(some.stdout).map((e) => e.id), ["rich/closed"]);
  // An empty store exports nothing, successfully.
  const none = await run(["export", "--redis", server.url, "--prefix", "nothing-here:"]);
  assert.equal(none.code, 0, show(none));
  assert.equal(none.stdout, "");
  assert.match(none.stderr, /0 sessions exported/);
});

test("Deno KV: export a database to stdout, import from stdin into another database, and across backends", async () => {
  const first = join(dir, "first.sqlite");
  const db = await openKv(first);
  const seeded = await SessionStore.kv(denoKv(db));
  for (const data of source.exports) await seeded.import(data);
  await seeded.close();
  db.close();

  const exported = await run(["export", "--deno-kv", first]);
  assert.equal(exported.code, 0, show(exported));
  assert.deepEqual(byId(parseLines(exported.stdout)), source.exports);

  const second = join(dir, "second.sqlite");
  const imported = await run(["import", "--deno-kv", second], { input: exported.stdout });
  assert.equal(imported.code, 0, show(imported));
  assert.match(imported.stderr, /7 sessions were imported/);
  assertSameSessions(await readDenoKv(second), "Deno KV second.sqlite");

  // Deno KV -> Redis, and the store prefix of a Deno KV database.
  const intoRedis = await run(["import", "--redis", server.url, "--prefix", "from-deno:"], { input: exported.stdout });
  assert.equal(intoRedis.code, 0, show(intoRedis));
  assertSameSessions(await readRedis("from-deno:"), "Redis from-deno:");
  const prefixed = await run(["import", "--deno-kv", second, "--prefix", "copy/"], { input: exported.stdout });
  assert.equal(prefixed.code, 0, show(prefixed));
  const again = await run(["export", "--deno-kv", second, "--prefix", "copy/"]);
  assert.equal(again.code, 0, show(again));
  assert.equal(again.stdout, exported.stdout);
});

test("import --idle-ttl-ms and --max-lifetime-ms give the restored sessions TTLs that commits extend; without them the export's expiresAt stays fixed", async () => {
  const DAY = 86_400_000;
  const source = await SessionStore.memory();
  const session = await source.open("ttl", { idleTtlMs: 30 * DAY });
  await session.invoke((inv) => inv.appendMessage("x"));
  const line = JSON.stringify(await session.export()) + "\n";
  const path = join(dir, "ttl.sqlite");
  for (const [args, id] of [[[], "fixed"], [["--idle-ttl-ms", String(7 * DAY), "--max-lifetime-ms", String(365 * DAY)], "renewed"]]) {
    const input = line.replace('"id":"ttl"', `"id":"${id}"`);
    const result = await run(["import", "--deno-kv", path, ...args], { input });
    assert.equal(result.code, 0, show(result));
  }
  const db = await openKv(path);
  try {
    const store = await SessionStore.kv(denoKv(db));
    const fixed = await store.open("fixed", { create: false });
    const renewed = await store.open("renewed", { create: false });
    assert.equal(renewed.expiresAt, renewed.updatedAt + 7 * DAY, "the idle TTL given, from the export's updatedAt");
    const expiresAt = fixed.expiresAt;
    for (const restored of [fixed, renewed]) await restored.invoke((inv) => inv.appendMessage("after the restore"));
    assert.equal(fixed.expiresAt, expiresAt, "without the flags a commit does not move the export's expiresAt");
    assert.equal(renewed.expiresAt, renewed.updatedAt + 7 * DAY, "a commit extends the idle TTL");
    await store.close();
  } finally {
    db.close();
  }
});

test("a line that is not JSON stops the import: non-zero exit naming the line; the lines before it stay imported, none after", async () => {
  const good = source.exports.map((e) => JSON.stringify(e));
  const file = join(dir, "broken.ndjson");
  // Line 3 is blank (skipped), line 4 is broken, line 5 would be fine.
  writeFileSync(file, [good[0], good[1], "", '{"format": "agent-session.export/1", "id": ', good[2]].join("\n") + "\n");
  const result = await run(["import", "--redis", server.url, "--prefix", "broken-json:", "--file", file]);
  assert.notEqual(result.code, 0, show(result));
  assert.match(result.stderr, /line 4\b/, show(result));
  assert.match(result.stderr, /not JSON/);
  assert.match(result.stderr, /2 sessions were imported/);
  assert.deepEqual(await redisIds("broken-json:"), [source.exports[0].id, source.exports[1].id].sort());
});

test("a malformed export on a line stops the import with its path; that session is not written", async () => {
  const pick = ["rich/closed", "rich/expired", "rich/multi", "rich/fork"].map((id) => source.exports.find((e) => e.id === id));
  const lines = pick.map((e) => JSON.parse(JSON.stringify(e)));
  const bad = lines[2];
  bad.events[1].type = "telepathy";
  const input = lines.map((e) => JSON.stringify(e)).join("\n") + "\n";
  const result = await run(["import", "--redis", server.url, "--prefix", "broken-export:"], { input });
  assert.equal(result.code, 1, show(result));
  assert.match(result.stderr, /line 3\b/);
  assert.ok(result.stderr.includes("data.events[1].type"), show(result));
  assert.ok(result.stderr.includes(JSON.stringify(bad.id)), "names the session");
  assert.match(result.stderr, /2 sessions were imported/);
  assert.deepEqual(await redisIds("broken-export:"), [lines[0].id, lines[1].id].sort(), "lines 1-2 imported, 3-4 not");

  // Run again after fixing: the sessions already there stop it (path id), unless --skip-existing.
  const fixed = pick.map((e) => JSON.stringify(e)).join("\n") + "\n";
  const again = await run(["import", "--redis", server.url, "--prefix", "broken-export:"], { input: fixed });
  assert.equal(again.code, 1, show(again));
  assert.match(again.stderr, /line 1\b/);
  assert.match(again.stderr, /at id\b/);
  assert.match(again.stderr, /nothing was imported/);
  const resumed = await run(["import", "--redis", server.url, "--prefix", "broken-export:", "--skip-existing"], { input: fixed });
  assert.equal(resumed.code, 0, show(resumed));
  assert.match(resumed.stderr, /2 sessions were imported, 2 skipped as existing/);
  assert.deepEqual(await redisIds("broken-export:"), pick.map((e) => e.id).sort());
});

test("a bad Redis URL or an unreachable server: non-zero exit and a clear message, no output file replaced", async () => {
  const port = await freePort(); // nothing listens there
  const file = join(dir, "keep.ndjson");
  writeFileSync(file, "the previous backup\n");
  for (const [url, message] of [
    ["notaurl", /--redis: "notaurl" is not a URL/],
    ["http://127.0.0.1:6379", /not a Redis URL/],
    [`redis://127.0.0.1:${port}`, new RegExp(`cannot connect to redis://127\\.0\\.0\\.1:${port}.*ECONNREFUSED`)],
    [`redis://:secret@127.0.0.1:${port}`, /cannot connect to redis:\/\/:\*\*\*@127\.0\.0\.1/],
  ]) {
    for (const command of ["export", "import"]) {
      const result = await run([command, "--redis", url, ...(command === "export" ? ["--file", file] : [])], { timeout: 20_000 });
      assert.equal(result.code, 1, `${command} ${url}: ${show(result)}`);
      assert.match(result.stderr, message, `${command} ${url}`);
      assert.ok(!result.stderr.includes("secret"), "the password is not printed");
      assert.ok(!/\n\s+at /.test(result.stderr), `no stack trace: ${result.stderr}`);
    }
  }
  assert.equal(readFileSync(file, "utf8"), "the previous backup\n");
});

test("export --file replacing a backup keeps its permissions, and through a symlink replaces the file it names", async () => {
  const protectedFile = join(dir, "protected.ndjson");
  writeFileSync(protectedFile, "old\n");
  chmodSync(protectedFile, 0o600);
  const first = await run(["export", "--redis", server.url, "--prefix", "src:", "--file", protectedFile]);
  assert.equal(first.code, 0, show(first));
  assert.equal(statSync(protectedFile).mode & 0o777, 0o600, "still readable by its owner only");
  assert.deepEqual(byId(parseLines(readFileSync(protectedFile, "utf8"))), source.exports);
  mkdirSync(join(dir, "real"), { recursive: true });
  const real = join(dir, "real/latest.ndjson");
  writeFileSync(real, "old\n");
  const link = join(dir, "link.ndjson");
  symlinkSync(real, link);
  const viaLink = await run(["export", "--redis", server.url, "--prefix", "src:", "--file", link]);
  assert.equal(viaLink.code, 0, show(viaLink));
  assert.ok(lstatSync(link).isSymbolicLink(), "the link stays a link");
  assert.deepEqual(byId(parseLines(readFileSync(real, "utf8"))), source.exports, "the file it names holds the export");
});

test("export --file: the temporary file is its owner's only while written, a new backup gets the usual mode, and SIGTERM or SIGHUP removes the temporary file (exit 143, 129)", async () => {
  const file = join(dir, "signalled.ndjson");
  const partials = () => readdirSync(dir).filter((name) => name.startsWith(".signalled.ndjson.partial-"));
  for (const [signal, code] of [["SIGTERM", 143], ["SIGHUP", 129]]) {
    writeFileSync(file, "the previous backup\n");
    chmodSync(file, 0o600);
    const proxy = await proxyHoldingScan();
    let child;
    const exited = runUmask022(["export", "--redis", proxy.url, "--prefix", "src:", "--file", file], { spawned: (spawned) => (child = spawned) });
    try {
      await proxy.holding; // the export is listing the sessions: its temporary file is open
      const [temp] = partials();
      assert.ok(temp, `a temporary file beside ${file}`);
      assert.equal(statSync(join(dir, temp)).mode & 0o777, 0o600, `${signal}: the temporary file is readable by its owner only (umask 022)`);
      child.kill(signal);
      const result = await exited;
      assert.equal(result.code, code, `${signal}: ${show(result)}`);
      assert.match(result.stderr, new RegExp(`stopped by ${signal}`));
      assert.deepEqual(partials(), [], `${signal}: the temporary file is removed`);
      assert.equal(readFileSync(file, "utf8"), "the previous backup\n");
      assert.equal(statSync(file).mode & 0o777, 0o600);
    } finally {
      proxy.close();
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL"); // a failed assertion left it running
      await exited.catch(() => {});
      for (const name of partials()) rmSync(join(dir, name)); // so that a failure here does not fail the tests after it
    }
  }
  // Complete, into a new file: the mode of any new file (0666 less the umask), not the temporary file's.
  const fresh = join(dir, "fresh.ndjson");
  const done = await runUmask022(["export", "--redis", server.url, "--prefix", "src:", "--file", fresh]);
  assert.equal(done.code, 0, show(done));
  assert.equal(statSync(fresh).mode & 0o777, 0o644);
});

test("an import stopped by a signal says how many sessions it imported and how to finish (exit 143)", async () => {
  const child = spawn(process.execPath, [BIN, "import", "--redis", server.url, "--prefix", "signalled-import:"], { cwd: ROOT });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
  const closed = new Promise((resolve) => child.on("close", (code) => resolve(code)));
  try {
    // Three lines, stdin left open: the import waits for more.
    child.stdin.write(source.exports.slice(0, 3).map((e) => JSON.stringify(e)).join("\n") + "\n");
    for (let i = 0; i < 300 && (await redisIds("signalled-import:")).length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await redisIds("signalled-import:")).length, 3);
    child.kill("SIGTERM");
    assert.equal(await closed, 143);
    assert.match(stderr, /stopped by SIGTERM \(3 sessions were imported\); run the import again with --skip-existing to import the rest/, stderr);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});

test("an export whose file waits for drain many times leaves no listener behind (no MaxListenersExceededWarning)", async () => {
  // Each line is over the file stream's 16 KiB buffer: every write waits for "drain".
  const store = await SessionStore.kv(redisKv(client), { prefix: "drain:" });
  for (let n = 0; n < 20; n++) await (await store.open(`s${String(n).padStart(2, "0")}`)).invoke((inv) => inv.appendMessage("x".repeat(20_000)));
  await store.close();
  const file = join(dir, "drain.ndjson");
  const result = await run(["export", "--redis", server.url, "--prefix", "drain:", "--file", file]);
  assert.equal(result.code, 0, show(result));
  assert.doesNotMatch(result.stderr, /MaxListenersExceededWarning/);
  assert.equal(result.stderr, `agent-session export: 20 sessions exported to ${file}\n`);
  assert.equal(parseLines(readFileSync(file, "utf8")).length, 20);
});

test("export --file naming the --deno-kv database (by any path, a symlink, a hard link, or its -wal file) is refused with exit 2; the database is untouched", async () => {
  const database = join(dir, "live.sqlite");
  const db = await openKv(database);
  const store = await SessionStore.kv(denoKv(db));
  await (await store.open("chat")).invoke((inv) => inv.appendMessage("hello"));
  await store.close();
  db.close();
  const bytes = readFileSync(database);
  symlinkSync(database, join(dir, "live-link.sqlite"));
  symlinkSync(dir, join(dir, "via"));
  linkSync(database, join(dir, "live-hard.sqlite"));
  for (const [file, what] of [
    [database, /is the database given to --deno-kv/],
    [relative(ROOT, database), /is the database given to --deno-kv/],
    [join(dir, "via/live.sqlite"), /is the database given to --deno-kv/],
    [join(dir, "live-link.sqlite"), /is the database given to --deno-kv/],
    [join(dir, "live-hard.sqlite"), /is the database given to --deno-kv/],
    [`${database}-wal`, /is the SQLite -wal file of the database/],
  ]) {
    const result = await run(["export", "--deno-kv", database, "--file", file]);
    assert.equal(result.code, 2, `${file}: ${show(result)}`);
    assert.match(result.stderr, what, file);
    assert.match(result.stderr, /Give --file another path/);
    assert.ok(readFileSync(database).equals(bytes), `${file}: the database is as it was`);
  }
  const reopened = await openKv(database);
  try {
    const app = await SessionStore.kv(denoKv(reopened));
    assert.deepEqual((await app.open("chat", { create: false })).messages(), ["hello"], "the application still reads it");
    await app.close();
  } finally {
    reopened.close();
  }
});

test("export --file through a symlink whose file does not exist yet writes that file (relative to the link's directory); the link stays a link", async () => {
  mkdirSync(join(dir, "vault"));
  const link = join(dir, "first-backup.ndjson");
  symlinkSync("vault/first.ndjson", link); // relative, dangling
  const chained = join(dir, "chained.ndjson");
  symlinkSync(link, chained); // a link to that link
  for (const file of [link, chained]) {
    rmSync(join(dir, "vault/first.ndjson"), { force: true });
    const result = await run(["export", "--redis", server.url, "--prefix", "src:", "--file", file]);
    assert.equal(result.code, 0, show(result));
    assert.ok(lstatSync(link).isSymbolicLink() && lstatSync(chained).isSymbolicLink(), `${file}: the links stay links`);
    assert.deepEqual(byId(parseLines(readFileSync(join(dir, "vault/first.ndjson"), "utf8"))), source.exports, `${file}: the file the link names holds the export`);
  }
});

test("an import's errors advise the command's flags, not the API's options; a byte order mark at the start of the file is skipped", async () => {
  const line = `${JSON.stringify(source.exports.find((e) => e.id === "rich/closed"))}\n`;
  const first = await run(["import", "--redis", server.url, "--prefix", "advice:"], { input: line });
  assert.equal(first.code, 0, show(first));
  const again = await run(["import", "--redis", server.url, "--prefix", "advice:"], { input: line });
  assert.equal(again.code, 1, show(again));
  assert.match(again.stderr, /already exists; run the import again with --skip-existing/);
  assert.doesNotMatch(again.stderr, /\{ id \}/);

  // Written under raised limits: refused naming the flag, which then lets it in.
  const app = await SessionStore.memory({ limits: { maxMessageBytes: 2 << 20, maxStateValueBytes: 2 << 20 } });
  const big = "x".repeat(1.5 * (1 << 20));
  await (await app.open("big-message")).invoke((inv) => inv.appendMessage(big));
  await (await app.open("big-state")).invoke((inv) => inv.setState("k", big));
  const exports = await exportAll(app);
  await app.close();
  for (const [data, flag] of [[exports[0], "--max-message-bytes"], [exports[1], "--max-state-value-bytes"]]) {
    const input = `${JSON.stringify(data)}\n`;
    const refused = await run(["import", "--redis", server.url, "--prefix", "advice:"], { input });
    assert.equal(refused.code, 1, show(refused));
    assert.match(refused.stderr, /LimitExceededError/);
    assert.match(refused.stderr, new RegExp(`give that limit with ${flag} N`));
    assert.doesNotMatch(refused.stderr, /raise limits\./);
    const raised = await run(["import", "--redis", server.url, "--prefix", "advice:", flag, String(2 << 20)], { input });
    assert.equal(raised.code, 0, show(raised));
  }

  const file = join(dir, "bom.ndjson");
  writeFileSync(file, `\uFEFF${line}`);
  const bom = await run(["import", "--redis", server.url, "--prefix", "bom:", "--file", file]);
  assert.equal(bom.code, 0, show(bom));
  assert.deepEqual(await redisIds("bom:"), ["rich/closed"]);
});

test("with only ioredis installed (the command's fallback client): a round trip into another database, and a database that does not exist refused with exit 1", async () => {
  // The command as installed in a project that has ioredis and not redis.
  const pkg = join(dir, "ioredis-only");
  mkdirSync(join(pkg, "bin"), { recursive: true });
  mkdirSync(join(pkg, "node_modules"));
  copyFileSync(BIN, join(pkg, "bin/agent-session.mjs"));
  copyFileSync(join(ROOT, "package.json"), join(pkg, "package.json"));
  symlinkSync(join(ROOT, "js"), join(pkg, "js"));
  symlinkSync(join(ROOT, "node_modules/ioredis"), join(pkg, "node_modules/ioredis"));
  // Run from that project's directory: the command takes the Redis client the project has.
  const cli = (args) => runProcess(process.execPath, [join(pkg, "bin/agent-session.mjs"), ...args], { cwd: pkg });
  const file = join(dir, "ioredis.ndjson");
  const exported = await cli(["export", "--redis", server.url, "--prefix", "src:", "--file", file]);
  assert.equal(exported.code, 0, show(exported));
  assert.deepEqual(byId(parseLines(readFileSync(file, "utf8"))), source.exports, "the same export as through node-redis");
  const imported = await cli(["import", "--redis", `${server.url}/3`, "--prefix", "io:", "--file", file]);
  assert.equal(imported.code, 0, show(imported));
  const db3 = await createClient({ url: `${server.url}/3` }).connect();
  try {
    const store = await SessionStore.kv(redisKv(db3), { prefix: "io:" });
    assert.deepEqual(await describeAll(store, sortedIds), source.views, "database 3 holds the sessions");
    await store.close();
  } finally {
    await db3.quit();
  }
  // Database 99 does not exist (the server has 16): refused, nothing written to database 0.
  const before = await client.dbSize();
  for (const command of ["import", "export"]) {
    const result = await cli([command, "--redis", `${server.url}/99`, "--prefix", "wrong:", ...(command === "import" ? ["--file", file] : [])]);
    assert.equal(result.code, 1, `${command} /99: ${show(result)}`);
    assert.match(result.stderr, /cannot connect to .*\/99.*DB index/i, `${command} /99`);
  }
  assert.equal(await client.dbSize(), before, "nothing written to database 0");
});

test("an unreadable file, a missing Deno KV database or an unwritable target: non-zero exit and a clear message", async () => {
  const missing = join(dir, "missing.ndjson");
  let result = await run(["import", "--redis", server.url, "--prefix", "never:", "--file", missing]);
  assert.equal(result.code, 1, show(result));
  assert.match(result.stderr, /cannot read .*missing\.ndjson: no such file/);
  result = await run(["import", "--redis", server.url, "--prefix", "never:", "--file", dir]);
  assert.equal(result.code, 1, show(result));
  assert.match(result.stderr, /cannot read/);
  assert.deepEqual(await redisIds("never:"), []);

  const nowhere = join(dir, "no-such-db.sqlite");
  result = await run(["export", "--deno-kv", nowhere]);
  assert.equal(result.code, 1, show(result));
  assert.match(result.stderr, /no-such-db\.sqlite does not exist/);
  assert.ok(!existsSync(nowhere), "an export does not create the database");
  result = await run(["import", "--deno-kv", join(dir, "no/such/dir/db.sqlite")], { input: "" });
  assert.equal(result.code, 1, show(result));
  assert.match(result.stderr, /cannot open/);

  result = await run(["export", "--redis", server.url, "--prefix", "src:", "--file", join(dir, "no/such/dir/out.ndjson")]);
  assert.equal(result.code, 1, show(result));
  assert.match(result.stderr, /cannot write/);
});

test("on a terminal, stderr shows a progress count", { skip: !existsSync("/usr/bin/script") && "no script(1) to give the command a terminal" }, async () => {
  const file = join(dir, "progress.ndjson");
  const quote = (s) => `'${s.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, BIN, "export", "--redis", server.url, "--prefix", "src:", "--file", file].map(quote).join(" ");
  const exported = await runProcess("/usr/bin/script", ["-qec", command, "/dev/null"]);
  assert.equal(exported.code, 0, show(exported));
  assert.match(exported.stdout, /\r\x1b\[K7 sessions exported/, JSON.stringify(exported.stdout));
  const importCommand = [process.execPath, BIN, "import", "--redis", server.url, "--prefix", "progress:", "--file", file].map(quote).join(" ");
  const imported = await runProcess("/usr/bin/script", ["-qec", importCommand, "/dev/null"]);
  assert.equal(imported.code, 0, show(imported));
  assert.match(imported.stdout, /\[#+\] 100%  7 sessions imported/, JSON.stringify(imported.stdout));
});

test("a session the store cannot read stops the export: exit 1 naming the record; the previous backup file stays", async () => {
  const store = await SessionStore.kv(redisKv(client), { prefix: "corrupt:" });
  for (const id of ["a", "b", "c"]) {
    const session = await store.open(id);
    await session.invoke((inv) => inv.appendMessage(id));
  }
  await store.close();
  const [head] = await client.keys("*corrupt:h/b~");
  assert.ok(head, "the head of b in Redis");
  await client.hSet(head, "value", "not a head record");
  const file = join(dir, "corrupt.ndjson");
  writeFileSync(file, "the previous backup\n");
  const result = await run(["export", "--redis", server.url, "--prefix", "corrupt:", "--file", file]);
  assert.equal(result.code, 1, show(result));
  assert.match(result.stderr, /CorruptRecordError/);
  assert.ok(result.stderr.includes("h/b~"), `names the record: ${result.stderr}`);
  assert.match(result.stderr, /corrupt\.ndjson was not written/);
  assert.equal(readFileSync(file, "utf8"), "the previous backup\n");
  assert.deepEqual(readdirSync(dir).filter((name) => name.includes("partial")), [], "no temporary file left");
  // To stdout: the sessions before it are written, then the export stops and says the output is incomplete.
  const toStdout = await run(["export", "--redis", server.url, "--prefix", "corrupt:"]);
  assert.equal(toStdout.code, 1, show(toStdout));
  assert.deepEqual(parseLines(toStdout.stdout).map((e) => e.id), ["a"]);
  assert.match(toStdout.stderr, /CorruptRecordError/);
  assert.match(toStdout.stderr, /after 1 session; the output is incomplete/);
});

test("import --skip-existing leaves a stored session whose head cannot be read as it is and imports the other lines", async () => {
  const store = await SessionStore.kv(redisKv(client), { prefix: "skip-corrupt:" });
  const exports = [];
  for (const id of ["a", "b", "c", "d", "e"]) {
    const session = await store.open(id);
    await session.invoke((inv) => inv.appendMessage(id));
    exports.push(await session.export());
  }
  // d is not stored yet: the restore brings it back; e's head is damaged (past the sessions the
  // import looks at first for a key file's mistakes).
  await store.delete("d");
  await store.close();
  const [head] = await client.keys("*skip-corrupt:h/e~");
  await client.hSet(head, "value", "not a head record");
  const input = exports.map((e) => JSON.stringify(e)).join("\n") + "\n";
  const stopped = await run(["import", "--redis", server.url, "--prefix", "skip-corrupt:"], { input });
  assert.equal(stopped.code, 1, show(stopped));
  const result = await run(["import", "--redis", server.url, "--prefix", "skip-corrupt:", "--skip-existing"], { input });
  assert.equal(result.code, 0, show(result));
  assert.match(result.stderr, /1 session was imported, 4 skipped as existing \(1 of them unreadable\)/, show(result));
  assert.match(result.stderr, /the stored sessions "e" cannot be read .* delete them/, show(result));
  assert.equal(await client.hGet(head, "value"), "not a head record", "the damaged session is left as it is");
  const after = await SessionStore.kv(redisKv(client), { prefix: "skip-corrupt:" });
  assert.deepEqual((await after.open("d", { create: false })).messages(), ["d"]);
  await after.close();
});

test("a batch the store cannot read stops the export with its error; the previous backup file stays", async () => {
  const store = await SessionStore.kv(redisKv(client), { prefix: "corrupt-batch:" });
  for (const id of ["a", "b", "c"]) {
    const session = await store.open(id);
    await session.invoke((inv) => inv.appendMessage(id));
  }
  await store.close();
  const [batch] = await client.keys("*corrupt-batch:e/b~/*");
  assert.ok(batch, "a batch of b in Redis");
  await client.hSet(batch, "value", "not a batch record");
  const file = join(dir, "corrupt-batch.ndjson");
  writeFileSync(file, "the previous backup\n");
  const result = await run(["export", "--redis", server.url, "--prefix", "corrupt-batch:", "--file", file]);
  assert.equal(result.code, 1, show(result));
  assert.match(result.stderr, /CorruptRecordError/);
  assert.match(result.stderr, /after 1 session; .*corrupt-batch\.ndjson was not written/);
  assert.equal(readFileSync(file, "utf8"), "the previous backup\n");
});

test("an encrypted store: export and import with --key-file; without it the export names the flag and an import is refused, nothing written unsealed", async () => {
  const raw = (bytes) => crypto.subtle.importKey("raw", bytes, "AES-GCM", false, ["encrypt", "decrypt"]);
  const oldBytes = Buffer.alloc(32, 7);
  const newBytes = Buffer.alloc(32, 9);
  const keys = { current: "2026-12", keys: { default: await raw(oldBytes), "2026-12": await raw(newBytes) } };
  const app = await SessionStore.kv(redisKv(client), { prefix: "sealed:", encryptionKey: keys });
  const session = await app.open("s1", { metadata: { user: "SECRET-META" } });
  await session.invoke((inv) => {
    inv.appendMessage({ text: "SECRET-MESSAGE" });
    inv.setState("k", "SECRET-STATE");
  });
  await app.close();
  const keyFile = join(dir, "keys.json");
  writeFileSync(keyFile, JSON.stringify({ current: "2026-12", keys: { default: oldBytes.toString("base64"), "2026-12": newBytes.toString("base64") } }));

  const refused = await run(["export", "--redis", server.url, "--prefix", "sealed:"]);
  assert.equal(refused.code, 1, show(refused));
  assert.match(refused.stderr, /--key-file/, "the message names the flag");
  // Key errors name the key file, not the library's encryptionKey option.
  const partialFile = join(dir, "partial.json");
  writeFileSync(partialFile, JSON.stringify({ current: "default", keys: { default: oldBytes.toString("base64") } }));
  const partial = await run(["export", "--redis", server.url, "--prefix", "sealed:", "--key-file", partialFile]);
  assert.equal(partial.code, 1, show(partial));
  assert.match(partial.stderr, /key id "2026-12", which the key file \(--key-file\) does not have; add it to the key file's "keys"/);
  assert.doesNotMatch(partial.stderr, /encryptionKey/);
  const strayFile = join(dir, "stray.json");
  writeFileSync(strayFile, JSON.stringify({ current: "nope", keys: { default: oldBytes.toString("base64") } }));
  const stray = await run(["export", "--redis", server.url, "--prefix", "sealed:", "--key-file", strayFile]);
  assert.equal(stray.code, 1, show(stray));
  assert.match(stray.stderr, /ValidationError at --key-file: the key file's "current" must be the id of one of the key file's "keys"/);
  const exported = await run(["export", "--redis", server.url, "--prefix", "sealed:", "--key-file", keyFile]);
  assert.equal(exported.code, 0, show(exported));
  assert.match(exported.stdout, /SECRET-MESSAGE/, "an export is plain JSON");

  // Into a prefix that holds a sealed session: refused without the key, nothing written.
  const target = await SessionStore.kv(redisKv(client), { prefix: "sealed2:", encryptionKey: keys });
  // No metadata: its head is all clear, and its batch is sealed.
  await (await target.open("already")).invoke((inv) => inv.appendMessage("sealed"));
  await target.close();
  const before = (await client.keys("*sealed2:*")).sort();
  const blind = await run(["import", "--redis", server.url, "--prefix", "sealed2:"], { input: exported.stdout });
  assert.equal(blind.code, 1, show(blind));
  assert.match(blind.stderr, /--key-file/);
  assert.match(blind.stderr, /nothing was imported/);
  assert.deepEqual((await client.keys("*sealed2:*")).sort(), before, "nothing written");

  const imported = await run(["import", "--redis", server.url, "--prefix", "sealed2:", "--key-file", keyFile], { input: exported.stdout });
  assert.equal(imported.code, 0, show(imported));
  for (const key of await client.keys("*sealed2:*")) {
    const value = await client.hGet(key, "value");
    assert.ok(!/SECRET/.test(value ?? ""), `${key} is sealed`);
  }
  const reader = await SessionStore.kv(redisKv(client), { prefix: "sealed2:", encryptionKey: { current: "2026-12", keys: { "2026-12": keys.keys["2026-12"] } } });
  const copy = await reader.open("s1", { create: false });
  assert.deepEqual(copy.messages(), [{ text: "SECRET-MESSAGE" }]);
  assert.deepEqual((await copy.history())[0].data, { user: "SECRET-META" }, "the metadata, in its created event");
  await reader.close();

  // A key file that is not one: exit 1 naming the file's problem, before any backend is touched.
  writeFileSync(keyFile, JSON.stringify({ key: "c2hvcnQ=" }));
  const bad = await run(["export", "--redis", server.url, "--prefix", "sealed:", "--key-file", keyFile]);
  assert.equal(bad.code, 1, show(bad));
  assert.match(bad.stderr, /16, 24 or 32 bytes/);
});

test("an import into a store whose sessions it can read leaves them as they were (the probe for sealed sessions only reads)", async () => {
  const store = await SessionStore.kv(redisKv(client), { prefix: "plain2:" });
  for (const id of ["keep-1", "keep-2"]) await (await store.open(id)).invoke((inv) => inv.appendMessage(id));
  const before = (await store.list()).sessions.map(({ id, version, status }) => ({ id, version, status }));
  await store.close();
  const exported = await run(["export", "--redis", server.url, "--prefix", "src:", "--id-prefix", "rich/c"]);
  assert.equal(exported.code, 0, show(exported));
  const imported = await run(["import", "--redis", server.url, "--prefix", "plain2:"], { input: exported.stdout });
  assert.equal(imported.code, 0, show(imported));
  const after = await SessionStore.kv(redisKv(client), { prefix: "plain2:" });
  const kept = (await after.list()).sessions.filter(({ id }) => id.startsWith("keep-")).map(({ id, version, status }) => ({ id, version, status }));
  assert.deepEqual(kept, before, "the target's own sessions are unchanged (none closed)");
  assert.deepEqual(before.map((s) => s.status), ["idle", "idle"]);
  await after.close();
});

test("--schema N: sessions stored under an application schema up to N are exported and imported as stored (their schema kept, never migrated); a higher one names --schema; a bad value is exit 2", async () => {
  const toText = ({ messages, state }) => ({ messages: messages.map((m) => (typeof m === "string" ? { text: m } : m)), state });
  const tagged = ({ messages, state }) => ({ messages: messages.map((m) => ({ ...m, v2: true })), state: { ...state, v2: true } });
  const schema1 = { version: 1, migrate: { 1: toText } };
  const schema2 = { version: 2, migrate: { 1: toText, 2: tagged } };
  // "at-0" was stored before the application had a schema; "at-1" and "pruned-1" under schema 1.
  const before = await SessionStore.kv(redisKv(client), { prefix: "schema-src:" });
  await (await before.open("at-0")).invoke((inv) => {
    inv.appendMessage("from schema 0");
    inv.setState("k", "v0");
  });
  await before.close();
  const app = await SessionStore.kv(redisKv(client), { prefix: "schema-src:", schema: schema1 });
  await (await app.open("at-1", { metadata: { user: "u1" } })).invoke((inv) => {
    inv.appendMessage({ text: "hi", odd: "\ud800", big: 1e21 });
    inv.setState("k", { nested: [1, null] });
  });
  const pruned = await app.open("pruned-1");
  for (const n of [1, 2, 3]) await pruned.invoke((inv) => inv.appendMessage({ text: `turn ${n}` }));
  await pruned.prune({ before: pruned.version });
  const expected = [JSON.stringify(await (await app.open("at-1", { create: false })).export()), JSON.stringify(await pruned.export())];
  await app.close();
  const old = await SessionStore.kv(redisKv(client), { prefix: "schema-src:" });
  expected.unshift(JSON.stringify(await (await old.open("at-0", { create: false })).export()));
  await old.close();
  const rawBefore = (await client.keys("*schema-src:*")).sort();

  // Without --schema (0): refused, naming the flag and the stored version.
  const refused = await run(["export", "--redis", server.url, "--prefix", "schema-src:"]);
  assert.equal(refused.code, 1, show(refused));
  assert.match(refused.stderr, /SchemaVersionError/);
  assert.match(refused.stderr, /pass --schema 1 or higher/);
  assert.doesNotMatch(refused.stderr, /upgrade the application/);

  const exported = await run(["export", "--redis", server.url, "--prefix", "schema-src:", "--schema", "3"]);
  assert.equal(exported.code, 0, show(exported));
  assert.deepEqual(linesOf(exported.stdout).sort(), expected, "each line is, byte for byte, what a store at the session's own schema exports");
  assert.deepEqual(parseLines(exported.stdout).map((e) => [e.id, e.schema]).sort(), [["at-0", 0], ["at-1", 1], ["pruned-1", 1]], "the stored schema, not 3");
  assert.ok(parseLines(exported.stdout).find((e) => e.id === "pruned-1").base.length > 0, "the pruned session's base");
  assert.deepEqual((await client.keys("*schema-src:*")).sort(), rawBefore, "the export wrote nothing");

  const imported = await run(["import", "--redis", server.url, "--prefix", "schema-dst:", "--schema", "3"], { input: exported.stdout });
  assert.equal(imported.code, 0, show(imported));
  assert.match(imported.stderr, /3 sessions were imported/);
  // The application's store (a real migration to 2) reads the copy as it reads the source.
  const views = async (prefix) => {
    const store = await SessionStore.kv(redisKv(client), { prefix, schema: schema2 });
    try {
      const out = {};
      for (const id of ["at-0", "at-1", "pruned-1"]) {
        const session = await store.open(id, { create: false });
        out[id] = { version: session.version, messages: session.messages(), state: session.state(), schema: (await session.export()).schema };
      }
      return out;
    } finally {
      await store.close();
    }
  };
  const copy = await views("schema-dst:");
  assert.deepEqual(copy, await views("schema-src:"));
  assert.deepEqual(copy["at-0"].messages, [{ text: "from schema 0", v2: true }], "migrated by the application, once, from 0");
  assert.deepEqual(copy["pruned-1"].messages.map((m) => m.text), ["turn 1", "turn 2", "turn 3"]);
  assert.deepEqual([copy["at-0"].schema, copy["at-1"].schema], [0, 1], "the import kept each export's schema");

  // An import of a line stored under schema 1 without --schema names the flag.
  const line = `${expected[1]}\n`;
  const blind = await run(["import", "--redis", server.url, "--prefix", "schema-blind:"], { input: line });
  assert.equal(blind.code, 1, show(blind));
  assert.match(blind.stderr, /line 1: session "at-1": SchemaVersionError: .*pass --schema 1 or higher/);
  assert.deepEqual(await redisIds("schema-blind:"), []);
  // A session stored under a schema above --schema.
  const newer = await SessionStore.kv(redisKv(client), { prefix: "schema-newer:", schema: schema2 });
  await (await newer.open("at-2")).invoke((inv) => inv.appendMessage({ text: "x" }));
  await newer.close();
  const above = await run(["export", "--redis", server.url, "--prefix", "schema-newer:", "--schema", "1"]);
  assert.equal(above.code, 1, show(above));
  assert.match(above.stderr, /written under application schema 2, and this command was given --schema 1; pass --schema 2 or higher/);

  for (const value of ["1.5", "abc", "", "-1", "99999999999"]) {
    const result = await run(["export", "--redis", server.url, "--prefix", "schema-src:", `--schema=${value}`]);
    assert.equal(result.code, 2, `--schema=${value}: ${show(result)}`);
    assert.match(result.stderr, /--schema must be a non-negative integer/);
    assert.match(result.stderr, /Usage:/);
  }
  // A negative value as its own argument is the option's value, refused by the option's own check.
  const negative = await run(["export", "--redis", server.url, "--prefix", "schema-src:", "--schema", "-1"]);
  assert.equal(negative.code, 2, show(negative));
  assert.match(negative.stderr, /--schema must be a non-negative integer .*got "-1"/);
  const help = await run(["--help"]);
  assert.match(help.stdout, /--schema N/);
});

test("import --key-file into an encrypted store is refused when the key file does not open its sessions (nothing written); the application's keys, a rotation that holds them, or an empty store import", async () => {
  const raw = (bytes) => crypto.subtle.importKey("raw", bytes, "AES-GCM", false, ["encrypt", "decrypt"]);
  const appBytes = Buffer.alloc(32, 1);
  const otherBytes = Buffer.alloc(32, 2);
  const nextBytes = Buffer.alloc(32, 3);
  const appKey = await raw(appBytes);
  const keyFile = (name, data) => {
    const path = join(dir, `foreign-${name}.json`);
    writeFileSync(path, JSON.stringify(data));
    return path;
  };
  const appFile = keyFile("app", { key: appBytes.toString("base64") });
  const otherFile = keyFile("other", { key: otherBytes.toString("base64") }); // another key under the same id, "default"
  const otherIdFile = keyFile("other-id", { current: "staging", keys: { staging: appBytes.toString("base64") } });
  const rotationFile = keyFile("rotation", { current: "2026-12", keys: { default: appBytes.toString("base64"), "2026-12": nextBytes.toString("base64") } });
  // Two sealed targets: a session whose head is all clear (its batch is sealed), and one with sealed metadata.
  for (const [prefix, options] of [["foreign:", undefined], ["foreign-meta:", { metadata: { user: "SECRET" } }]]) {
    const app = await SessionStore.kv(redisKv(client), { prefix, encryptionKey: appKey });
    await (await app.open("live", options)).invoke((inv) => inv.appendMessage("live data"));
    await app.close();
  }
  const input = `${JSON.stringify(source.exports.find((e) => e.id === "rich/closed"))}\n`;

  for (const prefix of ["foreign:", "foreign-meta:"]) {
    const before = (await client.keys(`*${prefix}*`)).sort();
    for (const [file, keyId, why] of [
      [otherFile, "default", "and the key file's key of that id does not open it"],
      [otherIdFile, "default", "which the key file does not have"],
    ]) {
      const result = await run(["import", "--redis", server.url, "--prefix", prefix, "--key-file", file], { input });
      assert.equal(result.code, 1, `${prefix} ${file}: ${show(result)}`);
      assert.ok(result.stderr.includes(`--key-file ${file} does not open the sessions the store holds already (session "live"`), show(result));
      assert.ok(result.stderr.includes(`sealed under key id "${keyId}", ${why}`), show(result));
      // Its head sealed (metadata), the listing leaves the session out: the probe opens it all the same.
      assert.ok(result.stderr.includes(prefix === "foreign-meta:" ? 'record "h/live~"' : 'record "e/live~/'), show(result));
      assert.match(result.stderr, /Give the key file of the application's encryptionKey/);
      assert.match(result.stderr, /nothing was imported/);
      assert.deepEqual((await client.keys(`*${prefix}*`)).sort(), before, `${prefix} ${file}: nothing written`);
    }
  }

  // The application's key file, and a rotation whose keys hold the application's: imported, readable.
  const imported = await run(["import", "--redis", server.url, "--prefix", "foreign:", "--key-file", appFile], { input });
  assert.equal(imported.code, 0, show(imported));
  const rotated = await run(["import", "--redis", server.url, "--prefix", "foreign-meta:", "--key-file", rotationFile], { input });
  assert.equal(rotated.code, 0, show(rotated));
  const nextKey = await raw(nextBytes);
  for (const [prefix, encryptionKey] of [["foreign:", appKey], ["foreign-meta:", { current: "2026-12", keys: { default: appKey, "2026-12": nextKey } }]]) {
    const app = await SessionStore.kv(redisKv(client), { prefix, encryptionKey });
    assert.deepEqual((await app.open("live", { create: false })).messages(), ["live data"]);
    assert.deepEqual(await describeAll(app, ["rich/closed"]), { "rich/closed": source.views["rich/closed"] }, `${prefix}: the application reads the imported session`);
    await app.close();
  }
  // An empty store tells nothing: any key file imports.
  const empty = await run(["import", "--redis", server.url, "--prefix", "foreign-empty:", "--key-file", otherFile], { input });
  assert.equal(empty.code, 0, show(empty));
});
