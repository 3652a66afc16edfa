// `await using` with lib esnext.disposable: the package's structural Symbol.asyncDispose declaration
// must merge with the lib's, and Invocation must satisfy AsyncDisposable.
//   node_modules/.bin/tsc -p tests/types/tsconfig.disposable.json
import { SessionStore, Invocation } from "agent-session";

export async function turn(): Promise<number> {
  const store = await SessionStore.memory();
  const session = await store.open("chat");
  await using inv = await session.begin();
  inv.appendMessage({ role: "user", content: "hi" });
  return inv.commit(); // disposal after a commit is a no-op
}

const disposable: AsyncDisposable = null as unknown as Invocation;
const sym: typeof Symbol.asyncDispose = Symbol.asyncDispose;
void disposable, sym;
