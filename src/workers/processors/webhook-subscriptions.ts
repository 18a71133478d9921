import type { Db } from "../../db/client.js";
import type { Logger } from "../../lib/logger.js";
import type { Producer } from "../../queue/producer.js";
import type { WebhookSettings } from "../../domain/webhooks/delivery.js";
import { deliverSubscription, sweepSubscriptions } from "../../domain/webhooks/subscription-delivery.js";
import type { Processor } from "../types.js";

type Deps = { db: Db; producer: Producer; log: Logger; settings: WebhookSettings };

/** One batch of a subscription's membership events; a non-2xx answer throws so BullMQ retries with backoff. */
export function subscriptionDeliverProcessor(deps: Deps): Processor<"webhook.subscription_deliver"> {
  return async (payload, ctx) => {
    const attempts = ctx.job.opts.attempts ?? 1;
    const outcome = await deliverSubscription(deps, payload, { lastAttempt: ctx.job.attemptsMade + 1 >= attempts, deliveryId: `${ctx.job.id ?? payload.subscriptionId}` });
    ctx.log.info({ outcome, subscriptionId: payload.subscriptionId, attempt: ctx.job.attemptsMade + 1 }, "webhook subscription delivery ended");
    return { outcome };
  };
}

export function sweepSubscriptionsProcessor(deps: Deps): Processor<"webhooks.sweep_subscriptions"> {
  return async () => ({ queued: await sweepSubscriptions(deps) });
}
