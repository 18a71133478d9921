import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/api/app.js";
import { loadEnv } from "../../src/config/env.js";
import { createClient, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";

const LIMIT = 3;
const t = useTestContext({ RATE_LIMIT_MAX: String(LIMIT), RATE_LIMIT_WINDOW_MS: "60000" });
let app: FastifyInstance;
let acme: Client;
let globex: Client;

beforeAll(async () => {
  app = await buildApp(t.ctx);
  acme = await createClient(t.ctx, app, "Acme");
  globex = await createClient(t.ctx, app, "Globex");
});
afterAll(async () => {
  await app?.close();
});

describe("per-workspace rate limits on /v1", () => {
  it("answers 429 with Retry-After once a workspace spends its requests, while another workspace from the same IP goes on", async () => {
    // Unauthenticated requests are refused before the limiter: they spend nothing.
    for (let i = 0; i < LIMIT + 2; i++) {
      expect((await app.inject({ method: "GET", url: "/v1/me", headers: { authorization: "Bearer nope" } })).statusCode).toBe(401);
    }
    for (let i = 0; i < LIMIT; i++) {
      const res = await acme.request("GET", "/v1/me");
      expect(res.status).toBe(200);
      expect(res.headers["x-ratelimit-remaining"]).toBe(String(LIMIT - 1 - i));
    }
    const limited = await acme.request("GET", "/v1/imports");
    expect(limited.status).toBe(429);
    expect(limited.json).toMatchObject({ error: { code: "rate_limited" }, requestId: expect.any(String) });
    expect(limited.json.error.message).toMatch(/Retry-After/);
    const retryAfter = Number(limited.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);

    // Same IP (inject), other workspace: its own budget.
    expect((await globex.request("GET", "/v1/me")).status).toBe(200);
    // Operations and admin routes are not limited per workspace.
    expect((await app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    const admin = await app.inject({ method: "POST", url: "/v1/admin/workspaces", headers: { authorization: `Bearer ${t.ctx.env.ADMIN_TOKEN}` }, payload: { name: "Initech" } });
    expect(admin.statusCode).toBe(201);
  });

  it("with RATE_LIMIT_STORE=redis two API processes share one workspace's budget", async () => {
    const env = loadEnv({ ...Object.fromEntries(Object.entries(t.ctx.env).map(([k, v]) => [k, String(v)])), RATE_LIMIT_STORE: "redis" });
    const [one, two] = [await buildApp({ ...t.ctx, env }), await buildApp({ ...t.ctx, env })];
    try {
      const initech = await createClient(t.ctx, one, "Initech");
      const statuses: number[] = [];
      for (let i = 0; i < LIMIT + 1; i++) {
        const target = i % 2 === 0 ? one : two;
        statuses.push((await target.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${initech.apiKey}` } })).statusCode);
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
