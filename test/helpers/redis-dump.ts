import { Cluster } from "ioredis";
import type { RedisClient } from "../../src/queue/redis.js";

/** Every value stored under a queue prefix, as text: tests assert that secrets never reach Redis. */
export async function dumpRedis(redis: RedisClient, prefix: string): Promise<string> {
  const keys: string[] = [];
  // SCAN walks one node: in a cluster, walk every master.
  for (const node of redis instanceof Cluster ? redis.nodes("master") : [redis]) {
    let cursor = "0";
    do {
      const [next, batch] = await node.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== "0");
  }
  const parts: string[] = [];
  for (const key of keys) {
    const type = await redis.type(key);
    if (type === "string") parts.push(String(await redis.get(key)));
    else if (type === "hash") parts.push(JSON.stringify(await redis.hgetall(key)));
    else if (type === "list") parts.push(JSON.stringify(await redis.lrange(key, 0, -1)));
    else if (type === "set") parts.push(JSON.stringify(await redis.smembers(key)));
    else if (type === "zset") parts.push(JSON.stringify(await redis.zrange(key, 0, -1, "WITHSCORES")));
    else if (type === "stream") parts.push(JSON.stringify(await redis.xrange(key, "-", "+")));
    parts.push(key);
  }
  return parts.join("\n");
}
