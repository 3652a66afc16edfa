// Starts a real redis-server (the Debian package, /usr/bin/redis-server) on 127.0.0.1 for a test
// file, and stops it by its pid. Not a test file (node --test picks only *.test.mjs).
import { spawn, execFileSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REDIS_SERVER = process.env.REDIS_SERVER ?? "/usr/bin/redis-server";
export const REDIS_CLI = process.env.REDIS_CLI ?? "/usr/bin/redis-cli";

/** A TCP port that was free a moment ago. */
export async function freePort() {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/** Resolves when something answers PING with PONG on the port, rejects after `timeoutMs`. */
export async function waitForPong(port, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pong = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      let data = "";
      socket.setTimeout(500, () => socket.destroy());
      socket.on("connect", () => socket.write("PING\r\n"));
      socket.on("data", (chunk) => {
        data += chunk;
        if (data.includes("\r\n")) socket.end();
      });
      socket.on("close", () => resolve(data.startsWith("+PONG")));
      socket.on("error", () => {});
    });
    if (pong) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A redis-server on a free port of 127.0.0.1, without persistence. `stop()` kills it by its pid
 * and waits for it to exit. `extraArgs` go on the command line (e.g. cluster mode).
 */
export async function startRedis(extraArgs = []) {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing (scripts/setup installs redis-server)`);
  const dir = mkdtempSync(join(tmpdir(), "agent-session-redis-"));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = spawn(
      REDIS_SERVER,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, ...extraArgs],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const exited = once(child, "exit");
    try {
      await Promise.race([
        waitForPong(port),
        exited.then(([code]) => {
          throw new Error(`redis-server exited with ${code}: ${output}`);
        }),
      ]);
    } catch (error) {
      child.kill("SIGKILL");
      // The port may have been taken between freePort() and the bind: try another.
      if (attempt < 3) continue;
      throw error;
    }
    return {
      port,
      pid: child.pid,
      url: `redis://127.0.0.1:${port}`,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          process.kill(child.pid, "SIGTERM");
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

/**
 * A Redis Cluster of `masters` redis-server processes (no replicas), created with
 * `redis-cli --cluster create`. Resolves when every slot is served. `stop()` kills them all.
 */
export async function startRedisCluster(masters = 3) {
  const nodes = [];
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(await startRedis(["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${i}.conf`]));
    }
    execFileSync(
      REDIS_CLI,
      ["--cluster", "create", ...nodes.map((node) => `127.0.0.1:${node.port}`), "--cluster-replicas", "0", "--cluster-yes"],
      { stdio: "pipe", timeout: 30_000 },
    );
    const deadline = Date.now() + 20_000;
    for (;;) {
      const info = nodes.map((node) =>
        execFileSync(REDIS_CLI, ["-p", String(node.port), "cluster", "info"], { encoding: "utf8" }),
      );
      if (info.every((text) => text.includes("cluster_state:ok"))) break;
      if (Date.now() > deadline) throw new Error(`cluster did not become ok:\n${info.join("\n")}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await Promise.all(nodes.map((node) => node.stop()));
    throw error;
  }
  return {
    nodes,
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()));
    },
  };
}
