// Real backends for the Node model tests that run on them (history-model, lease-model): a redis-server
// started before the file's tests and stopped after them, and Deno KV files (@deno/kv) in a temporary
// directory removed after them. Not a test file.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { openKv } from "@deno/kv";
import { createClient } from "redis";
import { denoKv, redisKv } from "agent-session/adapters";
import { startRedis } from "./adapters/_redis-server.mjs";

/** Registers the file's before/after hooks; `redis(n)` and `deno(n, file)` give n HostKvs, each over a
 * connection of its own (n processes on one server, or on one database file). */
export function realKvs(name) {
  let server;
  const clients = [];
  const dir = mkdtempSync(join(tmpdir(), `agent-session-${name}-`));
  const dbs = [];
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    for (const client of clients) await client.quit();
    for (const db of dbs) db.close();
    rmSync(dir, { recursive: true, force: true });
    await server?.stop();
  });
  return {
    async redis(n) {
      const kvs = [];
      for (let i = 0; i < n; i++) {
        const client = await createClient({ url: server.url }).connect();
        clients.push(client);
        kvs.push(redisKv(client));
      }
      return kvs;
    },
    async deno(n, file) {
      const kvs = [];
      for (let i = 0; i < n; i++) {
        const db = await openKv(join(dir, file));
        dbs.push(db);
        kvs.push(denoKv(db));
      }
      return kvs;
    },
  };
}
