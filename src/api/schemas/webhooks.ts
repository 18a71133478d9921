import { z } from "zod";
import { WEBHOOK_STATUSES } from "../../db/schema.js";
import { callbackUrlSchema } from "../../domain/webhooks/callback-url.js";
import { SUBSCRIPTION_EVENTS, type SubscriptionView } from "../../domain/webhooks/subscriptions.js";
import type { SameKeys } from "./common.js";

export const createSubscriptionBody = z
  .object({
    url: callbackUrlSchema.describe("absolute http(s) URL that receives the signed deliveries"),
    events: z.array(z.enum(SUBSCRIPTION_EVENTS)).min(1).max(SUBSCRIPTION_EVENTS.length),
    segmentIds: z.array(z.string()).min(1).max(1000).optional().describe("only these segments' events; all segments when left out"),
  })
  .strict();

export const subscriptionSchema = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  segmentIds: z.array(z.string()).nullable().describe("null: every segment"),
  deliveredCount: z.number().int().describe("events delivered so far"),
  lastStatus: z.enum(WEBHOOK_STATUSES).nullable().describe("latest delivery: pending while retried, delivered or failed"),
  lastError: z.string().nullable(),
  lastAttemptAt: z.string().nullable().describe("ISO-8601 UTC"),
  createdAt: z.string().describe("ISO-8601 UTC"),
});
const _subscription: SameKeys<z.output<typeof subscriptionSchema>, SubscriptionView> = true;
