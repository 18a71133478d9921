import { DrizzleQueryError } from "drizzle-orm";
import { pino, type Logger, type DestinationStream } from "pino";
import type { Env } from "../config/env.js";

/** Paths pino blanks out wherever they appear: credentials must never reach a log line. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers['x-api-key']",
  "headers.authorization",
  "authorization",
  "apiKey",
  "*.apiKey",
  "password",
  "*.password",
  "*.*.password",
  "passwordHash",
  "*.passwordHash",
  "token",
  "*.token",
  "secret",
  "*.secret",
];

export type { Logger };

/**
 * Errors as logged: a failed query is logged as the driver's error (its code and message), never as drizzle's wrapper,
 * whose message and `params` repeat the statement's parameters — people's emails and names from an import.
 */
function serializeError(err: unknown): unknown {
  const shown = err instanceof DrizzleQueryError && err.cause instanceof Error ? err.cause : err;
  return shown instanceof Error ? pino.stdSerializers.err(shown) : shown;
}

export function createLogger(env: Pick<Env, "LOG_LEVEL">, destination?: DestinationStream): Logger {
  return pino(
    {
      level: env.LOG_LEVEL,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: { err: serializeError },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
