import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.js";
import { loadEnv } from "../../src/config/env.js";
import { useTestContext } from "../helpers/context.js";

const ADMIN_TOKEN = "test-admin-token-0123456789";
const t = useTestContext({ ADMIN_TOKEN, DASHBOARD_READ_ONLY: "true" });
const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe("queue dashboard", () => {
  it("is read-only when DASHBOARD_READ_ONLY is set: the board says so and refuses actions", async () => {
    const app = await buildApp(t.ctx);
    try {
      const id = randomUUID();
      await t.ctx.producer.enqueue("import.run", { workspaceId: randomUUID(), importId: id }, { jobId: `ro-${id}` });
      const res = await app.inject({ method: "GET", url: "/admin/queues/api/queues", headers: bearer });
      expect(res.statusCode).toBe(200);
      const queues = res.json().queues as { name: string; readOnlyMode: boolean; allowRetries: boolean }[];
      expect(queues.map((q) => q.name).sort()).toEqual(["deletions", "exports", "imports", "imports-small", "segments", "webhooks"]);
      expect(queues.every((q) => q.readOnlyMode && !q.allowRetries)).toBe(true);
      const empty = await app.inject({ method: "PUT", url: "/admin/queues/api/queues/imports/empty", headers: bearer });
      expect(empty.statusCode).toBe(405);
      expect(await t.ctx.producer.queue("imports").getJob(`ro-${id}`)).toBeDefined();
    } finally {
      await app.close();
    }
  });

  it("is not mounted without ADMIN_TOKEN (404)", async () => {
    const env = loadEnv({ ...Object.fromEntries(Object.entries(t.ctx.env).map(([k, v]) => [k, String(v)])), ADMIN_TOKEN: "" });
    expect(env.ADMIN_TOKEN).toBeUndefined();
    const app = await buildApp({ ...t.ctx, env });
    try {
      for (const url of ["/admin/queues", "/admin/queues/api/queues"]) {
        const res = await app.inject({ method: "GET", url, headers: bearer });
        expect(res.statusCode).toBe(404);
        expect(res.json().error.code).toBe("not_found");
      }
    } finally {
      await app.close();
    }
  });
});
