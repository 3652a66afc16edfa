#!/usr/bin/env node
// agent-session export | import: back up the sessions of a store as NDJSON (one
// `session.export()` per line) and restore them, on Redis or Deno KV. See docs/backup.md.
//
// Plain Node ESM over the package's own entry. The backend client is the user's: `redis` (or
// `ioredis`) for --redis and `@deno/kv` for --deno-kv, imported only when asked for, from this
// package's location or else from the current directory's project.
import { constants as fsConstants, createReadStream, createWriteStream, openSync, rmSync } from "node:fs";
import { access, open, readFile, readlink, realpath, rename, rm, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { constants as osConstants } from "node:os";
import { basename, dirname, join, resolve as resolvePath } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const USAGE = `Usage:
  agent-session export (--redis URL | --deno-kv PATH) [--prefix P] [--id-prefix P] [--file PATH]
                       [--key-file PATH] [--schema N]
  agent-session import (--redis URL | --deno-kv PATH) [--prefix P] [--file PATH] [--skip-existing]
                       [--key-file PATH] [--schema N] [--idle-ttl-ms N] [--max-lifetime-ms N]

Backs up the sessions of an agent-session store as NDJSON: one line per session, the JSON of
session.export() (format "agent-session.export/1"), and restores them. Each session is imported
whole or not at all; an import stops at the first line that fails and says which.

Backend (exactly one):
  --redis URL        a Redis server: redis://[user:password@]host[:port][/db], rediss:// for TLS.
                     Needs the "redis" package (or "ioredis") in your project: npm install redis
  --deno-kv PATH     a Deno KV database: the SQLite file of Deno's local KV, or a remote KV URL
                     (with DENO_KV_ACCESS_TOKEN set). Needs "@deno/kv": npm install @deno/kv

Options:
  --prefix P         the key prefix the application gives SessionStore.kv({ prefix }) (default: none)
  --id-prefix P      export only the sessions whose id starts with P
  --file PATH        export: write PATH (a temporary file is renamed to it once complete);
                     import: read PATH. Default: stdout / stdin
  --skip-existing    import: leave a session whose id exists already as it is, and go on
  --key-file PATH    the application's encryptionKey, as raw AES-GCM keys (16, 24 or 32 bytes) in
                     base64 in a JSON file: {"current": ID, "keys": {ID: KEY, ...}}, or {"key": KEY}
                     for one key (id "default"). Export reads sealed sessions with it; import seals
                     what it writes under "current". An import is refused when the store holds
                     sessions it cannot read: sealed ones without a key file; with one, ones sealed
                     under a key it does not have (it is not the application's key file)
  --schema N         the application's schema version: the version of its store's schema option
                     (default 0, no schema). Sessions stored under schema N or below are exported
                     and imported as they are stored, never migrated (the application migrates them
                     when it opens them); a session stored under a higher one stops the command
  --idle-ttl-ms N, --max-lifetime-ms N
                     import: the TTLs of the restored sessions, as the application's store or open()
                     gives them (a commit extends the idle TTL); with one of them, a session has no
                     TTL of the other kind (the command's store has no defaults). Without either,
                     each session keeps its export's expiresAt as a fixed time, which commits do not
                     move. An expired session stays expired
  --max-message-bytes N, --max-state-value-bytes N, --max-commit-bytes N
                     import: the size limits to check the sessions against (default 1 MiB, 1 MiB,
                     4 MiB); give the application's own limits if it raised them
  -h, --help         print this text
  --version          print the package's version

A progress count is shown on stderr when it is a terminal. Exit status: 0 done, 1 failed (the
message says why and, for an import, at which line), 2 bad usage.`;

/** A failure with a message for the user (no stack trace). */
class CliError extends Error {}
class UsageError extends CliError {}

const OPTIONS = {
  redis: { type: "string" },
  "deno-kv": { type: "string" },
  prefix: { type: "string" },
  "id-prefix": { type: "string" },
  file: { type: "string" },
  "skip-existing": { type: "boolean" },
  "key-file": { type: "string" },
  schema: { type: "string" },
  "max-message-bytes": { type: "string" },
  "max-state-value-bytes": { type: "string" },
  "max-commit-bytes": { type: "string" },
  "idle-ttl-ms": { type: "string" },
  "max-lifetime-ms": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
};

/**
 * The highest --schema: the store is given a migration per version up to it (and a session of an
 * older schema runs each when it is loaded), so a mistyped huge number would not end.
 */
const MAX_SCHEMA = 1_000_000;

/**
 * `argv` with a value that looks like a negative number joined to its option (`--schema -1` as
 * `--schema=-1`): parseArgs takes it for an option of its own and says so, where the option's own
 * check says what the option takes.
 */
function joinNegativeValues(argv) {
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    const name = /^--([\w-]+)$/.exec(argv[i])?.[1];
    if (OPTIONS[name]?.type === "string" && /^-\d/.test(argv[i + 1] ?? "")) out.push(`${argv[i]}=${argv[++i]}`);
    else out.push(argv[i]);
  }
  return out;
}

