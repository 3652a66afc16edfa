// An agent's sessions on Cloudflare Workers: one Durable Object per session keeps it in its storage,
// and the session's guard turns a second concurrent turn into HTTP 409 instead of a lost update.
//
//   POST /sessions/:id/turn   {"message": "..."}  -> {id, version, messages}   (409 while a turn runs)
//   GET  /sessions/:id                            -> {id, version, status, messages}
import { SessionStore, ConcurrencyError, NotFoundError, ValidationError } from "agent-session";
import { durableObjectKv } from "agent-session/adapters";

const ROUTE = /^\/sessions\/([^/]+)(\/turn)?$/;

export default {
  async fetch(request, env) {
    const match = new URL(request.url).pathname.match(ROUTE);
    if (!match) return Response.json({ error: "not found" }, { status: 404 });
    // Every request for one session reaches the same object, wherever it was sent from.
    const id = decodeURIComponent(match[1]);
    return env.SESSIONS.get(env.SESSIONS.idFromName(id)).fetch(request);
  },
};

export class Sessions {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
  }

  /** One store per object instance, over the object's own storage. */
  store() {
    this.ready ??= SessionStore.kv(durableObjectKv(this.ctx.storage));
    return this.ready;
  }

  async fetch(request) {
    const [, rawId, turn] = new URL(request.url).pathname.match(ROUTE);
    const id = decodeURIComponent(rawId);
    try {
      const store = await this.store();
      if (turn && request.method === "POST") {
        const { message } = await request.json();
        if (typeof message !== "string") {
          return Response.json({ error: "INVALID_INPUT", message: 'the body must be {"message": "..."}' }, { status: 400 });
        }
        const session = await store.open(id);
        // invoke: begin, run, commit; aborts (nothing written) if the function throws.
        await session.invoke(async (inv) => {
          inv.appendMessage({ role: "user", content: message });
          inv.appendMessage(await callModel(inv.messages()));
        });
        return Response.json({ id, version: session.version, messages: session.messages() });
      }
      if (!turn && request.method === "GET") {
        const session = await store.open(id, { create: false });
        return Response.json({ id, version: session.version, status: session.status, messages: session.messages() });
      }
      return Response.json({ error: "method not allowed" }, { status: 405 });
    } catch (error) {
      if (error instanceof ConcurrencyError) {
        // Another turn of this session is running (in this object, while it awaits its model call).
        return Response.json(
          { error: error.code, holder: error.holder, retryAfterMs: error.retryAfterMs },
          { status: 409, headers: { "retry-after": String(Math.ceil(error.retryAfterMs / 1000)) } },
        );
      }
      if (error instanceof NotFoundError) return Response.json({ error: error.code }, { status: 404 });
      if (error instanceof ValidationError || error instanceof SyntaxError) {
        return Response.json({ error: "INVALID_INPUT", message: error.message }, { status: 400 });
      }
      throw error;
    }
  }
}

/**
 * Stands in for the model call (a `fetch` to an LLM API). While a real one is awaited, other requests
 * can enter the object; one for this session gets 409 until this turn commits. This stub answers at
 * once, so turns run one after another: to see the 409, await a delay here first (for example
 * `await scheduler.wait(2000)`) and send two turns at once.
 */
async function callModel(messages) {
  const last = messages[messages.length - 1];
  return { role: "assistant", content: `You said: ${last.content}` };
}
