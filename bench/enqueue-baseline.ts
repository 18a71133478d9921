import { randomUUID } from "node:crypto";
import { mkdir, open, rename } from "node:fs/promises";
import path from "node:path";
import { Queue } from "bullmq";
import Fastify from "fastify";
import { Redis } from "ioredis";
import { createSql } from "../src/db/client.js";

/**
 * The enqueue's fair baseline, run as its own process like the API: a bare Fastify route doing the same durable work
 * as POST /v1/imports (start=true) and nothing else — the pasted CSV written to a file (fsync, rename, fsync of the
 * directory, as the local storage does), one INSERT into a scratch table, one BullMQ add. No auth, no validation, no
 * sniffing, no idempotency, no rate limit, no logging: what Roster adds on top is what the ratio measures.
 */

const PORT = Number(process.env.BASELINE_PORT);
const DIR = process.env.BASELINE_DIR!;
/** As the API's pool (DB_POOL_MAX default): the same number of concurrent statements. */
const POOL_MAX = 10;
export const BASELINE_QUEUE = "enqueue-baseline";
export const BASELINE_TABLE = "bench_enqueue_baseline";

// The API's own client settings (createSql: TCP_NODELAY, the session settings), so only the route's work differs.
const sql = createSql(process.env.DATABASE_URL!, { max: POOL_MAX, applicationName: "enqueue-baseline" });
await sql.unsafe(`create table if not exists ${BASELINE_TABLE} (id uuid primary key, workspace_id uuid not null, storage_key text not null, size_bytes int not null, status text not null, created_at timestamptz not null default now())`);
// A producer connection as the API makes it: no offline queue, fail fast.
const redis = new Redis(process.env.REDIS_URL!, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
const queue = new Queue(BASELINE_QUEUE, { connection: redis, prefix: process.env.QUEUE_PREFIX });
const workspaceId = randomUUID();
await mkdir(DIR, { recursive: true });

async function writeDurably(file: string, body: string): Promise<number> {
  const temp = path.join(DIR, `.${path.basename(file)}.tmp`);
  const handle = await open(temp, "wx");
  try {
    await handle.writeFile(body);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
  const dir = await open(DIR, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return Buffer.byteLength(body);
}

const app = Fastify({ logger: false, bodyLimit: 10 * 1024 * 1024 });
app.post("/enqueue", async (req, reply) => {
  const { csv } = req.body as { csv: string };
  const id = randomUUID();
  const key = path.join(DIR, `${id}.csv`);
  const size = await writeDurably(key, csv);
  await sql`insert into ${sql(BASELINE_TABLE)} (id, workspace_id, storage_key, size_bytes, status) values (${id}, ${workspaceId}, ${key}, ${size}, 'queued')`;
  await queue.add("baseline.run", { workspaceId, importId: id }, { jobId: `baseline-${id}` });
  return reply.code(201).send({ id, status: "queued" });
});
app.get("/healthz", async () => ({ ok: true }));
await app.listen({ port: PORT, host: "127.0.0.1" });

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    void (async () => {
      await app.close();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      redis.disconnect();
      await sql.unsafe(`drop table if exists ${BASELINE_TABLE}`).catch(() => {});
      await sql.end({ timeout: 5 });
      process.exit(0);
    })();
  });
}