function parse(argv) {
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeValues(argv), options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error.message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true };
  if (values.version) return { version: true };
  const [command, ...extra] = positionals;
  if (command === undefined) throw new UsageError("a command is needed: export or import");
  if (command !== "export" && command !== "import") throw new UsageError(`unknown command "${command}" (export or import)`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if ((values.redis === undefined) === (values["deno-kv"] === undefined)) {
    throw new UsageError("give exactly one backend: --redis URL or --deno-kv PATH");
  }
  if (command === "import" && values["id-prefix"] !== undefined) throw new UsageError("--id-prefix is an export option");
  if (command === "export" && values["skip-existing"]) throw new UsageError("--skip-existing is an import option");
  const limits = {};
  const ttls = {};
  for (const [flag, name, into] of [
    ["max-message-bytes", "maxMessageBytes", limits],
    ["max-state-value-bytes", "maxStateValueBytes", limits],
    ["max-commit-bytes", "maxCommitBytes", limits],
    ["idle-ttl-ms", "idleTtlMs", ttls],
    ["max-lifetime-ms", "maxLifetimeMs", ttls],
  ]) {
    if (values[flag] === undefined) continue;
    if (command === "export") throw new UsageError(`--${flag} is an import option`);
    const n = Number(values[flag]);
    if (!/^\d+$/.test(values[flag]) || !Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${flag} must be a positive integer, got "${values[flag]}"`);
    into[name] = n;
  }
  let schema = 0;
  if (values.schema !== undefined) {
    const n = Number(values.schema);
    if (!/^\d+$/.test(values.schema) || !Number.isSafeInteger(n) || n > MAX_SCHEMA) {
      throw new UsageError(`--schema must be a non-negative integer (the application's schema version, at most ${MAX_SCHEMA}), got "${values.schema}"`);
    }
    schema = n;
  }
  return { command, values, limits, ttls, schema };
}

// ---------------------------------------------------------------------------------------------
// Backends

/** Imports an optional dependency: from this package's location, else from the current project. */
async function importOptional(name) {
  try {
    return await import(name);
  } catch (error) {
    if (error?.code !== "ERR_MODULE_NOT_FOUND") throw error;
  }
  try {
    const path = createRequire(join(process.cwd(), "package.json")).resolve(name);
    return await import(pathToFileURL(path).href);
  } catch {
    return undefined;
  }
}

const firstLine = (error) => String(error?.message ?? error).split("\n")[0].trim();

/** An error of the library or a backend in one line: class, path or key, message (its advice for this command). */
const describe = (error) => {
  const path = typeof error?.path === "string" && error.path.startsWith("options.encryptionKey") ? "--key-file" : error?.path;
  return `${error?.name ?? "Error"}${path ? ` at ${path}` : ""}: ${cliAdvice(error, firstLine(error))}`;
};

/** The command's flag for each size limit of the store. */
const LIMIT_FLAGS = { maxMessageBytes: "--max-message-bytes", maxStateValueBytes: "--max-state-value-bytes", maxCommitBytes: "--max-commit-bytes" };

/**
 * The library's message with its advice put in terms of this command: the library names API
 * options (`{ id }`, `limits.*`) that a user of the command cannot pass, where the command has flags.
 */
function cliAdvice(error, message) {
  if (/\bencryptionKey\b/.test(message)) {
    // The store's encryptionKey is the --key-file: "...key id "b", which this store's encryptionKey
    // does not have; add it to encryptionKey.keys", "options.encryptionKey.current must be the id of
    // one of options.encryptionKey.keys".
    message = message
      .replace(/\bthis store's encryptionKey\b/g, "the key file (--key-file)")
      .replace(/\b(?:options\.)?encryptionKey\.(current|keys)\b(?:\.[^\s:;,]+)?/g, 'the key file\'s "$1"');
  }
  if (error?.code === "INVALID_INPUT" && error.path === "id" && /already exists/.test(message)) {
    return message.replace(/;[^;]*\{ id \}[^;]*$/, "") + "; run the import again with --skip-existing to keep the stored session as it is and import the other lines";
  }
  if (error?.code === "LIMIT_EXCEEDED") {
    // "...; store large data elsewhere and keep a reference, or raise limits.maxMessageBytes"
    const option = /limits\.(\w+)$/.exec(message)?.[1];
    if (Object.hasOwn(LIMIT_FLAGS, option ?? "")) {
      return message.replace(/;[^;]*$/, "") + `; if the application's store allows more (its limits.${option}), give that limit with ${LIMIT_FLAGS[option]} N`;
    }
  }
  if (error?.code === "SCHEMA_VERSION" && Number.isSafeInteger(error.stored)) {
    // "...under application schema 2, and this store supports up to 0; upgrade the application (its
    // schema option) to read it; nothing was written": the command's store is the one given --schema.
    const advice =
      `pass --schema ${error.stored} or higher (the application's schema version): ` +
      `the command copies sessions as they are stored, under any schema up to --schema, and never migrates them`;
    const given = message.replace(/this store supports up to (\d+)/, "this command was given --schema $1");
    const replaced = given.replace(/;[^;]*\bupgrade the application\b[^;]*/, `; ${advice}`);
    return replaced !== given ? replaced : `${given}; ${advice}`;
  }
  return message;
}

/**
 * The migrations of the store the command opens with --schema N: each step gives the data back as it
 * is. The command only reads and imports (it never begins a turn, so never commits), and a read
 * writes nothing: they only let the store open the sessions stored under any schema up to N. An
 * export carries each session's stored `schema` and history; an import keeps the export's `schema`,
 * and the application's store migrates the session with its own functions when it opens it.
 */
function keepAsStored(version) {
  const identity = ({ messages, state }) => ({ messages, state });
  const migrate = {};
  for (let step = 1; step <= version; step++) migrate[step] = identity;
  return { version, migrate };
}

async function openRedis(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`--redis: "${url}" is not a URL (expected redis://host:port or rediss://host:port)`);
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new CliError(`--redis: "${url}" is not a Redis URL (its scheme must be redis: or rediss:, not ${parsed.protocol})`);
  }
  const shown = redact(parsed);
  const nodeRedis = await importOptional("redis");
  const createClient = nodeRedis?.createClient ?? nodeRedis?.default?.createClient;
  if (createClient) {
    let client;
    try {
      client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 10_000 } });
      client.on("error", () => {}); // connect() rejects with it; later ones fail the command in use
      await client.connect();
    } catch (error) {
      throw new CliError(`--redis: cannot connect to ${shown}: ${firstLine(error)}`);
    }
    return { client, close: () => (typeof client.close === "function" ? client.close() : client.quit()).catch(() => {}) };
  }
  const ioredis = await importOptional("ioredis");
  const Redis = ioredis?.Redis ?? ioredis?.default;
  if (typeof Redis === "function") {
    const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 1, connectTimeout: 10_000 });
    client.on("error", () => {});
    try {
      await client.connect();
      // ioredis goes on in database 0 when the SELECT of the URL's database fails (its error is only
      // emitted): select it again here, so that a database that does not exist is refused.
      const database = parsed.pathname.replace(/^\//, "");
      if (database !== "") await client.select(database);
    } catch (error) {
      client.disconnect();
      throw new CliError(`--redis: cannot connect to ${shown}: ${firstLine(error)}`);
    }
    return { client, close: () => client.quit().catch(() => client.disconnect()) };
  }
  throw new CliError('--redis needs the "redis" package (or "ioredis"): run `npm install redis` in your project');
}

