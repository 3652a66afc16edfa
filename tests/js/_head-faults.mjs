// A HostKv whose head writes fail as a backend's do, for the tests of writes whose answer was lost
// (checkpoint-staging, retried-writes). Not a test file (node --test picks only *.test.mjs).
import { memoryKv } from "agent-session/adapters";

/**
 * memoryKv with faults at the head (`h/` keys):
 * - `hooks.gate` (a promise) holds every put until it resolves;
 * - `hooks.headPut` makes the next put of a head "before" (fail, nothing written), "after" (written, then
 *   an error: its answer lost), "retried" (written twice, answered by the second: a client that sent it
 *   again) or "late" (fail at once, and run when the test calls `hooks.land()`: a write that timed out
 *   and is still on its way); each that fires is pushed to `hooks.fired`;
 * - `hooks.headGets` makes that many reads of the head fail.
 */
export function headFaultKv() {
  const inner = memoryKv();
  const hooks = { gate: undefined, headPut: undefined, headGets: 0, fired: [], land: undefined };
  const isHead = (key) => key.startsWith("h/");
  return {
    hooks,
    kv: {
      capabilities: inner.capabilities,
      get: async (key, ...rest) => {
        if (isHead(key) && hooks.headGets > 0) {
          hooks.headGets--;
          throw new Error("injected: head read failed");
        }
        return inner.get(key, ...rest);
      },
      put: async (key, ...rest) => {
        if (hooks.gate) await hooks.gate;
        const fault = isHead(key) ? hooks.headPut : undefined;
        if (fault === undefined) return inner.put(key, ...rest);
        hooks.headPut = undefined;
        hooks.fired.push(fault);
        if (fault === "before") throw new Error("injected: head put failed before it ran");
        if (fault === "late") {
          hooks.land = () => inner.put(key, ...rest);
          throw new Error("injected: head put timed out, and is still on its way");
        }
        const result = await inner.put(key, ...rest);
        if (fault === "retried") return inner.put(key, ...rest);
        if (fault === "after") throw new Error("injected: head put timed out after it ran");
        return result;
      },
      delete: (...args) => inner.delete(...args),
      list: (...args) => inner.list(...args),
    },
  };
}
