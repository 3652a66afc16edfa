// A memoryKv whose puts are weighed: for each kind of key (`kindOf(key)`, undefined for keys not
// counted), the bytes of the values put and how many puts there were. `kinds` start at 0.
import { memoryKv } from "agent-session/adapters";

export function weighedKv(kindOf, kinds = []) {
  const kv = memoryKv();
  const written = Object.fromEntries(kinds.map((kind) => [kind, 0]));
  const puts = Object.fromEntries(kinds.map((kind) => [kind, 0]));
  return {
    written,
    puts,
    kv: {
      ...kv,
      capabilities: kv.capabilities,
      get: (...a) => kv.get(...a),
      delete: (...a) => kv.delete(...a),
      list: (...a) => kv.list(...a),
      put(key, value, options) {
        const kind = kindOf(key);
        if (kind !== undefined) {
          written[kind] = (written[kind] ?? 0) + (value.byteLength ?? value.length ?? 0);
          puts[kind] = (puts[kind] ?? 0) + 1;
        }
        return kv.put(key, value, options);
      },
    },
  };
}
