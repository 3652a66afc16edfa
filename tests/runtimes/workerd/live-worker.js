// The Worker that tests/js/live-workerd.test.mjs bundles with esbuild (the package's "workerd" export
// condition, as wrangler would) and runs in workerd through miniflare: live turns (API.md "Live
// turns") inside a Durable Object over durableObjectKv(ctx.storage), relayed to HTTP clients.
//
// Every request goes to the Durable Object of its session (`?session=ID`); `backend=sqlite` picks
// the SQLite-backed class, anything else the KV-backed one. One store per object instance.
//
//   POST /turn?session=ID&parts=N&overMs=MS&watch=0|1
//        begin, emit N parts ({i, text}) paced evenly over MS (on timers: other requests enter the
//        object meanwhile), append a message, commit -> {invocation, version, emitted, aborted}.
//        watch=1: the turn reads inv.signal and, once it aborts, stops emitting, appends a partial
//        answer and commits; `aborted` is the signal's reason {name, code, reason, by} (else null).
//   GET  /follow?session=ID
//        Server-Sent Events (text/event-stream): `data: <LiveEvent as JSON>` per event of
//        session.follow(), closed after the first `end`. A follower that throws sends
//        `event: error` with the error, then closes.
//   POST /stop?session=ID&reason=R&graceMs=MS  session.stop() -> {outcome, invocation, version}
//   GET  /history?session=ID                   {version, status, messages, history}
import { SessionStore } from "agent-session";
import { durableObjectKv } from "agent-session/adapters";

const json = (body, status = 200) => Response.json(body, { status });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const errorBody = (error) => ({ name: error?.name, code: error?.code, message: String(error?.message ?? error), reason: error?.reason, by: error?.by });

export class LiveSessions {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
    this.owner = "live-object";
  }

  /** One store per object instance, made on first use. */
  store() {
    this.ready ??= SessionStore.kv(durableObjectKv(this.ctx.storage), { owner: this.owner });
    return this.ready;
  }

  async fetch(request) {
    const url = new URL(request.url);
    const id = url.searchParams.get("session");
    const number = (name, fallback) => Number(url.searchParams.get(name) ?? fallback);
    try {
      switch (`${request.method} ${url.pathname}`) {
        case "POST /turn":
          return json(await this.turn(id, number("parts", 100), number("overMs", 1000), url.searchParams.get("watch") === "1"));
        case "GET /follow":
          return await this.follow(id);
        case "POST /stop": {
          const session = await (await this.store()).open(id);
          const options = { reason: url.searchParams.get("reason") ?? undefined };
          if (url.searchParams.has("graceMs")) options.graceMs = number("graceMs");
          const result = await session.stop(options);
          return json({ outcome: result.outcome, invocation: result.invocation, version: result.version });
        }
        case "GET /history": {
          const session = await (await this.store()).open(id, { create: false });
          await session.refresh();
          return json({ version: session.version, status: session.status, messages: session.messages(), history: await session.history() });
        }
        default:
          return json({ error: "no such route" }, 404);
      }
    } catch (error) {
      return json(errorBody(error), 500);
    }
  }

  async turn(id, parts, overMs, watch) {
    const session = await (await this.store()).open(id);
    const inv = await session.begin();
    let aborted = null;
    let signal;
    if (watch) {
      signal = inv.signal;
      signal.addEventListener("abort", () => (aborted = errorBody(signal.reason)), { once: true });
    }
    const start = Date.now();
    let emitted = 0;
    while (emitted < parts && !signal?.aborted) {
      const wait = start + (emitted * overMs) / parts - Date.now();
      if (wait > 0) await sleep(wait);
      if (signal?.aborted) break;
      const seq = inv.emit({ i: emitted, text: `token ${emitted} ` });
      if (seq !== emitted) throw new Error(`emit() returned seq ${seq} for part ${emitted}`);
      emitted += 1;
    }
    inv.appendMessage(aborted ? { role: "assistant", content: "a partial answer", parts: emitted } : { role: "assistant", content: "the whole answer" });
    const version = await inv.commit();
    return { invocation: inv.id, version, emitted, aborted, isStop: aborted?.code === "STOP_REQUESTED" };
  }

  async follow(id) {
    const session = await (await this.store()).open(id);
    const events = session.follow();
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    const encoder = new TextEncoder();
    const pump = (async () => {
      try {
        for await (const event of events) {
          await writer.write(encoder.encode(`data: ${JSON.stringify(event)}\n\n`));
          if (event.type === "end") break;
        }
      } catch (error) {
        await writer.write(encoder.encode(`event: error\ndata: ${JSON.stringify(errorBody(error))}\n\n`)).catch(() => {});
      } finally {
        await writer.close().catch(() => {});
      }
    })();
    this.ctx.waitUntil?.(pump);
    return new Response(readable, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
  }
}

/** The same object on the SQLite-backed storage. */
export class LiveSqlSessions extends LiveSessions {}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const id = url.searchParams.get("session");
    if (!id) return json({ error: "session is required" }, 400);
    const ns = url.searchParams.get("backend") === "sqlite" ? env.LIVE_SQL : env.LIVE;
    return ns.get(ns.idFromName(id)).fetch(request);
  },
};
