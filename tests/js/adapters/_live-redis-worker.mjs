// A Node process for live-redis.test.mjs: one SessionStore (owner = its worker name) over redisKv on
// a node-redis client, driven by commands the parent sends over IPC, each naming a `tag`. Every step
// is logged to stdout as one JSON line `{worker, t, type, tag, ...}` (t: Date.now() of this process):
//
//   {"type":"ready"}                                       once the store is open
//   {cmd:"turn", id, parts, overMs, message}               begin, emit `parts` parts paced evenly over
//        -> begun {invocation, token}                       `overMs`, append `message`, commit
//        -> committed {invocation, version, emittedMs, seqs}
//   {cmd:"follow", id, after?}                             follow the session until its first `end`
//        -> following; live {event, sessionVersion} per event; followed {version, status}
//   {cmd:"hold", id, parts, message, onStop, partial?}     begin, read inv.signal (which starts the
//        -> begun {invocation, token}                       watch for a stop), stage `message`, emit
//        -> aborted {at, reason, isStop}                    and flush `parts` parts, then wait; on the
//        -> committed {version}   (onStop "commit")         signal's abort: "commit" appends `partial`
//                                                           and commits, "ignore" does nothing
//   {cmd:"stream", id, everyMs, partial}                   begin, read inv.signal, emit a part every
//        -> begun {invocation, token}                       `everyMs` until the signal aborts, then
//        -> aborted {at, reason, isStop, parts}             append `partial` and commit
//        -> committed {version}
//   {cmd:"commit"}                                         commit the invocation held under `tag`
//        -> commit-result {ok, version | error, isLeaseLost}
//   {cmd:"stop", id, options}                              session.stop(options)
//        -> stop-result {requestedAt, resolvedAt, result}
//   {cmd:"exit"}                                           close the store and the client, disconnect
// A command that throws logs {"type":"error", tag, cmd, error}.
import { createClient } from "redis";
import { SessionStore, StopRequestedError, LeaseLostError } from "agent-session";
import { redisKv } from "agent-session/adapters";

const { url, worker, storeOptions = {} } = JSON.parse(process.argv[2]);
const log = (event) => process.stdout.write(`${JSON.stringify({ worker, t: Date.now(), ...event })}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const describe = (error) =>
  error === undefined || error === null
    ? error ?? null
    : { name: error.name, code: error.code, message: String(error.message ?? error), reason: error.reason, by: error.by };

const client = await createClient({ url }).connect();
const store = await SessionStore.kv(redisKv(client), { owner: worker, ...storeOptions });
const held = new Map(); // tag -> Invocation

const commands = {
  async turn({ tag, id, parts, overMs, message }) {
    const session = await store.open(id);
    const inv = await session.begin();
    log({ type: "begun", tag, invocation: inv.id, token: inv.token });
    const start = Date.now();
    const seqs = [];
    for (let i = 0; i < parts; i++) {
      const wait = start + (i * overMs) / parts - Date.now();
      if (wait > 0) await sleep(wait);
      seqs.push(inv.emit({ i, at: Date.now(), text: `token ${i} ` }));
    }
    const emittedMs = Date.now() - start;
    inv.appendMessage(message);
    const version = await inv.commit();
    log({ type: "committed", tag, invocation: inv.id, version, emittedMs, seqs });
  },

  async follow({ tag, id, after }) {
    const session = await store.open(id);
    const events = session.follow(after ? { after } : undefined);
    log({ type: "following", tag });
    for await (const event of events) {
      log({ type: "live", tag, event, sessionVersion: session.version });
      if (event.type === "end") break;
    }
    log({ type: "followed", tag, version: session.version, status: session.status });
  },

  async hold({ tag, id, parts = 0, message, onStop, partial }) {
    const session = await store.open(id);
    const inv = await session.begin();
    held.set(tag, inv);
    const signal = inv.signal; // reading it starts the watch for a stop request
    const aborted = new Promise((resolve) =>
      signal.addEventListener(
        "abort",
        () => {
          log({ type: "aborted", tag, at: Date.now(), reason: describe(signal.reason), isStop: signal.reason instanceof StopRequestedError });
          resolve();
        },
        { once: true },
      ),
    );
    inv.appendMessage(message);
    for (let i = 0; i < parts; i++) inv.emit({ i });
    await inv.flush();
    log({ type: "begun", tag, invocation: inv.id, token: inv.token, signalAborted: signal.aborted });
    if (onStop === "commit") {
      await aborted;
      inv.appendMessage(partial);
      const version = await inv.commit();
      log({ type: "committed", tag, invocation: inv.id, version });
    }
  },

  async stream({ tag, id, everyMs, partial }) {
    const session = await store.open(id);
    const inv = await session.begin();
    const signal = inv.signal;
    log({ type: "begun", tag, invocation: inv.id, token: inv.token });
    let parts = 0;
    while (!signal.aborted) {
      inv.emit({ i: parts++ });
      await sleep(everyMs);
    }
    log({ type: "aborted", tag, at: Date.now(), reason: describe(signal.reason), isStop: signal.reason instanceof StopRequestedError, parts });
    inv.appendMessage(partial);
    const version = await inv.commit();
    log({ type: "committed", tag, invocation: inv.id, version });
  },

  async commit({ tag }) {
    const inv = held.get(tag);
    try {
      const version = await inv.commit();
      log({ type: "commit-result", tag, ok: true, version });
    } catch (error) {
      log({ type: "commit-result", tag, ok: false, error: describe(error), isLeaseLost: error instanceof LeaseLostError });
    }
  },

  async stop({ tag, id, options }) {
    const session = await store.open(id);
    const requestedAt = Date.now();
    const result = await session.stop(options);
    const resolvedAt = Date.now();
    log({ type: "stop-result", tag, requestedAt, resolvedAt, result: { outcome: result.outcome, invocation: result.invocation, version: result.version } });
  },

  async exit() {
    await store.close();
    await client.quit();
    process.disconnect();
  },
};

process.on("message", (message) => {
  commands[message.cmd](message).catch((error) => log({ type: "error", tag: message.tag, cmd: message.cmd, error: describe(error), stack: error?.stack }));
});
log({ type: "ready" });
