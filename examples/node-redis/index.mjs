// agent-session on Redis with node-redis: two turns of one agent session, and a concurrent
// invocation of the same session (as another server would make) refused while a turn runs.
//
//   REDIS_URL=redis://127.0.0.1:6379 node index.mjs [session-id]
import { createClient } from "redis";
import { SessionStore, ConcurrencyError } from "agent-session";
import { redisKv } from "agent-session/adapters";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const id = process.argv[2] ?? `demo-${Date.now().toString(36)}`;

// You own the client: connect it, and quit it when done (closing the store leaves it open).
const client = await createClient({ url }).connect();
const store = await SessionStore.kv(redisKv(client), { owner: "server-1", prefix: "agents:" });
const session = await store.open(id);
console.log(`session ${id}`);

// Turn 1: invoke() begins, runs the turn, commits (or aborts if it throws).
await session.invoke(async (inv) => {
  inv.appendMessage({ role: "user", content: "What is the capital of France?" });
  inv.appendMessage({ role: "assistant", content: "Paris." });
  inv.setState("turns", 1);
});
console.log(`turn 1 committed: version ${session.version}`);

// Turn 2 holds the session while it runs ...
const turn = await session.begin();
turn.appendMessage({ role: "user", content: "And of Italy?" });

// ... so another server (another store, another owner) cannot run the same session meanwhile.
const otherServer = await SessionStore.kv(redisKv(client), { owner: "server-2", prefix: "agents:" });
try {
  const intruder = await (await otherServer.open(id)).begin();
  await intruder.abort();
  console.log("concurrent invocation was NOT refused");
} catch (error) {
  if (!(error instanceof ConcurrencyError)) throw error;
  console.log(`concurrent invocation refused: ${error.code} (held by ${error.holder}, retry in ${error.retryAfterMs} ms)`);
}

turn.appendMessage({ role: "assistant", content: "Rome." });
turn.setState("turns", 2);
await turn.commit();
console.log(`turn 2 committed: version ${session.version}`);

for (const message of session.messages()) console.log(`${message.role}: ${message.content}`);
console.log(`state: ${JSON.stringify(session.state())}`);

await otherServer.close();
await store.close();
await client.quit();
