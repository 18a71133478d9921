import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { webhookSubscriptions } from "../../db/schema.js";
import { isUuid } from "../../lib/uuid.js";
import { NotFoundError, ValidationError } from "../errors.js";
import { newestFirst, newestFirstPage } from "../paging.js";

/** The membership events a subscription can ask for (the names the segment code writes to `events`). */
export const SUBSCRIPTION_EVENTS = ["segment.entered", "segment.left"] as const;
export type SubscriptionEvent = (typeof SUBSCRIPTION_EVENTS)[number];

type SubscriptionRow = typeof webhookSubscriptions.$inferSelect;

export function subscriptionView(row: SubscriptionRow) {
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    segmentIds: row.segmentIds,
    deliveredCount: row.deliveredCount,
    lastStatus: row.lastStatus,
    lastError: row.lastError,
    lastAttemptAt: row.lastAttemptAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
  };
}
export type SubscriptionView = ReturnType<typeof subscriptionView>;

/**
 * Subscribes `url` to membership events from now on: the cursor starts after the workspace's newest event, so
 * history is not replayed. Named segments must be this workspace's (422 otherwise).
 */
export async function createSubscription(db: Db, workspaceId: string, input: { url: string; events: SubscriptionEvent[]; segmentIds?: string[] }): Promise<SubscriptionRow> {
  const segmentIds = input.segmentIds ? [...new Set(input.segmentIds)] : null;
  if (segmentIds) {
    const valid = segmentIds.filter(isUuid);
    const found = valid.length
      ? await db.execute<{ id: string }>(sql`select id from segments where workspace_id = ${workspaceId}::uuid and id in (select x::uuid from jsonb_array_elements_text(${JSON.stringify(valid)}::jsonb) x)`)
      : [];
    const known = new Set([...found].map((r) => r.id));
    const unknown = segmentIds.filter((id) => !known.has(id));
    if (unknown.length) {
      throw new ValidationError("unknown_segment", `No segment of this workspace has the id ${unknown.map((u) => `"${u}"`).join(", ")}.`, {
        problems: unknown.map((u) => ({ field: "body.segmentIds", reason: `unknown segment ${u}` })),
      });
    }
  }
  const [row] = await db
    .insert(webhookSubscriptions)
    .values({
      workspaceId,
      url: input.url,
      events: [...new Set(input.events)],
      segmentIds,
      afterEventId: sql`(select coalesce(max(id), 0) from events where workspace_id = ${workspaceId}::uuid)`,
    })
    .returning();
  return row!;
}

export async function listSubscriptions(db: Db, workspaceId: string, q: { limit: number; cursor?: string }) {
  const { after, orderBy } = newestFirst(webhookSubscriptions, q.cursor);
  const rows = await db
    .select()
    .from(webhookSubscriptions)
    .where(and(eq(webhookSubscriptions.workspaceId, workspaceId), after))
    .orderBy(...orderBy)
    .limit(q.limit + 1);
  return newestFirstPage(rows, q.limit, subscriptionView);
}

export async function deleteSubscription(db: Db, workspaceId: string, id: string): Promise<void> {
  if (!isUuid(id)) throw new NotFoundError("Webhook subscription");
  const gone = await db
    .delete(webhookSubscriptions)
    .where(and(eq(webhookSubscriptions.id, id), eq(webhookSubscriptions.workspaceId, workspaceId)))
    .returning({ id: webhookSubscriptions.id });
  if (gone.length === 0) throw new NotFoundError("Webhook subscription");
}
