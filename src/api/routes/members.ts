import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { getMember, listMembers, updateMember } from "../../domain/members/service.js";
import type { AppDeps } from "../app.js";
import { pageOf, pageQuery } from "../schemas/common.js";
import { memberSchema, updateMemberBody } from "../schemas/members.js";

const idParams = z.object({ id: z.string() });

/** Team members (the people who use the product, imported with kind=members): list, read, change. */
export async function memberRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db">) {
  const app = base.withTypeProvider<ZodTypeProvider>();
  app.get(
    "/members",
    { schema: { querystring: pageQuery, response: { 200: pageOf(memberSchema).describe("A page of team members") } }, config: { docs: { summary: "Team members, by id" } } },
    async (req) => listMembers(deps.db, req.workspaceId, req.query),
  );
  app.get(
    "/members/:id",
    { schema: { params: idParams, response: { 200: memberSchema.describe("The team member") } }, config: { docs: { summary: "A team member" } } },
    async (req) => getMember(deps.db, req.workspaceId, req.params.id),
  );
  app.patch(
    "/members/:id",
    {
      schema: { params: idParams, body: updateMemberBody, response: { 200: memberSchema.describe("The team member") } },
      config: {
        docs: {
          summary: "Change a team member's name, role, active flag or password",
          description: "Only the fields sent change. `active: false` deactivates. A password shorter than 6 characters → 422 `password_too_short`.",
        },
      },
    },
    async (req) => updateMember(deps.db, req.workspaceId, req.params.id, req.body),
  );
}
