import basicAuth from "@fastify/basic-auth";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import type { Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import { secretsEqual } from "../../lib/keys.js";

export const DASHBOARD_PATH = "/admin/queues";

export interface DashboardOptions {
  adminToken: string | undefined;
  readOnly: boolean;
  queues: Queue[];
}

/**
 * Bull Board at /admin/queues, behind the admin token: `Authorization: Bearer <token>` for scripts, or HTTP Basic
 * with the token as the password (any user name) so a browser can log in. Without ADMIN_TOKEN it is not mounted (404).
 * Registered encapsulated: the auth hook and the board's own error handler stay inside this scope.
 */
export async function dashboardPlugin(app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  const token = opts.adminToken;
  if (!token) return;
  await app.register(basicAuth, {
    authenticate: { realm: "Roster queues" },
    validate: async (_username, password) => {
      if (!secretsEqual(password, token)) throw new Error("The admin token is not valid.");
    },
  });
  app.addHook("onRequest", (req, reply, done) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    if (m && secretsEqual(m[1]!, token)) return done();
    app.basicAuth(req, reply, done);
  });

  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: opts.queues.map((q) => new BullMQAdapter(q, { readOnlyMode: opts.readOnly })),
    serverAdapter,
    options: { uiConfig: { boardTitle: opts.readOnly ? "Roster (read-only)" : "Roster" } },
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
}