/** The URL without its password, for messages. */
function redact(url) {
  const copy = new URL(url.href);
  if (copy.password) copy.password = "***";
  return copy.href;
}

async function openDenoKv(path, mustExist) {
  const denoKvModule = await importOptional("@deno/kv");
  const openKv = denoKvModule?.openKv ?? denoKvModule?.default?.openKv;
  if (typeof openKv !== "function") throw new CliError('--deno-kv needs the "@deno/kv" package: run `npm install @deno/kv` in your project');
  const remote = /^https?:\/\//.test(path);
  if (!remote && path !== ":memory:") {
    // openKv creates a missing file: an export of a mistyped path would succeed with nothing in it.
    const info = await stat(path).catch(() => null);
    if (info === null && mustExist) throw new CliError(`--deno-kv: ${path} does not exist`);
    if (info !== null && !info.isFile()) throw new CliError(`--deno-kv: ${path} is not a file`);
  }
  try {
    const db = await openKv(path);
    return { db, close: () => db.close() };
  } catch (error) {
    throw new CliError(`--deno-kv: cannot open ${path}: ${firstLine(error)}`);
  }
}

async function openStore({ command, values, limits, schema }) {
  // The key file is read before any backend is opened (or created).
  const encryptionKey = values["key-file"] === undefined ? undefined : await readKeyFile(values["key-file"]);
  const [{ SessionStore }, adapters] = await Promise.all([import("../js/entry/node.js"), import("../js/adapters/index.js")]);
  let backend;
  let kv;
  if (values.redis !== undefined) {
    backend = await openRedis(values.redis);
    kv = adapters.redisKv(backend.client);
  } else {
    backend = await openDenoKv(values["deno-kv"], command === "export");
    kv = adapters.denoKv(backend.db);
  }
  try {
    // A session whose head cannot be decoded is left out of the listing, and so of the export;
    // the store reports it here, and the export fails rather than make a backup without it.
    const corrupt = [];
    const corruptSessions = [];
    const onEvent = (event) => {
      if (event.type !== "corrupt") return;
      corrupt.push(event.key ?? event.session);
      if (event.session) corruptSessions.push(event.session);
    };
    const options = { owner: "agent-session-cli", limits, onEvent };
    if (values.prefix !== undefined) options.prefix = values.prefix;
    if (encryptionKey !== undefined) options.encryptionKey = encryptionKey;
    if (schema > 0) options.schema = keepAsStored(schema);
    const store = await SessionStore.kv(kv, options);
    return {
      store,
      corrupt,
      corruptSessions,
      async close() {
        await store.close().catch(() => {});
        await backend.close();
      },
    };
  } catch (error) {
    await backend.close();
    throw error;
  }
}

