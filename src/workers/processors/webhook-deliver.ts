import type { Db } from "../../db/client.js";
import { deliverWebhook, type WebhookSettings } from "../../domain/webhooks/delivery.js";
import type { Processor } from "../types.js";

/** Delivers one webhook (import or export); a non-2xx answer throws so BullMQ retries with the job's exponential backoff. */
export function webhookDeliverProcessor(deps: { db: Db; settings: WebhookSettings }): Processor<"webhook.deliver"> {
  return async (payload, ctx) => {
    const attempts = ctx.job.opts.attempts ?? 1;
    const outcome = await deliverWebhook(
      deps,
      { workspaceId: payload.workspaceId, resource: payload.resource, id: payload.resourceId },
      { lastAttempt: ctx.job.attemptsMade + 1 >= attempts, deliveryId: `${ctx.job.id ?? payload.resourceId}` },
    );
    ctx.log.info({ outcome, resource: payload.resource, attempt: ctx.job.attemptsMade + 1 }, "webhook delivery ended");
    return { outcome };
  };
}
