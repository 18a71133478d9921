import { Queue, type JobsOptions } from "bullmq";
import type { Logger } from "../lib/logger.js";
import { UnavailableError } from "../domain/errors.js";
import { whenReady, type RedisClient } from "./redis.js";
import { JOBS, QUEUE_NAMES, parsePayload, type JobName, type JobPayload, type QueueName } from "./jobs.js";
import { withTimeout } from "../lib/timeout.js";

/** How long an enqueue may take before the caller is told the queue is unavailable: the API must answer 503 within 2 s. */
const ENQUEUE_TIMEOUT_MS = 1_500;

/** Finished jobs are trimmed: Postgres holds the durable record, Redis only what dashboards need. */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: "exponential", delay: 2_000 },
  removeOnComplete: { age: 24 * 3600, count: 1_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 5_000 },
};

export interface EnqueueOptions {
  jobId?: string;
  delay?: number;
  /** Overrides of DEFAULT_JOB_OPTIONS for jobs with their own retry policy (e.g. webhook deliveries). */
  attempts?: number;
  backoffMs?: number;
  /** For jobs deduplicated by jobId: a finished job must not linger, or it would swallow the next request. */
  removeWhenFinished?: boolean;
}

export interface Producer {
  /** IMPORT_SMALL_MAX_BYTES: an import of a file this small runs in the small-import lane (0: no lane). */
  readonly smallImportMaxBytes: number;
  enqueue<N extends JobName>(name: N, payload: JobPayload<N>, opts?: EnqueueOptions): Promise<void>;
  queue(name: QueueName): Queue;
  close(): Promise<void>;
}

export function createProducer(connection: RedisClient, prefix: string, log: Logger, opts: { smallImportMaxBytes?: number } = {}): Producer {
  const queues = new Map<QueueName, Queue>(
    QUEUE_NAMES.map((q) => {
      const queue = new Queue(q, { connection, prefix, defaultJobOptions: DEFAULT_JOB_OPTIONS });
      // Without a listener BullMQ prints connection errors with console.error; outages are expected and logged once per error.
      queue.on("error", (err) => log.debug({ queue: q, err: err.message }, "queue connection error"));
      return [q, queue];
    }),
  );
  const queue = (name: QueueName): Queue => {
    const q = queues.get(name);
    if (!q) throw new Error(`Unknown queue ${name}`);
    return q;
  };
  return {
    smallImportMaxBytes: opts.smallImportMaxBytes ?? 0,
    queue,
    async enqueue(name, payload, opts = {}) {
      const data = parsePayload(name, payload);
      const add = async () => {
        await whenReady(connection, ENQUEUE_TIMEOUT_MS);
        await queue(JOBS[name].queue).add(name, data, {
          jobId: opts.jobId,
          delay: opts.delay,
          ...(opts.attempts ? { attempts: opts.attempts } : {}),
          ...(opts.backoffMs ? { backoff: { type: "exponential", delay: opts.backoffMs } } : {}),
          ...(opts.removeWhenFinished ? { removeOnComplete: true, removeOnFail: true } : {}),
        });
      };
      try {
        await withTimeout(add(), ENQUEUE_TIMEOUT_MS, () => new Error("enqueue timed out"));
      } catch (err) {
        throw new UnavailableError("queue_unavailable", "The job queue is unavailable; try again shortly.", {
          cause: err instanceof Error ? err.message : String(err),
        });
      }
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}
