import { expect } from "vitest";
import type { Client } from "./api.js";
import type { TestContext } from "./context.js";
import { isListening, spawnTs, type Spawned } from "./processes.js";
import { spawn, type ChildProcess } from "node:child_process";

/** A worker as production runs it: its own process on the test's database, queue prefix and storage; `env` overrides. */
export function spawnWorker(ctx: TestContext, env: Record<string, string> = {}): Spawned {
  const e = ctx.env;
  return spawnTs("src/workers/main.ts", {
    DATABASE_URL: e.DATABASE_URL,
    REDIS_URL: e.REDIS_URL,
    QUEUE_PREFIX: e.QUEUE_PREFIX,
    STORAGE_DIR: e.STORAGE_DIR,
    IMPORT_BATCH_SIZE: "1000",
    WORKER_LOCK_MS: "3000",
    SHUTDOWN_TIMEOUT_MS: "5000",
    LOG_LEVEL: "info",
    ...env,
  });
}

export async function importState(ctx: TestContext, id: string): Promise<{ status: string; processed: number; checkpointRow: number; failureReason: string | null }> {
  const [row] = await ctx.db.$client`select status, processed, checkpoint_row, failure_reason from imports where id = ${id}`;
  return { status: String(row?.status), processed: Number(row?.processed), checkpointRow: Number(row?.checkpoint_row), failureReason: (row?.failure_reason as string | null) ?? null };
}

/** Polls until the import has committed at least `rows` rows (fails after timeoutMs). */
export async function waitForProcessed(ctx: TestContext, id: string, rows: number, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = await importState(ctx, id);
    if (s.processed >= rows) return;
    if (Date.now() > until) throw new Error(`import ${id} processed only ${s.processed} rows (${s.status}) after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A row a run locks at the start of each batch, read under `for update` by holdRow; its status and progress. */
export interface HeldRow {
  status: string;
  /** How far the run got (rows processed, people erased…). */
  progress: number;
}

/**
 * Waits, polling under a row lock, until `read` (which must select the row `for update`) shows the run at `status`
 * with at least `atLeast` done, and returns still holding that lock: the run's next batch starts by locking the same
 * row, so the worker is caught mid-run however fast it goes. Kill or signal the worker, then release(). Fails when the
 * run leaves the `waitable` statuses first or after timeoutMs.
 */
export async function holdRow(
  ctx: TestContext,
  what: string,
  read: (conn: Awaited<ReturnType<TestContext["db"]["$client"]["reserve"]>>) => Promise<HeldRow | undefined>,
  opts: { status: string; atLeast: number; waitable: string[]; timeoutMs?: number },
): Promise<{ release(): Promise<void> }> {
  const until = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const conn = await ctx.db.$client.reserve();
    await conn`begin`;
    const row = await read(conn);
    if (row?.status === opts.status && row.progress >= opts.atLeast) {
      return {
        async release() {
          await conn`rollback`;
          conn.release();
        },
      };
    }
    await conn`rollback`;
    conn.release();
    if (!row || !opts.waitable.includes(row.status)) throw new Error(`${what} is ${row?.status} before reaching ${opts.atLeast}`);
    if (Date.now() > until) throw new Error(`${what} reached only ${row.progress} (${row.status}) in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** holdRow on an import until it has committed at least `rows` rows. */
export function holdAtProcessed(ctx: TestContext, id: string, rows: number, timeoutMs = 60_000): Promise<{ release(): Promise<void> }> {
  return holdRow(
    ctx,
    `import ${id}`,
    async (conn) => {
      const [r] = await conn`select status, processed from imports where id = ${id} for update`;
      return r ? { status: String(r.status), progress: Number(r.processed) } : undefined;
    },
    { status: "processing", atLeast: rows, waitable: ["queued", "processing"], timeoutMs },
  );
}

/** Waits until PostgreSQL's clock says the import was last updated more than `ms` ago. */
export async function waitUntilIdleFor(ctx: TestContext, id: string, ms: number, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await ctx.db.$client`select now() - updated_at > make_interval(secs => ${ms / 1000}) as idle from imports where id = ${id}`;
    if (row?.idle) return;
    if (Date.now() > until) throw new Error(`import ${id} was still updated within ${ms} ms after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `rows` contacts, each with a label list and an attribute, so a replayed batch would show as duplicates or double counts. */
export function contactsCsv(rows: number, tag = "k"): string {
  return ["email,external_id,first_name,labels,plan", ...Array.from({ length: rows }, (_, i) => `${tag}${i}@x.io,${tag}ext${i},N${i},${i % 2 ? "A:B" : ""},p${i % 5}`)].join("\n");
}

/** The import created every row exactly once: people, emails, events, label links all equal `rows`, and the counts say so. */
export async function expectExactlyOnce(ctx: TestContext, client: Client, id: string, rows: number): Promise<void> {
  const [state] = await ctx.db.$client`
    select
      (select count(*)::int from people where workspace_id = ${client.workspaceId}) as people,
      (select count(distinct lower(email))::int from people where workspace_id = ${client.workspaceId}) as emails,
      (select count(*)::int from events where import_id = ${id}) as events,
      (select count(distinct person_id)::int from events where import_id = ${id}) as event_people,
      (select coalesce(sum(cardinality(p.label_ids)), 0)::int from people p where p.workspace_id = ${client.workspaceId}) as label_links,
      (select count(*)::int from import_people where import_id = ${id}) as ledger,
      (select status from imports where id = ${id}) as status,
      (select json_build_object('total', total, 'processed', processed, 'created', created, 'updated', updated, 'unchanged', unchanged, 'skipped', skipped, 'failed', failed) from imports where id = ${id}) as counts`;
  expect(state).toEqual({
    people: rows,
    emails: rows,
    events: rows,
    event_people: rows,
    label_links: rows,
    ledger: 0,
    status: "done",
    counts: { total: rows, processed: rows, created: rows, updated: 0, unchanged: 0, skipped: 0, failed: 0 },
  });
}

/** A redis-server of the test's own (never the shared one), so it can be killed, restarted and paused. */
export interface PrivateRedis {
  port: number;
  url: string;
  process(): ChildProcess;
  start(): Promise<void>;
  kill(): Promise<void>;
}

export function privateRedis(port: number): PrivateRedis {
  let child: ChildProcess | null = null;
  const self: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    process() {
      if (!child) throw new Error("private redis is not running");
      return child;
    },
    async start() {
      child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"], {
        stdio: "ignore",
      });
      const until = Date.now() + 10_000;
      while (!(await isListening(port))) {
        if (Date.now() > until) throw new Error(`private redis on ${port} did not start`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async kill() {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGCONT");
      c.kill("SIGKILL");
      await exited;
    },
  };
  return self;
}
