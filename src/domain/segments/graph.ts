import { eq, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { segmentDependencies, segments } from "../../db/schema.js";

/** A drizzle database or an open transaction on it. */
export type Executor = Db | Parameters<Parameters<Db["transaction"]>[0]>[0];

export interface SegmentNode {
  id: string;
  name: string;
  type: "dynamic" | "static";
  dependsOn: string[];
}
export type SegmentGraph = Map<string, SegmentNode>;

/** Every segment of the workspace with the segments its conditions use. */
export async function loadSegmentGraph(db: Executor, workspaceId: string): Promise<SegmentGraph> {
  const rows = await db
    .select({ id: segments.id, name: segments.name, type: segments.type })
    .from(segments)
    .where(eq(segments.workspaceId, workspaceId));
  const deps = await db
    .select({ segmentId: segmentDependencies.segmentId, dependsOnId: segmentDependencies.dependsOnId })
    .from(segmentDependencies)
    .where(eq(segmentDependencies.workspaceId, workspaceId));
  const graph: SegmentGraph = new Map(rows.map((r) => [r.id, { ...r, dependsOn: [] as string[] }]));
  for (const d of deps) graph.get(d.segmentId)?.dependsOn.push(d.dependsOnId);
  return graph;
}

/**
 * The cycle through `startId` (ids, starting and ending with it) when its dependencies lead back to it, else null.
 * Only cycles through the segment being saved matter: the stored graph is acyclic by construction.
 */
export function findCycle(graph: SegmentGraph, startId: string): string[] | null {
  const seen = new Set<string>();
  const path: string[] = [startId];
  const visit = (id: string): boolean => {
    for (const next of graph.get(id)?.dependsOn ?? []) {
      path.push(next);
      if (next === startId) return true;
      if (!seen.has(next)) {
        seen.add(next);
        if (visit(next)) return true;
      }
      path.pop();
    }
    return false;
  };
  return visit(startId) ? path : null;
}

/** Orders segment ids so that every segment comes after the segments it uses (dependencies first). */
export function dependencyOrder(graph: SegmentGraph, ids: Iterable<string> = graph.keys()): string[] {
  const out: string[] = [];
  const done = new Set<string>();
  const visit = (id: string, stack: Set<string>): void => {
    if (done.has(id) || stack.has(id) || !graph.has(id)) return;
    stack.add(id);
    for (const dep of graph.get(id)!.dependsOn) visit(dep, stack);
    stack.delete(id);
    done.add(id);
    out.push(id);
  };
  for (const id of ids) visit(id, new Set());
  return out;
}

/** Serialises changes to one workspace's segment definitions, so two concurrent edits cannot form a cycle. */
export async function lockSegmentDefinitions(tx: Executor, workspaceId: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`roster.segment-defs:${workspaceId}`}::text, 0))`);
}
