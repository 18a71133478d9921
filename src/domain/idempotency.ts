import { createHash } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { idempotencyKeys } from "../db/schema.js";
import { ConflictError, ValidationError } from "./errors.js";

export interface StoredResponse {
  statusCode: number;
  body: unknown;
}

/** A stable fingerprint of a request: same key + same fingerprint replays; same key + another one is refused. */
export function fingerprint(parts: unknown): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}

const MAX_KEY_LENGTH = 255;

/**
 * Runs `create` at most once per (workspace, key). The key is claimed before the work starts, so two identical
 * requests racing each other cannot both create; a failed attempt releases the key so the client can retry.
 * Returns the original response on a replay (`replayed: true`).
 */
export async function withIdempotency(
  db: Db,
  workspaceId: string,
  key: string | undefined,
  requestHash: string,
  create: () => Promise<StoredResponse>,
): Promise<StoredResponse & { replayed: boolean }> {
  if (!key) return { ...(await create()), replayed: false };
  if (key.length > MAX_KEY_LENGTH) throw new ValidationError("invalid_idempotency_key", `The Idempotency-Key is longer than ${MAX_KEY_LENGTH} characters.`);
  const claimed = await db
    .insert(idempotencyKeys)
    .values({ workspaceId, key, requestHash })
    .onConflictDoNothing()
    .returning({ key: idempotencyKeys.key });
  if (claimed.length === 0) {
    const [prior] = await db
      .select()
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.workspaceId, workspaceId), eq(idempotencyKeys.key, key)));
    if (!prior) return withIdempotency(db, workspaceId, key, requestHash, create);
    if (prior.requestHash !== requestHash) {
      throw new ValidationError("idempotency_key_reused", "This Idempotency-Key was already used with a different request.");
    }
    if (prior.statusCode === null) {
      throw new ConflictError("idempotency_in_progress", "A request with this Idempotency-Key is still being processed; retry shortly.");
    }
    return { statusCode: prior.statusCode, body: prior.responseBody, replayed: true };
  }
  try {
    const res = await create();
    await db
      .update(idempotencyKeys)
      .set({ statusCode: res.statusCode, responseBody: sql`${JSON.stringify(res.body)}::jsonb` })
      .where(and(eq(idempotencyKeys.workspaceId, workspaceId), eq(idempotencyKeys.key, key)));
    return { ...res, replayed: false };
  } catch (err) {
    await db.delete(idempotencyKeys).where(and(eq(idempotencyKeys.workspaceId, workspaceId), eq(idempotencyKeys.key, key)));
    throw err;
  }
}
