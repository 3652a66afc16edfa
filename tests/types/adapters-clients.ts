// The real clients' own types fit the adapters' *Like types: @deno/kv's Kv, node-redis clients and
// clusters, ioredis clients and clusters, @upstash/redis's Redis. Compiled, never run:
//   node_modules/.bin/tsc -p tests/types/tsconfig.adapters-clients.json
// (skipLibCheck: the clients' own .d.ts need @types/node, which this project does not install;
// what is checked here is that their types are assignable to ours.)
import type { Kv } from "@deno/kv";
import type { RedisClientType, RedisClusterType } from "redis";
import type { Redis, Cluster } from "ioredis";
import type { Redis as Upstash } from "@upstash/redis";
import { denoKv, redisKv } from "agent-session/adapters";

declare const deno: Kv;
declare const nodeRedis: RedisClientType;
declare const nodeRedisCluster: RedisClusterType;
declare const ioredis: Redis;
declare const ioredisCluster: Cluster;
declare const upstash: Upstash;

denoKv(deno);
redisKv(nodeRedis);
redisKv(nodeRedisCluster);
redisKv(ioredis);
redisKv(ioredisCluster);
redisKv(upstash);
redisKv(upstash, { maxValueBytes: 4 * 1024 * 1024 });
