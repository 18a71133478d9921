import { z } from "zod";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");

const concurrency = z.coerce.number().int().min(1).max(64);

/** Every setting Roster reads from the environment. Defaults work against the local services; no secret has a default. */
export const envSchema = z
  .object({
    NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
    DATABASE_URL: z.string().url().default("postgres://postgres@127.0.0.1:5432/roster"),
    REDIS_URL: z.string().url().default("redis://127.0.0.1:6379"),
    /** A Redis Cluster's seed nodes, "host:port,host:port"; when set, Roster connects to the cluster (REDIS_URL gives only credentials and TLS). */
    REDIS_CLUSTER_NODES: z
      .string()
      .regex(/^\s*[^\s,:]+:\d+\s*(,\s*[^\s,:]+:\d+\s*)*$/, "host:port,host:port")
      .optional(),
    HOST: z.string().min(1).default("127.0.0.1"),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    /** A worker-only process serves its own /metrics on this port (its job and row counters live there); unset: no listener. */
    WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
    ADMIN_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
    /** The queue dashboard shows jobs but offers no retry/clean/promote/remove actions. */
    DASHBOARD_READ_ONLY: bool.default(false),
    /** Requests per workspace per window on /v1 (429 with Retry-After beyond it); 0 turns the limit off. */
    RATE_LIMIT_MAX: z.coerce.number().int().min(0).default(1200),
    RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(1000).default(60_000),
    /** memory: each API process counts on its own; redis: the count is shared by every API process. */
    RATE_LIMIT_STORE: z.enum(["memory", "redis"]).default("memory"),
    /**
     * API keys found valid are kept in memory so a request needs no lookup; a revocation reaches every API process at
     * once (LISTEN/NOTIFY, see ApiKeyCache). This bounds an entry's life for the one case no event reports, a listening
     * connection that died silently; 0 turns the cache off (every request reads api_keys).
     */
    API_KEY_CACHE_TTL_MS: z.coerce.number().int().min(0).default(60_000),
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    QUEUE_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_{}-]+$/, "letters, digits, _ - { } only")
      .default("{roster}"),
    STORAGE_DRIVER: z.enum(["local", "s3"]).default("local"),
    STORAGE_DIR: z.string().min(1).default("./.data/storage"),
    S3_BUCKET: z.string().optional(),
    S3_REGION: z.string().default("us-east-1"),
    S3_ENDPOINT: z.string().url().optional(),
    S3_ACCESS_KEY_ID: z.string().optional(),
    S3_SECRET_ACCESS_KEY: z.string().optional(),
    S3_FORCE_PATH_STYLE: bool.default(false),
    S3_CHECKSUM: z.enum(["WHEN_SUPPORTED", "WHEN_REQUIRED"]).default("WHEN_REQUIRED"),
    UPLOAD_MAX_BYTES: z.coerce.number().int().positive().default(2 * 1024 ** 3),
    /** An upload body that stops arriving this long is aborted (408, nothing kept); 0 turns the guard off. */
    UPLOAD_IDLE_TIMEOUT_MS: z.coerce.number().int().min(0).default(30_000),
    PASTE_MAX_BYTES: z.coerce.number().int().positive().default(10 * 1024 ** 2),
    IMPORT_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(10_000),
    /**
     * Largest CSV record (row) an import parses; a larger one is a record_too_large row error. The parser holds a record
     * whole (≈ 8× its size in RSS at the limit), so this bounds a worker's memory; as big as a whole batch (16 MiB).
     */
    IMPORT_MAX_RECORD_BYTES: z.coerce.number().int().min(1024).max(1024 ** 3).default(16 * 1024 ** 2),
    IMPORT_CONCURRENCY: concurrency.default(2),
    /**
     * The small-import lane: an import whose stored file (after its header) is at most this many bytes runs on a queue
     * of its own (`imports-small`), with IMPORT_SMALL_CONCURRENCY slots per worker beside IMPORT_CONCURRENCY, so it never
     * waits for a big import's slot and no big import gives its slot up for it; 0: no lane (every import on `imports`).
     */
    IMPORT_SMALL_MAX_BYTES: z.coerce.number().int().min(0).default(1024 * 1024),
    IMPORT_SMALL_CONCURRENCY: concurrency.default(1),
    /**
     * A running import that has held its slot this long gives it up after its next committed batch when other imports
     * wait on its queue, and resumes from its checkpoint behind them (no import waits for another to end); 0: never.
     */
    IMPORT_TIME_SLICE_MS: z.coerce.number().int().min(0).default(2_000),
    IMPORT_PARSE_THREAD_MIN_BYTES: z.coerce.number().int().min(0).default(4 * 1024 * 1024),
    IMPORT_PARSE_THREAD_HEAP_MB: z.coerce.number().int().min(8).default(96),
    /** A contacts or team-member import of at least IMPORT_PART_MIN_BYTES is split into this many parts, one job each (1: never split). */
    IMPORT_PARTS: z.coerce.number().int().min(1).max(64).default(1),
    IMPORT_PART_MIN_BYTES: z.coerce.number().int().min(0).default(64 * 1024 * 1024),
    ANALYZE_AFTER_ROWS: z.coerce.number().int().min(1).default(50_000),
    SEGMENT_CONCURRENCY: concurrency.default(2),
    EXPORT_CONCURRENCY: concurrency.default(1),
    WEBHOOK_CONCURRENCY: concurrency.default(4),
    DELETION_CONCURRENCY: concurrency.default(1),
    /** People erased per deletion batch (one transaction each; a crash redoes at most one batch). */
    DELETION_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(1_000),
    /** Hours an import's upload is kept after the import ends (done, failed, cancelled); 0 deletes it at once. Team-member uploads: always at once. */
    UPLOAD_RETENTION_HOURS: z.coerce.number().min(0).max(24 * 3650).default(24),
    /** Hours a draft (or a dry-run-only import) may sit untouched before it is deleted with its upload. */
    DRAFT_RETENTION_HOURS: z.coerce.number().positive().max(24 * 3650).default(168),
    /** Hours an Idempotency-Key (and the response it replays) is kept. */
    IDEMPOTENCY_KEY_TTL_HOURS: z.coerce.number().positive().max(24 * 3650).default(24),
    /** How often the retention sweep runs (uploads, drafts, failed rows' cells, idempotency keys, expired exports). */
    RETENTION_INTERVAL_MINUTES: z.coerce.number().int().min(1).max(24 * 60).default(15),
    /** Signs webhooks; each workspace's secret is derived from it (nothing is stored). Unset: callbackUrl is refused. */
    WEBHOOK_SIGNING_KEY: z.string().min(32, "must be at least 32 characters").optional(),
    WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(30).default(8),
    /** First retry delay; doubles per attempt (8 attempts at 5 s span about 10 minutes). */
    WEBHOOK_BACKOFF_MS: z.coerce.number().int().min(10).default(5_000),
    WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
    /** Days an export file stays downloadable before the cleanup job deletes it. */
    EXPORT_TTL_DAYS: z.coerce.number().positive().max(3650).default(7),
    /** Longest one export run may take (its statement_timeout and a client-side deadline); a big COPY outlives DB_STATEMENT_TIMEOUT_MS. */
    EXPORT_TIMEOUT_MS: z.coerce.number().int().min(1000).default(3_600_000),
    /** How often the export cleanup job runs (it is idempotent: a missed run only delays deletion). */
    EXPORT_CLEANUP_INTERVAL_MINUTES: z.coerce.number().int().min(1).max(24 * 60).default(60),
    DB_POOL_MAX: z.coerce.number().int().min(2).max(200).default(10),
    DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(1000).default(300_000),
    /**
     * Client-side bound on one import batch (statements are also bounded by DB_STATEMENT_TIMEOUT_MS); a stuck batch fails
     * and is retried from the checkpoint. Also the backstop for a connection that died between two statements of a batch:
     * postgres.js then never settles the next query. A healthy batch takes seconds.
     */
    IMPORT_BATCH_TIMEOUT_MS: z.coerce.number().int().min(1000).default(300_000),
    /** How long a worker's job lock lasts without renewal before another worker takes the job over (stalled). */
    WORKER_LOCK_MS: z.coerce.number().int().min(2_000).max(600_000).default(30_000),
    /** Times a job may stall (its worker died) before BullMQ fails it; the import then says failed and a start resumes it. */
    WORKER_MAX_STALLED_COUNT: z.coerce.number().int().min(0).max(100).default(5),
    /** Workers re-enqueue work Postgres shows as queued/running with no live job, at start and this often (0: only at start). */
    RECONCILE_INTERVAL_MS: z.coerce.number().int().min(0).default(60_000),
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).default(25_000),
    /** A segment preview runs under this statement timeout; beyond it the client gets 422 preview_timeout. */
    SEGMENT_PREVIEW_TIMEOUT_MS: z.coerce.number().int().min(1).default(10_000),
    /** The nightly refresh of every dynamic segment (a BullMQ job scheduler: cron pattern and IANA time zone). */
    SEGMENT_REFRESH_CRON: z.string().min(9).default("0 3 * * *"),
    SEGMENT_REFRESH_TZ: z
      .string()
      .refine((tz) => {
        try {
          new Intl.DateTimeFormat("en", { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, "must be an IANA time zone such as UTC or Europe/Paris")
      .default("UTC"),
  })
  .superRefine((env, ctx) => {
    if (env.STORAGE_DRIVER === "s3" && !env.S3_BUCKET) {
      ctx.addIssue({ code: "custom", path: ["S3_BUCKET"], message: "is required when STORAGE_DRIVER=s3" });
    }
  });

export type Env = z.infer<typeof envSchema>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses the environment once; a bad value throws a ConfigError naming every offending variable. */
export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== ""));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${lines.join("\n  ")}`);
  }
  return parsed.data;
}
