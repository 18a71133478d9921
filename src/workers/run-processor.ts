/**
 * The one wrapper around every job-backed run (imports, exports, webhook deliveries, and kinds to come). A run
 * returns its outcome; the wrapper does the rest, the same way for every kind:
 * - shutdown: an `interrupted` run puts its job back (no attempt used) to resume or start over elsewhere;
 * - time slice: a `yielded` run (it gave its slot up to waiting work) puts its job at the back of the queue, no
 *   attempt used, to resume behind the jobs that waited;
 * - final failure: the last attempt's error, or BullMQ giving up on a job that stalled too often (the processor
 *   never runs then; see gaveUpHandler), ends the run for good through its kind's `fail`;
 * - webhooks: a run that ended (its kind's final statuses), or that `fail` changed, is announced to its callbackUrl.
 */
import { DelayedError, type Job } from "bullmq";
import type { Db } from "../db/client.js";
import type { FinalFailure, RunOwner, RunRef } from "../domain/runs.js";
import type { WebhookResource } from "../domain/webhooks/resources.js";
import type { Logger } from "../lib/logger.js";
import type { JobName, JobPayload } from "../queue/jobs.js";
import type { JobContext, Processor } from "./types.js";

/** How long an interrupted job waits before another worker may take it. */
const INTERRUPTED_DELAY_MS = 1_000;

/** Queues the announcement of a resource that ended to its callbackUrl (if it has one). */
export type Announce = (target: { workspaceId: string; resource: WebhookResource; id: string }) => Promise<void>;

export interface RunContext extends JobContext {
  /** No retry follows this attempt (a run that records attempts, like a webhook delivery, says so on the last). */
  lastAttempt: boolean;
}

export interface RunSpec<N extends JobName> {
  /** The kind the job runs: its `fail`, final statuses and webhook resource. */
  owner(payload: JobPayload<N>): RunOwner;
  /** The row the job runs. */
  ref(payload: JobPayload<N>): RunRef;
  /** One attempt; returns the outcome (`interrupted` on shutdown, `yielded` when it gave its slot up, a final status when the run ended). */
  run(payload: JobPayload<N>, ctx: RunContext): Promise<string>;
  /** After a finished run was announced (e.g. segments refreshed after an import); its errors fail the attempt. */
  afterFinished?(payload: JobPayload<N>, outcome: string, ctx: RunContext): Promise<void>;
  /**
   * Once the run has ended, however it ended (a final outcome, or its kind's `fail`): what must not outlive it (an
   * import's upload). Best effort: it logs its own errors, and a sweep catches up.
   */
  ended?(payload: JobPayload<N>, log: Logger): Promise<void>;
}

export interface RunProcessorDeps {
  db: Db;
  announce: Announce;
}

/** This attempt is the job's last: BullMQ will not retry it. */
export function isLastAttempt(job: Job): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/** BullMQ will not run a failed job again: an unrecoverable error (a stalled-too-often job fails as one) or no attempts left. */
export function isFinalFailure(job: Job, err: Error): boolean {
  return err.name === "UnrecoverableError" || Boolean(job.deferredFailure) || job.attemptsMade >= (job.opts.attempts ?? 1);
}

/** Ends a run for good; when that changed its row, announces it. A webhook that cannot be queued is logged, never thrown. */
async function failForGood<N extends JobName>(deps: RunProcessorDeps, spec: Pick<RunSpec<N>, "owner" | "ref" | "ended">, payload: JobPayload<N>, failure: FinalFailure, log: Logger): Promise<void> {
  const owner = spec.owner(payload);
  const ref = spec.ref(payload);
  if (!owner.fail || !(await owner.fail(deps.db, ref, failure))) return;
  log.warn({ runId: ref.id, workspaceId: ref.workspaceId, cause: failure.cause }, "run failed for good");
  await spec.ended?.(payload, log);
  await announce(deps, owner, ref, log);
}

async function announce(deps: RunProcessorDeps, owner: RunOwner, ref: RunRef, log: Logger): Promise<void> {
  if (!owner.webhook) return;
  // The run itself ended: a webhook that cannot be queued must not make the job retry it.
  await deps.announce({ workspaceId: ref.workspaceId, resource: owner.webhook, id: ref.id }).catch((e: unknown) => log.warn({ err: (e as Error).message }, "could not queue the webhook"));
}

export function runProcessor<N extends JobName>(deps: RunProcessorDeps, spec: RunSpec<N>): Processor<N> {
  return async (payload, jobCtx) => {
    const ctx: RunContext = { ...jobCtx, lastAttempt: isLastAttempt(jobCtx.job) };
    const owner = spec.owner(payload);
    const ref = spec.ref(payload);
    try {
      const outcome = await spec.run(payload, ctx);
      ctx.log.info({ outcome }, "run ended");
      if (owner.final.includes(outcome)) {
        await spec.ended?.(payload, ctx.log);
        await announce(deps, owner, ref, ctx.log);
        await spec.afterFinished?.(payload, outcome, ctx);
      }
      if (outcome === "interrupted") {
        await ctx.job.moveToDelayed(Date.now() + INTERRUPTED_DELAY_MS, ctx.token);
        throw new DelayedError();
      }
      if (outcome === "yielded") {
        // Due at once: the next fetch promotes it to the tail of the waiting list (FIFO), behind every job that
        // waited when it gave its slot up; moveToDelayed does not count an attempt.
        await ctx.job.moveToDelayed(Date.now(), ctx.token);
        throw new DelayedError();
      }
      return { outcome };
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      if (ctx.lastAttempt) {
        const attempts = ctx.job.opts.attempts ?? 1;
        await failForGood(deps, spec, payload, { cause: "attempts", attempts, message: (err as Error).message }, ctx.log);
      }
      throw err;
    }
  };
}

/** For the worker pool's `failed` event: a job BullMQ gave up on without the processor (it stalled too often). */
export function gaveUpHandler<N extends JobName>(deps: RunProcessorDeps, spec: Pick<RunSpec<N>, "owner" | "ref" | "ended">, log: Logger) {
  return async (payload: JobPayload<N>, reason: string): Promise<void> => {
    await failForGood(deps, spec, payload, { cause: "gave_up", message: reason }, log);
  };
}
