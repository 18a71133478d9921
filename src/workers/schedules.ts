import type { Env } from "../config/env.js";
import type { Logger } from "../lib/logger.js";
import type { Producer } from "../queue/producer.js";

/** One fixed id: upserting it from every worker process that starts leaves exactly one schedule. */
export const NIGHTLY_REFRESH_SCHEDULER_ID = "segments-nightly-refresh";

/**
 * Registers the recurring jobs. BullMQ's upsertJobScheduler is idempotent per scheduler id (it replaces the
 * schedule and its next job), so N processes starting make one schedule, and a changed cron takes effect.
 */
export async function registerSchedules(producer: Pick<Producer, "queue">, env: Pick<Env, "SEGMENT_REFRESH_CRON" | "SEGMENT_REFRESH_TZ">, log: Logger): Promise<void> {
  await producer.queue("segments").upsertJobScheduler(
    NIGHTLY_REFRESH_SCHEDULER_ID,
    { pattern: env.SEGMENT_REFRESH_CRON, tz: env.SEGMENT_REFRESH_TZ },
    { name: "segments.refresh_all", data: {}, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
  );
  log.info({ scheduler: NIGHTLY_REFRESH_SCHEDULER_ID, cron: env.SEGMENT_REFRESH_CRON, tz: env.SEGMENT_REFRESH_TZ }, "nightly segment refresh scheduled");
}
