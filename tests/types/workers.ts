// A Cloudflare Workers project typed by Cloudflare's own @cloudflare/workers-types (no DOM lib), with
// `skipLibCheck: false`: the package's .d.ts must merge with those globals (its AbortSignal
// declaration once clashed with workers-types' getters).
//   node_modules/.bin/tsc -p tests/types/tsconfig.workers.json
import { SessionStore, ConcurrencyError } from "agent-session";
import { cloudflareKv, durableObjectKv } from "agent-session/adapters";

interface Env {
  KV: KVNamespace;
}

export class Sessions {
  ready: Promise<SessionStore>;
  constructor(ctx: DurableObjectState, env: Env) {
    this.ready = SessionStore.kv(durableObjectKv(ctx.storage));
    void SessionStore.kv(cloudflareKv(env.KV), { allowNonAtomic: true });
  }
  async fetch(request: Request): Promise<Response> {
    const session = await (await this.ready).open(new URL(request.url).pathname.split("/")[2]);
    try {
      await session.invoke(async (inv) => {
        // The invocation's signal goes to the host's fetch, and reads as the host's AbortSignal.
        const answer = await fetch("https://example.invalid/model", { signal: inv.signal });
        const aborted: boolean = inv.signal.aborted;
        const hostSignal: AbortSignal = inv.signal;
        void hostSignal;
        inv.appendMessage({ text: await answer.text(), aborted, reason: String(inv.signal.reason) });
      });
    } catch (err) {
      if (err instanceof ConcurrencyError) return new Response("busy", { status: 409 });
      throw err;
    }
    return Response.json(session.messages());
  }
}
