import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { runMigrations } from "../src/db/migrate.js";

/** The bench's own database, queue prefix, storage and ports: it never touches a developer's or a test's data. */

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const OUT = path.join(ROOT, "bench", ".out");
/** The checkout whose API, worker and migrations are measured: this one, or another branch's (BENCH_APP_ROOT). */
export const APP_ROOT = path.resolve(process.env.BENCH_APP_ROOT ?? ROOT);
const PG_BASE = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432";
export const DB_NAME = process.env.BENCH_DB ?? "roster_bench";
export const DATABASE_URL = `${PG_BASE}/${DB_NAME}`;
/** Queue prefix and storage follow the database name, so two benches with different BENCH_DB never share state. */
export const QUEUE_PREFIX = `{${DB_NAME}}`;
export const STORAGE_DIR = path.join(OUT, DB_NAME === "roster_bench" ? "storage" : `storage-${DB_NAME}`);
export const ADMIN_TOKEN = "bench-admin-token-0123456789";
const PORT = Number(process.env.BENCH_PORT ?? 3987);
export const API_URL = `http://127.0.0.1:${PORT}`;

export function adminSql(): postgres.Sql {
  return postgres(`${PG_BASE}/postgres`, { max: 1, onnotice: () => {} });
}

export function benchSql(): postgres.Sql {
  return postgres(DATABASE_URL, { max: 2, onnotice: () => {} });
}

/** Drops and recreates roster_bench, migrated; the slow-statement log is on for this database only. */
export async function freshDatabase(): Promise<void> {
  const admin = adminSql();
  try {
    await admin.unsafe(`drop database if exists ${DB_NAME} with (force)`);
    await admin.unsafe(`create database ${DB_NAME}`);
    if (process.env.BENCH_LOG_STATEMENTS_MS) {
      await admin.unsafe(`alter database ${DB_NAME} set log_min_duration_statement = ${Number(process.env.BENCH_LOG_STATEMENTS_MS)}`);
    }
    if (process.env.BENCH_AUTO_EXPLAIN_MS) {
      // EXPLAIN ANALYZE of every slow statement, in the server log, for this database only.
      await admin.unsafe(`alter database ${DB_NAME} set session_preload_libraries = 'auto_explain'`);
      await admin.unsafe(`alter database ${DB_NAME} set auto_explain.log_min_duration = ${Number(process.env.BENCH_AUTO_EXPLAIN_MS)}`);
      await admin.unsafe(`alter database ${DB_NAME} set auto_explain.log_analyze = on`);
    }
  } finally {
    await admin.end();
  }
  await runMigrations(DATABASE_URL, path.join(APP_ROOT, "drizzle"));
}

export function benchEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: "production",
    DATABASE_URL,
    REDIS_URL: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
    QUEUE_PREFIX: QUEUE_PREFIX,
    STORAGE_DRIVER: "local",
    STORAGE_DIR: STORAGE_DIR,
    PORT: String(PORT),
    HOST: "127.0.0.1",
    ADMIN_TOKEN,
    LOG_LEVEL: "warn",
    // The enqueue bench sends 1,000 requests/s from one workspace: the per-workspace limit would answer 429.
    RATE_LIMIT_MAX: "0",
    IMPORT_CONCURRENCY: "1",
    ...extra,
  };
}

const live = new Set<ChildProcess>();

