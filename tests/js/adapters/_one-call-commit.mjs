// A HostKv's optional commit(records, head, deletes), made of its own get, put and delete: the head's condition
// checked first, then the records, then the head's compare-and-set. What redisKv, denoKv and
// durableObjectKv do in one call, for tests and benchmarks over memoryKv, which has no commit of its
// own (in process, a call costs nothing). Not atomic against other callers between its awaits: for
// one process, as the tests and benchmarks that use it are.
import { commitByPuts, holds } from "../../../js/adapters/values.js";

/** `commit(records, head, deletes)` over `kv`'s get, put and delete. */
export function oneCallCommit(kv) {
  return async (records, head, deletes) => {
    const current = await kv.get(head.key);
    if (!holds(current === null ? null : current.version, head.expectedVersion)) return null;
    return commitByPuts(kv, records, head, deletes);
  };
}
