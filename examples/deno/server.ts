// agent-session on Deno KV as an HTTP server: one SessionStore for the whole process, and every
// request opens its session by id. Run as many of these processes as you like on one KV database:
// the session's lease (a Deno KV atomic check) keeps two turns of one session apart, in one process
// or across them, and the second is answered 409 instead of both running on the same history.
//
//   POST /sessions/:id/turn   {"message": "..."}  -> {id, version, reply}   (409 {retryAfterMs} while a turn runs)
//   GET  /sessions/:id                            -> {id, version, status, count}
//
//   deno task start                 (PORT, default 0 = any free port; KV_PATH, default ./sessions.db)
import { ConcurrencyError, NotFoundError, SessionStore, ValidationError } from "agent-session";
import { denoKv } from "agent-session/adapters";

const port = Number(Deno.env.get("PORT") ?? 0);
// A SQLite file that every process on this machine can open; on Deno Deploy, `Deno.openKv()`.
const kvPath = Deno.env.get("KV_PATH") ?? decodeURIComponent(new URL("./sessions.db", import.meta.url).pathname);

// One database handle and one store for the process, shared by every request. The store keeps one
// cached view per session (bounded, least recently used first), so opening by id on every request
// costs a read of the session's head, not a reload, and memory does not grow with the requests.
const kv = await Deno.openKv(kvPath);
const store = await SessionStore.kv(denoKv(kv), { owner: `server-${Deno.pid}` });

const ROUTE = /^\/sessions\/([^/]+)(\/turn)?$/;

/** What a request is answered with: status, JSON body, extra headers. */
type Answer = [number, unknown, Record<string, string>?];

async function handle(request: Request): Promise<Answer> {
  const match = new URL(request.url).pathname.match(ROUTE);
  if (!match) return [404, { error: "not found" }];
  const id = decodeURIComponent(match[1]);
  if (match[2] && request.method === "POST") {
    const { message } = await request.json();
    if (typeof message !== "string") return [400, { error: "INVALID_INPUT", message: 'body must be {"message": string}' }];
    const session = await store.open(id);
    // invoke: begin (fails fast with ConcurrencyError if a turn of this session runs anywhere), run,
    // commit both messages as one version; aborts (nothing written) if the function throws.
    const reply = await session.invoke(async (inv) => {
      inv.appendMessage({ role: "user", content: message });
      const answer = await callModel(message);
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
async function answer(request: Request): Promise<Response> {
  let status: number, body: unknown, headers: Record<string, string> | undefined;
  try {
    [status, body, headers] = await handle(request);
  } catch (error) {
    if (error instanceof ConcurrencyError) {
      // Another turn of this session is running, in this process or in another one.
      [status, body, headers] = [
        409,
        { error: error.code, holder: error.holder, retryAfterMs: error.retryAfterMs },
        { "retry-after": String(Math.ceil(error.retryAfterMs / 1000)) },
      ];
    } else if (error instanceof NotFoundError) {
      [status, body] = [404, { error: error.code }];
    } else if (error instanceof ValidationError || error instanceof SyntaxError) {
      [status, body] = [400, { error: "INVALID_INPUT", message: error.message }];
    } else {
      console.error(error);
      [status, body] = [500, { error: "internal error" }];
    }
  }
  return Response.json(body, { status, headers });
}

/** Stands in for the model call (a `fetch` to an LLM API): echoes the message. */
async function callModel(message: string) {
  return { role: "assistant", content: `You said: ${message}` };
}

const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, answer);

// On SIGINT / SIGTERM: stop accepting requests, let the running ones finish, then close the store
// and the database, once (Ctrl-C under `deno task` delivers the signal twice: to the task and to
// this process).
let stopping: Promise<void> | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    stopping ??= (async () => {
      await server.shutdown();
      await store.close();
      kv.close();
    })();
  });
}

console.log(`listening on http://${server.addr.hostname}:${server.addr.port}`);
