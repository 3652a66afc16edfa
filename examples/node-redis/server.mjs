// agent-session on Redis as an HTTP server: one SessionStore for the whole process, and every request
// opens its session by id. Run as many of these processes as you like against one Redis: the
// session's lease (a compare-and-set in Redis) keeps two turns of one session apart, in one process
// or across them, and the second is answered 409 instead of both running on the same history.
//
//   POST /sessions/:id/turn   {"message": "..."}  -> {id, version, reply}   (409 {retryAfterMs} while a turn runs)
//   GET  /sessions/:id                            -> {id, version, status, count}
//   GET  /stats                                   -> {memory, cache}: wasm memory and this store's cache
//
//   REDIS_URL=redis://127.0.0.1:6379 PORT=8787 node server.mjs
import { createServer } from "node:http";
import { createClient } from "redis";
import { SessionStore, ConcurrencyError, NotFoundError, ValidationError } from "agent-session";
import { redisKv } from "agent-session/adapters";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const port = Number(process.env.PORT ?? 8787);

// One client and one store for the process, shared by every request. The store keeps one cached
// view per session (bounded, least recently used first), so opening by id on every request costs a
// read of the session's head, not a reload, and memory does not grow with the number of requests.
const client = await createClient({ url }).connect();
const store = await SessionStore.kv(redisKv(client), { owner: `server-${process.pid}`, prefix: "agents:" });

const ROUTE = /^\/sessions\/([^/]+)(\/turn)?$/;

/** What a request is answered with, as `[status, body, headers?]`. */
async function handle(request) {
  const { pathname } = new URL(request.url, "http://localhost");
  if (pathname === "/stats" && request.method === "GET") {
    return [200, { memory: SessionStore.memoryUsage(), cache: store.cacheUsage() }];
  }
  const match = pathname.match(ROUTE);
  if (!match) return [404, { error: "not found" }];
  const id = decodeURIComponent(match[1]);
  if (match[2] && request.method === "POST") {
    const { message } = JSON.parse(await readBody(request));
    if (typeof message !== "string") return [400, { error: "INVALID_INPUT", message: "body must be {\"message\": string}" }];
    const session = await store.open(id);
    // invoke: begin (fails fast with ConcurrencyError if a turn of this session runs anywhere), run,
    // commit both messages as one version; aborts (nothing written) if the function throws.
    const reply = await session.invoke(async (inv) => {
      inv.appendMessage({ role: "user", content: message });
      const answer = await callModel(inv.messages());
      inv.appendMessage(answer);
      return answer.content;
    });
    return [200, { id, version: session.version, reply }];
  }
  if (!match[2] && request.method === "GET") {
    const session = await store.open(id, { create: false });
    return [200, { id, version: session.version, status: session.status, count: session.messages().length }];
  }
  return [405, { error: "method not allowed" }];
}

/** `handle`, with the package's errors turned into their HTTP answers. */
async function answer(request) {
  try {
    return await handle(request);
  } catch (error) {
    if (error instanceof ConcurrencyError) {
      // Another turn of this session is running, in this process or in another one.
      return [
        409,
        { error: error.code, holder: error.holder, retryAfterMs: error.retryAfterMs },
        { "retry-after": String(Math.ceil(error.retryAfterMs / 1000)) },
      ];
    }
    if (error instanceof NotFoundError) return [404, { error: error.code }];
    if (error instanceof ValidationError || error instanceof SyntaxError) {
      return [400, { error: "INVALID_INPUT", message: error.message }];
    }
    console.error(error);
    return [500, { error: "internal error" }];
  }
}

const server = createServer(async (request, response) => {
  const [status, body, headers] = await answer(request);
  response.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
});

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

/** Stands in for the model call (a `fetch` to an LLM API): echoes the last message. */
async function callModel(messages) {
  const last = messages[messages.length - 1];
  return { role: "assistant", content: `You said: ${last.content}` };
}

server.listen(port, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});

// On SIGINT / SIGTERM: stop accepting requests, let the running ones finish, then close the store
// and quit the client (you own it: closing the store leaves it open).
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    server.close(async () => {
      await store.close();
      await client.quit();
    });
    server.closeIdleConnections();
  });
}
