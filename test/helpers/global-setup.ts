import type { TestProject } from "vitest/node";
import postgres from "postgres";
import { runMigrations } from "../../src/db/migrate.js";

declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
    templateDb: string;
    redisUrl: string;
    /** This run's id: the browser test files build the console once per run (see buildConsoleOnce). */
    runId: string;
  }
}

interface Services {
  pgAdminUrl: string;
  redisUrl: string;
  stop: () => Promise<void>;
}

/** TEST_DATABASE_URL/TEST_REDIS_URL when set; else containers when a Docker engine answers; else the local services. */
async function services(): Promise<Services> {
  if (process.env.TEST_DATABASE_URL && process.env.TEST_REDIS_URL) {
    return { pgAdminUrl: process.env.TEST_DATABASE_URL, redisUrl: process.env.TEST_REDIS_URL, stop: async () => {} };
  }
  try {
    const { getContainerRuntimeClient } = await import("testcontainers");
    await getContainerRuntimeClient();
    const { PostgreSqlContainer } = await import("@testcontainers/postgresql");
    const { RedisContainer } = await import("@testcontainers/redis");
    const [pg, redis] = await Promise.all([
      new PostgreSqlContainer("postgres:16").start(),
      new RedisContainer("redis:7").withCommand(["redis-server", "--maxmemory-policy", "noeviction"]).start(),
    ]);
    return {
      pgAdminUrl: pg.getConnectionUri(),
      redisUrl: redis.getConnectionUrl(),
      stop: async () => {
        await Promise.all([pg.stop(), redis.stop()]);
      },
    };
  } catch {
    return {
      pgAdminUrl: process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
      redisUrl: process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
      stop: async () => {},
    };
  }
}

export function dbUrl(adminUrl: string, name: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

export default async function setup(project: TestProject) {
  const svc = await services();
  const templateDb = `roster_tpl_${process.pid}`;
  const admin = postgres(svc.pgAdminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists "${templateDb}" with (force)`);
  await admin.unsafe(`create database "${templateDb}"`);
  await runMigrations(dbUrl(svc.pgAdminUrl, templateDb));
  project.provide("pgAdminUrl", svc.pgAdminUrl);
  project.provide("templateDb", templateDb);
  project.provide("redisUrl", svc.redisUrl);
  project.provide("runId", `${process.pid}-${Date.now()}`);
  return async () => {
    await admin.unsafe(`drop database if exists "${templateDb}" with (force)`);
    await admin.end();
    await svc.stop();
  };
}
