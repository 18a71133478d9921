import { hash, verify } from "@node-rs/argon2";
import type { ReservedSql } from "postgres";
import type { MemberRow } from "./validate.js";

/**
 * argon2 runs on libuv's thread pool (4 threads by default), so the event loop stays free to renew the job lock;
 * two at a time leaves threads for file and DNS work and a core for Postgres on a 2-core box.
 */
const HASH_CONCURRENCY = 2;
/** Stored in a dry run instead of a real hash: the transaction is rolled back, so ~75 ms of hashing per row buys nothing. */
const DRY_RUN_HASH = "dry-run";

/**
 * Turns the batch's clear passwords into what the batch writes: null when the stored hash already verifies
 * the password (nothing changes, the row can count as unchanged), else a fresh argon2id hash (library defaults:
 * m=19456 KiB, t=2, p=1). Clear passwords are dropped from the rows as soon as they are used.
 */
export async function hashPasswords(conn: ReservedSql, workspaceId: string, rows: MemberRow[], dryRun: boolean): Promise<void> {
  const todo = rows.filter((r) => r.password !== null);
  if (todo.length === 0) return;
  // Read outside the batch transaction so that slow hashing holds no locks. A hash that changes between this read
  // and the batch's write is kept when this row's password verified against the one read.
  const stored = await conn`
    select email_key as key, password_hash from team_members
    where workspace_id = ${workspaceId} and email_key = any(${todo.map((r) => r.key)}::text[]) and password_hash is not null`;
  const hashOf = new Map(stored.map((s) => [s.key as string, s.password_hash as string]));

  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const row = todo[next++]!;
      const password = row.password!;
      row.password = null;
      const current = hashOf.get(row.key);
      if (current !== undefined && (await verifies(current, password))) continue;
      row.hash = dryRun ? DRY_RUN_HASH : await hash(password);
    }
  };
  await Promise.all(Array.from({ length: Math.min(HASH_CONCURRENCY, todo.length) }, worker));
}

async function verifies(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    // A hash argon2 cannot read (another scheme): the password is set anew.
    return false;
  }
}

/** One password as stored (argon2id, the library's defaults, as an import stores it). */
export async function hashPassword(password: string): Promise<string> {
  return hash(password);
}
