// Encryption at rest on IndexedDB in real headless Chromium (../../shared/API.md "Encryption at
// rest"): a session with a marker in every kind of application data (messages, state values and
// keys, metadata, an interrupt reason and payload, live parts followed from a second store, snapshots
// and segments) leaves none of them in the database, read raw (every object store, every value, its
// bytes as text); the same scenario without a key is the control (the same dump then holds every
// marker). A new store with the key reads everything back; a batch copied over another, a wrong key
// and no key at all are CorruptRecordError naming the record and the key id.
//
// Tabs: idb-tab.html (the package and idb-fixture.js), driven through tabs.mjs.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { newMarkers } from "../js/_markers.mjs";
import { startBrowser } from "./chromium.mjs";
import { tabHelpers } from "./tabs.mjs";

let chrome;
before(async () => {
  chrome = await startBrowser();
});
after(async () => chrome?.stop());

const { withTabs, openTab, inTab } = tabHelpers(() => chrome, {
  page: "/tests/browser/idb-tab.html",
  database: "agent-session-encryption",
});

/** What a store with the key read back (`readBack` in the tab) is what the scenario wrote. */
function assertReadBack(read, expected) {
  assert.equal(read.version, expected.version);
  assert.equal(read.status, "interrupted");
  assert.deepEqual(read.messages, expected.messages);
  assert.deepEqual(read.agentMessages, expected.agentMessages);
  assert.deepEqual(read.state, expected.state);
  assert.deepEqual(read.interrupt, expected.interrupt);
  assert.deepEqual(read.metadata, expected.metadata);
  assert.deepEqual(read.history, expected.history);
  assert.ok(read.history.some((e) => e.type === "interrupt" && e.reason === expected.interrupt.reason));
  assert.deepEqual(read.at7, expected.messages.slice(0, 7));
}

// In the tab: ctx.rawDump(database) reads every object store of the database with the raw API and
// gives [{ store, key, text }], each value serialized with its bytes as latin1 text.
const installDump = ({ ctx }) => {
  const latin1 = (bytes) => {
    let out = "";
    for (let i = 0; i < bytes.length; i += 0x8000) out += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return out;
  };
  const ser = (value) => {
    if (value instanceof Uint8Array) return { bytes: latin1(value) };
    if (value instanceof ArrayBuffer) return { bytes: latin1(new Uint8Array(value)) };
    if (ArrayBuffer.isView(value)) return { bytes: latin1(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) };
    if (Array.isArray(value)) return value.map(ser);
    if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, ser(v)]));
    return value;
  };
  ctx.rawDump = async (database) => {
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open(database);
      request.onupgradeneeded = () => request.transaction.abort();
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    try {
      const names = [...db.objectStoreNames];
      if (names.length === 0) return [];
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(names, "readonly");
        const reads = names.map((name) => [name, tx.objectStore(name).getAllKeys(), tx.objectStore(name).getAll()]);
        tx.oncomplete = () =>
          resolve(
            reads.flatMap(([store, keys, values]) =>
              keys.result.map((key, i) => ({ store, key: String(key), text: JSON.stringify(ser(values.result[i])) })),
            ),
          );
        tx.onerror = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  };
  return true;
};

