import type { JobSchedulerTemplateOptions, RepeatOptions } from "bullmq";
import type { Env } from "../config/env.js";
import type { Logger } from "../lib/logger.js";
import type { JobName, QueueName } from "./jobs.js";
import type { Producer } from "./producer.js";

/**
 * Scheduler ids are fixed: BullMQ's upsertJobScheduler replaces the schedule (and its next job) under the same id,
 * so every worker process may register at start, N processes make one schedule each, and a changed setting applies.
 */
export const NIGHTLY_REFRESH_SCHEDULER_ID = "segments-nightly-refresh";
export const EXPORT_CLEANUP_SCHEDULER_ID = "export-cleanup";
export const RETENTION_SWEEP_SCHEDULER_ID = "retention-sweep";
export const WEBHOOK_SWEEP_SCHEDULER_ID = "webhook-subscriptions-sweep";
/** How often webhook subscriptions are checked for new membership events: the delay a receiver sees, at most. */
const WEBHOOK_SWEEP_MS = 2_000;

export type ScheduleEnv = Pick<Env, "SEGMENT_REFRESH_CRON" | "SEGMENT_REFRESH_TZ" | "EXPORT_CLEANUP_INTERVAL_MINUTES" | "RETENTION_INTERVAL_MINUTES">;

interface Schedule {
  id: string;
  queue: QueueName;
  job: JobName;
  repeat: Omit<RepeatOptions, "key">;
  opts: JobSchedulerTemplateOptions;
}

/** Every recurring job, from the settings: one table read by the start registration and by the reconciler's restore. */
export function schedulesFor(env: ScheduleEnv): Schedule[] {
  const retried = { attempts: 3, backoff: { type: "exponential", delay: 10_000 } };
  return [
    {
      id: NIGHTLY_REFRESH_SCHEDULER_ID,
      queue: "segments",
      job: "segments.refresh_all",
      repeat: { pattern: env.SEGMENT_REFRESH_CRON, tz: env.SEGMENT_REFRESH_TZ },
      opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
    },
    { id: EXPORT_CLEANUP_SCHEDULER_ID, queue: "exports", job: "export.cleanup", repeat: { every: env.EXPORT_CLEANUP_INTERVAL_MINUTES * 60_000 }, opts: retried },
    {
      id: RETENTION_SWEEP_SCHEDULER_ID,
      queue: "deletions",
      job: "retention.sweep",
      repeat: { every: env.RETENTION_INTERVAL_MINUTES * 60_000 },
      opts: { ...retried, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
    },
    {
      id: WEBHOOK_SWEEP_SCHEDULER_ID,
      queue: "webhooks",
      job: "webhooks.sweep_subscriptions",
      repeat: { every: WEBHOOK_SWEEP_MS },
      opts: { removeOnComplete: true, removeOnFail: { count: 100 } },
    },
  ];
}

async function upsert(producer: Pick<Producer, "queue">, s: Schedule): Promise<void> {
  await producer.queue(s.queue).upsertJobScheduler(s.id, s.repeat, { name: s.job, data: {}, opts: s.opts });
}

/** Registers every recurring job: the nightly segment refresh, the export cleanup, the retention sweep and the webhook subscriptions sweep (idempotent). */
export async function registerSchedules(producer: Pick<Producer, "queue">, env: ScheduleEnv, log: Logger): Promise<void> {
  for (const s of schedulesFor(env)) await upsert(producer, s);
  log.info(
    { segmentRefresh: { cron: env.SEGMENT_REFRESH_CRON, tz: env.SEGMENT_REFRESH_TZ }, exportCleanupMinutes: env.EXPORT_CLEANUP_INTERVAL_MINUTES, retentionSweepMinutes: env.RETENTION_INTERVAL_MINUTES },
    "recurring jobs scheduled",
  );
}

/**
 * Re-registers the recurring jobs Redis no longer holds (restarted empty, FLUSHALL, a failover to an empty replica):
 * otherwise they stay gone until a worker restarts. Only the missing ones are upserted, so a present schedule's next
 * run is left where it is. Returns the ids restored.
 */
export async function restoreMissingSchedules(producer: Pick<Producer, "queue">, env: ScheduleEnv, log: Logger): Promise<string[]> {
  const restored: string[] = [];
  for (const s of schedulesFor(env)) {
    if (await producer.queue(s.queue).getJobScheduler(s.id)) continue;
    await upsert(producer, s);
    restored.push(s.id);
    log.warn({ scheduler: s.id, queue: s.queue, job: s.job }, "recurring job was missing from Redis; re-registered");
  }
  return restored;
}
