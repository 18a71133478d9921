import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { open, readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { Redis } from "ioredis";
import { createWorkspace } from "./client.js";
import { CONTACT_MAPPING, smallPaste } from "./data.js";
import { BASELINE_URL, run, startBaseline, type Target } from "./enqueue.js";
import { API_URL, DB_NAME, OUT, QUEUE_PREFIX, adminSql, benchEnv, buildApp, cleanStorage, cpuSecondsOf, freshDatabase, killStarted, startProcess, waitForHttp } from "./stack.js";

/**
 * `npm run bench:enqueue-probe`: where an enqueue's work goes, beside the baseline's (bench/enqueue-baseline.ts), in the
 * bench's own database, queue prefix, storage and ports (BENCH_DB, BENCH_PORT, BENCH_BASELINE_PORT as for
 * `npm run bench`; BENCH_APP_ROOT measures another checkout's API). Not part of the bench run. It reports:
 *
 * - per request, the CPU each process spent (/proc/<pid>/stat: the API or the baseline, with its user share; this
 *   database's PostgreSQL backends; redis-server; this process, which runs autocannon; the server's main thread apart
 *   from its other threads), over PROBE_ROUNDS rounds of
 *   alternating unthrottled phases of PROBE_SECONDS (after a 5 s warm-up of each);
 * - per request, the SQL statements PostgreSQL executed (log_statement = all for this database, read from the server
 *   log, BENCH_PG_LOG) and the Redis commands each side sent on its queue prefix (MONITOR; those a Lua script runs are
 *   counted apart), over PROBE_SEQUENTIAL requests sent one at a time (0: skip);
 * - PROBE_STRACE=1: system calls per request of each server process, all threads (strace -c);
 * - PROBE_PERF=<name>: `perf record -g` of each server process during the last round (bench/.out/perf-<name>-<pid>.data;
 *   start them with BENCH_API_NODE_ARGS / BENCH_BASELINE_NODE_ARGS=--perf-basic-prof to name JavaScript frames).
 * PROBE_BUILD=0 skips `npm run build`.
 */

const SEQUENTIAL = Number(process.env.PROBE_SEQUENTIAL ?? 50);
const ROUNDS = Number(process.env.PROBE_ROUNDS ?? 2);
const SECONDS = Number(process.env.PROBE_SECONDS ?? 10);
const PG_LOG = process.env.BENCH_PG_LOG ?? "/var/log/postgresql/postgresql-15-main.log";

function body(seq: number): string {
  return JSON.stringify({ csv: smallPaste(seq), kind: "contacts", identifier: "email", mapping: CONTACT_MAPPING, start: true });
}

async function sequential(target: Target, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await fetch(target.url, { method: "POST", headers: { ...target.headers, "content-type": "application/json" }, body: body(i + 1) });
    if (res.status !== 201) throw new Error(`${target.url}: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  }
}

async function logFrom(offset: number): Promise<string> {
  const h = await open(PG_LOG, "r");
  try {
    const size = (await h.stat()).size;
    const buf = Buffer.alloc(size - offset);
    await h.read(buf, 0, buf.length, offset);
    return buf.toString("utf8");
  } finally {
    await h.close();
  }
}

interface Counts {
  statements: Map<string, number>;
  redis: Map<string, number>;
  redisInScripts: number;
}

/** What `n` sequential requests to `target` cost in SQL statements and Redis commands. */
async function count(target: Target, n: number): Promise<Counts> {
  const monitor = new Redis(benchEnv().REDIS_URL!);
  const mon = await monitor.monitor();
  const redis = new Map<string, number>();
  let redisInScripts = 0;
  mon.on("monitor", (_time: string, args: string[], source: string) => {
    // Only this bench's queues (both sides use its prefix): other work on the same Redis is not counted.
    if (!args.some((a) => String(a).includes(QUEUE_PREFIX))) return;
    if (source === "lua") redisInScripts++;
    else redis.set(String(args[0]).toLowerCase(), (redis.get(String(args[0]).toLowerCase()) ?? 0) + 1);
  });
  await new Promise((r) => setTimeout(r, 200));
  const offset = (await stat(PG_LOG)).size;
  await sequential(target, n);
  await new Promise((r) => setTimeout(r, 500));
  mon.disconnect();
  monitor.disconnect();
  const statements = new Map<string, number>();
  for (const line of (await logFrom(offset)).split("\n")) {
    if (!line.includes(`@${DB_NAME} LOG:`)) continue;
    const m = /LOG:\s+(?:statement|execute [^:]*):\s+(.*)$/.exec(line);
    if (!m) continue;
    const text = m[1]!.replace(/\s+/g, " ").slice(0, 70);
    statements.set(text, (statements.get(text) ?? 0) + 1);
  }
  return { statements, redis, redisInScripts };
}

function printCounts(label: string, c: Counts, n: number): void {
  const total = [...c.statements.values()].reduce((a, b) => a + b, 0);
  console.log(`\n${label}: ${(total / n).toFixed(2)} SQL statements per request`);
  for (const [s, k] of [...c.statements].sort((a, b) => b[1] - a[1])) console.log(`  ${(k / n).toFixed(2)}  ${s}`);
  const rt = [...c.redis.values()].reduce((a, b) => a + b, 0);
  console.log(`${label}: ${(rt / n).toFixed(2)} Redis commands sent per request (${(c.redisInScripts / n).toFixed(1)} more inside scripts)`);
  for (const [s, k] of [...c.redis].sort((a, b) => b[1] - a[1])) console.log(`  ${(k / n).toFixed(2)}  ${s}`);
}

async function dbBackendPids(): Promise<string[]> {
  const admin = adminSql();
  try {
    return (await admin`select pid from pg_stat_activity where datname = ${DB_NAME}`).map((r) => String(r.pid));
  } finally {
    await admin.end();
  }
}

async function redisPid(): Promise<number> {
  const r = new Redis(benchEnv().REDIS_URL!);
  const info = await r.info("server");
  r.disconnect();
  return Number(/process_id:(\d+)/.exec(info)![1]);
}

interface CpuRow {
  serverUser: number;
  /**
   * The server's CPU on its JavaScript thread ("main") and on all its other threads ("other": libuv's pool, which runs
   * the file system calls, and V8's helpers for GC and compiling; Node 20 names them all "node", so they are not told apart).
   */
  threads: Record<string, number>;
  rps: number;
  p99: number;
  server: number;
  postgres: number;
  redis: number;
  client: number;
}

async function userSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[11]) / 100;
}

/** CPU seconds of `pid`'s main thread and of its other threads (each thread's stat under /proc/<pid>/task). */
async function threadSeconds(pid: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, "utf8").catch(() => "");
    if (!stat) continue;
    const kind = tid === String(pid) ? "main" : "other";
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out[kind] = (out[kind] ?? 0) + (Number(f[11]) + Number(f[12])) / 100;
  }
  return out;
}

async function cpuPhase(target: Target, serverPid: number, round = 0): Promise<CpuRow> {
  const pg = await dbBackendPids();
  const rpid = await redisPid();
  const mark = async () => ({
    serverUser: await userSecondsOf(serverPid),
    threads: await threadSeconds(serverPid),
    server: await cpuSecondsOf(serverPid),
    pg: await Promise.all(pg.map((p) => cpuSecondsOf(p))),
    redis: await cpuSecondsOf(rpid),
    client: process.cpuUsage(),
  });
  const perf = process.env.PROBE_PERF && round === ROUNDS - 1 ? spawn("perf", ["record", "-F", "1999", "-g", "-p", String(serverPid), "-o", path.join(OUT, `perf-${process.env.PROBE_PERF}-${serverPid}.data`)], { stdio: "ignore" }) : null;
  const a = await mark();
  const res = await run(target, undefined, SECONDS);
  const b = await mark();
  if (perf) {
    const done = new Promise((r) => perf.once("exit", r));
    perf.kill("SIGINT");
    await done;
  }
  const n = res.requests.total;
  const per = (s: number) => (s * 1000) / n;
  const c = process.cpuUsage(a.client);
  return {
    rps: res.requests.average,
    p99: res.latency.p99,
    server: per(b.server - a.server),
    serverUser: per(b.serverUser - a.serverUser),
    threads: Object.fromEntries(Object.keys(b.threads).map((k) => [k, per(b.threads[k]! - (a.threads[k] ?? 0))])),
    postgres: per(b.pg.reduce((x, v, i) => x + v - a.pg[i]!, 0)),
    redis: per(b.redis - a.redis),
    client: (c.user + c.system) / 1000 / n,
  };
}

const fmtRow = (label: string, r: CpuRow) =>
  `${label.padEnd(9)} ${r.rps.toFixed(0).padStart(5)} req/s  p99 ${r.p99.toFixed(0).padStart(4)} ms  CPU ms/request: server ${r.server.toFixed(2)}  postgres ${r.postgres.toFixed(2)}  redis ${r.redis.toFixed(2)}  autocannon ${r.client.toFixed(2)}  total ${(r.server + r.postgres + r.redis + r.client).toFixed(2)}  (server user ${r.serverUser.toFixed(2)}; ${Object.entries(r.threads).sort().map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")})`;

async function setStatementLog(on: boolean): Promise<void> {
  const admin = adminSql();
  try {
    await admin.unsafe(`alter database ${DB_NAME} ${on ? "set log_statement = 'all'" : "reset log_statement"}`);
  } finally {
    await admin.end();
  }
}

/** The API and the baseline, started fresh (a database setting such as log_statement reaches new sessions only). */
async function withServers(apiKey: string | null, fn: (targets: [string, Target, number][], apiKey: string) => Promise<void>): Promise<string> {
  const api = startProcess("src/api/server.ts", benchEnv(), (process.env.BENCH_API_NODE_ARGS ?? "").split(" ").filter(Boolean));
  if (process.env.PROBE_API_OUT) {
    const out = createWriteStream(process.env.PROBE_API_OUT);
    api.child.stdout!.pipe(out);
  }
  let baseline: Awaited<ReturnType<typeof startBaseline>> | null = null;
  try {
    await waitForHttp(`${API_URL}/healthz`, api);
    const key = apiKey ?? (await createWorkspace("probe")).apiKey;
    baseline = await startBaseline();
    const targets: [string, Target, number][] = [
      ["roster", { url: `${API_URL}/v1/imports`, headers: { authorization: `Bearer ${key}` } }, api.pid],
      ["baseline", { url: `${BASELINE_URL}/enqueue`, headers: {} }, baseline.pid],
    ];
    // Prepared statements and pools first.
    for (const [, t] of targets) await sequential(t, 20);
    await fn(targets, key);
    return key;
  } finally {
    await baseline?.stop();
    await api.stop();
  }
}

/** System calls the server process (all its threads) made per request, over `n` sequential requests (strace -c). */
async function syscalls(label: string, target: Target, pid: number, n: number): Promise<void> {
  const file = path.join(OUT, `strace-${label}.txt`);
  const strace = spawn("strace", ["-f", "-c", "-o", file, "-p", String(pid)], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 500));
  await sequential(target, n);
  const done = new Promise((r) => strace.once("exit", r));
  strace.kill("SIGINT");
  await done;
  const lines = (await readFile(file, "utf8")).split("\n").filter((l) => /^\s*[\d.]+\s+[\d.]+\s+\d+\s+\d+/.test(l));
  const rows = lines.map((l) => {
    const f = l.trim().split(/\s+/);
    return { name: f.at(-1)!, calls: Number(f[3]) };
  });
  const total = rows.filter((r) => r.name !== "total").reduce((a, r) => a + r.calls, 0);
  console.log(`\n${label}: ${(total / n).toFixed(1)} system calls per request (all threads)`);
  console.log("  " + rows.sort((a, b) => b.calls - a.calls).map((r) => `${r.name} ${(r.calls / n).toFixed(1)}`).join(", "));
}

async function main(): Promise<void> {
  if (process.env.PROBE_BUILD !== "0") await buildApp();
  await freshDatabase();
  await cleanStorage();
  const key = await withServers(null, async (targets) => {
    if (process.env.PROBE_STRACE === "1") for (const [label, t, pid] of targets) await syscalls(label, t, pid, SEQUENTIAL);
    // As the bench: each warmed up the way it is measured, so JIT compilation is not in the figures.
    for (const [, t] of targets) await run(t, undefined, 5);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [label, t, pid] of targets) console.log(fmtRow(label, await cpuPhase(t, pid, round)));
    }
  });
  if (SEQUENTIAL <= 0) return;
  await setStatementLog(true);
  try {
    await withServers(key, async (targets) => {
      for (const [label, t] of targets) printCounts(label, await count(t, SEQUENTIAL), SEQUENTIAL);
    });
  } finally {
    await setStatementLog(false);
  }
}

main().catch((err) => {
  killStarted();
  console.error(err);
  process.exit(1);
});
