import { randomUUID } from "node:crypto";
import type { Job } from "bullmq";
import { afterEach, describe, expect, it } from "vitest";
import type { Env } from "../../src/config/env.js";
import { JOB_NAMES, type JobPayload } from "../../src/queue/jobs.js";
import type { JobContext } from "../../src/workers/types.js";
import { assertProcessorsComplete, startWorkers, type WorkerPool } from "../../src/workers/worker-pool.js";
import { useTestContext } from "../helpers/context.js";

const t = useTestContext();

type ImportRun = (payload: JobPayload<"import.run">, ctx: JobContext) => Promise<unknown>;

/** No-op processors for every other job kind, so these tests exercise the pool through import.run alone. */
const others = Object.fromEntries(JOB_NAMES.filter((n) => n !== "import.run").map((n) => [n, async () => {}]));

/** Pools opened by a test; closed after it even when it fails. */
const open: WorkerPool[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

async function start(processor: ImportRun, env: Env = t.ctx.env): Promise<WorkerPool> {
  const pool = await startWorkers(env, t.ctx.logger, { ...others, "import.run": processor });
  open.push(pool);
  return pool;
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
    }),
  ]);
}

async function waitForState(job: Job, states: string[], timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await job.getState();
    if (states.includes(state)) return state;
    if (Date.now() > deadline) throw new Error(`job ${job.id} still '${state}' after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("assertProcessorsComplete", () => {
  it("throws naming the missing job kind when a processor is missing", () => {
    expect(() => assertProcessorsComplete({})).toThrow(/missing \[import\.run[,\]]/);
  });

  it("throws when a processor is not a function", () => {
    expect(() => assertProcessorsComplete({ ...others, "import.run": "nope" })).toThrow(/import\.run/);
  });

  it("throws naming an unknown job kind", () => {
    expect(() => assertProcessorsComplete({ "import.run": async () => {}, "import.runn": async () => {} })).toThrow(
      /unknown \[import\.runn\]/,
    );
  });

  it("accepts exactly one processor per job kind", () => {
    expect(() => assertProcessorsComplete({ ...others, "import.run": async () => {} })).not.toThrow();
  });

  it("startWorkers refuses an incomplete processor map before connecting", async () => {
    await expect(startWorkers(t.ctx.env, t.ctx.logger, {})).rejects.toThrow(/import\.run/);
  });
});

describe("startWorkers", () => {
  it("processes a job enqueued through the producer with its parsed payload and a job context", async () => {
    const seen = deferred<{ payload: JobPayload<"import.run">; ctx: JobContext }>();
    await start(async (payload, ctx) => {
      seen.resolve({ payload, ctx });
      return { ok: true };
    });
    const payload = { workspaceId: randomUUID(), importId: randomUUID() };
    await t.ctx.producer.enqueue("import.run", payload, { jobId: `it-${payload.importId}` });

    const { payload: got, ctx } = await within(seen.promise, 10_000, "processing the job");
    expect(got).toEqual(payload);
    expect(ctx.job.name).toBe("import.run");
    expect(ctx.job.id).toBe(`it-${payload.importId}`);
    expect(ctx.signal.aborted).toBe(false);
    expect(typeof ctx.token).toBe("string");

    const job = await t.ctx.producer.queue("imports").getJob(`it-${payload.importId}`);
    expect(job).toBeDefined();
    expect(await waitForState(job!, ["completed", "failed"])).toBe("completed");
  });

  it("fails a job with an invalid payload at once, without retries", async () => {
    const calls: unknown[] = [];
    await start(async (payload) => {
      calls.push(payload);
    });
    // Bypasses the producer's validation, as a stale or foreign producer would.
    const job = await t.ctx.producer.queue("imports").add("import.run", { workspaceId: "not-a-uuid", importId: randomUUID() });
    expect(await waitForState(job, ["failed", "completed"])).toBe("failed");
    const fresh = await t.ctx.producer.queue("imports").getJob(job.id!);
    expect(fresh?.failedReason).toMatch(/Invalid payload/);
    expect(fresh?.attemptsMade).toBe(1);
    expect(calls).toEqual([]);
  });

  it("fails a job of an unknown kind at once, without retries", async () => {
    await start(async () => {});
    const job = await t.ctx.producer.queue("imports").add("import.nope", { workspaceId: randomUUID(), importId: randomUUID() });
    expect(await waitForState(job, ["failed", "completed"])).toBe("failed");
    const fresh = await t.ctx.producer.queue("imports").getJob(job.id!);
    expect(fresh?.failedReason).toMatch(/No processor/);
    expect(fresh?.attemptsMade).toBe(1);
  });
});

describe("WorkerPool.close", () => {
  it("aborts the signal of a running job and resolves once the processor stops", async () => {
    const running = deferred<AbortSignal>();
    const pool = await start(
      (_payload, ctx) =>
        new Promise((resolve) => {
          running.resolve(ctx.signal);
          ctx.signal.addEventListener("abort", () => resolve("stopped"), { once: true });
        }),
    );
    await t.ctx.producer.enqueue("import.run", { workspaceId: randomUUID(), importId: randomUUID() });
    const signal = await within(running.promise, 10_000, "starting the long job");
    expect(signal.aborted).toBe(false);

    const started = performance.now();
    await within(pool.close(), t.ctx.env.SHUTDOWN_TIMEOUT_MS, "pool.close()");
    expect(signal.aborted).toBe(true);
    // A cooperative processor lets the pool close well before the deadline.
    expect(performance.now() - started).toBeLessThan(t.ctx.env.SHUTDOWN_TIMEOUT_MS / 2);
  });

  it("resolves within SHUTDOWN_TIMEOUT_MS (plus the 1 s force-close) even when a processor ignores the signal", async () => {
    const env: Env = { ...t.ctx.env, SHUTDOWN_TIMEOUT_MS: 1_000 };
    const running = deferred<AbortSignal>();
    const release = deferred<void>();
    const pool = await start(async (_payload, ctx) => {
      running.resolve(ctx.signal);
      await release.promise; // deaf to the signal
    }, env);
    await t.ctx.producer.enqueue("import.run", { workspaceId: randomUUID(), importId: randomUUID() });
    const signal = await within(running.promise, 10_000, "starting the long job");

    const before = t.ctx.logs.length;
    const started = performance.now();
    try {
      await within(pool.close(), env.SHUTDOWN_TIMEOUT_MS + 1_000 + 1_000, "pool.close()");
      expect(performance.now() - started).toBeGreaterThanOrEqual(env.SHUTDOWN_TIMEOUT_MS - 50);
      expect(signal.aborted).toBe(true);
      expect(t.ctx.logs.slice(before).join("")).toMatch(/did not close in time/);
    } finally {
      release.resolve();
    }
  });

  it("closing twice is harmless", async () => {
    const pool = await start(async () => {});
    await pool.close();
    await within(pool.close(), t.ctx.env.SHUTDOWN_TIMEOUT_MS + 2_000, "second pool.close()");
  });
});
