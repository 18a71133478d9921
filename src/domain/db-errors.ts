/** PostgreSQL errors the domain turns into its own. drizzle wraps the driver's error, so the code may sit on `cause`. */

function hasPgCode(err: unknown, code: string): boolean {
  const e = err as { code?: string; cause?: { code?: string } } | null | undefined;
  return e?.code === code || e?.cause?.code === code;
}

/** A unique constraint refused the write (SQLSTATE 23505). */
export function isUniqueViolation(err: unknown): boolean {
  return hasPgCode(err, "23505");
}
