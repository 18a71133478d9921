import type { Env } from "../config/env.js";
import type { Logger } from "../lib/logger.js";
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

type ScheduleEnv = Pick<Env, "SEGMENT_REFRESH_CRON" | "SEGMENT_REFRESH_TZ" | "EXPORT_CLEANUP_INTERVAL_MINUTES" | "RETENTION_INTERVAL_MINUTES">;

/** Registers every recurring job: the nightly segment refresh, the export cleanup, the retention sweep and the webhook subscriptions sweep (idempotent). */
export async function registerSchedules(producer: Pick<Producer, "queue">, env: ScheduleEnv, log: Logger): Promise<void> {
  await producer.queue("segments").upsertJobScheduler(
    NIGHTLY_REFRESH_SCHEDULER_ID,
    { pattern: env.SEGMENT_REFRESH_CRON, tz: env.SEGMENT_REFRESH_TZ },
    { name: "segments.refresh_all", data: {}, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
  );
  await producer.queue("exports").upsertJobScheduler(
    EXPORT_CLEANUP_SCHEDULER_ID,
    { every: env.EXPORT_CLEANUP_INTERVAL_MINUTES * 60_000 },
    { name: "export.cleanup", data: {}, opts: { attempts: 3, backoff: { type: "exponential", delay: 10_000 } } },
  );
  await producer.queue("deletions").upsertJobScheduler(
    RETENTION_SWEEP_SCHEDULER_ID,
    { every: env.RETENTION_INTERVAL_MINUTES * 60_000 },
    { name: "retention.sweep", data: {}, opts: { attempts: 3, backoff: { type: "exponential", delay: 10_000 }, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
  );
  await producer.queue("webhooks").upsertJobScheduler(
    WEBHOOK_SWEEP_SCHEDULER_ID,
    { every: WEBHOOK_SWEEP_MS },
    { name: "webhooks.sweep_subscriptions", data: {}, opts: { removeOnComplete: true, removeOnFail: { count: 100 } } },
  );
  log.info(
    { segmentRefresh: { cron: env.SEGMENT_REFRESH_CRON, tz: env.SEGMENT_REFRESH_TZ }, exportCleanupMinutes: env.EXPORT_CLEANUP_INTERVAL_MINUTES, retentionSweepMinutes: env.RETENTION_INTERVAL_MINUTES },
    "recurring jobs scheduled",
  );
}
