import path from "node:path";
import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import type { Logger } from "../lib/logger.js";
import { backfillEmailKeys } from "./email-keys.js";

/** Arbitrary constant shared by every Roster process: the advisory lock that serialises migrations. */
const MIGRATION_LOCK_KEY = 7_261_990_421;

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../drizzle");

/**
 * Applies pending migrations under a session advisory lock, so any number of processes may call it at once:
 * the first applies them, the others wait and then find nothing to do. Throws on failure.
 * Then, under the same lock, the data step SQL cannot do: email keys computed in JavaScript (backfillEmailKeys).
 */
export async function runMigrations(url: string, migrationsFolder = MIGRATIONS_DIR, log?: Pick<Logger, "info" | "warn">): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    try {
      await migrate(drizzle(sql), { migrationsFolder });
      const keys = await backfillEmailKeys(sql);
      if (keys.keyed > 0) log?.info({ keyed: keys.keyed }, "email keys computed");
      if (keys.deferred > 0) log?.warn({ deferred: keys.deferred }, "email keys raced a concurrent write; the next start computes them");
      if (keys.duplicates.length > 0) {
        log?.warn(
          { duplicates: keys.duplicates.slice(0, 100), count: keys.duplicates.length },
          "rows whose email is, by its key, another row's email kept no key: matching by email finds the other row; merge or correct them",
        );
      }
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {});
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Creates the database named in `url` when it does not exist (for local use; managed databases already exist). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!name) return;
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    const [row] = await sql`select 1 as ok from pg_database where datname = ${name}`;
    if (!row) await sql.unsafe(`create database "${name.replaceAll('"', '""')}"`).catch((err: unknown) => {
      // Another process created it between our check and our create.
      if ((err as { code?: string }).code !== "42P04") throw err;
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
}