// In the tab: the scenario, written through `writer` with a live turn followed from `follower`
// (two stores, two owners, one database). ctx.key is the key (or undefined for the control).
const scenario = async ({ lib, ctx }, { database, M, useKey }) => {
  ctx.key = useKey ? await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]) : undefined;
  const options = { database, snapshotEvery: 5, ...(useKey ? { encryptionKey: ctx.key } : {}) };
  const writer = await lib.SessionStore.indexedDb({ ...options, owner: "writer" });
  const follower = await lib.SessionStore.indexedDb({ ...options, owner: "follower" });
  const id = "leak/idb";
  const metadata = { owner: M.metadata, tags: [M.metadata, 1] };
  const session = await writer.open(id, { metadata });
  const messages = [];
  for (let i = 1; i <= 12; i++) {
    await session.invoke((inv) => {
      const message = { role: "user", content: `${M.message}:${i}`, [M.messageKey]: i };
      inv.appendMessage(message);
      messages.push(message);
      inv.setState("notes", { text: `${M.state}:${i}` });
      inv.setState(M.stateKey, [M.state, i]);
      if (i % 4 === 0) inv.appendMessage({ content: `${M.message}:agent:${i}` }, { agent: M.agent });
    });
  }
  const watched = await follower.open(id, { create: false });
  const controller = new AbortController();
  const seen = [];
  const following = (async () => {
    for await (const event of watched.follow({ signal: controller.signal })) {
      seen.push(JSON.parse(JSON.stringify(event)));
      if (event.type === "end") break;
    }
  })();
  const inv = await session.begin();
  const parts = [];
  for (let k = 0; k < 6; k++) {
    const part = k % 2 === 0 ? { delta: `${M.live}:${k}` } : [`${M.live}:${k}`, k];
    parts.push(part);
    inv.emit(part);
  }
  await inv.flush();
  const deadline = Date.now() + 20000; // liveness only
  while (seen.filter((e) => e.type === "part").length < parts.length) {
    if (Date.now() > deadline) throw new Error(`the follower saw ${JSON.stringify(seen)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const mid = await ctx.rawDump(database);
  const final = { role: "assistant", content: `${M.message}:final` };
  inv.appendMessage(final);
  messages.push(final);
  const interrupt = { reason: `${M.reason} needs approval`, payload: { question: M.payload, n: 7 } };
  const version = await inv.interrupt(interrupt.reason, interrupt.payload);
  await following;
  controller.abort();
  const history = JSON.parse(JSON.stringify(await session.history()));
  await writer.close();
  await follower.close();
  const end = await ctx.rawDump(database);
  return {
    mid,
    end,
    seen,
    parts,
    invocation: inv.id,
    expected: {
      version,
      messages,
      agentMessages: [4, 8, 12].map((i) => ({ content: `${M.message}:agent:${i}` })),
      state: { notes: { text: `${M.state}:12` }, [M.stateKey]: [M.state, 12] },
      metadata,
      interrupt,
      history,
    },
  };
};

// In the tab: what a new store with ctx.key reads of the session.
const readBack = async ({ lib, ctx }, { database, agent }) => {
  const store = await lib.SessionStore.indexedDb({ database, owner: "reader", encryptionKey: ctx.key });
  try {
    const session = await store.open("leak/idb", { create: false });
    const view = await session.at(7);
    return JSON.parse(
      JSON.stringify({
        version: session.version,
        status: session.status,
        messages: session.messages(),
        agentMessages: session.messages({ agent }),
        state: session.state(),
        interrupt: session.pendingInterrupt(),
        metadata: (await session.export()).metadata,
        history: await session.history(),
        at7: view.messages(),
      }),
    );
  } finally {
    await store.close();
  }
};

const holding = (dump, marker) => dump.filter(({ key, text }) => text.includes(marker) || key.includes(marker));
const kindsHolding = (dump, marker) => [...new Set(holding(dump, marker).map(({ key }) => key[0]))].sort();

test("IndexedDB control: without a key the raw database holds every marker (so the dump would catch a leak)", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const page = await openTab(tabs, "tab");
    await inTab(page, installDump);
    const M = newMarkers("CLEAR");
    const { mid, end } = await inTab(page, scenario, { database, M, useKey: false });
    const dump = [...mid, ...end];
    for (const [name, marker] of Object.entries(M)) assert.ok(holding(dump, marker).length > 0, `marker ${name} not in the dump`);
    assert.ok(kindsHolding(dump, M.message).includes("e"), "batches hold messages");
    assert.ok(kindsHolding(dump, M.message).includes("g"), "segments hold messages");
    assert.ok(kindsHolding(dump, M.state).includes("g"), "segments hold state values (their state layers)");
    assert.ok(kindsHolding(mid, M.live).includes("t"), "live flushes hold parts");
    for (const marker of [M.metadata, M.reason, M.payload]) assert.ok(kindsHolding(end, marker).includes("h"), "the head holds metadata and the interrupt");
  });
});

test("IndexedDB with a key: no marker in the raw database, mid-turn or after; a new store with the key reads it all back", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const page = await openTab(tabs, "tab");
    await inTab(page, installDump);
    const M = newMarkers("SEALED");
    const { mid, end, seen, parts, invocation, expected } = await inTab(page, scenario, { database, M, useKey: true });

    // The follower read the parts through its store with the key.
    assert.deepEqual(seen.filter((e) => e.type === "part").map((e) => e.data), parts);
    assert.deepEqual(seen.at(-1), { type: "end", invocation, outcome: "interrupted", version: expected.version, status: "interrupted" });

    for (const [what, dump] of [["mid-turn", mid], ["final", end]]) {
      assert.ok(dump.length > 0, `${what}: the dump is empty`);
      const leaks = Object.entries(M).flatMap(([name, marker]) => holding(dump, marker).map(({ store, key }) => `${name} in ${store}/${key}`));
      assert.deepEqual(leaks, [], `${what}: markers stored in the clear`);
    }
    const kinds = (dump) => [...new Set(dump.map(({ key }) => key[0]))].sort().join("");
    assert.ok(kinds(mid).includes("t"), `the mid-turn dump holds live flushes: ${kinds(mid)}`);
    for (const kind of "hesg") assert.ok(kinds(end).includes(kind), `the final dump holds ${kind}/ records: ${kinds(end)}`);

    assertReadBack(await inTab(page, readBack, { database, agent: M.agent }), expected);
  });
});

test("IndexedDB with a key: a copied batch, a wrong key, an unknown key id and no key are CorruptRecordError naming the record and the key id", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const page = await openTab(tabs, "tab");
    const result = await inTab(page, async ({ lib, fx }, { database }) => {
      const gen = () => crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
      const key = await gen();
      const store = await lib.SessionStore.indexedDb({ database, encryptionKey: key, snapshotEvery: 1000 });
      for (const id of ["a", "b"]) {
        const session = await store.open(id, { metadata: { who: id } });
        for (let i = 1; i <= 3; i++) await session.invoke((inv) => inv.appendMessage({ id, i }));
      }
      await store.close();
      const raw = await fx.rawDump(database);
      const batches = (id) => Object.keys(raw).filter((k) => k.startsWith(fx.batchPrefix(id))).sort();
      const read = async (options, id) => {
        const reader = await lib.SessionStore.indexedDb({ database, ...options });
        try {
          const session = await reader.open(id, { create: false });
          await session.history();
          return { opened: session.messages() };
        } catch (error) {
          return { error: fx.describeError(error), isCorrupt: error instanceof lib.CorruptRecordError };
        } finally {
          await reader.close();
        }
      };
      const out = { batchesA: batches("a"), batchesB: batches("b") };
      out.wrongKey = await read({ encryptionKey: await gen() }, "a");
      out.unknownId = await read({ encryptionKey: { current: "k2", keys: { k2: await gen() } } }, "a");
      out.noKey = await read({}, "a");
      // Copy batch 1 of a over batch 2 of a, and over batch 1 of b: the raw value object, as other
      // code of the origin could.
      const rawValue = async (k) => {
        const db = await new Promise((resolve, reject) => {
          const request = indexedDB.open(database);
          request.onsuccess = () => resolve(request.result);
          request.onerror = () => reject(request.error);
        });
        try {
          return await new Promise((resolve, reject) => {
            const request = db.transaction("records").objectStore("records").get(k);
            request.onsuccess = () => resolve(request.result);
            request.onerror = () => reject(request.error);
          });
        } finally {
          db.close();
        }
      };
      const a1 = await rawValue(out.batchesA[0]);
      await fx.rawPut(database, out.batchesA[1], a1);
      await fx.rawPut(database, out.batchesB[0], a1);
      out.copiedWithin = await read({ encryptionKey: key }, "a");
      out.copiedAcross = await read({ encryptionKey: key }, "b");
      return out;
    }, { database });

    assert.equal(result.batchesA.length, 3);
    assert.equal(result.batchesB.length, 3);
    const check = (outcome, key, what) => {
      assert.ok(outcome.error, `${what}: read without an error: ${JSON.stringify(outcome)}`);
      assert.equal(outcome.isCorrupt, true, `${what}: ${JSON.stringify(outcome.error)}`);
      assert.equal(outcome.error.code, "CORRUPT_RECORD", what);
      assert.equal(outcome.error.key, key, `${what}: ${outcome.error.message}`);
      assert.ok(outcome.error.message.includes('"default"'), `${what}: the message names key id "default": ${outcome.error.message}`);
    };
    check(result.wrongKey, "h/a~", "a wrong key");
    check(result.unknownId, "h/a~", "an unknown key id");
    check(result.noKey, "h/a~", "no key");
    check(result.copiedWithin, result.batchesA[1], "a batch copied over another of the session");
    check(result.copiedAcross, result.batchesB[0], "a batch copied to another session");
  });
});

// A dedicated module worker (idb-worker.js, started from the tab by idb-fixture.js's spawn) runs the
// scenario above on IndexedDB, with a key the window generated and posted to it (a non-extractable
// CryptoKey crosses postMessage by structured clone); the same worker first runs the scenario without
// a key on another database (the control). Then the worker is terminated and the window dumps both
// databases raw and reads the session back with its own copy of the key.
test("IndexedDB in a dedicated worker with a key posted from the window: no marker in the raw database (the worker's control without a key holds them all); the window reads it back with the same key", { timeout: 120000 }, async (t) => {
  await withTabs(t, async (tabs, database) => {
    const page = await openTab(tabs, "tab");
    await inTab(page, installDump);
    const M = newMarkers("WORKER");
    const MC = newMarkers("WORKERCLEAR");
    const clearDatabase = `${database}-clear`;
    // In the worker: the scenario, with ctx.key pinned to the posted key (the scenario's own
    // assignment of a key it generates is ignored), and what the worker got.
    const sealedInWorker = async (env, arg) => {
      const posted = arg.key;
      Object.defineProperty(env.ctx, "key", { configurable: true, get: () => posted, set: () => {} });
      const scenario = (0, eval)(`(${arg.scenarioSource})`);
      const result = await scenario(env, arg);
      return { ...result, realm: env.realm, posted: { isCryptoKey: posted instanceof CryptoKey, algorithm: posted.algorithm.name, extractable: posted.extractable, usages: posted.usages } };
    };
    const ran = await inTab(page, async ({ fx, ctx }, { database, clearDatabase, M, MC, sources }) => {
      ctx.key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
      const worker = await fx.spawn("dedicated", "encrypting worker");
      let control;
      let sealed;
      try {
        await worker.run(sources.installDump, null);
        control = await worker.run(sources.scenario, { database: clearDatabase, M: MC, useKey: false });
        sealed = await worker.run(sources.sealedInWorker, { database, M, useKey: true, key: ctx.key, scenarioSource: sources.scenario });
      } finally {
        worker.terminate();
      }
      return {
        control: { mid: control.mid, end: control.end, window: await ctx.rawDump(clearDatabase) },
        sealed: { ...sealed, window: await ctx.rawDump(database) },
      };
    }, { database, clearDatabase, M, MC, sources: { installDump: installDump.toString(), scenario: scenario.toString(), sealedInWorker: sealedInWorker.toString() } });

    // The control, run in the worker without a key: the window's dump holds every marker of the
    // durable records, and the worker's dumps hold them all.
    const controlAll = [...ran.control.mid, ...ran.control.end, ...ran.control.window];
    for (const [name, marker] of Object.entries(MC)) assert.ok(holding(controlAll, marker).length > 0, `control: marker ${name} not in the dump`);
    for (const name of ["message", "messageKey", "state", "stateKey", "metadata", "reason", "payload", "agent"]) {
      assert.ok(holding(ran.control.window, MC[name]).length > 0, `control: the window's raw dump holds ${name}`);
    }
    assert.ok(kindsHolding(ran.control.mid, MC.live).includes("t"), "control: live flushes hold parts");

    const { sealed } = ran;
    assert.equal(sealed.realm, "dedicated worker");
    assert.deepEqual(sealed.posted, { isCryptoKey: true, algorithm: "AES-GCM", extractable: false, usages: ["encrypt", "decrypt"] });
    // The follower (a second store in the worker) read the parts through the key.
    assert.deepEqual(sealed.seen.filter((e) => e.type === "part").map((e) => e.data), sealed.parts);
    assert.deepEqual(sealed.seen.at(-1), { type: "end", invocation: sealed.invocation, outcome: "interrupted", version: sealed.expected.version, status: "interrupted" });
    for (const [what, dump] of [["the worker's mid-turn dump", sealed.mid], ["the worker's final dump", sealed.end], ["the window's dump", sealed.window]]) {
      assert.ok(dump.length > 0, `${what} is empty`);
      const leaks = Object.entries(M).flatMap(([name, marker]) => holding(dump, marker).map(({ store, key }) => `${name} in ${store}/${key}`));
      assert.deepEqual(leaks, [], `${what}: markers stored in the clear`);
    }
    const kinds = (dump) => [...new Set(dump.map(({ key }) => key[0]))].sort().join("");
    assert.ok(kinds(sealed.mid).includes("t"), `the mid-turn dump holds live flushes: ${kinds(sealed.mid)}`);
    for (const kind of "hesg") assert.ok(kinds(sealed.window).includes(kind), `the window's dump holds ${kind}/ records: ${kinds(sealed.window)}`);

    // The window, with the key it posted, reads what the worker wrote.
    const read = await inTab(page, readBack, { database, agent: M.agent });
    assertReadBack(read, sealed.expected);
    assert.equal(read.messages[0].content, `${M.message}:1`);

    // The window without the key: CorruptRecordError naming the head and key id "default".
    const noKey = await inTab(page, async ({ lib, fx }, { database }) => {
      const store = await lib.SessionStore.indexedDb({ database, owner: "no key" });
      try {
        const session = await store.open("leak/idb", { create: false });
        await session.history();
        return { opened: session.messages() };
      } catch (error) {
        return { error: fx.describeError(error), isCorrupt: error instanceof lib.CorruptRecordError };
      } finally {
        await store.close();
      }
    }, { database });
    assert.ok(noKey.error, `read without the key: ${JSON.stringify(noKey)}`);
    assert.equal(noKey.isCorrupt, true, JSON.stringify(noKey.error));
    assert.equal(noKey.error.code, "CORRUPT_RECORD");
    assert.equal(noKey.error.key, "h/leak%2Fidb~", noKey.error.message);
    assert.ok(noKey.error.message.includes('"default"'), noKey.error.message);
  });
});
