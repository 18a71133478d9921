import { createReadStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import postgres from "postgres";
import { DATABASE_URL, cpuSecondsOf } from "./stack.js";

/**
 * The physical limit the import is compared with: COPY of the same file into a bare table with the same two
 * unique indexes as people (workspace + lower(email), workspace + external_id).
 */
export async function copyBaseline(file: string): Promise<{ ms: number; cpuSeconds: number }> {
  // One connection, so its backend's CPU (read from /proc while it lives) is the COPY's.
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    const [{ pid }] = (await sql`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
    await sql.unsafe(`drop table if exists bench_copy_baseline`);
    await sql.unsafe(`
      create table bench_copy_baseline (
        workspace_id uuid not null default '00000000-0000-0000-0000-000000000001',
        email text, external_id text, first_name text, last_name text, company text, labels text,
        plan text, score text, active text, signed_up text, city text)`);
    await sql.unsafe(`create unique index bench_copy_email_uq on bench_copy_baseline (workspace_id, lower(email))`);
    await sql.unsafe(`create unique index bench_copy_external_id_uq on bench_copy_baseline (workspace_id, external_id)`);
    const cpu0 = await cpuSecondsOf(pid);
    const t0 = performance.now();
    const writable = await sql`
      copy bench_copy_baseline (email, external_id, first_name, last_name, company, labels, plan, score, active, signed_up, city)
      from stdin (format csv, header true)`.writable();
    await pipeline(createReadStream(file, { highWaterMark: 256 * 1024 }), writable);
    const ms = performance.now() - t0;
    const cpuSeconds = (await cpuSecondsOf(pid)) - cpu0;
    await sql.unsafe(`drop table bench_copy_baseline`);
    return { ms, cpuSeconds };
  } finally {
    await sql.end();
  }
}
