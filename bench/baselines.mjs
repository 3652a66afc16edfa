// The baselines agent-session is measured against, written the way an app would write them by hand.
// Each is a factory (database name) -> { writer(id), load(id), close() }, the shape bench/idb.mjs drives:
//   writer(id).fill(messages)   pre-fills the session (untimed)
//   writer(id).turn(messages)   one turn; resolves to [first phase ms, second phase ms]
//   load(id)                    a new connection reading every message; resolves to
//                               { count, connected: performance.now() once connected, close }
import * as keyval from "/node_modules/idb-keyval/dist/index.js";
import { openDB } from "/node_modules/idb/build/index.js";
import Dexie from "/node_modules/dexie/dist/dexie.mjs";

const LEASE_MS = 30_000;
// agent-session's default; Chromium's own default for a transaction without options is not specified.
const RELAXED = { durability: "relaxed" };

/** (a) idb-keyval: the whole session is one value, read and rewritten on every turn (get, push, set). */
export async function idbKeyval(database) {
  const store = keyval.createStore(database, "sessions");
  return {
    async writer(id) {
      return {
        // One set of the whole array: the record it leaves is the one 100-message turns would leave.
        fill: (messages) => keyval.set(id, messages, store),
        async turn(messages) {
          const t0 = performance.now();
          const all = (await keyval.get(id, store)) ?? [];
          const t1 = performance.now();
          all.push(...messages);
          await keyval.set(id, all, store);
          return [t1 - t0, performance.now() - t1];
        },
      };
    },
    async load(id) {
      const reader = keyval.createStore(database, "sessions");
      // idb-keyval connects on first use and never closes; an empty transaction reaches the connection.
      const db = await reader("readonly", (s) => s.transaction.db);
      const connected = performance.now();
      const all = await keyval.get(id, reader);
      return { count: all.length, connected, close: () => db.close() };
    },
    close: () => store("readonly", (s) => s.transaction.db.close()),
  };
}

function openProtocol(database) {
  return openDB(database, 1, {
    upgrade(db) {
      db.createObjectStore("heads"); // key: session id
      db.createObjectStore("batches"); // key: [session id, version]
    },
  });
}

/**
 * (b) idb, the same lease + append protocol as agent-session, by hand: a head
 * { version, token, lease: { owner, token, expiresAt } | null } per session and one append-only batch
 * record per commit. begin = one readwrite transaction (read head, check lease, write head with lease);
 * commit = one readwrite transaction (check the token in the head, add the batch, write head version + 1
 * with no lease). No snapshots, no encoding, no validation: structured clone does all of it.
 */
export async function idbProtocol(database) {
  const db = await openProtocol(database);
  const owner = `bench-${crypto.randomUUID()}`;
  return {
    async writer(id) {
      let version = 0; // the writer's cached view: one writer per session here, so it is never stale
      const writer = {
        async begin() {
          const tx = db.transaction("heads", "readwrite", RELAXED);
          const head = (await tx.store.get(id)) ?? { version: 0, token: 0, lease: null };
          const now = Date.now();
          if (head.lease && head.lease.owner !== owner && head.lease.expiresAt > now) {
            tx.abort();
            await tx.done.catch(() => {});
            throw new Error(`session ${id} is held by ${head.lease.owner}`);
          }
          // A real app would read the batches it has not seen here; one writer per session never needs to.
          if (head.version !== version) throw new Error(`session ${id} changed under its only writer`);
          const token = head.token + 1;
          await Promise.all([tx.store.put({ ...head, token, lease: { owner, token, expiresAt: now + LEASE_MS } }, id), tx.done]);
          return token;
        },
        async commit(token, messages) {
          const tx = db.transaction(["heads", "batches"], "readwrite", RELAXED);
          const heads = tx.objectStore("heads");
          const head = await heads.get(id);
          if (head?.lease?.token !== token) {
            tx.abort();
            await tx.done.catch(() => {});
            throw new Error(`lease on ${id} lost`);
          }
          const next = head.version + 1;
          await Promise.all([
            tx.objectStore("batches").add({ token, at: Date.now(), messages }, [id, next]),
            heads.put({ version: next, token: head.token, lease: null, updatedAt: Date.now() }, id),
            tx.done,
          ]);
          version = next;
        },
        async fill(messages) {
          for (let i = 0; i < messages.length; i += 100) await writer.commit(await writer.begin(), messages.slice(i, i + 100));
        },
        async turn(messages) {
          const t0 = performance.now();
          const token = await writer.begin();
          const t1 = performance.now();
          await writer.commit(token, messages);
          return [t1 - t0, performance.now() - t1];
        },
      };
      return writer;
    },
    async load(id) {
      const reader = await openProtocol(database);
      const connected = performance.now();
      const tx = reader.transaction(["heads", "batches"], "readonly");
      const head = await tx.objectStore("heads").get(id);
      const batches = await tx.objectStore("batches").getAll(IDBKeyRange.bound([id, 1], [id, head.version]));
      const messages = batches.flatMap((batch) => batch.messages);
      return { count: messages.length, connected, close: () => reader.close() };
    },
    close: () => db.close(),
  };
}

