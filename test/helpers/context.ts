import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import postgres from "postgres";
import { afterAll, beforeAll, inject } from "vitest";
import { loadEnv, type Env } from "../../src/config/env.js";
import { createLogger, type Logger } from "../../src/lib/logger.js";
import { QUEUE_NAMES } from "../../src/queue/jobs.js";
import { createRuntime, type Runtime } from "../../src/runtime.js";
import { dbUrl } from "./global-setup.js";

export interface TestContext extends Runtime {
  /** Every log line the code under test wrote, as text: tests assert secrets never appear in it. */
  logs: string[];
  dbName: string;
  storageDir: string;
}

/** Clones the migrated template into a database of this file's own, with its own queue prefix and storage dir. */
export async function createTestContext(overrides: Partial<Record<keyof Env, string>> = {}): Promise<TestContext> {
  const suffix = randomBytes(4).toString("hex");
  const dbName = `roster_t_${suffix}`;
  const adminUrl = inject("pgAdminUrl");
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.unsafe(`create database "${dbName}" template "${inject("templateDb")}"`);
      break;
    } catch (err) {
      // Two files cloning at the same instant can see "source database is being accessed by other users".
      if (attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
    }
  }
  await admin.end();
  const storageDir = await mkdtemp(path.join(tmpdir(), "roster-test-"));
  const env = loadEnv({
    DATABASE_URL: dbUrl(adminUrl, dbName),
    REDIS_URL: inject("redisUrl"),
    QUEUE_PREFIX: `{rt_${suffix}}`,
    STORAGE_DIR: storageDir,
    LOG_LEVEL: "info",
    ADMIN_TOKEN: "test-admin-token-0123456789",
    SHUTDOWN_TIMEOUT_MS: "5000",
    ...overrides,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const logger: Logger = createLogger(env, sink);
  const rt = await createRuntime(env, logger, { migrate: false });
  return {
    ...rt,
    logs,
    dbName,
    storageDir,
    async close() {
      await Promise.all(QUEUE_NAMES.map((q) => rt.producer.queue(q).obliterate({ force: true }).catch(() => {})));
      await rt.close();
      const a = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists "${dbName}" with (force)`);
      await a.end();
      await rm(storageDir, { recursive: true, force: true });
    },
  };
}

/** beforeAll/afterAll wiring: `const t = useTestContext();` then `t.ctx` inside tests. */
export function useTestContext(overrides: Partial<Record<keyof Env, string>> = {}) {
  const holder = {} as { ctx: TestContext };
  beforeAll(async () => {
    holder.ctx = await createTestContext(overrides);
  });
  afterAll(async () => {
    await holder.ctx?.close();
  });
  return holder;
}
