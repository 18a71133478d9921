/**
 * Error codes that mean the database connection is gone or cannot be had: node's socket errors, postgres.js's own
 * codes, and Postgres's for a terminated backend, a shutdown and too many connections. One definition for the API
 * (503 database_unavailable) and the import run (a reserved connection that must not be released).
 */

/** An open connection died: its backend was terminated or the server is shutting down, or the socket closed. */
const CONNECTION_LOST = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "ECONNRESET",
  "EPIPE",
  "57P01", // admin_shutdown (pg_terminate_backend)
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
]);

/** No new connection can be had: the server is unreachable or refuses more. */
const CONNECTION_REFUSED = new Set(["ECONNREFUSED", "ETIMEDOUT", "EHOSTUNREACH", "CONNECT_TIMEOUT", "53300" /* too_many_connections */]);

/** The open connection this code came from is dead: nothing more may be sent on it. */
export function isConnectionLostCode(code: unknown): boolean {
  return typeof code === "string" && CONNECTION_LOST.has(code);
}

/** The database cannot be reached right now (a lost connection or none to be had): worth a retry later. */
export function isDatabaseUnavailableCode(code: unknown): boolean {
  return typeof code === "string" && (CONNECTION_LOST.has(code) || CONNECTION_REFUSED.has(code));
}
