import type { Env } from "../config/env.js";
import type { Producer } from "./producer.js";

/** Scheduler ids are fixed: upserting the same id again updates it, so every worker start may call this. */
export const EXPORT_CLEANUP_SCHEDULER_ID = "export-cleanup";

/** Registers the recurring jobs (idempotent). */
export async function ensureSchedules(producer: Producer, env: Pick<Env, "EXPORT_CLEANUP_INTERVAL_MINUTES">): Promise<void> {
  await producer.queue("exports").upsertJobScheduler(
    EXPORT_CLEANUP_SCHEDULER_ID,
    { every: env.EXPORT_CLEANUP_INTERVAL_MINUTES * 60_000 },
    { name: "export.cleanup", data: {}, opts: { attempts: 3, backoff: { type: "exponential", delay: 10_000 } } },
  );
}