/** Kills the API and worker processes this bench started (on Ctrl-C or a failed run), so none is left behind. */
export function killStarted(): void {
  for (const child of live) child.kill("SIGKILL");
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Compiles the measured checkout to dist/ (`npm run build`), as the Docker image does: the bench measures the
 * processes production runs (`node dist/…`), not the tsx development loader (which adds ~25 MB and start-up work).
 */
export async function buildApp(): Promise<void> {
  const child = spawn("npm", ["run", "build"], { cwd: APP_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`npm run build failed in ${APP_ROOT}:\n${out}`);
}

/** Starts `node dist/<entry>.js` (src/x/y.ts → dist/x/y.js) as its own process (one pid: /proc/<pid>/status is the process itself). */
export function startProcess(entry: string, env: NodeJS.ProcessEnv, nodeArgs: string[] = [], logFile?: string): Proc {
  const built = entry.replace(/^src\//, "dist/").replace(/\.ts$/, ".js");
  const child = spawn(process.execPath, [...nodeArgs, path.join(APP_ROOT, built)], { cwd: APP_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20_000);
  };
  if (logFile) {
    const file = createWriteStream(logFile, { flags: "a" });
    child.stdout!.pipe(file);
  }
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  live.add(child);
  child.once("exit", () => live.delete(child));
  return {
    child,
    pid: child.pid!,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Peak resident set size (VmHWM) of a live process, in MB. */
export async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(m[1]) / 1024;
}

export async function waitForHttp(url: string, proc: Proc, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (proc.child.exitCode !== null) throw new Error(`process exited: ${proc.output()}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer in ${timeoutMs} ms: ${proc.output()}`);
}

export async function cleanStorage(): Promise<void> {
  await rm(STORAGE_DIR, { recursive: true, force: true });
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (clock ticks of 10 ms); with `thread`,
 * that thread's alone (/proc/<pid>/task/<tid>/stat: the process's own pid is its main thread).
 */
export async function cpuSecondsOf(pid: number | string, thread?: number | string): Promise<number> {
  try {
    const stat = await readFile(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0; // the process ended between listing and reading
  }
}

/**
 * BENCH_PG_CPU=database counts only the server processes connected to the bench's own database (its backends and
 * autovacuum workers, from pg_stat_activity), leaving out the shared WAL writer and checkpointer: on a machine where
 * other work (a test suite) also uses PostgreSQL, the default (every server process) counts theirs too.
 */
const PG_CPU_SCOPE = process.env.BENCH_PG_CPU === "database" ? "database" : "all";

/** CPU seconds used so far by each PostgreSQL server process (backends, WAL writer, checkpointer…) on this machine. */
async function postgresCpuByPid(): Promise<Map<string, number>> {
  const byPid = new Map<string, number>();
  let ours: Set<string> | null = null;
  if (PG_CPU_SCOPE === "database") {
    const admin = adminSql();
    try {
      const rows = await admin`select pid from pg_stat_activity where datname = ${DB_NAME}`;
      ours = new Set(rows.map((r) => String(r.pid)));
    } finally {
      await admin.end();
    }
  }
  for (const pid of ours ?? (await readdir("/proc"))) {
    if (!/^\d+$/.test(pid)) continue;
    const comm = await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "");
    if (comm.trim() === "postgres") byPid.set(pid, await cpuSecondsOf(pid));
  }
  return byPid;
}

export interface CpuMark {
  process: number;
  /** Of `process`, its main thread's (the rest: a run's parse thread, libuv's pool, V8's helpers). */
  main: number;
  postgres: number;
}

interface CpuStart {
  process: number;
  main: number;
  postgres: Map<string, number>;
}

/**
 * CPU used by a process (the worker) and by PostgreSQL: on a shared 2-core machine wall time stretches with whatever
 * else runs, CPU time much less, so it says where an import's work goes. PostgreSQL's figure is the growth of every
 * server process alive at the end (the worker's pooled backends live as long as the worker); backends that exited
 * in between are not counted, so on a machine running other work it also includes theirs.
 */
export async function cpuMark(pid: number | null): Promise<CpuStart> {
  return { process: pid === null ? 0 : await cpuSecondsOf(pid), main: pid === null ? 0 : await cpuSecondsOf(pid, pid), postgres: await postgresCpuByPid() };
}

export async function cpuSince(start: CpuStart, pid: number | null): Promise<CpuMark> {
  const now = await cpuMark(pid);
  let postgres = 0;
  for (const [p, cpu] of now.postgres) postgres += cpu - (start.postgres.get(p) ?? 0);
  return { process: now.process - start.process, main: now.main - start.main, postgres };
}