/**
 * The `encryptionKey` store option from a key file (see USAGE): one CryptoKey, or `{ current, keys }`.
 * The store checks the rest (a `current` among `keys`, key ids) and says what is wrong.
 */
async function readKeyFile(path) {
  let text;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new CliError(`--key-file: cannot read ${path}: ${error.code === "ENOENT" ? "no such file" : firstLine(error)}`);
  }
  let data;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new CliError(`--key-file: ${path} is not JSON (${firstLine(error)})`);
  }
  const shape = `expected {"current": ID, "keys": {ID: base64 key}} or {"key": base64 key}`;
  if (data === null || typeof data !== "object" || Array.isArray(data)) throw new CliError(`--key-file: ${path}: ${shape}`);
  const importKey = async (value, name) => {
    const bytes = typeof value === "string" && /^[A-Za-z0-9+/]*={0,2}$/.test(value.trim()) ? Buffer.from(value.trim(), "base64") : undefined;
    if (bytes === undefined || ![16, 24, 32].includes(bytes.length)) {
      throw new CliError(`--key-file: ${path}: ${name} must be 16, 24 or 32 bytes in base64 (an AES-GCM key)`);
    }
    return globalThis.crypto.subtle.importKey("raw", bytes, "AES-GCM", false, ["encrypt", "decrypt"]);
  };
  if ("key" in data) {
    if (Object.keys(data).length !== 1) throw new CliError(`--key-file: ${path}: ${shape}`);
    return importKey(data.key, '"key"');
  }
  const { current, keys } = data;
  if (typeof current !== "string" || keys === null || typeof keys !== "object" || Array.isArray(keys)) {
    throw new CliError(`--key-file: ${path}: ${shape}`);
  }
  const imported = {};
  for (const [id, value] of Object.entries(keys)) imported[id] = await importKey(value, `keys[${JSON.stringify(id)}]`);
  return { current, keys: imported };
}

