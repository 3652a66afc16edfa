// The package in Cloudflare workerd (through miniflare), used as a user's Worker uses it: the test
// Worker (tests/runtimes/workerd/worker.js) and the example (examples/cloudflare-worker/src/index.js)
// are bundled by esbuild with the conditions wrangler uses, so the package's "workerd" entry loads
// its own wasm, then run with a Durable Object binding, a KV namespace and persistence on disk.
// The adapter contract suite (tests/js/adapters/contract.mjs) drives durableObjectKv and
// cloudflareKv inside workerd through a route of the test Worker.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { Miniflare } from "miniflare";
import { adapterContract } from "./adapters/contract.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WORKER = join(root, "tests/runtimes/workerd/worker.js");
const EXAMPLE = join(root, "examples/cloudflare-worker/src/index.js");
const COMPATIBILITY_DATE = "2025-06-01";

const temporary = [];
async function tempDir(name) {
  const dir = await mkdtemp(join(tmpdir(), `agent-session-${name}-`));
  temporary.push(dir);
  return dir;
}

/** Bundles `entry` as wrangler does: workerd conditions, ESM, `.wasm` files kept as modules. */
async function bundle(entry) {
  const outdir = await tempDir("bundle");
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "neutral",
    mainFields: ["browser", "module", "main"],
    conditions: ["workerd", "worker", "browser"],
    loader: { ".wasm": "copy" },
    outdir,
    metafile: true,
    logLevel: "error",
  });
  return {
    main: join(outdir, basename(entry)),
    inputs: Object.keys(result.metafile.inputs).map((path) => relative(root, join(process.cwd(), path))),
    outputs: Object.keys(result.metafile.outputs),
  };
}

const MODULE_RULES = [
  { type: "ESModule", include: ["**/*.js"] },
  { type: "CompiledWasm", include: ["**/*.wasm"] },
];

function startWorker(main, persist) {
  return new Miniflare({
    modules: true,
    scriptPath: main,
    modulesRoot: dirname(main),
    modulesRules: MODULE_RULES,
    compatibilityDate: COMPATIBILITY_DATE,
    durableObjects: { SESSIONS: "Sessions", SQL_SESSIONS: { className: "SqlSessions", useSQLite: true } },
    kvNamespaces: ["KV"],
    durableObjectsPersist: join(persist, "do"),
    kvPersist: join(persist, "kv"),
  });
}

