// Type-level contract of agent-session/adapters, with lib es2022 only (no DOM, no @types): the
// .d.ts compiles, the adapters return a HostKv that SessionStore.kv takes, and each *Like type
// accepts a structural client. Compiled, never run:
//   node_modules/.bin/tsc -p tests/types/tsconfig.adapters.json
import { SessionStore, type HostKv as RootHostKv } from "agent-session";
import {
  memoryKv,
  denoKv,
  redisKv,
  durableObjectKv,
  cloudflareKv,
  type HostKv,
  type DenoKvLike,
  type RedisClientLike,
  type DurableObjectStorageLike,
  type KvNamespaceLike,
} from "agent-session/adapters";

declare const deno: DenoKvLike;
declare const redis: RedisClientLike;
declare const storage: DurableObjectStorageLike;
declare const namespace: KvNamespaceLike;

export async function main(): Promise<void> {
  const kvs: HostKv[] = [
    memoryKv(),
    denoKv(deno),
    denoKv(deno, { maxValueBytes: 1024 }),
    redisKv(redis),
    redisKv(redis, { maxValueBytes: 1 << 20 }),
    durableObjectKv(storage),
    cloudflareKv(namespace),
  ];
  const same: RootHostKv = kvs[0]!;
  const store = await SessionStore.kv(same, { prefix: "app:", owner: "me" });
  await store.close();
  const entry = await memoryKv().get("h/a~");
  if (entry !== null) {
    const version: string = entry.version;
    void version;
  }
  const version: string | null = await memoryKv().put("k", new Uint8Array(1), { expectedVersion: null, ttlMs: 10 });
  void version;

  // An ioredis-shaped and a node-redis-shaped client fit RedisClientLike.
  redisKv({ callBuffer: async (..._args: unknown[]) => null });
  redisKv({ sendCommand: async (_args: string[]) => null });
  // A Deno KV-shaped object fits DenoKvLike.
  const op = {
    check: () => op,
    set: () => op,
    delete: () => op,
    commit: async () => ({ ok: true as const, versionstamp: "00000000000000010000" }),
  };
  denoKv({
    get: async () => ({ value: null, versionstamp: null }),
    list: () => ({ async *[Symbol.asyncIterator]() {} }),
    atomic: () => op,
  });

  // @ts-expect-error denoKv needs a Deno KV, not a string
  denoKv("kv.sqlite");
  // @ts-expect-error redisKv needs a client with callBuffer or sendCommand
  redisKv({ get: async () => null });
  // @ts-expect-error maxValueBytes is a number
  memoryKv({ maxValueBytes: 10 });
  // @ts-expect-error maxValueBytes is a number
  denoKv(deno, { maxValueBytes: "64k" });
}
