import { randomUUID } from "node:crypto";
import { and, eq, ne } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { segmentDependencies, segments } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import { isUuid } from "../../lib/uuid.js";
import { isUniqueViolation } from "../db-errors.js";
import { ConflictError, NotFoundError, ValidationError } from "../errors.js";
import { parseConditions, segmentReferences, type Condition } from "./conditions.js";
import { findCycle, loadSegmentGraph, lockSegmentDefinitions, type Executor } from "./graph.js";
import { requestSegmentRecompute, type Enqueuer } from "./triggers.js";
import { newestFirst, newestFirstPage } from "../paging.js";

export type SegmentRow = typeof segments.$inferSelect;

export interface SegmentDeps {
  db: Db;
  producer: Enqueuer;
  log: Logger;
}

export function segmentView(row: SegmentRow) {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    type: row.type,
    conditions: row.conditions ?? null,
    status: row.status,
    failureReason: row.failureReason,
    memberCount: row.memberCount,
    lastComputedAt: row.lastComputedAt?.toISOString() ?? null,
    lastDurationMs: row.lastDurationMs,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
export type SegmentView = ReturnType<typeof segmentView>;

export async function getSegment(db: Executor, workspaceId: string, id: string): Promise<SegmentRow> {
  if (!isUuid(id)) throw new NotFoundError("Segment");
  const [row] = await db
    .select()
    .from(segments)
    .where(and(eq(segments.id, id), eq(segments.workspaceId, workspaceId)));
  if (!row) throw new NotFoundError("Segment");
  return row;
}

export async function listSegments(db: Db, workspaceId: string, q: { limit: number; cursor?: string }) {
  const conds = [eq(segments.workspaceId, workspaceId)];
  const { after, orderBy } = newestFirst(segments, q.cursor);
  if (after) conds.push(after);
  const rows = await db
    .select()
    .from(segments)
    .where(and(...conds))
    .orderBy(...orderBy)
    .limit(q.limit + 1);
  return newestFirstPage(rows, q.limit, segmentView);
}

/**
 * Parses conditions for segment `segmentId` of the workspace: every referenced segment must exist there, and
 * the references must not lead back to the segment itself (422 naming the cycle). Runs under the
 * definitions lock so that two concurrent edits cannot close a cycle between them.
 */
async function checkConditions(tx: Executor, workspaceId: string, segmentId: string, raw: unknown): Promise<{ condition: Condition; dependsOn: string[] }> {
  const condition = parseConditions(raw);
  const refs = segmentReferences(condition);
  const graph = await loadSegmentGraph(tx, workspaceId);
  const missing = refs.filter((r) => !graph.has(r.id) && r.id !== segmentId);
  if (missing.length) {
    throw new ValidationError("invalid_conditions", `The conditions refer to a segment that does not exist in this workspace (${missing[0]!.path}).`, {
      problems: missing.map((m) => ({ path: m.path, reason: "is not a segment of this workspace" })),
    });
  }
  const dependsOn = [...new Set(refs.map((r) => r.id))];
  graph.set(segmentId, { id: segmentId, name: graph.get(segmentId)?.name ?? "(this segment)", type: "dynamic", dependsOn });
  const cycle = findCycle(graph, segmentId);
  if (cycle) {
    const names = cycle.map((id) => graph.get(id)?.name ?? id);
    throw new ValidationError("segment_cycle", `The segment would depend on itself: ${names.join(" → ")}.`, {
      cycle: cycle.map((id) => ({ id, name: graph.get(id)?.name ?? null })),
    });
  }
  return { condition, dependsOn };
}

async function replaceDependencies(tx: Executor, workspaceId: string, segmentId: string, dependsOn: string[]): Promise<void> {
  await tx.delete(segmentDependencies).where(eq(segmentDependencies.segmentId, segmentId));
  if (dependsOn.length) {
    await tx.insert(segmentDependencies).values(dependsOn.map((d) => ({ workspaceId, segmentId, dependsOnId: d })));
  }
}

const nameTaken = (name: string) => new ConflictError("segment_name_taken", `A segment named "${name}" already exists in this workspace.`, { name });

/** Queues the first computation; a queue outage leaves the segment `failed` with a reason rather than losing the segment. */
async function queueRecompute(deps: SegmentDeps, row: SegmentRow): Promise<SegmentRow> {
  try {
    await requestSegmentRecompute(deps.db, deps.producer, row.workspaceId, row.id);
    return row;
  } catch (err) {
    deps.log.warn({ segmentId: row.id, err: (err as Error).message }, "could not queue a segment recompute");
    const [failed] = await deps.db
      .update(segments)
      .set({ status: "failed", failureReason: "The recompute could not be queued; request one with POST /v1/segments/:id/recompute." })
      .where(eq(segments.id, row.id))
      .returning();
    return failed ?? row;
  }
}

export interface CreateSegmentInput {
  name: string;
  description?: string | null;
  type: "dynamic" | "static";
  conditions?: unknown;
}

export async function createSegment(deps: SegmentDeps, workspaceId: string, input: CreateSegmentInput): Promise<SegmentRow> {
  if (input.type === "static" && input.conditions !== undefined && input.conditions !== null) {
    throw new ValidationError("conditions_not_allowed", "A static segment has no conditions: add members with POST /v1/segments/:id/members.");
  }
  if (input.type === "dynamic" && (input.conditions === undefined || input.conditions === null)) {
    throw new ValidationError("conditions_required", "A dynamic segment needs conditions.");
  }
  let row: SegmentRow;
  try {
    row = await deps.db.transaction(async (tx) => {
      await lockSegmentDefinitions(tx, workspaceId);
      const id = randomUUID();
      const checked = input.type === "dynamic" ? await checkConditions(tx, workspaceId, id, input.conditions) : null;
      const [created] = await tx
        .insert(segments)
        .values({
          id,
          workspaceId,
          name: input.name,
          description: input.description ?? null,
          type: input.type,
          // The client's JSON as sent (validated above): parsed trees hold normalised values, not the language.
          conditions: checked ? input.conditions : null,
          status: input.type === "dynamic" ? "computing" : "ready",
        })
        .returning();
      if (checked) await replaceDependencies(tx, workspaceId, id, checked.dependsOn);
      return created!;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw nameTaken(input.name);
    throw err;
  }
  return row.type === "dynamic" ? queueRecompute(deps, row) : row;
}

export interface UpdateSegmentInput {
  name?: string;
  description?: string | null;
  conditions?: unknown;
}

export async function updateSegment(deps: SegmentDeps, workspaceId: string, id: string, input: UpdateSegmentInput): Promise<SegmentRow> {
  let changedConditions = false;
  let row: SegmentRow;
  try {
    row = await deps.db.transaction(async (tx) => {
      await lockSegmentDefinitions(tx, workspaceId);
      const current = await getSegment(tx, workspaceId, id);
      const set: Partial<typeof segments.$inferInsert> = { updatedAt: new Date() };
      if (input.name !== undefined) set.name = input.name;
      if (input.description !== undefined) set.description = input.description;
      if (input.conditions !== undefined) {
        if (current.type === "static") {
          throw new ValidationError("conditions_not_allowed", "A static segment has no conditions: add members with POST /v1/segments/:id/members.");
        }
        const checked = await checkConditions(tx, workspaceId, id, input.conditions);
        set.conditions = input.conditions;
        set.status = "computing";
        set.failureReason = null;
        await replaceDependencies(tx, workspaceId, id, checked.dependsOn);
        changedConditions = true;
      }
      const [updated] = await tx.update(segments).set(set).where(eq(segments.id, current.id)).returning();
      return updated!;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw nameTaken(input.name ?? "");
    throw err;
  }
  return changedConditions ? queueRecompute(deps, row) : row;
}

/** Deletes a segment; refused (409) while another segment's conditions use it. */
export async function deleteSegment(db: Db, workspaceId: string, id: string): Promise<void> {
  await db.transaction(async (tx) => {
    await lockSegmentDefinitions(tx, workspaceId);
    const seg = await getSegment(tx, workspaceId, id);
    const users = await tx
      .select({ id: segments.id, name: segments.name })
      .from(segmentDependencies)
      .innerJoin(segments, eq(segments.id, segmentDependencies.segmentId))
      .where(and(eq(segmentDependencies.dependsOnId, seg.id), ne(segmentDependencies.segmentId, seg.id)));
    if (users.length) {
      throw new ConflictError("segment_in_use", `The segment is used by ${users.map((u) => `"${u.name}"`).join(", ")}; change those first.`, {
        usedBy: users,
      });
    }
    await tx.delete(segments).where(eq(segments.id, seg.id));
  });
}
