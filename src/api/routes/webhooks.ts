import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ValidationError } from "../../domain/errors.js";
import { createSubscription, deleteSubscription, listSubscriptions, subscriptionView } from "../../domain/webhooks/subscriptions.js";
import type { AppDeps } from "../app.js";
import { noContent, pageOf, pageQuery } from "../schemas/common.js";
import { createSubscriptionBody, subscriptionSchema } from "../schemas/webhooks.js";

const idParams = z.object({ id: z.string() });

/** Webhook subscriptions to segment membership events (deliveries: src/domain/webhooks/subscription-delivery.ts). */
export async function webhookRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "env">) {
  const app = base.withTypeProvider<ZodTypeProvider>();

  app.post(
    "/webhooks",
    {
      schema: { body: createSubscriptionBody, response: { 201: subscriptionSchema.describe("The subscription; Location names it") } },
      config: {
        docs: {
          summary: "Subscribe a URL to segment membership events",
          description:
            "Events written from now on (`segment.entered`, `segment.left`, optionally of some segments only) are POSTed in batches of up to 500, in order, as `{event: \"segment.membership\", sentAt, data: {subscriptionId, events: [{id, event, segmentId, segmentName, user: {id, email, externalId}, occurredAt}]}}`, signed with the workspace's webhook secret (`Roster-Signature`), and retried with backoff like import and export callbacks. 422 `webhooks_disabled` when the server has no WEBHOOK_SIGNING_KEY; 422 `unknown_segment` for a segment id not of this workspace.",
        },
        idempotent: { location: (body) => `/v1/webhooks/${body.id}` },
      },
    },
    async (req, reply) => {
      if (!deps.env.WEBHOOK_SIGNING_KEY) throw new ValidationError("webhooks_disabled", "This server does not send webhooks (WEBHOOK_SIGNING_KEY is not set).");
      reply.status(201);
      return subscriptionView(await createSubscription(deps.db, req.workspaceId, req.body));
    },
  );

  app.get(
    "/webhooks",
    { schema: { querystring: pageQuery, response: { 200: pageOf(subscriptionSchema).describe("A page of subscriptions") } }, config: { docs: { summary: "Webhook subscriptions, newest first" } } },
    async (req) => listSubscriptions(deps.db, req.workspaceId, req.query),
  );

  app.delete(
    "/webhooks/:id",
    { schema: { params: idParams, response: { 204: noContent("Deleted") } }, config: { docs: { summary: "Delete a webhook subscription (nothing more is sent)" } } },
    async (req, reply) => {
      await deleteSubscription(deps.db, req.workspaceId, req.params.id);
      return reply.status(204).send();
    },
  );
}
