import { UnrecoverableError } from "bullmq";
import type { Db } from "../../db/client.js";
import { deliverImportWebhook, type WebhookSettings } from "../../domain/webhooks/imports.js";
import type { Processor } from "../types.js";

/** Delivers one webhook; a non-2xx answer throws so BullMQ retries with the job's exponential backoff. */
export function webhookDeliverProcessor(deps: { db: Db; settings: WebhookSettings }): Processor<"webhook.deliver"> {
  return async (payload, ctx) => {
    if (payload.resource !== "import") throw new UnrecoverableError(`No webhook delivery for ${payload.resource}`);
    const attempts = ctx.job.opts.attempts ?? 1;
    const outcome = await deliverImportWebhook(
      deps,
      { workspaceId: payload.workspaceId, importId: payload.resourceId },
      { lastAttempt: ctx.job.attemptsMade + 1 >= attempts, deliveryId: `${ctx.job.id ?? payload.resourceId}` },
    );
    ctx.log.info({ outcome, attempt: ctx.job.attemptsMade + 1 }, "webhook delivery ended");
    return { outcome };
  };
}
