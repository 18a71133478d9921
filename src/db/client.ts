import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import * as schema from "./schema.js";

export type Db = PostgresJsDatabase<typeof schema> & { $client: postgres.Sql };
export type Sql = postgres.Sql;

export interface DbOptions {
  max?: number;
  statementTimeoutMs?: number;
  applicationName?: string;
}

/** One postgres.js pool wrapped by drizzle; `db.$client` is the raw client for COPY and set-based SQL. */
export function createDb(url: string, opts: DbOptions = {}): Db {
  return drizzle(createSql(url, opts), { schema }) as Db;
}

/**
 * A bare postgres.js client with the same session settings (and postgres.js's own type parsers). Exports use one
 * per run: a COPY … TO STDOUT abandoned midway leaves a postgres.js connection unusable ("COPY_IN_PROGRESS"), so
 * such a connection must be thrown away rather than returned to the shared pool.
 */
export function createSql(url: string, opts: DbOptions = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    onnotice: () => {},
    // Bound every statement server-side; client-side bounds live with the callers that need them.
    connection: {
      application_name: opts.applicationName ?? "roster",
      statement_timeout: opts.statementTimeoutMs ?? 300_000,
      TimeZone: "UTC",
    },
    connect_timeout: 10,
  });
}

export { schema };
