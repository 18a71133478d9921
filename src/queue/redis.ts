import { Redis, type RedisOptions } from "ioredis";

/** Producers fail fast: no offline queue, one try, 2 s to connect; the API answers 503 instead of hanging. */
export function createProducerConnection(url: string): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
}

/** Workers wait out outages: unlimited retries per command and reconnection forever (BullMQ requires this). */
export function createWorkerConnection(url: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 500, 5_000),
    ...extra,
  });
}

/** Resolves once the connection is ready (a fresh producer connection is still connecting); rejects after `ms`. */
export async function whenReady(redis: Redis, ms: number): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off("ready", onReady);
      reject(new Error(`redis not ready after ${ms} ms (${redis.status})`));
    }, ms);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once("ready", onReady);
  });
}