/**
 * Without a key file, an import into a store whose sessions it cannot read (sealed with the
 * application's encryptionKey, or corrupt) would write the new ones unsealed beside them: refused.
 * The first sessions listed tell: a head with sealed fields is left out of the listing (the store
 * reports a `corrupt` event), and a session whose head is all clear is loaded, which opens its records.
 */
async function refuseUnreadableTarget(options, opened) {
  const { sessions } = await opened.store.list({ limit: 3 });
  if (options.values["key-file"] !== undefined) return refuseForeignKeyFile(options, opened, sessions);
  let unreadable = opened.corrupt[0];
  for (const { id } of sessions) {
    if (unreadable !== undefined) break;
    try {
      // Only read: `session.close()` would close the session (a terminal status), not this handle.
      await opened.store.open(id, { create: false });
    } catch (error) {
      if (error?.code === "CORRUPT_RECORD") unreadable = error.key ?? id;
    }
  }
  if (unreadable === undefined) return;
  throw new CliError(
    `the store holds sessions this import cannot read (${JSON.stringify(unreadable)}): if the application opens it with an encryptionKey, ` +
      `pass --key-file, or the imported sessions would be stored unsealed beside them; nothing was imported`,
  );
}

/**
 * With a key file, an import into a store whose sessions are sealed under a key that the key file
 * does not open (another key under the same id, or an id it does not have) would seal the new ones
 * under a key that the application does not have, which then cannot read them: refused. The same
 * first sessions tell, the heads left out of the listing opened too for the error that says why; a
 * key file with a rotation opens what any of its keys sealed. A record that is corrupt, not sealed
 * under another key, does not stop the import.
 */
