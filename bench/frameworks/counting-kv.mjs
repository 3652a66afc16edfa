// A memoryKv that counts the calls made on it: the round trips a remote KV would pay. It is given a
// one-call commit (tests/js/adapters/_one-call-commit.mjs), as redisKv, denoKv and durableObjectKv have;
// memoryKv itself has none.
import { memoryKv } from "agent-session/adapters";
import { oneCallCommit } from "../../tests/js/adapters/_one-call-commit.mjs";

export function countingKv() {
  const kv = memoryKv();
  const counted = { calls: 0, capabilities: kv.capabilities };
  const methods = { get: kv.get, put: kv.put, delete: kv.delete, list: kv.list, commit: oneCallCommit(kv) };
  for (const [name, method] of Object.entries(methods)) {
    counted[name] = (...a) => {
      counted.calls++;
      return method(...a);
    };
  }
  return counted;
}
