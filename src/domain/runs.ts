/**
 * The life cycle every kind of job-backed run shares (imports, exports, segment recomputes, webhook deliveries, and
 * any kind added later): each kind's module owns its statuses, job id, enqueue, `fail` and its stranded-run query,
 * and exposes them through these interfaces. src/workers/run-processor.ts drives `fail` when a job fails for good;
 * src/workers/reconciler.ts drives `stranded` and `requeue`. Nothing here knows BullMQ.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import type { Producer } from "../queue/producer.js";
import type { QueueName } from "../queue/jobs.js";
import type { WebhookResource } from "./webhooks/resources.js";

export type Enqueuer = Pick<Producer, "enqueue">;
/** What the reconciler queues runs with: the enqueue, and the size that sends an import to the small-import lane. */
export type RunEnqueuer = Pick<Producer, "enqueue" | "smallImportMaxBytes">;

/** One run, named the way every kind can: its row and the workspace it belongs to. */
export interface RunRef {
  workspaceId: string;
  id: string;
}

/** Why the queue will not run a job again. */
export type FinalFailure =
  /** The run threw on its last attempt. */
  | { cause: "attempts"; attempts: number; message: string }
  /** BullMQ failed the job without the run (it stalled more than WORKER_MAX_STALLED_COUNT times). */
  | { cause: "gave_up"; message: string }
  /** The reconciler found the job failed while Postgres still shows the run active (no worker could say so). */
  | { cause: "job_failed"; message: string | undefined };

/** What the processor wrapper needs of a kind: ending a run for good, and what a finished run announces. */
export interface RunOwner {
  /**
   * Ends the run for good with a reason built from `failure`; true only when this call changed the row. Absent for
   * kinds whose runs start over from scratch (a segment recompute): their lost or failed jobs are queued again.
   */
  fail?(db: Db, run: RunRef, failure: FinalFailure): Promise<boolean>;
  /** Statuses (and run outcomes) in which a run has ended and is announced to its callbackUrl. */
  readonly final: readonly string[];
  /** The resource a finished run announces, when the kind has webhooks. */
  readonly webhook?: WebhookResource;
}

/** A run Postgres shows queued or running, with the job ids under which a live job means it is not stranded. */
export interface StrandedRun extends RunRef {
  status: string;
  /** Its own job first; then any job that would run it too (a workspace recompute runs each of its segments). */
  jobIds: string[];
  /** When it was queued (imports: the job id derives from it, and a requeue checks it is unchanged). */
  queuedAt?: Date;
}

/** What the reconciler needs of a kind besides: its stranded runs and how to queue one again. */
export interface RunKind extends RunOwner {
  /** Name in logs and reconcile results. */
  readonly name: string;
  /** Noun in log messages and keys ("import had no live job", `importId`). */
  readonly noun: string;
  /** The queues its jobs run on (an import's: the lane its file's size chose, and the parts' queue). */
  readonly queues: readonly QueueName[];
  /** Runs active in Postgres for longer than `graceMs` (younger ones may be between their update and enqueue). */
  stranded(db: Db, graceMs: number): Promise<StrandedRun[]>;
  /** Queues the run again; false when it changed meanwhile (nothing queued). */
  requeue(db: Db, producer: RunEnqueuer, run: StrandedRun): Promise<boolean>;
  /** A requeue reuses the job id: a finished job under it must be removed first or it would swallow the new one. */
  readonly reusesJobId: boolean;
}

/** True when `status` is in `set` (a named status set of some kind). */
export function isIn<S extends string>(set: readonly S[], status: string): status is S {
  return (set as readonly string[]).includes(status);
}

/** `now()` less `ms`, in SQL: the cut-off of a stranded-run query. */
export const olderThan = (ms: number) => sql`now() - make_interval(secs => ${ms / 1000})`;
