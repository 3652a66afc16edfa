// The Redis part of bench/contention.mjs: N Node processes (bench/contention-worker.mjs), each with its
// own SessionStore.kv(redisKv(client)), contending on one session of a real redis-server.
import { fork } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { createClient } from "redis";
import { SessionStore } from "agent-session";
import { redisKv } from "agent-session/adapters";
import { stored } from "./contention-loop.mjs";

const WORKER = fileURLToPath(new URL("./contention-worker.mjs", import.meta.url));

/** Forks one contender; resolves once it is ready, with its next IPC message as `done`. */
async function spawnContender(config) {
  const child = fork(WORKER, [JSON.stringify(config)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = once(child, "exit");
  const next = () => Promise.race([
    once(child, "message").then(([message]) => message),
    exited.then(([code, signal]) => {
      throw new Error(`contender ${config.label} exited (${code ?? signal}) early`);
    }),
  ]);
  const ready = await next();
  return { child, exited, ready, done: next() };
}

/**
 * Runs one contention round of `contenders` processes on session `id` of the redis-server at `url`
 * (a fresh id per round). Resolves to { records, startAt, endedAt, startVersion, final }.
 */
export async function contendProcesses(url, { id, contenders, turns, warmup, waitMs }) {
  const children = [];
  try {
    // One after another, so that the first creates the session and the others find it.
    for (let i = 1; i <= contenders; i++) children.push(await spawnContender({ url, id, label: `process-${i}`, turns, warmup, waitMs }));
    const startAt = Date.now() + 500;
    for (const c of children) c.child.send({ startAt });
    const results = (await Promise.all(children.map((c) => c.done))).map((message) => message.result);
    const exits = await Promise.all(children.map((c) => c.exited));
    exits.forEach(([code, signal], i) => {
      if (code !== 0) throw new Error(`contender process-${i + 1} exited with ${code ?? signal}`);
    });

    const client = await createClient({ url }).connect();
    const store = await SessionStore.kv(redisKv(client), { owner: "reader" });
    const final = await stored(await store.open(id, { create: false }));
    await store.close();
    await client.quit();
    return {
      records: results.flatMap((r) => r.records),
      startAt,
      endedAt: Math.max(...results.map((r) => r.endedAt)),
      startVersion: children[0].ready.version,
      final,
    };
  } finally {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
  }
}
