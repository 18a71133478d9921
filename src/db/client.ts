import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import net from "node:net";
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
  const options: postgres.Options<Record<string, never>> = {
    max: opts.max ?? 10,
    onnotice: () => {},
    // Bound every statement server-side; client-side bounds live with the callers that need them.
    connection: {
      application_name: opts.applicationName ?? "roster",
      statement_timeout: opts.statementTimeoutMs ?? 300_000,
      TimeZone: "UTC",
    },
    connect_timeout: 10,
  };
  // `socket` is a postgres.js option its types do not declare.
  return fetchTypesOnce(postgres(url, Object.assign(options, { socket: noDelaySocket() })));
}

/**
 * postgres.js asks the catalog for the array types on every connect and reconnect of every connection, and keeps them
 * pool-wide (`options.shared.typeArrayMap`, with the parsers). That query's promise is discarded: a pool ended while
 * a connection is still asking (a pool ended with a timeout while it grows, or an export's connection reconnecting to
 * roll back) makes it an unhandled rejection, CONNECTION_DESTROYED, which ends a Node process (porsager/postgres#1192,
 * #1205; 3.4.9). So a connection asks only while the pool knows no array type yet: once one connection has answered,
 * the others, and every reconnect, start without the query.
 */
function fetchTypesOnce(sql: Sql): Sql {
  const options = sql.options as postgres.ParsedOptions<Record<string, never>> & { shared: { typeArrayMap: Record<number, number> } };
  if (options.fetch_types) Object.defineProperty(options, "fetch_types", { get: () => Object.keys(options.shared.typeArrayMap).length === 0 });
  return sql;
}

/**
 * postgres.js opens its TCP sockets with Nagle's algorithm on (libpq, JDBC and Npgsql all turn it off). Then a
 * statement sent just after a COPY waits for the server's delayed ACK of the COPY's last bytes: ~42 ms per COPY on
 * Linux, 4.4 s of a 1M-row import's 100 batches (BENCHMARKS.md, 2026-11-30, sixth session). So the pool's sockets are
 * opened here, with TCP_NODELAY, to the hosts postgres.js parsed from the URL (in turn, as it would itself), or to its
 * Unix socket.
 */
export function noDelaySocket(): (o: { host: string[]; port: number[]; path?: string | false }) => net.Socket {
  let next = 0;
  return (o) => {
    if (o.path) return net.connect({ path: o.path });
    const i = next++ % o.host.length;
    const socket = net.connect({ host: o.host[i]!, port: o.port[i] ?? o.port[0]!, noDelay: true });
    socket.setNoDelay(true);
    return socket;
  };
}

export { schema };