/** `{ status, body }` of a request to `mf` (body: the JSON, or the text when it is not JSON). */
async function call(mf, method, path, json) {
  const init = { method };
  if (json !== undefined) Object.assign(init, { headers: { "content-type": "application/json" }, body: JSON.stringify(json) });
  const response = await mf.dispatchFetch(`http://worker${path}`, init);
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

/**
 * A HostKv whose every call runs the real adapter inside workerd (route /kv-rpc of the test Worker):
 * the contract suite runs in Node, the adapter on workerd's own storage.
 */
async function remoteKv(currentMf, backend) {
  const rpc = async (method, ...args) => {
    while (args.length > 0 && args[args.length - 1] === undefined) args.pop();
    const encoded = args.map(encodeBytes);
    const { status, body } = await call(currentMf(), "POST", `/kv-rpc?backend=${backend}`, { method, args: encoded });
    // A TypeError in workerd stays one here, with its code (the contract checks which error a put throws).
    if (status !== 200) {
      const error = new (body?.name === "TypeError" ? TypeError : Error)(`${method}() failed in workerd: ${JSON.stringify(body)}`);
      throw body?.code === undefined ? error : Object.assign(error, { code: body.code });
    }
    return body.result;
  };
  // An entry's value comes back as {$bytes} for a Uint8Array, as itself for a string (the rule's base64).
  const entryOf = (entry) =>
    entry === null || typeof entry.value !== "object" ? entry : { ...entry, value: Uint8Array.from(Buffer.from(entry.value.$bytes, "base64")) };
  return {
    capabilities: await rpc("capabilities"),
    get: async (key) => entryOf(await rpc("get", key)),
    async put(key, value, options) {
      const result = await rpc("put", key, value, options);
      return result !== null && typeof result === "object" ? { current: entryOf(result.current) } : result;
    },
    delete: (key, options) => rpc("delete", key, options),
    list: (prefix, options) => rpc("list", prefix, options),
    // Bytes inside the writes travel as {$bytes} too.
    ...(backend !== "cloudflare" && {
      commit: (records, head, deletes) => rpc("commit", records.map(encodeWrite), encodeWrite(head), deletes),
    }),
  };
}

/** A Uint8Array as `{ $bytes }` for the RPC; anything else as it is. */
const encodeBytes = (value) => (value instanceof Uint8Array ? { $bytes: Buffer.from(value).toString("base64") } : value);

/** A write of HostKv.commit with its value encoded for the RPC. */
const encodeWrite = (write) => ({ ...write, value: encodeBytes(write.value) });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// examples/cloudflare-worker bundled once for the tests that run it, with the fields of its
// wrangler.toml that miniflare needs (the test checks them against what the example declares).
let exampleBuild;
function exampleBundle() {
  exampleBuild ??= (async () => {
    const example = await bundle(EXAMPLE);
    const toml = await readFile(join(dirname(EXAMPLE), "..", "wrangler.toml"), "utf8");
    const field = (name, text = toml) => text.match(new RegExp(`^${name}\\s*=\\s*"([^"]+)"`, "m"))?.[1];
    const config = {
      main: field("main"),
      compatibilityDate: field("compatibility_date"),
      binding: field("name", toml.slice(toml.indexOf("[[durable_objects.bindings]]"))),
      className: field("class_name"),
      sqlite: /^new_sqlite_classes\s*=\s*\[[^\]]*"Sessions"/m.test(toml),
    };
    return { example, config };
  })();
  return exampleBuild;
}

/** The example in a fresh miniflare, its Durable Object storage persisted in a directory of its own. */
async function startExample() {
  const { example, config } = await exampleBundle();
  const exampleMf = new Miniflare({
    modules: true,
    scriptPath: example.main,
    modulesRoot: dirname(example.main),
    modulesRules: MODULE_RULES,
    compatibilityDate: config.compatibilityDate,
    durableObjects: { [config.binding]: { className: config.className, useSQLite: config.sqlite } },
    durableObjectsPersist: await tempDir("example"),
  });
  await exampleMf.ready;
  return exampleMf;
}

describe("workerd (miniflare): the bundled package in a Worker and a Durable Object", () => {
  let worker;
  let persist;
  let mf;

  before(async () => {
    worker = await bundle(WORKER);
    persist = await tempDir("persist");
    mf = startWorker(worker.main, persist);
    await mf.ready;
  });

  after(async () => {
    await mf?.dispose();
    for (const dir of temporary) await rm(dir, { recursive: true, force: true });
  });

  test("the bundle uses the package's workerd entry and carries the wasm as a module", async () => {
    assert.ok(worker.inputs.includes("js/entry/workerd.js"), `inputs: ${worker.inputs.join(", ")}`);
    const wasm = worker.outputs.filter((path) => path.endsWith(".wasm"));
    assert.equal(wasm.length, 1, `a .wasm among the outputs: ${worker.outputs.join(", ")}`);
    const code = await readFile(worker.main, "utf8");
    assert.match(code, /import \w+ from "\.\/agent_session_bg[^"]*\.wasm"/, "the bundle imports the .wasm module");
    assert.match(code, /initSync\(\{ module: \w+ \}\)/, "the bundle initialises the wasm from that module");
  });

  test("two concurrent turns on one session: one commits, the other gets ConcurrencyError as 409", async () => {
    const session = "contended";
    const first = call(mf, "POST", `/turn?session=${session}&text=first&delay=2000`);
    // Wait until the first turn holds the session (it then waits on its timer, which lets the
    // second request into the object), then send the second.
    let status;
    for (let i = 0; i < 100 && status !== "running"; i++) {
      const { status: code, body } = await call(mf, "GET", `/messages?session=${session}`);
      status = code === 200 ? body.status : undefined;
      if (status !== "running") await sleep(50);
    }
    assert.equal(status, "running", "the first turn began");
    const second = await call(mf, "POST", `/turn?session=${session}&text=second&delay=0`);
    const firstDone = await first;

    assert.deepEqual([firstDone.status, second.status], [200, 409], JSON.stringify({ firstDone, second }));
    assert.equal(second.body.name, "ConcurrencyError");
    assert.equal(second.body.code, "CONCURRENT_INVOCATION");
    assert.equal(second.body.holder, firstDone.body.owner, "holder names the store that holds the lease");
    assert.equal(typeof second.body.retryAfterMs, "number");
    assert.ok(second.body.retryAfterMs > 0 && second.body.retryAfterMs <= 30_000, `retryAfterMs ${second.body.retryAfterMs}`);
    assert.equal(firstDone.body.version, 1);

    const after = await call(mf, "GET", `/messages?session=${session}`);
    assert.equal(after.status, 200, JSON.stringify(after.body));
    assert.deepEqual(after.body.messages, [{ text: "first" }]);
    assert.equal(after.body.version, 1);
    assert.equal(after.body.status, "idle");
  });

  test("sequential turns commit gapless versions", async () => {
    const session = "sequential";
    const versions = [];
    for (let i = 1; i <= 5; i++) {
      const { status, body } = await call(mf, "POST", `/turn?session=${session}&text=m${i}&delay=0`);
      assert.equal(status, 200, JSON.stringify(body));
      versions.push(body.version);
    }
    assert.deepEqual(versions, [1, 2, 3, 4, 5]);
    const { status, body } = await call(mf, "GET", `/messages?session=${session}`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.version, 5);
    assert.deepEqual(body.messages, [1, 2, 3, 4, 5].map((i) => ({ text: `m${i}` })));
    const messageVersions = body.history.filter((event) => event.type === "message").map((event) => event.version);
    assert.deepEqual(messageVersions, [1, 2, 3, 4, 5]);
  });

  test("a message larger than 128 KiB is chunked: no stored value exceeds the KV-backed limit", async () => {
    const session = "large";
    const pad = 300_000;
    const turn = await call(mf, "POST", `/turn?session=${session}&text=big&delay=0&pad=${pad}`);
    assert.equal(turn.status, 200, JSON.stringify(turn.body).slice(0, 500));
    const { status, body } = await call(mf, "GET", `/messages?session=${session}`);
    assert.equal(status, 200, JSON.stringify(body).slice(0, 500));
    assert.equal(body.messages.length, 1);
    assert.equal(body.messages[0].pad, "x".repeat(pad), "the message reads back whole");
    const largest = await call(mf, "GET", `/largest-value?session=${session}`);
    assert.equal(largest.status, 200, JSON.stringify(largest.body));
    assert.ok(largest.body.bytes > 100_000, `the largest value holds ${largest.body.bytes} bytes: the record was chunked, not tiny`);
    assert.ok(largest.body.bytes <= 128 * 1024, `a stored value of ${largest.body.bytes} bytes exceeds 128 KiB`);
  });

  test("two stores over one ctx.storage exclude each other like two stores on one backend", async () => {
    const { status, body } = await call(mf, "GET", "/two-stores?session=shared");
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.refused, { name: "ConcurrencyError", code: "CONCURRENT_INVOCATION", holder: "store-a" });
    assert.equal(body.committedA, 1);
    assert.deepEqual(body.seenByB, [{ text: "from a" }], "the second store begins from the first one's commit");
    assert.equal(body.committedB, 2);
    assert.deepEqual(body.messages, [{ text: "from a" }, { text: "from b" }]);
  });

  for (const backend of ["kv", "sqlite"]) {
    test(`the history model in a Durable Object (${backend === "kv" ? "KV-backed" : "SQLite-backed"} storage): every version read back every way matches what was committed`, async () => {
      const { status, body } = await call(mf, "POST", `/history-model?backend=${backend}`, { trials: 8 });
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.error, undefined, body.error);
      assert.equal(body.trials, 8);
    });
  }

  for (const backend of ["kv", "sqlite"]) {
    for (const plain of [false, true]) {
      const what = `${backend === "kv" ? "KV-backed" : "SQLite-backed"} storage${plain ? ", a storage-like object without transaction()" : ""}`;
      test(`durableObjectKv within one request (racing promise chains, record layout): ${what}`, async () => {
        const { status, body: r } = await call(mf, "GET", `/kv-check?backend=${backend}&plain=${plain ? 1 : 0}`);
        assert.equal(status, 200, JSON.stringify(r));
        assert.deepEqual(r.capabilities, { atomic: true, maxValueBytes: 131072 });
        assert.deepEqual(r.custom, { atomic: true, maxValueBytes: 1000 });
        assert.equal(r.missing, null);
        assert.equal(typeof r.v1, "string");
        assert.equal(r.createAgain, null, "expectedVersion null on an existing key fails");
        assert.deepEqual(r.got, { value: [0, 1, 2, 255], version: r.v1, isBytes: true });
        assert.equal(r.wrongVersion, null);
        assert.equal(typeof r.v2, "string");
        assert.notEqual(r.v2, r.v1);
        assert.equal(r.stale, null, "a stale expectedVersion fails");
        assert.deepEqual(r.afterStale, [3], "a failed compare-and-set writes nothing");
        assert.equal(r.deleteStale, false);
        assert.deepEqual(r.afterDeleteStale, [3], "a failed conditional delete deletes nothing");
        assert.equal(r.deleteCurrent, true);
        assert.equal(r.afterDelete, null);
        assert.equal(r.deleteMissing, false);
        assert.equal(r.deleteMissingExpected, false);
        assert.equal(r.casOnMissing, null, "expecting a version of a deleted key fails");
        assert.equal(typeof r.v3, "string");
        assert.equal(typeof r.v4, "string");
        assert.equal(new Set([r.v1, r.v2, r.v3, r.v4]).size, 4, "versions never repeat, even after delete and re-create");
        assert.deepEqual(r.afterUnconditional, [5]);
        assert.equal(r.deleteUnconditional, true);

        assert.equal(r.race.filter((v) => v !== null).length, 1, `one of three racing compare-and-sets wins: ${JSON.stringify(r.race)}`);
        const winner = r.race.findIndex((v) => v !== null) + 1;
        assert.deepEqual(r.raceValue, [winner]);
        assert.equal(r.raceCreate.filter((v) => v !== null).length, 1, "one of two racing creates wins");

        assert.deepEqual(r.allBytes, Array.from({ length: 256 }, (_, i) => i));
        assert.equal(r.bigRoundTrip, true, "a value of exactly maxValueBytes round-trips");
        assert.deepEqual(r.view, { value: [1, 2, 3], bufferBytes: 3 }, "a view stores its own bytes only");

        assert.deepEqual(r.listAll, r.listExpected, "list(prefix): everything under the prefix, ascending");
        assert.ok(r.pages.length >= 3 && r.pages.every((page) => page.length <= 3), `pages of at most 3: ${JSON.stringify(r.pages)}`);
        assert.deepEqual(r.pages.flat(), r.listExpected, "pages are complete, ascending, without repeats");
        assert.ok(r.everything.every((key) => !key.startsWith("\u{10FFFF}")), "list never shows the version records");
        assert.equal(r.storedKeys, 2 * r.everything.length, "each record is its bytes plus its version");
      });
    }
  }

  test("durableObjectKv: heads another program rewrote (no version, not bytes) are CorruptRecordError naming the key; list() and sweepExpired() go on", async () => {
    const { status, body: r } = await call(mf, "GET", "/foreign?session=foreign");
    assert.equal(status, 200, JSON.stringify(r));
    for (const id of ["unversioned", "object"]) {
      assert.equal(r.get[id].code, "CORRUPT_RECORD", `${id}: ${JSON.stringify(r.get[id])}`);
      assert.equal(r.open[id].name, "CorruptRecordError", `${id}: ${JSON.stringify(r.open[id])}`);
      assert.equal(r.open[id].key, `h/${id}~`);
    }
    assert.deepEqual(r.listed, ["fine"]);
    assert.equal(r.swept, 0);
    assert.deepEqual(r.fine, ["fine"]);
    assert.deepEqual(r.objectAfter, { some: "object" }, "nothing another program wrote is changed");
    assert.deepEqual([...new Set(r.corrupt)], ["h/object~", "h/unversioned~"], "each walk reports what it left out");
  });

  test("cloudflareKv is refused with UnsafeStoreError unless allowNonAtomic", async () => {
    const { status, body } = await call(mf, "GET", "/cloudflare-kv/refused");
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.name, "UnsafeStoreError", JSON.stringify(body));
    assert.equal(body.isUnsafeStoreError, true, "instanceof UnsafeStoreError");
    assert.equal(body.code, "UNSAFE_STORE");
    assert.match(body.message, /eventual/i);
    assert.match(body.message, /compare-and-set/i);
    assert.match(body.message, /Durable Object/);
    assert.match(body.message, /allowNonAtomic/);
  });

  test("cloudflareKv with allowNonAtomic: true works as a best-effort store", async () => {
    const first = await call(mf, "POST", "/cloudflare-kv/turn?session=kv-one&text=hello");
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body, { version: 1, messages: [{ text: "hello" }], readBackVersion: 1 });
    const second = await call(mf, "POST", "/cloudflare-kv/turn?session=kv-one&text=again");
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.deepEqual(second.body, { version: 2, messages: [{ text: "hello" }, { text: "again" }], readBackVersion: 2 });
  });

  test("sessions survive a miniflare restart with persistence on", async () => {
    const session = "durable";
    for (const text of ["before-1", "before-2"]) {
      const { status, body } = await call(mf, "POST", `/turn?session=${session}&text=${text}&delay=0`);
      assert.equal(status, 200, JSON.stringify(body));
    }
    const before = await call(mf, "GET", `/messages?session=${session}`);
    assert.equal(before.status, 200, JSON.stringify(before.body));
    const kvBefore = await call(mf, "POST", "/cloudflare-kv/turn?session=kv-restart&text=before");
    assert.equal(kvBefore.status, 200, JSON.stringify(kvBefore.body));

    await mf.dispose();
    mf = startWorker(worker.main, persist);
    await mf.ready;

    const restarted = await call(mf, "GET", `/messages?session=${session}`);
    assert.equal(restarted.status, 200, JSON.stringify(restarted.body));
    assert.deepEqual(restarted.body, before.body);
    assert.deepEqual(restarted.body.messages, [{ text: "before-1" }, { text: "before-2" }]);
    const next = await call(mf, "POST", `/turn?session=${session}&text=after&delay=0`);
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal(next.body.version, 3, "the next commit continues from the persisted version");
    const kvAfter = await call(mf, "POST", "/cloudflare-kv/turn?session=kv-restart&text=after");
    assert.equal(kvAfter.status, 200, JSON.stringify(kvAfter.body));
    assert.deepEqual(kvAfter.body.messages, [{ text: "before" }, { text: "after" }], "the KV namespace persisted too");
  });

  // Encryption at rest in a Durable Object (../../shared/API.md "Encryption at rest"): the object's
  // whole storage, listed raw inside workerd, holds none of the markers with a key, and every marker
  // without one (the control: the dump would catch a leak); a new store with the key reads it back.
  test("encryption at rest: with encryptionKey no marker reaches Durable Object storage; without, every one does", async () => {
    const { randomBytes } = await import("node:crypto");
    const markers = () => {
      const m = (name) => `${name.toUpperCase()}_${randomBytes(12).toString("hex")}`;
      return { message: m("msg"), messageKey: m("msgkey"), state: m("state"), stateKey: m("statekey"), metadata: m("meta"), reason: m("reason"), payload: m("payload"), live: m("live") };
    };
    const holding = (dump, marker) => dump.filter(([key, text]) => key.includes(marker) || text.includes(marker));
    const run = async (session, M, key) => {
      const { status, body } = await call(mf, "POST", `/encryption?session=${session}`, { markers: M, key });
      assert.equal(status, 200, JSON.stringify(body).slice(0, 2000));
      return body;
    };

    const clear = markers();
    const control = await run("encryption-control", clear, null);
    for (const [name, marker] of Object.entries(clear)) {
      assert.ok(holding([...control.mid, ...control.end], marker).length > 0, `control: marker ${name} is not in the storage dump`);
    }
    assert.ok(holding(control.mid, clear.live).some(([key]) => key.startsWith("t/")), "control: live flushes hold the parts");
    assert.ok(holding(control.end, clear.metadata).some(([key]) => key.startsWith("h/")), "control: the head holds the metadata");
    assert.ok(holding(control.end, clear.state).some(([key]) => key.startsWith("g/")), "control: a segment (its state layer) holds the state");

    const M = markers();
    const sealed = await run("encryption-sealed", M, randomBytes(32).toString("hex"));
    for (const [what, dump] of [["mid-turn", sealed.mid], ["final", sealed.end]]) {
      assert.ok(dump.length > 0, `${what}: the dump is empty`);
      const leaks = Object.entries(M).flatMap(([name, marker]) => holding(dump, marker).map(([key]) => `${name} in ${key}`));
      assert.deepEqual(leaks, [], `${what}: markers stored in the clear`);
    }
    const kinds = (dump) => new Set(dump.map(([key]) => key[0]));
    assert.ok(kinds(sealed.mid).has("t"), "the mid-turn dump holds live flushes");
    for (const kind of "hesg") assert.ok(kinds(sealed.end).has(kind), `the final dump holds ${kind}/ records`);
    const { read, expected } = sealed;
    assert.equal(read.version, expected.version);
    assert.deepEqual(read.messages, expected.messages);
    assert.deepEqual(read.state, expected.state);
    assert.deepEqual(read.interrupt, expected.interrupt);
    assert.deepEqual(read.metadata, expected.metadata);
    assert.deepEqual(read.history, expected.history);
    assert.ok(read.history.some((e) => e.type === "interrupt" && e.reason === expected.interrupt.reason));
  });

  // The adapter contract suite (tests/js/adapters/contract.mjs) against the adapters in workerd.
  // Durable Object storage has no TTL (the store sweeps expired sessions itself); Workers KV's
  // shortest TTL is 60 s, so its expiry is checked through the expiration it records instead.
  adapterContract({ name: "durableObjectKv in workerd (KV-backed)", make: async () => ({ kv: await remoteKv(() => mf, "kv") }), ttl: false });
  adapterContract({ name: "durableObjectKv in workerd (SQLite-backed)", make: async () => ({ kv: await remoteKv(() => mf, "sqlite") }), ttl: false });
  adapterContract({ name: "cloudflareKv in workerd", make: async () => ({ kv: await remoteKv(() => mf, "cloudflare") }), ttl: false, commit: false });

  test("cloudflareKv: ttlMs becomes expirationTtl, raised to Workers KV's 60 s minimum", async () => {
    const { status, body } = await call(mf, "GET", "/cloudflare-kv/ttl");
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.capabilities, { atomic: false, maxValueBytes: 25 * 1024 * 1024, minTtlMs: 60_000 });
    const { short, hour, none } = body.expiresIn;
    // Measured from before the puts; Workers KV keeps whole seconds.
    assert.ok(short >= 59 && short <= 61 + body.elapsed, `a 1 s TTL expires ${short} s after the put`);
    assert.ok(hour >= 3599 && hour <= 3601 + body.elapsed, `a 1 h TTL expires ${hour} s after the put`);
    assert.equal(none, null, "no ttlMs: no expiration");
  });

  test("examples/cloudflare-worker runs in workerd", async () => {
    const { example, config } = await exampleBundle();
    assert.ok(example.inputs.includes("js/entry/workerd.js"), `inputs: ${example.inputs.join(", ")}`);
    // The bindings as wrangler.toml declares them.
    assert.equal(config.main, "src/index.js");
    assert.deepEqual([config.binding, config.className, config.sqlite], ["SESSIONS", "Sessions", true]);
    const exampleMf = await startExample();
    try {
      const wrong = await call(exampleMf, "POST", "/sessions/demo/turn", { msg: "not the field" });
      assert.equal(wrong.status, 400, JSON.stringify(wrong.body));
      assert.equal(wrong.body.error, "INVALID_INPUT");
      const turn = await call(exampleMf, "POST", "/sessions/demo/turn", { message: "hello from the test" });
      assert.equal(turn.status, 200, JSON.stringify(turn.body));
      assert.equal(turn.body.version, 1);
      const read = await call(exampleMf, "GET", "/sessions/demo");
      assert.equal(read.status, 200, JSON.stringify(read.body));
      assert.deepEqual(read.body, {
        id: "demo",
        version: 1,
        status: "idle",
        messages: [
          { role: "user", content: "hello from the test" },
          { role: "assistant", content: "You said: hello from the test" },
        ],
      });
    } finally {
      await exampleMf.dispose();
    }
  });

  // The example opens the session by id on every request (store.open(id) in one store per object);
  // a long conversation must run through that path: every turn commits the next version, and the
  // session ends up with every message once, in order.
  test("examples/cloudflare-worker: 2000 turns on one session, each request opening it by id", { timeout: 300_000 }, async (t) => {
    const TURNS = 2000;
    const exampleMf = await startExample();
    try {
      const started = performance.now();
      for (let i = 1; i <= TURNS; i++) {
        const turn = await call(exampleMf, "POST", "/sessions/long/turn", { message: `turn ${i}` });
        // Checked on every turn (not once at the end) so that the first failing request is the one reported.
        assert.equal(turn.status, 200, `turn ${i}: ${JSON.stringify(turn.body).slice(0, 500)}`);
        assert.equal(turn.body.version, i, `turn ${i} committed version ${turn.body.version}`);
        assert.equal(turn.body.messages.length, 2 * i, `turn ${i} answered ${turn.body.messages.length} messages`);
        assert.deepEqual(turn.body.messages.at(-1), { role: "assistant", content: `You said: turn ${i}` });
      }
      t.diagnostic(`${TURNS} turns in ${((performance.now() - started) / 1000).toFixed(1)} s`);

      const read = await call(exampleMf, "GET", "/sessions/long");
      assert.equal(read.status, 200, JSON.stringify(read.body).slice(0, 500));
      assert.equal(read.body.version, TURNS, "one commit per turn");
      assert.equal(read.body.status, "idle", "the last turn released the session");
      const { messages } = read.body;
      assert.equal(messages.length, 2 * TURNS, "two messages per turn");
      const expected = (i) => [
        { role: "user", content: `turn ${i}` },
        { role: "assistant", content: `You said: turn ${i}` },
      ];
      assert.deepEqual(messages.slice(0, 2), expected(1));
      assert.deepEqual(messages.slice(TURNS, TURNS + 2), expected(TURNS / 2 + 1));
      assert.deepEqual(messages.slice(-2), expected(TURNS));
      // And all of them: each turn's pair once, in turn order.
      assert.deepEqual(messages, Array.from({ length: TURNS }, (_, i) => expected(i + 1)).flat());
    } finally {
      await exampleMf.dispose();
    }
  });
});
