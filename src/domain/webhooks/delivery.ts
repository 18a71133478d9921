import { and, eq, isNotNull, sql } from "drizzle-orm";
import type { Env } from "../../config/env.js";
import type { Db } from "../../db/client.js";
import type { WebhookStatus } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import { webhookDeliveryJobId } from "../../queue/job-ids.js";
import type { Producer } from "../../queue/producer.js";
import type { FinalFailure, RunOwner, RunRef } from "../runs.js";
import { loadWebhookSubject, webhookTables, type WebhookResource } from "./resources.js";
import { postSigned, workspaceWebhookSecret } from "./signature.js";

export interface WebhookSettings {
  signingKey: string | undefined;
  maxAttempts: number;
  backoffMs: number;
  timeoutMs: number;
}

export function webhookSettings(env: Pick<Env, "WEBHOOK_SIGNING_KEY" | "WEBHOOK_MAX_ATTEMPTS" | "WEBHOOK_BACKOFF_MS" | "WEBHOOK_TIMEOUT_MS">): WebhookSettings {
  return { signingKey: env.WEBHOOK_SIGNING_KEY, maxAttempts: env.WEBHOOK_MAX_ATTEMPTS, backoffMs: env.WEBHOOK_BACKOFF_MS, timeoutMs: env.WEBHOOK_TIMEOUT_MS };
}

export interface WebhookTarget {
  workspaceId: string;
  resource: WebhookResource;
  id: string;
}

/**
 * Queues the delivery of a finished import (done, failed, cancelled, validated) or export (done, failed) to its
 * callbackUrl, if it has one: the resource's webhook fields restart as pending. One job per resource and status, so
 * a validated-then-done import announces both.
 */
export async function queueWebhook(deps: { db: Db; producer: Producer; log: Logger; settings: WebhookSettings }, target: WebhookTarget): Promise<void> {
  const table = webhookTables[target.resource];
  const [row] = await deps.db
    .update(table)
    .set({ webhookStatus: "pending", webhookAttempts: 0, webhookLastError: null })
    .where(and(eq(table.id, target.id), eq(table.workspaceId, target.workspaceId), isNotNull(table.callbackUrl)))
    .returning({ status: table.status });
  if (!row) return;
  try {
    await deps.producer.enqueue(
      "webhook.deliver",
      { workspaceId: target.workspaceId, resource: target.resource, resourceId: target.id },
      { jobId: webhookDeliveryJobId(target.resource, target.id, row.status), attempts: deps.settings.maxAttempts, backoffMs: deps.settings.backoffMs },
    );
  } catch (err) {
    deps.log.warn({ resource: target.resource, id: target.id, err: (err as Error).message }, "could not queue the webhook");
    await deps.db
      .update(table)
      .set({ webhookStatus: "failed", webhookLastError: "The delivery could not be queued (job queue unavailable)." })
      .where(eq(table.id, target.id));
  }
}

/** The JSON a receiver gets: the event, when it was sent, and the resource as the API shows it. */
export function webhookBody(event: string, view: unknown, sentAt: Date): string {
  return JSON.stringify({ event, sentAt: sentAt.toISOString(), data: view });
}

export class WebhookDeliveryError extends Error {}

/**
 * One delivery attempt: POST the signed body; record the attempt on the resource. Throws when the receiver did not
 * answer 2xx so BullMQ retries with backoff; `lastAttempt` marks the resource's webhook failed instead of pending.
 */
export async function deliverWebhook(
  deps: { db: Db; settings: WebhookSettings },
  target: WebhookTarget,
  attempt: { lastAttempt: boolean; deliveryId: string },
): Promise<"delivered" | "skipped"> {
  const subject = await loadWebhookSubject(deps.db, target.resource, target.workspaceId, target.id);
  if (!subject?.callbackUrl) return "skipped";
  if (!deps.settings.signingKey) {
    await record(deps.db, target, "failed", "Webhooks are not configured on this server (WEBHOOK_SIGNING_KEY).");
    return "skipped";
  }
  const now = new Date();
  const event = `${target.resource}.${subject.status}`;
  const body = webhookBody(event, subject.view, now);
  const problem = await postSigned({
    url: subject.callbackUrl,
    event,
    body,
    secret: workspaceWebhookSecret(deps.settings.signingKey, subject.workspaceId),
    deliveryId: attempt.deliveryId,
    timeoutMs: deps.settings.timeoutMs,
    now,
  });
  if (!problem) {
    await record(deps.db, target, "delivered", null);
    return "delivered";
  }
  await record(deps.db, target, attempt.lastAttempt ? "failed" : "pending", problem);
  throw new WebhookDeliveryError(problem);
}

async function record(db: Db, target: WebhookTarget, status: WebhookStatus, error: string | null) {
  const table = webhookTables[target.resource];
  await db
    .update(table)
    .set({ webhookStatus: status, webhookAttempts: sql`${table.webhookAttempts} + 1`, webhookLastError: error })
    .where(and(eq(table.id, target.id), eq(table.workspaceId, target.workspaceId)));
}

/** Statuses of a resource's latest delivery; `pending` while its job runs or waits to retry. */
export const DELIVERY_FINAL = ["delivered", "failed"] as const satisfies readonly WebhookStatus[];

/**
 * What happens when a delivery's job fails for good without recording it (its last attempt records `failed` itself):
 * a delivery still pending says `failed` with the reason.
 */
async function failDelivery(db: Db, resource: WebhookResource, run: RunRef, failure: FinalFailure): Promise<boolean> {
  const table = webhookTables[resource];
  const reason = failure.cause === "attempts" ? `The delivery stopped after ${failure.attempts} attempts: ${failure.message}` : `The delivery stopped: ${failure.message ?? "its job failed"}.`;
  const rows = await db
    .update(table)
    .set({ webhookStatus: "failed", webhookLastError: reason })
    .where(and(eq(table.id, run.id), eq(table.workspaceId, run.workspaceId), eq(table.webhookStatus, "pending")))
    .returning({ id: table.id });
  return rows.length > 0;
}

/** Webhook deliveries as a kind of run, per resource (a delivery announces nothing itself). */
export const webhookDeliveries: Record<WebhookResource, RunOwner> = {
  import: { final: DELIVERY_FINAL, fail: (db, run, failure) => failDelivery(db, "import", run, failure) },
  export: { final: DELIVERY_FINAL, fail: (db, run, failure) => failDelivery(db, "export", run, failure) },
};
