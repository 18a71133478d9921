import { z } from "zod";

/**
 * The one contract between the API (producers) and the workers: every job name, the queue it runs on,
 * and its payload. Payloads carry ids only: job data sits in Redis in clear text.
 */
const id = z.string().uuid();

export const QUEUE_NAMES = ["imports", "imports-small", "segments", "exports", "webhooks", "deletions"] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export const JOBS = {
  /** Runs an import (a dry run when the import says so), resuming after its last committed batch. */
  "import.run": { queue: "imports", payload: z.object({ workspaceId: id, importId: id }).strict() },
  /** The same run for an import of a small file (IMPORT_SMALL_MAX_BYTES), in a lane of its own: it never waits behind big ones. */
  "import.small": { queue: "imports-small", payload: z.object({ workspaceId: id, importId: id }).strict() },
  /** Runs one part of an import split across workers (IMPORT_PARTS), resuming after the part's last committed batch. */
  "import.part": { queue: "imports", payload: z.object({ workspaceId: id, importId: id, part: z.number().int().min(0).max(63) }).strict() },
  /** POSTs the finished resource to its callbackUrl, signed; retried with backoff by BullMQ. */
  "webhook.deliver": {
    queue: "webhooks",
    payload: z.object({ workspaceId: id, resource: z.enum(["import", "export"]), resourceId: id }).strict(),
  },
  /** POSTs a webhook subscription's next batch of segment membership events; retried with backoff by BullMQ. */
  "webhook.subscription_deliver": { queue: "webhooks", payload: z.object({ workspaceId: id, subscriptionId: id }).strict() },
  /** Queues a delivery for every webhook subscription with undelivered events; run by a job scheduler. */
  "webhooks.sweep_subscriptions": { queue: "webhooks", payload: z.object({}).strict() },
  /** Recomputes one segment's membership (then queues the segments that use it). */
  "segment.recompute": { queue: "segments", payload: z.object({ workspaceId: id, segmentId: id }).strict() },
  /** Recomputes every dynamic segment of a workspace, dependencies first (after imports). */
  "segments.recompute_workspace": { queue: "segments", payload: z.object({ workspaceId: id }).strict() },
  /** The nightly refresh: queues a workspace recompute for every workspace with dynamic segments. */
  "segments.refresh_all": { queue: "segments", payload: z.object({}).strict() },
  /** Checks the values people hold under an attribute key against the type just declared for it (one check id per change). */
  "attribute.check": { queue: "segments", payload: z.object({ workspaceId: id, checkId: id }).strict() },
  /** Writes one export's CSV to storage; fenced so a retried or duplicated job cannot write it twice. */
  "export.run": { queue: "exports", payload: z.object({ workspaceId: id, exportId: id }).strict() },
  /** Deletes the files of expired exports (every workspace); run by a job scheduler. */
  "export.cleanup": { queue: "exports", payload: z.object({}).strict() },
  /** Erases the people of one deletion in batches; fenced and resumable like an import. */
  "deletion.run": { queue: "deletions", payload: z.object({ workspaceId: id, deletionId: id }).strict() },
  /** Undoes a contacts import (POST /v1/imports/:id/undo) in batches; fenced by the import and resumable. */
  "import.undo": { queue: "deletions", payload: z.object({ workspaceId: id, importId: id }).strict() },
  /** Deletes what is kept no longer than configured (every workspace); run by a job scheduler. */
  "retention.sweep": { queue: "deletions", payload: z.object({}).strict() },
} as const satisfies Record<string, { queue: QueueName; payload: z.ZodType }>;

export type JobName = keyof typeof JOBS;
export type JobPayload<N extends JobName> = z.infer<(typeof JOBS)[N]["payload"]>;

export const JOB_NAMES = Object.keys(JOBS) as JobName[];

export function isJobName(name: string): name is JobName {
  return Object.hasOwn(JOBS, name);
}

export function parsePayload<N extends JobName>(name: N, data: unknown): JobPayload<N> {
  return JOBS[name].payload.parse(data) as JobPayload<N>;
}
