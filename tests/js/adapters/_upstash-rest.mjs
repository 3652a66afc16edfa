// A test-only stand-in for Upstash's REST API, over a real redis-server (started by _redis-server.mjs),
// so that @upstash/redis (the real client, unchanged) can be tested here. Not a test file (node --test
// picks only *.test.mjs). The real service is never reached.
//
// What it implements, as Upstash documents its REST API (https://upstash.com/docs/redis/features/restapi)
// and as @upstash/redis 1.39 calls it (HttpClient.request, Pipeline.exec):
// - POST `/` with a JSON array body is one command: ["EVALSHA", sha, 1, key, ...]. Numbers in it are
//   sent to Redis as their decimal text. The reply is `{"result": ...}` (HTTP 200), or `{"error": "..."}`
//   with HTTP 400 when Redis answers an error.
// - POST `/pipeline` (a JSON array of commands) runs them in order, not atomically, and answers an
//   array of `{"result"}` / `{"error"}`, HTTP 200 even when some failed. POST `/multi-exec` runs them
//   in MULTI/EXEC on a connection of its own and answers the same way.
// - `Authorization: Bearer <token>` is checked: 401 with `{"error": "Unauthorized"}` otherwise.
// - Results: integers are JSON numbers, nil is null, arrays are arrays. With the request header
//   `Upstash-Encoding: base64` every bulk string in a result (recursively in arrays) is the base64 of its
//   raw bytes; simple strings ("OK", "QUEUED", a Lua `{ok = ...}`) are left as they are, which is what
//   the client's `decode` expects. Without it, a bulk string is its bytes read as UTF-8.
// - Faults, for tests: `faults.next(path, commands)` (when set) is asked about each request; it may
//   answer `{ refuse: message }` (HTTP 400 `{ error }`, nothing run) or `{ drop: true }` (run, then the
//   connection is closed without an answer: what a client that retries then sends again).
// - A request body larger than `maxRequestBytes` (default 10 MB, Upstash's documented max request size
//   for the Free and Pay-as-you-go plans) is refused with HTTP 400 `ERR max request size exceeded`.
//
// Where it departs from the real service: only POST with a JSON array body (no `/set/foo/bar` URL form,
// no `?_token=`, no GET); no read-your-writes (`upstash-sync-token` is neither read nor sent); no
// rate or command limits; the Redis behind it is the local redis-server 7, not Upstash's own server
// (its Lua, its command set and its error texts are Redis's); without base64 encoding a bulk string
// that is not UTF-8 is sent with U+FFFD in place of the bad bytes (what the real service does there
// is not documented); the HTTP error statuses are only 400 and 401 (and 404 for another path).
import http from "node:http";
import { once } from "node:events";
import { createClient } from "redis";

/** node-redis asked for bulk strings (RESP type '$' = 36) as Buffers; simple strings stay strings. */
const BUFFERS = { typeMapping: { 36: Buffer } };

/** A Redis reply as Upstash's JSON: bulk strings as base64 (encoded) or UTF-8 text. */
function jsonOf(reply, base64) {
  if (Buffer.isBuffer(reply)) return base64 ? reply.toString("base64") : reply.toString("utf8");
  if (Array.isArray(reply)) return reply.map((item) => jsonOf(item, base64));
  if (reply === undefined) return null;
  return reply; // a number, a simple string, or null
}

/** A command of the JSON body as Redis arguments. */
function argsOf(command) {
  if (!Array.isArray(command) || command.length === 0) throw new Error("ERR a command is a non-empty JSON array");
  return command.map((arg) => (typeof arg === "string" ? arg : typeof arg === "number" || typeof arg === "boolean" ? String(arg) : JSON.stringify(arg)));
}

/**
 * Starts the REST server on a free port of 127.0.0.1. Resolves to `{ url, token, requests, faults, stop() }`;
 * `requests` counts the HTTP requests by path (`/`, `/pipeline`, `/multi-exec`).
 * @param {{ redisUrl: string, token?: string, maxRequestBytes?: number }} options
 */
export async function startUpstashRest({ redisUrl, token = "test-token", maxRequestBytes = 10_000_000 }) {
  const client = await createClient({ url: redisUrl }).connect();
  const requests = { "/": 0, "/pipeline": 0, "/multi-exec": 0 };
  const faults = { next: null };

  async function run(args) {
    try {
      return { result: await client.sendCommand(args, BUFFERS) };
    } catch (error) {
      return { error: String(error?.message ?? error) };
    }
  }

  async function multiExec(commands) {
    const own = await client.duplicate().connect();
    try {
      await own.sendCommand(["MULTI"]);
      const queued = [];
      for (const args of commands) {
        queued.push(await own.sendCommand(args, BUFFERS).then(() => undefined, (error) => String(error?.message ?? error)));
      }
      if (queued.some((error) => error !== undefined)) {
        await own.sendCommand(["DISCARD"]);
        return queued.map((error) => ({ error: error ?? "EXECABORT Transaction discarded because of previous errors." }));
      }
      const results = await own.sendCommand(["EXEC"], BUFFERS);
      return results.map((result) => (result instanceof Error ? { error: result.message } : { result }));
    } finally {
      await own.quit();
    }
  }

  const server = http.createServer(async (request, response) => {
    const send = (status, body) => {
      response.writeHead(status, { "Content-Type": "application/json" });
      response.end(JSON.stringify(body));
    };
    try {
      const path = new URL(request.url, "http://localhost").pathname.replace(/\/$/, "") || "/";
      if (request.method !== "POST" || !(path in requests)) return send(404, { error: "Not Found" });
      if (request.headers.authorization !== `Bearer ${token}`) return send(401, { error: "Unauthorized" });
      const chunks = [];
      let size = 0;
      for await (const chunk of request) {
        size += chunk.length;
        chunks.push(chunk);
      }
      if (size > maxRequestBytes) return send(400, { error: "ERR max request size exceeded" });
      requests[path]++;
      const base64 = String(request.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return send(400, { error: "ERR failed to parse the request body" });
      }
      if (path !== "/" && !Array.isArray(body)) return send(400, { error: "ERR a pipeline is a JSON array of commands" });
      const commands = path === "/" ? [argsOf(body)] : body.map(argsOf);
      const fault = faults.next?.(path, commands);
      if (fault?.refuse !== undefined) return send(400, { error: fault.refuse });
      if (path === "/") {
        const { result, error } = await run(commands[0]);
        if (fault?.drop) return response.socket.destroy();
        return error === undefined ? send(200, { result: jsonOf(result, base64) }) : send(400, { error });
      }
      const replies = path === "/pipeline" ? await Promise.all(commands.map(run)) : await multiExec(commands);
      if (fault?.drop) return response.socket.destroy();
      return send(200, replies.map(({ result, error }) => (error === undefined ? { result: jsonOf(result, base64) } : { error })));
    } catch (error) {
      return send(400, { error: String(error?.message ?? error) });
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    requests,
    faults,
    async stop() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
      await client.quit();
    },
  };
}
