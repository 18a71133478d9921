import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ValidationError } from "../../domain/errors.js";
import { trackEvents, trackSchema } from "../../domain/events/track.js";
import { fingerprint, withIdempotency } from "../../domain/idempotency.js";
import { identifyPerson, identifySchema } from "../../domain/people/identify.js";
import { getProfile, listPeople, searchPeople } from "../../domain/people/list.js";
import { DEFAULT_LIMIT, MAX_LIMIT } from "../../lib/cursor.js";
import type { AppDeps } from "../app.js";
import { peopleDocs } from "../schemas/people.js";
import { conditionsInput } from "./segments.js";

const limit = z.coerce.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT);

/** People ("users") and their events: lists, search, profile, identify and track. */
export async function userRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "logger">) {
  const app = base.withTypeProvider<ZodTypeProvider>();

  app.get(
    "/users",
    { schema: { querystring: z.object({ segmentId: z.string().optional(), limit, cursor: z.string().optional() }) }, config: { docs: peopleDocs.list } },
    async (req) => listPeople(deps.db, req.workspaceId, req.query),
  );

  app.post(
    "/users/search",
    { schema: { body: z.object({ conditions: conditionsInput, limit: z.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT), cursor: z.string().optional() }).strict() }, config: { docs: peopleDocs.search } },
    async (req) => {
      if (req.body.conditions === undefined) throw new ValidationError("conditions_required", "Send the conditions to search by.");
      return searchPeople(deps.db, req.workspaceId, { conditions: req.body.conditions, limit: req.body.limit, cursor: req.body.cursor });
    },
  );

  app.get("/users/:id", { schema: { params: z.object({ id: z.string() }) }, config: { docs: peopleDocs.get } }, async (req) => getProfile(deps.db, req.workspaceId, req.params.id));

  app.post("/users/identify", { schema: { body: identifySchema }, config: { docs: peopleDocs.identify } }, async (req, reply) => {
    const idemKey = req.headers["idempotency-key"];
    const res = await withIdempotency(deps.db, req.workspaceId, typeof idemKey === "string" ? idemKey : undefined, fingerprint({ route: "POST /v1/users/identify", ...req.body }), async () => {
      const out = await identifyPerson(deps.db, req.workspaceId, req.body, req.log);
      return { statusCode: out.created ? 201 : 200, body: { ...out.user, created: out.created, segments: out.segments } };
    });
    const body = res.body as { id: string };
    return reply.status(res.statusCode).header("location", `/v1/users/${body.id}`).send(body);
  });

  app.post("/events", { schema: { body: trackSchema }, config: { docs: peopleDocs.track } }, async (req, reply) => {
    const idemKey = req.headers["idempotency-key"];
    const res = await withIdempotency(deps.db, req.workspaceId, typeof idemKey === "string" ? idemKey : undefined, fingerprint({ route: "POST /v1/events", ...req.body }), async () => ({
      statusCode: 200,
      body: await trackEvents(deps.db, req.workspaceId, req.body, req.log),
    }));
    return reply.status(res.statusCode).send(res.body);
  });
}
