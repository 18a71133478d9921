import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { getAttribute, listAttributes, setAttributeType } from "../../domain/attribute-definitions/service.js";
import type { AppDeps } from "../app.js";
import { pageOf, pageQuery } from "../schemas/common.js";
import { attributeDetailSchema, attributeSchema, putAttributeBody } from "../schemas/attributes.js";

const keyParams = z.object({ key: z.string() });

/** Attribute keys, their declared types and the checks of stored values a type change queues. */
export async function attributeRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "producer">) {
  const app = base.withTypeProvider<ZodTypeProvider>();

  app.get(
    "/attributes",
    {
      schema: { querystring: pageQuery, response: { 200: pageOf(attributeSchema).describe("A page of attributes, by key") } },
      config: { docs: { summary: "Every attribute key people hold or that is declared, with its type and how many people hold it" } },
    },
    async (req) => listAttributes(deps.db, req.workspaceId, req.query),
  );

  app.get(
    "/attributes/:key",
    { schema: { params: keyParams, response: { 200: attributeDetailSchema.describe("The attribute and its latest check") } }, config: { docs: { summary: "One attribute" } } },
    async (req) => getAttribute(deps.db, req.workspaceId, req.params.key),
  );

  app.put(
    "/attributes/:key",
    {
      schema: {
        params: keyParams,
        body: putAttributeBody,
        response: {
          200: attributeDetailSchema.describe("Declared; no stored value needed checking"),
          202: attributeDetailSchema.describe("Declared; a check of the stored values is queued (`check`); Location names the attribute"),
        },
      },
      config: {
        docs: {
          summary: "Declare an attribute's type",
          location: [202],
          description:
            "string, number, boolean or date. Imports then coerce the key's cells to it (a cell that does not fit is a row error), segment conditions compare by it and exports format by it. When people hold values under the key and the type changes, 202 and a check job reports the values that do not fit (GET /v1/attributes/:key); values are never changed.",
        },
      },
    },
    async (req, reply) => {
      const { attribute, checkQueued } = await setAttributeType(deps, req.workspaceId, req.params.key, req.body.type);
      if (checkQueued) reply.status(202).header("location", `/v1/attributes/${encodeURIComponent(attribute.key)}`);
      return attribute;
    },
  );
}