async function refuseForeignKeyFile(options, opened, sessions) {
  const ids = [...new Set([...opened.corruptSessions.slice(0, 3), ...sessions.map(({ id }) => id)])];
  for (const id of ids) {
    let failure;
    try {
      // Only read, as above.
      await opened.store.open(id, { create: false });
    } catch (error) {
      failure = error;
    }
    // "...cannot be decoded (it is encrypted with key id "default", and does not decrypt with it: ...)"
    // or "(it is encrypted with key id "2026-12", which this store's encryptionKey does not have; ...)".
    if (failure?.code !== "CORRUPT_RECORD" || !/\bencrypted\b/.test(failure.message)) continue;
    const keyId = /key id "(.*?)"/.exec(failure.message)?.[1];
    const why =
      keyId === undefined
        ? firstLine(failure)
        : `record ${JSON.stringify(failure.key ?? id)} is sealed under key id ${JSON.stringify(keyId)}, ` +
          (/does not have/.test(failure.message) ? "which the key file does not have" : "and the key file's key of that id does not open it");
    throw new CliError(
      `--key-file ${options.values["key-file"]} does not open the sessions the store holds already (session ${JSON.stringify(id)}: ${why}): ` +
        `it is not the application's encryptionKey, and the imported sessions would be sealed under a key the application does not have. ` +
        `Give the key file of the application's encryptionKey (its "current" key, and in "keys" every key id its sessions are sealed under); nothing was imported`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Progress (stderr, only when it is a terminal)

function progress(verb) {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  let shown = false;
  return {
    update(count, fraction, force = false) {
      if (!tty) return;
      const now = Date.now();
      if (!force && now - last < 100) return;
      last = now;
      shown = true;
      let bar = "";
      if (fraction !== undefined) {
        const width = 24;
        const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
        bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  `;
      }
      process.stderr.write(`\r\x1b[K${bar}${count} session${count === 1 ? "" : "s"} ${verb}`);
    },
    clear() {
      if (shown) process.stderr.write("\r\x1b[K");
    },
  };
}

// ---------------------------------------------------------------------------------------------
// export

/** The temporary file of an export in progress: removed when a signal stops the command. */
let pendingTemp;
/** What an import in progress has done so far, for the message of a signal that stops it. */
let importDone;
// Ctrl-C (SIGINT), kill, `docker stop` or systemd (SIGTERM), a closed terminal (SIGHUP): the
// temporary file holds the sessions in plaintext, so it must not outlive the command. The exit
// status is 128 + the signal's number, as a shell gives for a command the signal killed.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    try {
      if (pendingTemp !== undefined) rmSync(pendingTemp, { force: true });
    } finally {
      // An import stopped part-way: each session is whole or not there; --skip-existing finishes it.
      const done = importDone === undefined ? "" : ` (${importDone()}); run the import again with --skip-existing to import the rest`;
      process.stderr.write(`\nagent-session: ${signal === "SIGINT" ? "interrupted" : `stopped by ${signal}`}${done}\n`);
      process.exit(128 + osConstants.signals[signal]);
    }
  });
}

/**
 * The file an export writes for --file. A symlink is followed, also one whose file does not exist
 * yet (a first backup onto a link prepared for it): the file it names is written, the link stays.
 */
async function exportTarget(file) {
  let path = resolvePath(file);
  for (let hops = 0; hops < 40; hops++) {
    const real = await realpath(path).catch(() => null);
    if (real !== null) return real;
    const link = await readlink(path).catch(() => null);
    if (link === null) return path; // absent and not a link: created as named
    // A relative target is relative to the link's directory (as the system resolves it, symlinks and all).
    const base = await realpath(dirname(path)).catch(() => dirname(path));
    path = resolvePath(base, link);
  }
  throw new CliError(`--file: cannot write ${file}: too many levels of symbolic links`);
}

/** `path` with its directory resolved: two names of one place compare equal, whether the file exists or not. */
async function canonical(path) {
  const dir = await realpath(dirname(path)).catch(() => dirname(path));
  return join(dir, basename(path));
}

/**
 * An export's --file must not name the Deno KV database it reads, nor its SQLite -wal, -shm or
 * -journal file: the renamed backup would take the database's place. Checked before anything is
 * opened or written; a hard link is the same file too (same device and inode).
 */
async function refuseFileOverDatabase(options) {
  const { file, "deno-kv": database } = options.values;
  if (options.command !== "export" || file === undefined || database === undefined) return;
  if (/^https?:\/\//.test(database) || database === ":memory:") return;
  const target = await exportTarget(file);
  const [databaseInfo, targetInfo] = await Promise.all([stat(database).catch(() => null), stat(target).catch(() => null)]);
  const sameFile = databaseInfo !== null && targetInfo !== null && databaseInfo.dev === targetInfo.dev && databaseInfo.ino === targetInfo.ino;
  const databasePath = await canonical(await realpath(database).catch(() => resolvePath(database)));
  const targetPath = await canonical(target);
  const suffix = ["", "-wal", "-shm", "-journal"].find((end) => targetPath === databasePath + end);
  if (!sameFile && suffix === undefined) return;
  const what = sameFile || suffix === "" ? "the database" : `the SQLite ${suffix} file of the database`;
  throw new UsageError(
    `--file ${file} is ${what} given to --deno-kv (${database}): the backup would replace it. Give --file another path (or leave it out to write stdout); nothing was written`,
  );
}

/**
 * Waits until `out` takes more data ("drain"), or is closed or failed (the caller checks how it
 * ended). Its listeners go when it settles: an export waits once per full buffer, thousands of times.
 */
function drained(out) {
  return new Promise((resolve) => {
    if (out.destroyed) return resolve();
    const settle = () => {
      for (const event of ["drain", "close", "error"]) out.off(event, settle);
      resolve();
    };
    for (const event of ["drain", "close", "error"]) out.on(event, settle);
  });
}

/** What to do about a record the store could not read when no key file was given. */
const keyHint = (options, error) =>
  error?.code === "CORRUPT_RECORD" && options.values["key-file"] === undefined
    ? "; if the application opens the store with an encryptionKey, pass it with --key-file"
    : "";

async function runExport(options, opened) {
  const file = options.values.file;
  const bar = progress("exported");
  let out;
  let temp;
  let target;
  let finalMode;
  if (file !== undefined) {
    target = await exportTarget(file);
    const dirInfo = await stat(dirname(target)).catch(() => null);
    if (dirInfo === null || !dirInfo.isDirectory()) throw new CliError(`--file: cannot write ${file}: ${dirname(target)} is not a directory`);
    const targetInfo = await stat(target).catch(() => null);
    if (targetInfo !== null && !targetInfo.isFile()) throw new CliError(`--file: cannot write ${file}: it exists and is not a regular file`);
    // The backup replaced keeps its permissions (one protected with chmod 600 stays so); a new one
    // gets the mode of any new file (0666 less the umask).
    finalMode = targetInfo === null ? 0o666 & ~process.umask() : targetInfo.mode & 0o7777;
    temp = join(dirname(target), `.${basename(target)}.partial-${process.pid}`);
    // Readable by its owner only until it is complete: it holds the sessions decrypted, and the
    // backup it replaces may be protected. Opened synchronously, so that a signal finds it named.
    let fd;
    try {
      fd = openSync(temp, "wx", 0o600);
    } catch (error) {
      throw new CliError(`--file: cannot write ${file}: ${firstLine(error)}`);
    }
    pendingTemp = temp;
    out = createWriteStream(temp, { fd });
  } else {
    out = process.stdout;
  }
  let outputError;
  out.on("error", (error) => (outputError = error));
  let count = 0;
  try {
    const exporter = opened.store.export(options.values["id-prefix"] !== undefined ? { prefix: options.values["id-prefix"] } : undefined);
    try {
      for await (const data of exporter) {
        if (outputError) break;
        if (!out.write(`${JSON.stringify(data)}\n`)) await drained(out);
        count += 1;
        bar.update(count);
      }
    } catch (error) {
      // The store could not read a session (or the backend failed): the backup is incomplete.
      const kept = temp !== undefined ? `; ${file} was not written` : "; the output is incomplete";
      throw new CliError(`${describe(error)} (after ${count} session${count === 1 ? "" : "s"}${kept})${keyHint(options, error)}`);
    }
    if (opened.corrupt.length > 0) {
      const keys = [...new Set(opened.corrupt)];
      const kept = temp !== undefined ? `${file} was not written` : "the output lacks them";
      throw new CliError(
        `${keys.length} session${keys.length === 1 ? "" : "s"} could not be read (CorruptRecordError: ${keys.map((key) => JSON.stringify(key)).join(", ")}); ` +
          `${count} other${count === 1 ? " was" : "s were"} exported, but ${kept}${keyHint(options, { code: "CORRUPT_RECORD" })}`,
      );
    }
    // Everything handed to stdout is written (or failed) before the summary.
    if (temp === undefined && !outputError) await new Promise((resolve) => out.write("", () => resolve()));
    if (outputError) {
      const closed = outputError.code === "EPIPE" ? " (it was closed before the end)" : "";
      throw new CliError(`cannot write ${file ?? "stdout"}${closed}: ${firstLine(outputError)} (after ${count} session${count === 1 ? "" : "s"})`);
    }
    bar.update(count, undefined, true);
    if (temp !== undefined) {
      await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve())));
      const handle = await open(temp, "r+");
      try {
        await handle.chmod(finalMode);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, target);
      temp = undefined;
      pendingTemp = undefined;
    }
  } finally {
    bar.clear();
    if (temp !== undefined) {
      out.destroy();
      await rm(temp, { force: true });
      pendingTemp = undefined;
    }
  }
  process.stderr.write(`agent-session export: ${count} session${count === 1 ? "" : "s"} exported${file !== undefined ? ` to ${file}` : ""}\n`);
}

// ---------------------------------------------------------------------------------------------
// import

/** The size of the import file; a CliError when it cannot be read. */
async function inputSize(file) {
  try {
    await access(file, fsConstants.R_OK);
    const info = await stat(file);
    if (!info.isFile()) throw new Error("not a regular file");
    return info.size;
  } catch (error) {
    throw new CliError(`--file: cannot read ${file}: ${error.code === "ENOENT" ? "no such file" : firstLine(error)}`);
  }
}

async function runImport(options, opened) {
  const file = options.values.file;
  await refuseUnreadableTarget(options, opened);
  let input;
  let size;
  if (file !== undefined) {
    size = await inputSize(file);
    input = createReadStream(file);
  } else {
    input = process.stdin;
  }
  let inputError;
  input.on("error", (error) => (inputError = error));
  const bar = progress("imported");
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNumber = 0;
  let bytesDone = 0;
  let imported = 0;
  let skipped = 0;
  const unreadable = []; // ids skipped whose stored head cannot be read
  const done = () =>
    `${imported} session${imported === 1 ? " was" : "s were"} imported` +
    (skipped ? `, ${skipped} skipped as existing${unreadable.length ? ` (${unreadable.length} of them unreadable)` : ""}` : "");
  importDone = done;
  const failAt = (what) => {
    const before = imported + skipped > 0 ? `; the lines before it are in the store (${done()})` : `; nothing was imported`;
    return new CliError(`line ${lineNumber}: ${what}${before}; line ${lineNumber} and the lines after it were not imported`);
  };
  try {
    for await (let line of lines) {
      lineNumber += 1;
      bytesDone += Buffer.byteLength(line) + 1;
      // A UTF-8 file saved by some Windows tools (Notepad, PowerShell) starts with a byte order mark,
      // which JSON.parse refuses: it is not part of the data.
      if (lineNumber === 1) line = line.replace(/^\uFEFF/, "");
      if (line.trim() === "") continue;
      let data;
      try {
        data = JSON.parse(line);
      } catch (error) {
        throw failAt(`not JSON (${firstLine(error)})`);
      }
      try {
        await opened.store.import(data, options.ttls);
        imported += 1;
      } catch (error) {
        if (options.values["skip-existing"] && error?.code === "INVALID_INPUT" && error.path === "id") {
          skipped += 1;
        } else if (options.values["skip-existing"] && error?.code === "CORRUPT_RECORD" && /^h\//.test(error.key ?? "")) {
          // A session of this id is stored, but its head cannot be read (damaged, or sealed with another
          // key): it exists all the same, and is left as it is.
          skipped += 1;
          unreadable.push(data.id);
        } else {
          const id = typeof data?.id === "string" ? `session ${JSON.stringify(data.id)}: ` : "";
          throw failAt(`${id}${describe(error)}`);
        }
      }
      bar.update(imported + skipped, size ? Math.min(1, bytesDone / size) : undefined);
    }
    if (inputError) throw new CliError(`cannot read ${file ?? "stdin"}: ${firstLine(inputError)} (after line ${lineNumber}; ${done()})`);
    bar.update(imported + skipped, size ? 1 : undefined, true);
  } finally {
    bar.clear();
    lines.close();
    if (file !== undefined) input.destroy();
  }
  process.stderr.write(`agent-session import: ${done()}${file !== undefined ? ` from ${file}` : ""}\n`);
  if (unreadable.length > 0) {
    const shown = unreadable.slice(0, 10).map((id) => JSON.stringify(id)).join(", ");
    process.stderr.write(
      `agent-session import: the stored sessions ${shown}${unreadable.length > 10 ? ` and ${unreadable.length - 10} more` : ""} cannot be read ` +
        `(their head record cannot be decoded) and were left as they are; delete them (SessionStore delete(id)) and import again to restore them\n`,
    );
  }
}

// ---------------------------------------------------------------------------------------------

async function main(argv) {
  let options;
  try {
    options = parse(argv);
  } catch (error) {
    process.stderr.write(`agent-session: ${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (options.version) {
    const manifest = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8"));
    process.stdout.write(`${manifest.version}\n`);
    return 0;
  }
  let opened;
  try {
    // An unreadable input file is reported before any backend is opened (or created).
    if (options.command === "import" && options.values.file !== undefined) await inputSize(options.values.file);
    await refuseFileOverDatabase(options);
    opened = await openStore(options);
    if (options.command === "export") await runExport(options, opened);
    else await runImport(options, opened);
    return 0;
  } catch (error) {
    const message = error instanceof CliError ? error.message : describe(error);
    process.stderr.write(`agent-session ${options.command}: ${message}\n`);
    return error instanceof UsageError ? 2 : 1;
  } finally {
    await opened?.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
