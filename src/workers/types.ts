import type { Job } from "bullmq";
import type { Logger } from "../lib/logger.js";
import type { JobName, JobPayload } from "../queue/jobs.js";

export interface JobContext {
  job: Job;
  /** The lock token of this run, needed to move the job (e.g. back to waiting on shutdown). */
  token: string | undefined;
  log: Logger;
  /** Aborted when the worker is shutting down: processors stop after their current unit of work. */
  signal: AbortSignal;
  /** How many jobs of this job's queue wait for a slot (waiting or prioritized; delayed ones are not counted). */
  waiting: () => Promise<number>;
}

export type Processor<N extends JobName> = (payload: JobPayload<N>, ctx: JobContext) => Promise<unknown>;
export type Processors = { [N in JobName]: Processor<N> };
