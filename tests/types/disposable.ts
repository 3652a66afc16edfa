// `await using` with lib esnext.disposable: the package's structural Symbol.asyncDispose declaration
// must merge with the lib's, and Invocation must satisfy AsyncDisposable.
//   node_modules/.bin/tsc -p tests/types/tsconfig.disposable.json
import { SessionStore, Invocation, Session } from "agent-session";

export async function turn(): Promise<number> {
  const store = await SessionStore.memory();
  const session = await store.open("chat");
  using reader = await store.open("chat"); // frees the store's cached view at the end of the block
  void reader.version;
  await using inv = await session.begin();
  inv.appendMessage({ role: "user", content: "hi" });
  return inv.commit(); // disposal after a commit is a no-op
}

const disposable: AsyncDisposable = null as unknown as Invocation;
const syncDisposable: Disposable = null as unknown as Session;
void syncDisposable;
const sym: typeof Symbol.asyncDispose = Symbol.asyncDispose;
void disposable, sym;
