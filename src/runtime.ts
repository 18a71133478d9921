import type { Env } from "./config/env.js";
import { createDb, type Db } from "./db/client.js";
import { ApiKeyCache } from "./domain/workspaces/api-key-cache.js";
import { ensureDatabase, runMigrations } from "./db/migrate.js";
import type { Logger } from "./lib/logger.js";
import { createMetrics, type Metrics } from "./metrics/metrics.js";
import { createProducer, type Producer } from "./queue/producer.js";
import { createProducerConnection, type RedisClient } from "./queue/redis.js";
import { createStorage } from "./storage/create.js";
import type { Storage } from "./storage/storage.js";

/** The long-lived resources every process role shares. */
export interface Runtime {
  env: Env;
  logger: Logger;
  db: Db;
  redis: RedisClient;
  producer: Producer;
  storage: Storage;
  /** This process's Prometheus registry and instruments. */
  metrics: Metrics;
  /** Valid API keys seen recently; its LISTEN connection opens on the first authenticated request (the API's only). */
  apiKeys: ApiKeyCache;
  close(): Promise<void>;
}

/** Migrates (under the advisory lock) and opens the pools; throws when the database cannot be migrated. */
export async function createRuntime(env: Env, logger: Logger, opts: { migrate?: boolean } = {}): Promise<Runtime> {
  if (opts.migrate ?? true) {
    await ensureDatabase(env.DATABASE_URL);
    await runMigrations(env.DATABASE_URL, undefined, logger);
    logger.info("database migrated");
  }
  const db = createDb(env.DATABASE_URL, { max: env.DB_POOL_MAX, statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS });
  const redis = createProducerConnection(env);
  // Producer connection errors are expected during outages; requests answer 503 meanwhile.
  redis.on("error", (err) => logger.debug({ err: err.message }, "redis producer connection error"));
  const producer = createProducer(redis, env.QUEUE_PREFIX, logger, { smallImportMaxBytes: env.IMPORT_SMALL_MAX_BYTES });
  const storage = createStorage(env);
  const apiKeys = new ApiKeyCache(env.DATABASE_URL, { ttlMs: env.API_KEY_CACHE_TTL_MS, log: logger });
  return {
    env,
    logger,
    db,
    redis,
    producer,
    storage,
    metrics: createMetrics(),
    apiKeys,
    async close() {
      await apiKeys.close();
      await producer.close().catch(() => {});
      redis.disconnect();
      await db.$client.end({ timeout: 5 });
    },
  };
}
