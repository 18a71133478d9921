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
