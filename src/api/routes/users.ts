import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ValidationError } from "../../domain/errors.js";
import { trackEvents, trackSchema } from "../../domain/events/track.js";
import { identifyPerson, identifySchema } from "../../domain/people/identify.js";
import { getProfile, listPeople, searchPeople } from "../../domain/people/list.js";
import type { AppDeps } from "../app.js";
import { pageBody, pageOf, pageQuery } from "../schemas/common.js";
import { identifyResultSchema, personSchema, profileSchema, trackResultSchema } from "../schemas/people.js";
import { conditionsInput } from "./segments.js";

/** People ("users") and their events: lists, search, profile, identify and track. */
export async function userRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "logger">) {
  const app = base.withTypeProvider<ZodTypeProvider>();

  app.get(
    "/users",
    {
      schema: { querystring: pageQuery.extend({ segmentId: z.string().optional() }), response: { 200: pageOf(personSchema).describe("A page of people") } },
      config: { docs: { summary: "People by id, optionally the members of one segment" } },
    },
    async (req) => listPeople(deps.db, req.workspaceId, req.query),
  );

  app.post(
    "/users/search",
    {
      schema: { body: pageBody.extend({ conditions: conditionsInput }).strict(), response: { 200: pageOf(personSchema).describe("A page of people") } },
      config: { docs: { summary: "People matching conditions, evaluated now" } },
    },
    async (req) => {
      if (req.body.conditions === undefined) throw new ValidationError("conditions_required", "Send the conditions to search by.");
      return searchPeople(deps.db, req.workspaceId, { conditions: req.body.conditions, limit: req.body.limit, cursor: req.body.cursor });
    },
  );

  app.get(
    "/users/:id",
    {
      schema: { params: z.object({ id: z.string() }), response: { 200: profileSchema.describe("The person with labels, segment memberships and recent events") } },
      config: { docs: { summary: "A person's profile" } },
    },
    async (req) => getProfile(deps.db, req.workspaceId, req.params.id),
  );

  app.post(
    "/users/identify",
    {
      schema: {
        body: identifySchema,
        response: {
          200: identifyResultSchema.describe("An existing person, updated; Location names them"),
          201: identifyResultSchema.describe("A new person; Location names them"),
        },
      },
      config: { docs: { summary: "Upsert one person; their dynamic segments are re-evaluated" }, idempotent: { location: (body) => `/v1/users/${body.id}` } },
    },
    async (req, reply) => {
      const out = await identifyPerson(deps.db, req.workspaceId, req.body, req.log);
      reply.status(out.created ? 201 : 200);
      return { ...out.user, created: out.created, segments: out.segments };
    },
  );

  app.post(
    "/events",
    { schema: { body: trackSchema, response: { 200: trackResultSchema.describe("What was recorded and rejected") } }, config: { docs: { summary: "Record events (up to 1000)" }, idempotent: {} } },
    async (req) => trackEvents(deps.db, req.workspaceId, req.body, req.log),
  );
}
