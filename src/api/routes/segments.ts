import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ValidationError } from "../../domain/errors.js";
import { addStaticMembers, listMembers, MAX_MEMBER_REFS, removeStaticMembers } from "../../domain/segments/members.js";
import { MAX_DEPTH, MAX_LIST_VALUES, MAX_NODES } from "../../domain/segments/conditions.js";
import { previewSegment } from "../../domain/segments/preview.js";
import { createSegment, deleteSegment, getSegment, listSegments, segmentView, updateSegment } from "../../domain/segments/service.js";
import { requestDependentsRecompute, requestDynamicSegmentRecompute } from "../../domain/segments/triggers.js";
import { isUuid } from "../../lib/uuid.js";
import type { AppDeps } from "../app.js";
import { personRefSchema } from "../schemas/people.js";
import { errorResponses, noContent, pageOf, pageQuery } from "../schemas/common.js";
import { memberSchema, membersAddedSchema, membersRemovedSchema, previewSchema, segmentSchema } from "../schemas/segments.js";

/** Conditions are validated by the domain (422 invalid_conditions with JSON paths); the schema documents them. */
export const conditionsInput = z.unknown().meta({
  description:
    'A condition tree (API.md "Conditions"): {all:[…]}, {any:[…]}, {not:{…}}, {field, op, value}, {label, op}, {event, op, count?, within?}, {segment, op}. ' +
    `At most ${MAX_DEPTH} levels, ${MAX_NODES} nodes and ${MAX_LIST_VALUES} values in one in/not_in list (422 invalid_conditions beyond); every limit works at its edge.`,
  example: { all: [{ field: "attributes.plan", op: "eq", value: "pro" }, { event: "Clicked Upgrade", op: "performed", count: { op: "gte", value: 3 }, within: { amount: 30, unit: "day" } }] },
});

const idParams = z.object({ id: z.string() });
const segmentName = z.string().trim().min(1).max(200);
const createBody = z
  .object({
    name: segmentName,
    description: z.string().max(2000).nullish(),
    type: z.enum(["dynamic", "static"]),
    conditions: conditionsInput.optional(),
  })
  .strict();
const updateBody = z
  .object({ name: segmentName.optional(), description: z.string().max(2000).nullable().optional(), conditions: conditionsInput.optional() })
  .strict();
const membersBody = z.object({ users: z.array(personRefSchema).min(1).max(MAX_MEMBER_REFS) }).strict();

export async function segmentRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "producer" | "env" | "logger">) {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const segDeps = { db: deps.db, producer: deps.producer, log: deps.logger };
  const theSegment = (description: string) => ({ 200: segmentSchema.describe(description) });

  app.post(
    "/segments",
    {
      schema: { body: createBody, response: { 201: segmentSchema.describe("The segment; Location names it") } },
      config: { docs: { summary: "Create a segment" }, idempotent: { location: (body) => `/v1/segments/${body.id}` } },
    },
    async (req, reply) => {
      reply.status(201);
      return segmentView(await createSegment(segDeps, req.workspaceId, req.body));
    },
  );

  app.get(
    "/segments",
    { schema: { querystring: pageQuery, response: { 200: pageOf(segmentSchema).describe("A page of segments") } }, config: { docs: { summary: "Segments, newest first" } } },
    async (req) => listSegments(deps.db, req.workspaceId, req.query),
  );

  app.post(
    "/segments/preview",
    { schema: { body: z.object({ conditions: conditionsInput }).strict(), response: { 200: previewSchema.describe("The count and a sample") } }, config: { docs: { summary: "Count and sample who conditions match now" } } },
    async (req) => {
      if (req.body.conditions === undefined) throw new ValidationError("conditions_required", "Send the conditions to preview.");
      return previewSegment(deps.db, req.workspaceId, req.body.conditions, { timeoutMs: deps.env.SEGMENT_PREVIEW_TIMEOUT_MS });
    },
  );

  app.get("/segments/:id", { schema: { params: idParams, response: theSegment("The segment") }, config: { docs: { summary: "A segment" } } }, async (req) =>
    segmentView(await getSegment(deps.db, req.workspaceId, req.params.id)),
  );

  app.patch(
    "/segments/:id",
    { schema: { params: idParams, body: updateBody, response: { ...theSegment("The segment"), ...errorResponses(409) } }, config: { docs: { summary: "Change name, description or conditions" } } },
    async (req) => segmentView(await updateSegment(segDeps, req.workspaceId, req.params.id, req.body)),
  );

  app.delete(
    "/segments/:id",
    { schema: { params: idParams, response: { 204: noContent("Deleted"), ...errorResponses(409) } }, config: { docs: { summary: "Delete a segment (409 while another segment uses it)" } } },
    async (req, reply) => {
      await deleteSegment(deps.db, req.workspaceId, req.params.id);
      return reply.status(204).send();
    },
  );

  app.post(
    "/segments/:id/recompute",
    { schema: { params: idParams, response: { 202: segmentSchema.describe("Accepted; Location names the segment") } }, config: { docs: { summary: "Queue a recompute of a dynamic segment", location: [202] } } },
    async (req, reply) => {
      // The usual case in one round trip (stamp and read back); the lookup only tells a missing from a static segment.
      const row = isUuid(req.params.id) ? await requestDynamicSegmentRecompute(deps.db, deps.producer, req.workspaceId, req.params.id) : null;
      if (!row) {
        await getSegment(deps.db, req.workspaceId, req.params.id);
        throw new ValidationError("segment_not_dynamic", "A static segment has no conditions to recompute.");
      }
      return reply.status(202).header("location", `/v1/segments/${row.id}`).send(segmentView(row));
    },
  );

  app.get(
    "/segments/:id/members",
    { schema: { params: idParams, querystring: pageQuery, response: { 200: pageOf(memberSchema).describe("A page of members") } }, config: { docs: { summary: "Members of a segment, by person id" } } },
    async (req) => listMembers(deps.db, req.workspaceId, req.params.id, req.query),
  );

  app.post(
    "/segments/:id/members",
    { schema: { params: idParams, body: membersBody, response: { 200: membersAddedSchema.describe("What changed") } }, config: { docs: { summary: "Add people to a static segment" } } },
    async (req) => {
      const res = await addStaticMembers(deps.db, req.workspaceId, req.params.id, req.body.users);
      await requestDependentsRecompute(deps.db, deps.producer, req.workspaceId, res.segment.id);
      return { added: res.changed, notFound: res.notFound, segment: segmentView(res.segment) };
    },
  );

  app.delete(
    "/segments/:id/members",
    { schema: { params: idParams, body: membersBody, response: { 200: membersRemovedSchema.describe("What changed") } }, config: { docs: { summary: "Remove people from a static segment" } } },
    async (req) => {
      const res = await removeStaticMembers(deps.db, req.workspaceId, req.params.id, req.body.users);
      await requestDependentsRecompute(deps.db, deps.producer, req.workspaceId, res.segment.id);
      return { removed: res.changed, notFound: res.notFound, segment: segmentView(res.segment) };
    },
  );
}
