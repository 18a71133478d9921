import { and, asc, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { segments } from "../../db/schema.js";
import { ValidationError } from "../errors.js";
import { p, personView } from "../people/view.js";
import { compileConditions, parseConditions, segmentReferences, type Condition } from "./conditions.js";
import type { Executor } from "./graph.js";

/** People shown with a preview's count: enough to recognise the audience, small enough to answer fast. */
export const PREVIEW_SAMPLE_SIZE = 20;

/** 422 when a segment condition names a segment that is not in the workspace (another workspace's id included). */
export async function assertReferencedSegmentsExist(db: Executor, workspaceId: string, condition: Condition): Promise<void> {
  const refs = segmentReferences(condition);
  if (!refs.length) return;
  const found = await db
    .select({ id: segments.id })
    .from(segments)
    .where(and(eq(segments.workspaceId, workspaceId), inArray(segments.id, [...new Set(refs.map((r) => r.id))])));
  const ids = new Set(found.map((f) => f.id));
  const missing = refs.filter((r) => !ids.has(r.id));
  if (missing.length) {
    throw new ValidationError("invalid_conditions", `The conditions refer to a segment that does not exist in this workspace (${missing[0]!.path}).`, {
      problems: missing.map((m) => ({ path: m.path, reason: "is not a segment of this workspace" })),
    });
  }
}

function isStatementTimeout(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return e.code === "57014" || e.cause?.code === "57014";
}

/** Counts who the conditions match now and shows a sample, bounded by a statement timeout (422 preview_timeout beyond). */
export async function previewSegment(db: Db, workspaceId: string, rawConditions: unknown, opts: { timeoutMs: number; now?: Date }) {
  const condition = parseConditions(rawConditions);
  await assertReferencedSegmentsExist(db, workspaceId, condition);
  const predicate = compileConditions(condition, { workspaceId, now: opts.now ?? new Date() });
  try {
    return await db.transaction(async (tx) => {
      await tx.execute(sql`select set_config('statement_timeout', ${String(opts.timeoutMs)}, true)`);
      const [counted] = await tx.execute<{ n: number }>(sql`select count(*)::int as n from people p where p.workspace_id = ${workspaceId}::uuid and ${predicate}`);
      const sample = await tx
        .select()
        .from(p)
        .where(and(eq(p.workspaceId, workspaceId), predicate))
        .orderBy(asc(p.id))
        .limit(PREVIEW_SAMPLE_SIZE);
      return { count: Number(counted?.n ?? 0), sample: sample.map(personView) };
    }, { accessMode: "read only" });
  } catch (err) {
    if (isStatementTimeout(err)) {
      throw new ValidationError("preview_timeout", `The preview took longer than ${opts.timeoutMs} ms; narrow the conditions or save the segment and let it compute in the background.`, {
        timeoutMs: opts.timeoutMs,
      });
    }
    throw err;
  }
}
