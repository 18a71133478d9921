import type { Db } from "../../db/client.js";
import { deliverWebhook, webhookDeliveries, type WebhookSettings } from "../../domain/webhooks/delivery.js";
import type { RunSpec } from "../run-processor.js";

/** Identifies a delivery's job for the wrapper (fail): see src/workers/run-processor.ts. */
export const webhookDeliverJob: Pick<RunSpec<"webhook.deliver">, "owner" | "ref"> = {
  owner: (p) => webhookDeliveries[p.resource],
  ref: (p) => ({ workspaceId: p.workspaceId, id: p.resourceId }),
};

/** Delivers one webhook (import or export); a non-2xx answer throws so BullMQ retries with the job's exponential backoff. */
export function webhookDeliver(deps: { db: Db; settings: WebhookSettings }): RunSpec<"webhook.deliver"> {
  return {
    ...webhookDeliverJob,
    run: async (payload, ctx) => {
      const outcome = await deliverWebhook(
        deps,
        { workspaceId: payload.workspaceId, resource: payload.resource, id: payload.resourceId },
        { lastAttempt: ctx.lastAttempt, deliveryId: `${ctx.job.id ?? payload.resourceId}` },
      );
      ctx.log.info({ outcome, resource: payload.resource, attempt: ctx.job.attemptsMade + 1 }, "webhook delivery ended");
      return outcome;
    },
  };
}
