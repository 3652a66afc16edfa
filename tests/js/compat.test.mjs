// Stored data written by earlier builds stays readable and writable: each tests/compat/*.json holds the
// records an earlier build (the commit in its name) left in a KV store after a fixed script of
// sessions (tests/compat/write-fixture.mjs: messages and state of two agents, deletes, interrupt and
// resume, close, fork, idle TTL, metadata, snapshots, an odd id; and where that build had them,
// compaction, prune and encryption at rest), with what that build read back. This build, over the same
// records, must read the same (version, status, messages, state, history), then take a turn on each
// session that is not closed (resuming the interrupted one), read it back from a fresh store, show
// every kept version with at(), and export it into a store that imports it the same.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";
import { SessionStore } from "agent-session";
import { memoryKv } from "agent-session/adapters";

const dir = new URL("../compat/", import.meta.url);
const plain = (value) => JSON.parse(JSON.stringify(value));

/** The reads write-fixture.mjs records, the same shape. */
async function readsOf(session) {
  const history = await session.history();
  return plain({
    version: session.version,
    status: session.status,
    messages: [session.messages(), session.messages({ agent: "b" })],
    state: [session.state(), session.state({ agent: "b" })],
    history: history.map(({ version, type, agent, key, reason, data, before }) => ({ version, type, agent, key, reason, data, before })),
  });
}

for (const file of readdirSync(dir).filter((name) => name.endsWith(".json")).sort()) {
  test(`stored data written by ${file.replace(/\.json$/, "")} reads the same and takes new turns`, async () => {
    const fixture = JSON.parse(readFileSync(new URL(file, dir), "utf8"));
    for (const [kind, stored] of Object.entries(fixture.stores)) {
      const where = (id) => `${file}, ${kind} store, session ${JSON.stringify(id)}`;
      const kv = memoryKv();
      for (const [key, value] of stored.entries) await kv.put(key, new Uint8Array(Buffer.from(value, "base64")));
      const encryptionKey = stored.key === null ? undefined : await crypto.subtle.importKey("raw", Buffer.from(stored.key, "base64"), "AES-GCM", false, ["encrypt", "decrypt"]);
      let t = fixture.now + 1000;
      const options = { now: () => t, ...(encryptionKey === undefined ? {} : { encryptionKey }) };
      const store = await SessionStore.kv(kv, options);
      const listed = [];
      for (let cursor; ; ) {
        const page = await store.list(cursor === undefined ? {} : { cursor });
        listed.push(...page.sessions.map((info) => info.id));
        if ((cursor = page.cursor) === undefined) break;
      }
      assert.deepEqual(listed.sort(), Object.keys(stored.reads).sort(), `${file}, ${kind}: list()`);
      for (const [id, expected] of Object.entries(stored.reads)) {
        const session = await store.open(id, { create: false });
        assert.deepEqual(await readsOf(session), expected, `${where(id)}: what the earlier build read`);
        if (expected.status === "closed") continue;
        t += 1000;
        const inv = await session.begin(expected.status === "interrupted" ? { resume: { answer: "yes" } } : {});
        inv.appendMessage({ role: "user", text: "after the upgrade" });
        inv.setState("upgraded", { from: file });
        const version = await inv.commit();
        assert.equal(version, expected.version + 1, `${where(id)}: the next version`);
        const fresh = await (await SessionStore.kv(kv, options)).open(id, { create: false });
        assert.deepEqual(plain(fresh.messages()), [...expected.messages[0], { role: "user", text: "after the upgrade" }], `${where(id)}: messages after a turn`);
        assert.deepEqual(plain(fresh.state()), { ...expected.state[0], upgraded: { from: file } }, `${where(id)}: state after a turn`);
        assert.deepEqual(plain(fresh.messages({ agent: "b" })), expected.messages[1], `${where(id)}: the other agent's messages`);
        assert.equal(fresh.status, "idle", `${where(id)}: status after a turn`);
        const oldest = expected.history[0]?.version ?? 0;
        for (let v = oldest; v <= version; v++) {
          const view = await fresh.at(v);
          if (v === expected.version) assert.deepEqual(plain(view.messages()), expected.messages[0], `${where(id)}: at(${v})`);
        }
        const copy = await (await SessionStore.memory()).import(plain(await fresh.export()));
        assert.deepEqual(plain(copy.messages()), plain(fresh.messages()), `${where(id)}: export -> import`);
        assert.deepEqual(plain(copy.state({ agent: "b" })), plain(fresh.state({ agent: "b" })), `${where(id)}: export -> import (agent b)`);
      }
    }
  });
}
