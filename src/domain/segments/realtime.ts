import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { segments } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import { compileConditions, parseConditions } from "./conditions.js";
import { dependencyOrder, loadSegmentGraph } from "./graph.js";
import { diffMembership, lockSegmentMembership } from "./membership-diff.js";

/**
 * Real-time evaluation: after identify or track, the dynamic segments of the workspace are re-evaluated for
 * just the people concerned (membership-diff.ts, the recompute's diff restricted to their ids), in dependency order so a
 * composed segment sees the membership its inputs just got. Memberships change and `segment.entered` /
 * `segment.left` events are written at once; no full recompute runs.
 *
 * Each segment is taken with a shared lock: evaluations for different people run side by side, while a full
 * recompute (exclusive) of that segment finishes first, so neither overwrites the other's view.
 */

export interface MembershipChange {
  segmentId: string;
  personId: string;
}

export async function evaluatePeople(db: Db, workspaceId: string, personIds: number[], log: Pick<Logger, "info" | "warn">, now = new Date()): Promise<{ entered: MembershipChange[]; left: MembershipChange[] }> {
  const entered: MembershipChange[] = [];
  const left: MembershipChange[] = [];
  if (!personIds.length) return { entered, left };
  const graph = await loadSegmentGraph(db, workspaceId);
  const dynamicIds = [...graph.values()].filter((n) => n.type === "dynamic").map((n) => n.id).sort();
  if (!dynamicIds.length) return { entered, left };
  const order = dependencyOrder(graph, dynamicIds).filter((id) => graph.get(id)?.type === "dynamic");
  const rows = await db
    .select({ id: segments.id, name: segments.name, conditions: segments.conditions })
    .from(segments)
    .where(and(eq(segments.workspaceId, workspaceId), eq(segments.type, "dynamic")));
  const byId = new Map(rows.map((r) => [r.id, r]));

  await db.transaction(async (tx) => {
    for (const segmentId of order) {
      const seg = byId.get(segmentId);
      if (!seg) continue;
      let predicate;
      try {
        predicate = compileConditions(parseConditions(seg.conditions), { workspaceId, now });
      } catch (err) {
        // A stored tree the language no longer accepts: its recompute reports the failure on the segment.
        log.warn({ segmentId, err: (err as Error).message }, "segment skipped in real-time evaluation");
        continue;
      }
      await lockSegmentMembership(tx, segmentId, "shared");
      const diff = await diffMembership(tx, { workspaceId, segment: { id: segmentId, name: seg.name }, predicate, at: now, personIds });
      // Incremental, so evaluations of different people (shared lock) add up under the row lock instead of overwriting each other.
      if (diff.entered || diff.left) {
        await tx.execute(sql`update segments set member_count = member_count + ${diff.entered - diff.left}::bigint where id = ${segmentId}::uuid`);
      }
      for (const personId of diff.enteredIds) entered.push({ segmentId, personId });
      for (const personId of diff.leftIds) left.push({ segmentId, personId });
    }
  });
  if (entered.length || left.length) log.info({ workspaceId, entered: entered.length, left: left.length }, "segments re-evaluated in real time");
  return { entered, left };
}
