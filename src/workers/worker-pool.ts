import { DelayedError, MetricsTime, Queue, UnrecoverableError, Worker, type Job } from "bullmq";
import { Cluster } from "ioredis";
import type { Env } from "../config/env.js";
import type { Logger } from "../lib/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import { JOB_NAMES, JOBS, QUEUE_NAMES, isJobName, parsePayload, type JobName, type JobPayload, type QueueName } from "../queue/jobs.js";
import { createWorkerConnection, type RedisClient } from "../queue/redis.js";
import { isFinalFailure } from "./run-processor.js";
import type { Processors } from "./types.js";
import { withTimeout } from "../lib/timeout.js";

/** A forced close only drops connections; past this, a Redis that is gone cannot hold the shutdown up. */
const FORCED_CLOSE_MS = 1_000;
/** Minutes of BullMQ's per-queue completed/failed counts kept in Redis (a few hundred KB per queue). */
const METRICS_DATA_POINTS = MetricsTime.ONE_WEEK;

/**
 * Called when BullMQ will not run a job again, including when it fails a job that stalled too often without calling
 * the processor at all: the owner of the job's durable state must say so (an import must not stay "processing").
 */
export type GaveUpHandlers = { [N in JobName]?: (payload: JobPayload<N>, reason: string) => Promise<void> };

export interface WorkerPool {
  workers: Worker[];
  close(): Promise<void>;
}

/** Fails at startup when a job kind has no processor (or a processor has no job kind). */
export function assertProcessorsComplete(processors: Partial<Record<string, unknown>>): asserts processors is Processors {
  const missing = JOB_NAMES.filter((n) => typeof processors[n] !== "function");
  const extra = Object.keys(processors).filter((n) => !isJobName(n));
  if (missing.length || extra.length) {
    throw new Error(`Job processors do not match the job contract: missing [${missing.join(", ")}], unknown [${extra.join(", ")}]`);
  }
}

function concurrencyFor(env: Env, q: QueueName): number {
  return { imports: env.IMPORT_CONCURRENCY, "imports-small": env.IMPORT_SMALL_CONCURRENCY, segments: env.SEGMENT_CONCURRENCY, exports: env.EXPORT_CONCURRENCY, webhooks: env.WEBHOOK_CONCURRENCY, deletions: env.DELETION_CONCURRENCY }[q];
}

/** Logs loudly when Redis may evict BullMQ keys: jobs would vanish silently. */
export async function checkEvictionPolicy(redis: RedisClient, log: Logger): Promise<void> {
  try {
    // In a cluster every master holds keys (ours sit in one slot, which may move): ask each one.
    const nodes = redis instanceof Cluster ? redis.nodes("master") : [redis];
    for (const node of nodes) {
      const res = (await node.config("GET", "maxmemory-policy")) as string[];
      const policy = res[1];
      if (policy && policy !== "noeviction") {
        log.error({ policy, node: `${node.options.host}:${node.options.port}` }, `Redis maxmemory-policy is '${policy}': set it to 'noeviction' or queued jobs can be lost`);
      }
    }
  } catch (err) {
    log.warn({ err: (err as Error).message }, "could not read Redis maxmemory-policy (CONFIG may be disabled); make sure it is 'noeviction'");
  }
}

