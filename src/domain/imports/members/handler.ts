import type { BatchContext, RowHandler } from "../handler.js";
import type { MappingTarget } from "../targets.js";
import { ensureMemberStage, writeMemberBatch } from "./batch.js";
import { hashPasswords } from "./password.js";
import { memberRowValidator, type MemberRow } from "./validate.js";

/**
 * Hashing costs ~75 ms per password: batches of this size commit (and checkpoint) every half minute or so,
 * so a crash or a deploy loses little hashing work.
 */
const MEMBER_BATCH_SIZE = 500;

/** kind=members (Helpmonks): team members matched on email, passwords stored only as argon2id hashes. */
export function membersHandler(ctx: BatchContext, headers: string[], mapping: Record<string, MappingTarget>): RowHandler<MemberRow> {
  return {
    ensureStage: ensureMemberStage,
    validate: memberRowValidator(headers, mapping),
    dedupeByKey: true,
    maxBatchSize: MEMBER_BATCH_SIZE,
    prepare: (conn, rows) => hashPasswords(conn, ctx.workspaceId, rows, ctx.dryRun),
    writeBatch: (conn, b) => writeMemberBatch(conn, ctx, b.staged),
  };
}
