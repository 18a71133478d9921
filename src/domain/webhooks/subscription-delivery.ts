import { sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import type { Logger } from "../../lib/logger.js";
import type { Producer } from "../../queue/producer.js";
import { WebhookDeliveryError, webhookBody, type WebhookSettings } from "./delivery.js";
import { postSigned, workspaceWebhookSecret } from "./signature.js";

/** Events per POST: a recompute that moves 100k people is 200 deliveries, not 100k. */
export const SUBSCRIPTION_BATCH = 500;
/** A subscription whose delivery failed for good is tried again (from the same event) this long after its last attempt. */
const FAILED_RETRY_AFTER = "5 minutes";

/**
 * Subscriptions with events to deliver: one delivery job each. The job id carries the cursor, so a subscription has
 * one job per batch however often the sweep runs; the delivery itself locks the subscription (at most one in flight).
 */
export async function sweepSubscriptions(deps: { db: Db; producer: Producer; settings: WebhookSettings }): Promise<number> {
  if (!deps.settings.signingKey) return 0;
  const due = await deps.db.execute<{ id: string; workspace_id: string; after_event_id: string }>(sql`
    select s.id, s.workspace_id, s.after_event_id from webhook_subscriptions s
    where (s.last_status is distinct from 'failed' or s.last_attempt_at < now() - ${FAILED_RETRY_AFTER}::interval)
      and exists (${pendingEvents(sql`s`)} limit 1)`);
  for (const s of due) {
    await deps.producer.enqueue(
      "webhook.subscription_deliver",
      { workspaceId: s.workspace_id, subscriptionId: s.id },
      { jobId: `whsub-${s.id}-${s.after_event_id}`, attempts: deps.settings.maxAttempts, backoffMs: deps.settings.backoffMs, removeWhenFinished: true },
    );
  }
  return due.length;
}

/** The membership events subscription `s` has not had yet, in id order. */
function pendingEvents(s: ReturnType<typeof sql>) {
  return sql`
    select e.id, e.name, e.person_id, e.occurred_at, e.properties from events e
    where e.workspace_id = ${s}.workspace_id and e.id > ${s}.after_event_id
      and e.name in (select jsonb_array_elements_text(${s}.events))
      and (${s}.segment_ids is null or ${s}.segment_ids ? (e.properties->>'segmentId'))
    order by e.id`;
}

/**
 * Delivers the next batch of a subscription's events (signed like every Roster webhook, event
 * `segment.membership`), then moves its cursor past them. The subscription row stays locked while the POST runs, so
 * two jobs never send the same batch twice at once. A non-2xx answer throws (BullMQ retries with backoff) and leaves
 * the cursor: the same events go again. More events left: the next batch is queued at once.
 */
export async function deliverSubscription(
  deps: { db: Db; producer: Producer; settings: WebhookSettings; log: Logger },
  ids: { workspaceId: string; subscriptionId: string },
  attempt: { lastAttempt: boolean; deliveryId: string },
): Promise<"delivered" | "nothing" | "busy"> {
  const signingKey = deps.settings.signingKey;
  if (!signingKey) return "nothing";
  const outcome = await deps.db.transaction(async (tx) => {
    const [sub] = await tx.execute<{ id: string; url: string; after_event_id: string }>(sql`
      select id, url, after_event_id from webhook_subscriptions
      where id = ${ids.subscriptionId}::uuid and workspace_id = ${ids.workspaceId}::uuid for update skip locked`);
    if (!sub) return "busy" as const;
    const events = await tx.execute<{ id: string; name: string; person_id: string; occurred_at: string; properties: Record<string, unknown>; email: string | null; external_id: string | null }>(sql`
      with s as (select * from webhook_subscriptions where id = ${sub.id}::uuid)
      select b.id, b.name, b.person_id, b.occurred_at, b.properties, p.email, p.external_id
      from s, lateral (${pendingEvents(sql`s`)} limit ${SUBSCRIPTION_BATCH}) b
      left join people p on p.id = b.person_id
      order by b.id`);
    if (events.length === 0) return "nothing" as const;
    const now = new Date();
    const data = {
      subscriptionId: sub.id,
      events: [...events].map((e) => ({
        id: String(e.id),
        event: e.name,
        segmentId: (e.properties.segmentId as string | undefined) ?? null,
        segmentName: (e.properties.segmentName as string | undefined) ?? null,
        user: { id: String(e.person_id), email: e.email, externalId: e.external_id },
        occurredAt: new Date(e.occurred_at).toISOString(),
      })),
    };
    const body = webhookBody("segment.membership", data, now);
    const problem = await postSigned({
      url: sub.url,
      event: "segment.membership",
      body,
      secret: workspaceWebhookSecret(signingKey, ids.workspaceId),
      deliveryId: attempt.deliveryId,
      timeoutMs: deps.settings.timeoutMs,
      now,
    });
    const lastId = data.events[data.events.length - 1]!.id;
    if (problem) {
      await tx.execute(sql`
        update webhook_subscriptions set last_status = ${attempt.lastAttempt ? "failed" : "pending"}, last_error = ${problem}, last_attempt_at = now()
        where id = ${sub.id}::uuid`);
      return { problem };
    }
    await tx.execute(sql`
      update webhook_subscriptions set after_event_id = ${lastId}::bigint, delivered_count = delivered_count + ${data.events.length},
        last_status = 'delivered', last_error = null, last_attempt_at = now()
      where id = ${sub.id}::uuid`);
    return { more: events.length === SUBSCRIPTION_BATCH, lastId };
  });
  if (typeof outcome === "string") return outcome;
  if ("problem" in outcome) throw new WebhookDeliveryError(outcome.problem);
  if (outcome.more) {
    await deps.producer.enqueue(
      "webhook.subscription_deliver",
      ids,
      { jobId: `whsub-${ids.subscriptionId}-${outcome.lastId}`, attempts: deps.settings.maxAttempts, backoffMs: deps.settings.backoffMs, removeWhenFinished: true },
    );
  }
  return "delivered";
}
