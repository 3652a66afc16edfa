// A memoryKv that counts the calls made on it: the round trips a remote KV would pay.
import { memoryKv } from "agent-session/adapters";

export function countingKv() {
  const kv = memoryKv();
  const counted = { calls: 0, capabilities: kv.capabilities };
  for (const name of ["get", "put", "delete", "list", "commit"]) {
    counted[name] = (...a) => {
      counted.calls++;
      return kv[name](...a);
    };
  }
  return counted;
}