export async function startWorkers(
  env: Env,
  log: Logger,
  processors: Partial<Record<string, unknown>>,
  opts: { queues?: readonly QueueName[]; metrics?: Metrics; onGaveUp?: GaveUpHandlers } = {},
): Promise<WorkerPool> {
  assertProcessorsComplete(processors);
  const connection = createWorkerConnection(env);
  connection.on("error", (err) => log.warn({ err: err.message }, "redis worker connection error"));
  await checkEvictionPolicy(connection, log);
  const shutdown = new AbortController();

  // One per queue, on the pool's connection: how many jobs wait for a slot (an import's time slice asks).
  const counters: Queue[] = [];
  const workers = (opts.queues ?? QUEUE_NAMES).map((queueName) => {
    const counter = new Queue(queueName, { connection, prefix: env.QUEUE_PREFIX });
    counters.push(counter);
    const waiting = () => counter.getJobCountByTypes("waiting", "prioritized");
    const worker = new Worker(
      queueName,
      async (job: Job, token?: string) => {
        if (!isJobName(job.name) || JOBS[job.name].queue !== queueName) {
          throw new UnrecoverableError(`No processor for job '${job.name}' on queue '${queueName}'`);
        }
        const name: JobName = job.name;
        let payload;
        try {
          payload = parsePayload(name, job.data);
        } catch (err) {
          throw new UnrecoverableError(`Invalid payload for ${name}: ${(err as Error).message}`);
        }
        const jobLog = log.child({ queue: queueName, job: name, jobId: job.id, ...payload });
        const processor = processors[name] as (p: unknown, c: unknown) => Promise<unknown>;
        return processor(payload, { job, token, log: jobLog, signal: shutdown.signal, waiting });
      },
      {
        connection,
        prefix: env.QUEUE_PREFIX,
        concurrency: concurrencyFor(env, queueName),
        // A job whose lock is not renewed for this long is stalled and handed to another worker; checked as often.
        lockDuration: env.WORKER_LOCK_MS,
        stalledInterval: env.WORKER_LOCK_MS,
        // Two crashes in a row must not fail an import (processors resume from Postgres checkpoints); default 5.
        maxStalledCount: env.WORKER_MAX_STALLED_COUNT,
        // BullMQ's own completed/failed counts (bullmq_job_completed_total, bullmq_job_failed_total on /metrics),
        // kept per minute in Redis for a week.
        metrics: { maxDataPoints: METRICS_DATA_POINTS },
      },
    );
    // Per attempt, from when this attempt started: a retried job is observed once per attempt.
    const observe = (job: Job | undefined, outcome: "completed" | "failed") => {
      if (opts.metrics && job?.processedOn) {
        opts.metrics.jobDuration.observe({ queue: queueName, job: job.name, outcome }, Math.max(0, Date.now() - job.processedOn) / 1000);
      }
    };
    worker.on("completed", (job) => observe(job, "completed"));
    worker.on("failed", (job, err) => {
      if (err instanceof DelayedError || err.name === "DelayedError") return;
      observe(job, "failed");
      log.warn({ queue: queueName, job: job?.name, jobId: job?.id, attemptsMade: job?.attemptsMade, err }, "job failed");
      if (job && isFinalFailure(job, err)) void gaveUp(job, err.message);
    });
    const gaveUp = async (job: Job, reason: string) => {
      if (!isJobName(job.name)) return;
      const handler = opts.onGaveUp?.[job.name] as ((p: unknown, r: string) => Promise<void>) | undefined;
      if (!handler) return;
      try {
        await handler(parsePayload(job.name, job.data), reason);
      } catch (e) {
        log.error({ queue: queueName, jobId: job.id, err: (e as Error).message }, "could not record that a job gave up");
      }
    };
    worker.on("error", (err) => log.warn({ queue: queueName, err: err.message }, "worker error"));
    return worker;
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  log.info({ queues: opts.queues ?? QUEUE_NAMES }, "workers started");

  return {
    workers,
    async close() {
      shutdown.abort();
      const late = new Error("workers did not close in time");
      await withTimeout(Promise.all(workers.map((w) => w.close())), env.SHUTDOWN_TIMEOUT_MS, () => late).catch((err: unknown) => {
        if (err !== late) throw err;
        log.warn({ timeoutMs: env.SHUTDOWN_TIMEOUT_MS }, "workers did not close in time; forcing");
      });
      await withTimeout(Promise.all(workers.map((w) => w.close(true))), FORCED_CLOSE_MS, () => new Error("forced close timed out")).catch(() => {});
      await withTimeout(Promise.all(counters.map((q) => q.close())), FORCED_CLOSE_MS, () => new Error("queue close timed out")).catch(() => {});
      connection.disconnect();
    },
  };
}
