// A contender in its own Deno process, for tests/js/deno.test.mjs: one SessionStore (its own owner)
// over denoKv on `Deno.openKv(<file>)`, the same SQLite file as the other contenders. Logs each step
// to stdout as one JSON line (the events of tests/js/adapters/_history.mjs):
//   {"type":"ready"}, then, after the parent writes a line to stdin:
//   contend mode: `attempts` begins with onBusy "reject"; each begin that resolves logs acquire,
//                 appends {worker, token}, logs committing, commits and logs commit; each refused
//                 begin logs denied. Then {"type":"done"}.
//   hold mode:    begins, stages a message, logs acquire; after a second stdin line, aborts (nothing
//                 written) and logs released.
//   read mode:    logs {"type":"final", version, status, messages} of the session, then done.
//
//   deno run --allow-read --allow-write contender.mjs '{"file", "id", "worker", "attempts", "mode"}'
import { ConcurrencyError, SessionStore } from "agent-session";
import { denoKv } from "agent-session/adapters";

const { file, id, worker, attempts = 0, mode = "contend" } = JSON.parse(Deno.args[0]);
const encoder = new TextEncoder();
const log = (event) => Deno.stdout.writeSync(encoder.encode(`${JSON.stringify({ worker, t: Date.now(), ...event })}\n`));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Deno.openKv(file), again while another process opening the same new file holds it (Deno's SQLite
 * backend answers "database is locked" instead of waiting while it sets the file up). */
async function openKv() {
  for (let tries = 1; ; tries++) {
    try {
      return await Deno.openKv(file);
    } catch (error) {
      if (!/database is locked/.test(String(error?.message)) || tries >= 50) throw error;
      await sleep(5 + Math.random() * 20);
    }
  }
}

const kv = await openKv();
const store = await SessionStore.kv(denoKv(kv), { owner: worker });
const session = await store.open(id);

/** Resolves at the parent's next line on stdin (read directly: nothing reads stdin in between). */
const decoder = new TextDecoder();
let buffered = "";
async function nextLine() {
  const chunk = new Uint8Array(256);
  while (!buffered.includes("\n")) {
    const n = await Deno.stdin.read(chunk);
    if (n === null) throw new Error(`${worker}: stdin closed`);
    buffered += decoder.decode(chunk.subarray(0, n));
  }
  buffered = buffered.slice(buffered.indexOf("\n") + 1);
}

if (mode === "read") {
  log({ type: "final", version: session.version, status: session.status, messages: session.messages() });
} else if (mode === "hold") {
  log({ type: "ready" });
  await nextLine();
  const inv = await session.begin({ onBusy: "reject" });
  inv.appendMessage({ worker, token: inv.token, note: "never committed" });
  log({ type: "acquire", token: inv.token, base: inv.session.version });
  await nextLine();
  await inv.abort();
  log({ type: "released", token: inv.token });
} else {
  log({ type: "ready" });
  await nextLine(); // the go: the contenders start together
  for (let attempt = 0; attempt < attempts; attempt++) {
    let inv;
    try {
      inv = await session.begin({ onBusy: "reject" });
    } catch (error) {
      log({
        type: "denied",
        name: error?.name,
        code: error?.code,
        holder: error?.holder,
        retryAfterMs: error?.retryAfterMs,
        message: String(error?.message ?? error),
        isConcurrencyError: error instanceof ConcurrencyError,
      });
      await sleep(Math.random() * 2);
      continue;
    }
    log({ type: "acquire", token: inv.token, base: inv.session.version });
    inv.appendMessage({ worker, token: inv.token });
    // Hold the session a moment, as a turn awaiting a model would, so the other process meets it.
    await sleep(Math.random() * 2);
    log({ type: "committing", token: inv.token });
    const version = await inv.commit();
    log({ type: "commit", token: inv.token, version });
  }
}
await store.close();
kv.close();
log({ type: "done" });
