// Run by tests/js/deno.test.mjs in real Deno (`deno run`), from a directory whose deno.json is
// {"nodeModulesDir": "manual", "unstable": ["kv"]} and whose node_modules/agent-session is this
// package, as a Deno user who installed it has. Imports the package by its name, so Deno picks the
// "deno" export condition; prints one JSON object that the Node test checks.
//
//   deno run --allow-read --allow-write smoke.mjs <kv file>
import {
  AgentSessionError,
  ConcurrencyError,
  InvalidTransitionError,
  NotFoundError,
  SessionStore,
  ValidationError,
} from "agent-session";
import { denoKv } from "agent-session/adapters";

const kvFile = Deno.args[0];
const errorOf = (error) => ({ name: error?.name, code: error?.code, message: String(error?.message ?? error) });

/** A turn, a refused second begin and the typed errors, on one store. */
async function exercise(store) {
  const session = await store.open("smoke");
  const version = await session.invoke((inv) => {
    inv.appendMessage({ role: "user", content: "hello from Deno" });
    inv.setState("runtime", "deno");
    return inv.session.version;
  });
  const held = await session.begin();
  held.appendMessage({ role: "assistant", content: "second turn" });
  const checks = {};
  try {
    await session.begin({ onBusy: "reject" });
    checks.secondBegin = { resolved: true };
  } catch (error) {
    checks.secondBegin = {
      ...errorOf(error),
      isConcurrencyError: error instanceof ConcurrencyError,
      isAgentSessionError: error instanceof AgentSessionError,
      isError: error instanceof Error,
      holder: error.holder,
      retryAfterMs: error.retryAfterMs,
    };
  }
  const committed = await held.commit();
  try {
    await held.commit();
    checks.commitTwice = { resolved: true };
  } catch (error) {
    checks.commitTwice = { ...errorOf(error), isInvalidTransitionError: error instanceof InvalidTransitionError };
  }
  try {
    await store.open("absent", { create: false });
    checks.openAbsent = { resolved: true };
  } catch (error) {
    checks.openAbsent = { ...errorOf(error), isNotFoundError: error instanceof NotFoundError };
  }
  try {
    await store.open("");
    checks.badId = { resolved: true };
  } catch (error) {
    checks.badId = { ...errorOf(error), isValidationError: error instanceof ValidationError };
  }
  await session.refresh();
  return {
    versionBeforeFirstTurn: version,
    committed,
    version: session.version,
    status: session.status,
    messages: session.messages(),
    state: session.state(),
    checks,
  };
}

const result = {
  deno: Deno.version.deno,
  resolved: {
    main: import.meta.resolve("agent-session"),
    adapters: import.meta.resolve("agent-session/adapters"),
  },
};

const memory = await SessionStore.memory();
result.memory = await exercise(memory);
await memory.close();

const inMemoryKv = await Deno.openKv(":memory:");
const kvStore = await SessionStore.kv(denoKv(inMemoryKv));
result.kvMemory = await exercise(kvStore);
await kvStore.close();
inMemoryKv.close();

// A file: written through one handle, closed, read back through a new handle and a new store.
let fileKv = await Deno.openKv(kvFile);
let fileStore = await SessionStore.kv(denoKv(fileKv));
result.kvFile = await exercise(fileStore);
await fileStore.close();
fileKv.close();
fileKv = await Deno.openKv(kvFile);
fileStore = await SessionStore.kv(denoKv(fileKv));
const reopened = await fileStore.open("smoke", { create: false });
result.kvFileReopened = { version: reopened.version, status: reopened.status, count: reopened.messages().length };
await fileStore.close();
fileKv.close();

console.log(JSON.stringify(result));