/**
 * (c) Dexie, the same lease + append protocol as (b), written the way a Dexie user writes it: a table of
 * heads and a table of batches, both with out-of-line keys (session id; [session id, version]), begin and
 * commit each one db.transaction("rw", ...) in which throwing aborts, the cold load a new Dexie instance
 * reading the head and the batches [id, 1]..[id, version] in one read transaction.
 */
export async function dexieProtocol(database) {
  const db = openDexie(database);
  await db.open();
  const owner = `bench-${crypto.randomUUID()}`;
  return {
    async writer(id) {
      let version = 0; // the writer's cached view, as in (b)
      const writer = {
        begin: () =>
          db.transaction("rw", db.heads, async () => {
            const head = (await db.heads.get(id)) ?? { version: 0, token: 0, lease: null };
            const now = Date.now();
            if (head.lease && head.lease.owner !== owner && head.lease.expiresAt > now) throw new Error(`session ${id} is held by ${head.lease.owner}`);
            if (head.version !== version) throw new Error(`session ${id} changed under its only writer`);
            const token = head.token + 1;
            await db.heads.put({ ...head, token, lease: { owner, token, expiresAt: now + LEASE_MS } }, id);
            return token;
          }),
        async commit(token, messages) {
          version = await db.transaction("rw", db.heads, db.batches, async () => {
            const head = await db.heads.get(id);
            if (head?.lease?.token !== token) throw new Error(`lease on ${id} lost`);
            const next = head.version + 1;
            await db.batches.add({ token, at: Date.now(), messages }, [id, next]);
            await db.heads.put({ version: next, token: head.token, lease: null, updatedAt: Date.now() }, id);
            return next;
          });
        },
        async fill(messages) {
          for (let i = 0; i < messages.length; i += 100) await writer.commit(await writer.begin(), messages.slice(i, i + 100));
        },
        async turn(messages) {
          const t0 = performance.now();
          const token = await writer.begin();
          const t1 = performance.now();
          await writer.commit(token, messages);
          return [t1 - t0, performance.now() - t1];
        },
      };
      return writer;
    },
    async load(id) {
      const reader = openDexie(database);
      await reader.open(); // Dexie opens on first use; opened here so that connect is timed apart
      const connected = performance.now();
      const messages = await reader.transaction("r", reader.heads, reader.batches, async () => {
        const head = await reader.heads.get(id);
        const batches = await reader.batches.where(":id").between([id, 1], [id, head.version], true, true).toArray();
        return batches.flatMap((batch) => batch.messages);
      });
      return { count: messages.length, connected, close: () => reader.close() };
    },
    close: () => db.close(),
  };
}

function openDexie(database) {
  // Relaxed durability, as agent-session's default and (b)'s RELAXED: Dexie's option for it (Dexie leaves
  // the browser's default otherwise).
  const db = new Dexie(database, { chromeTransactionDurability: "relaxed" });
  db.version(1).stores({ heads: "", batches: "" }); // "": out-of-line primary keys, no indexes
  return db;
}
