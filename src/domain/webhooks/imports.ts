import { and, eq, isNotNull, sql } from "drizzle-orm";
import type { Env } from "../../config/env.js";
import type { Db } from "../../db/client.js";
import { imports } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import type { Producer } from "../../queue/producer.js";
import { summaryView } from "../imports/service.js";
import { SIGNATURE_HEADER, signatureHeader, workspaceWebhookSecret } from "./signature.js";

/** Import statuses after which nothing more happens until a client acts: each one is announced. */
export const FINISHED_IMPORT_STATUSES = ["done", "failed", "cancelled", "validated"] as const;

export interface WebhookSettings {
  signingKey: string | undefined;
  maxAttempts: number;
  backoffMs: number;
  timeoutMs: number;
}

export function webhookSettings(env: Pick<Env, "WEBHOOK_SIGNING_KEY" | "WEBHOOK_MAX_ATTEMPTS" | "WEBHOOK_BACKOFF_MS" | "WEBHOOK_TIMEOUT_MS">): WebhookSettings {
  return { signingKey: env.WEBHOOK_SIGNING_KEY, maxAttempts: env.WEBHOOK_MAX_ATTEMPTS, backoffMs: env.WEBHOOK_BACKOFF_MS, timeoutMs: env.WEBHOOK_TIMEOUT_MS };
}

/**
 * Queues the delivery of a finished import to its callbackUrl (if it has one): the import's webhook fields restart
 * as pending. One job per import and status, so a validated-then-done import announces both.
 */
export async function queueImportWebhook(
  deps: { db: Db; producer: Producer; log: Logger; settings: WebhookSettings },
  workspaceId: string,
  importId: string,
): Promise<void> {
  const [row] = await deps.db
    .update(imports)
    .set({ webhookStatus: "pending", webhookAttempts: 0, webhookLastError: null })
    .where(and(eq(imports.id, importId), eq(imports.workspaceId, workspaceId), isNotNull(imports.callbackUrl)))
    .returning({ status: imports.status });
  if (!row) return;
  try {
    await deps.producer.enqueue(
      "webhook.deliver",
      { workspaceId, resource: "import", resourceId: importId },
      { jobId: `webhook-import-${importId}-${row.status}`, attempts: deps.settings.maxAttempts, backoffMs: deps.settings.backoffMs },
    );
  } catch (err) {
    deps.log.warn({ importId, err: (err as Error).message }, "could not queue the import webhook");
    await deps.db
      .update(imports)
      .set({ webhookStatus: "failed", webhookLastError: "The delivery could not be queued (job queue unavailable)." })
      .where(eq(imports.id, importId));
  }
}

/** The JSON a receiver gets: the event, when it was sent, and the import as GET /v1/imports/:id shows it (without errors). */
export function importWebhookBody(row: typeof imports.$inferSelect, sentAt: Date): string {
  return JSON.stringify({ event: `import.${row.status}`, sentAt: sentAt.toISOString(), data: summaryView(row) });
}

export class WebhookDeliveryError extends Error {}

/**
 * One delivery attempt: POST the signed body; record the attempt on the import. Throws when the receiver did not
 * answer 2xx so BullMQ retries with backoff; `lastAttempt` marks the import's webhook failed instead of pending.
 */
export async function deliverImportWebhook(
  deps: { db: Db; settings: WebhookSettings },
  ids: { workspaceId: string; importId: string },
  attempt: { lastAttempt: boolean; deliveryId: string },
): Promise<"delivered" | "skipped"> {
  const [row] = await deps.db
    .select()
    .from(imports)
    .where(and(eq(imports.id, ids.importId), eq(imports.workspaceId, ids.workspaceId)));
  if (!row?.callbackUrl) return "skipped";
  if (!deps.settings.signingKey) {
    await record(deps.db, row.id, "failed", "Webhooks are not configured on this server (WEBHOOK_SIGNING_KEY).");
    return "skipped";
  }
  const now = new Date();
  const body = importWebhookBody(row, now);
  const secret = workspaceWebhookSecret(deps.settings.signingKey, row.workspaceId);
  let problem: string | null = null;
  try {
    const res = await fetch(row.callbackUrl, {
      method: "POST",
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(deps.settings.timeoutMs),
      headers: {
        "content-type": "application/json",
        "user-agent": "Roster-Webhooks/1",
        [SIGNATURE_HEADER]: signatureHeader(secret, body, Math.floor(now.getTime() / 1000)),
        "roster-event": `import.${row.status}`,
        "roster-delivery": attempt.deliveryId,
      },
    });
    await res.body?.cancel().catch(() => {});
    if (res.status < 200 || res.status >= 300) problem = `The receiver answered HTTP ${res.status}.`;
  } catch (err) {
    problem = `The request failed: ${(err as Error).message}`;
  }
  if (!problem) {
    await record(deps.db, row.id, "delivered", null);
    return "delivered";
  }
  await record(deps.db, row.id, attempt.lastAttempt ? "failed" : "pending", problem);
  throw new WebhookDeliveryError(problem);
}

async function record(db: Db, importId: string, status: "pending" | "delivered" | "failed", error: string | null) {
  await db
    .update(imports)
    .set({ webhookStatus: status, webhookAttempts: sql`${imports.webhookAttempts} + 1`, webhookLastError: error })
    .where(eq(imports.id, importId));
}
