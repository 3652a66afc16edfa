// Without the DOM lib (Node, workerd, Deno users), resolved the Node way (nodenext): the .d.ts must
// still compile, and `encryptionKey` takes any structural CryptoKeyLike.
//   node_modules/.bin/tsc -p tests/types/tsconfig.nodom.json
import { SessionStore, type StoreEvent, type CryptoKeyLike } from "agent-session";

declare const key: CryptoKeyLike;

export async function main(): Promise<void> {
  const events: StoreEvent[] = [];
  const store = await SessionStore.memory({ encryptionKey: key, onEvent: (event) => events.push(event) });
  const session = await store.open();
  const inv = await session.begin({ agent: "a" });
  inv.appendMessage({ when: new Date(), optional: undefined });
  await inv.commit();
  await inv[Symbol.asyncDispose]();
  const [first] = session.messages();
  void first;
}
