import { timingSafeEqual } from "node:crypto";
import { and, eq, isNull, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { apiKeys, workspaces } from "../../db/schema.js";
import { generateApiKey, hashApiKey, isWellFormedApiKey } from "../../lib/keys.js";
import { NotFoundError } from "../errors.js";
import type { ApiKeyCache, CachedApiKey } from "./api-key-cache.js";

export interface CreatedWorkspace {
  id: string;
  name: string;
  apiKey: string;
  keyId: string;
}

/** Creates a workspace and its first API key; the key is returned once and only its hash is kept. */
export async function createWorkspace(db: Db, name: string): Promise<CreatedWorkspace> {
  return db.transaction(async (tx) => {
    const [ws] = await tx.insert(workspaces).values({ name }).returning();
    if (!ws) throw new Error("workspace insert returned nothing");
    const k = generateApiKey();
    const [key] = await tx
      .insert(apiKeys)
      .values({ workspaceId: ws.id, keyHash: k.hash, displayPrefix: k.displayPrefix })
      .returning({ id: apiKeys.id });
    if (!key) throw new Error("api key insert returned nothing");
    return { id: ws.id, name: ws.name, apiKey: k.key, keyId: key.id };
  });
}

export async function createApiKey(db: Db, workspaceId: string): Promise<{ id: string; apiKey: string }> {
  const [ws] = await db.select({ id: workspaces.id }).from(workspaces).where(eq(workspaces.id, workspaceId));
  if (!ws) throw new NotFoundError("Workspace");
  const k = generateApiKey();
  const [key] = await db
    .insert(apiKeys)
    .values({ workspaceId, keyHash: k.hash, displayPrefix: k.displayPrefix })
    .returning({ id: apiKeys.id });
  if (!key) throw new Error("api key insert returned nothing");
  return { id: key.id, apiKey: k.key };
}

/** Revokes a key; `cache` (this process's) forgets it at once, other processes hear of it from the api_keys trigger. */
export async function revokeApiKey(db: Db, workspaceId: string, keyId: string, cache?: ApiKeyCache): Promise<void> {
  const rows = await db
    .update(apiKeys)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiKeys.id, keyId), eq(apiKeys.workspaceId, workspaceId), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id, keyHash: apiKeys.keyHash });
  for (const row of rows) cache?.evict(row.keyHash.toString("hex"));
  if (rows.length === 0) {
    const [existing] = await db
      .select({ id: apiKeys.id })
      .from(apiKeys)
      .where(and(eq(apiKeys.id, keyId), eq(apiKeys.workspaceId, workspaceId)));
    if (!existing) throw new NotFoundError("API key");
  }
}

/**
 * The key lookup runs on every authenticated request: a prepared statement (built once per pool; postgres.js caches
 * it per connection) costs one round trip, where an unprepared drizzle query costs two (Parse/Describe, then Bind).
 */
const keyLookups = new WeakMap<Db, ReturnType<typeof prepareKeyLookup>>();
function prepareKeyLookup(db: Db) {
  return db
    .select({ id: apiKeys.id, workspaceId: apiKeys.workspaceId, keyHash: apiKeys.keyHash, revokedAt: apiKeys.revokedAt })
    .from(apiKeys)
    .where(eq(apiKeys.keyHash, sql.placeholder("hash")))
    .prepare("api_key_by_hash");
}

/**
 * Returns the workspace a key belongs to, or null for a malformed, unknown or revoked key. With `cache`, a valid key
 * seen recently is answered from memory (see ApiKeyCache for why a revocation still takes effect at once).
 */
export async function authenticateApiKey(db: Db, key: string, cache?: ApiKeyCache): Promise<CachedApiKey | null> {
  if (!isWellFormedApiKey(key)) return null;
  const hash = hashApiKey(key);
  const memo = cache?.enabled ? cache : undefined;
  const hex = memo ? hash.toString("hex") : "";
  const cached = memo?.get(hex);
  if (cached) return cached;
  const token = memo?.token() ?? 0;
  let lookup = keyLookups.get(db);
  if (!lookup) keyLookups.set(db, (lookup = prepareKeyLookup(db)));
  const [row] = await lookup.execute({ hash });
  if (!row || row.revokedAt) return null;
  if (row.keyHash.length !== hash.length || !timingSafeEqual(row.keyHash, hash)) return null;
  const found = { workspaceId: row.workspaceId, keyId: row.id };
  memo?.set(hex, found, token);
  return found;
}
