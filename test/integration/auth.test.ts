import { createHash, randomUUID } from "node:crypto";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.js";
import { generateApiKey } from "../../src/lib/keys.js";
import { useTestContext } from "../helpers/context.js";

const t = useTestContext();
let app: FastifyInstance;
/** Every response of this file: none may be a 5xx. */
const responses: { req: string; status: number }[] = [];
/** Every secret this file saw: none may reach a log line. */
const secrets: string[] = [];

async function call(opts: InjectOptions): Promise<LightMyRequestResponse> {
  const res = await app.inject(opts);
  responses.push({ req: `${opts.method ?? "GET"} ${String(opts.url)}`, status: res.statusCode });
  return res;
}

const admin = () => ({ authorization: `Bearer ${t.ctx.env.ADMIN_TOKEN}` });
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** Asserts the API's error shape, that the request id in it matches the header, and returns the body. */
function expectError(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/json/);
  const body = res.json() as { error: { code: string; message: string; details?: unknown }; requestId: string };
  expect(body).toEqual({
    error: expect.objectContaining({ code, message: expect.any(String) }),
    requestId: expect.any(String),
  });
  expect(Object.keys(body).sort()).toEqual(["error", "requestId"]);
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(body.error.message).not.toMatch(/\n\s+at /); // no stack trace
  expect(body.requestId.length).toBeGreaterThan(0);
  expect(res.headers["x-request-id"]).toBe(body.requestId);
  return body;
}

interface Created {
  id: string;
  name: string;
  apiKey: string;
  keyId: string;
}

async function createWorkspace(name: string): Promise<Created> {
  const res = await call({ method: "POST", url: "/v1/admin/workspaces", headers: admin(), payload: { name } });
  expect(res.statusCode, res.body).toBe(201);
  const body = res.json() as Created;
  secrets.push(body.apiKey);
  return body;
}

beforeAll(async () => {
  app = await buildApp(t.ctx);
  secrets.push(t.ctx.env.ADMIN_TOKEN ?? "");
});

afterAll(async () => {
  await app?.close();
});

describe("admin: creating workspaces", () => {
  it("POST /v1/admin/workspaces answers 201 {id, name, apiKey} with a rst_ key", async () => {
    const ws = await createWorkspace("Acme");
    expect(ws).toEqual({ id: expect.any(String), name: "Acme", apiKey: expect.any(String), keyId: expect.any(String) });
    expect(ws.apiKey).toMatch(/^rst_[A-Za-z0-9_-]{43}$/);
  });

  it("stores only the sha256 hash and a display prefix of the key, never the key", async () => {
    const ws = await createWorkspace("Hashing");
    const sql = t.ctx.db.$client;
    const rows = await sql<{ key_hash: Buffer; display_prefix: string; revoked_at: unknown }[]>`
      select key_hash, display_prefix, revoked_at from api_keys where workspace_id = ${ws.id}`;
    expect(rows).toHaveLength(1);
    const [row] = rows;
    expect(Buffer.compare(row!.key_hash, createHash("sha256").update(ws.apiKey).digest())).toBe(0);
    expect(ws.apiKey.startsWith(row!.display_prefix)).toBe(true);
    expect(row!.display_prefix.length).toBeLessThan(ws.apiKey.length / 2);
    expect(row!.revoked_at).toBeNull();

    // No column of any row of the workspace's tables holds the key, in text or as bytes.
    const dump = await sql<{ t: string }[]>`
      select row_to_json(k)::text as t from api_keys k
      union all select row_to_json(w)::text from workspaces w`;
    const text = dump.map((r) => r.t).join("\n");
    expect(text).not.toContain(ws.apiKey);
    expect(text).not.toContain(ws.apiKey.slice(4)); // the secret part without the prefix
    expect(text).not.toContain(Buffer.from(ws.apiKey).toString("hex"));
  });

  it("trims the name and refuses an empty one with 422 invalid_request naming the field", async () => {
    const res = await call({ method: "POST", url: "/v1/admin/workspaces", headers: admin(), payload: { name: "" } });
    const body = expectError(res, 422, "invalid_request");
    expect(JSON.stringify(body.error.details)).toContain("name");

    const blank = await call({ method: "POST", url: "/v1/admin/workspaces", headers: admin(), payload: { name: "   " } });
    expectError(blank, 422, "invalid_request");

    const missing = await call({ method: "POST", url: "/v1/admin/workspaces", headers: admin(), payload: {} });
    expectError(missing, 422, "invalid_request");
  });

  it("answers 400 invalid_json to a body that is not JSON", async () => {
    const res = await call({
      method: "POST",
      url: "/v1/admin/workspaces",
      headers: { ...admin(), "content-type": "application/json" },
      payload: '{"name": "broken',
    });
    expectError(res, 400, "invalid_json");
  });

  it("answers 401 to a wrong or missing admin token", async () => {
    const wrong = await call({ method: "POST", url: "/v1/admin/workspaces", headers: bearer("not-the-admin-token-at-all"), payload: { name: "x" } });
    expectError(wrong, 401, "unauthorized");

    const missing = await call({ method: "POST", url: "/v1/admin/workspaces", payload: { name: "x" } });
    expectError(missing, 401, "unauthorized");

    const basic = await call({
      method: "POST",
      url: "/v1/admin/workspaces",
      headers: { authorization: `Basic ${Buffer.from(`admin:${t.ctx.env.ADMIN_TOKEN}`).toString("base64")}` },
      payload: { name: "x" },
    });
    expectError(basic, 401, "unauthorized");

    const prefix = await call({
      method: "POST",
      url: "/v1/admin/workspaces",
      headers: bearer(String(t.ctx.env.ADMIN_TOKEN).slice(0, -1)),
      payload: { name: "x" },
    });
    expectError(prefix, 401, "unauthorized");

    // A workspace API key is not an admin token.
    const ws = await createWorkspace("Not admin");
    const asKey = await call({ method: "POST", url: "/v1/admin/workspaces", headers: bearer(ws.apiKey), payload: { name: "x" } });
    expectError(asKey, 401, "unauthorized");

    const count = await t.ctx.db.$client`select count(*)::int as n from workspaces where name = 'x'`;
    expect(count[0]?.n).toBe(0);
  });

  it("disables admin routes (404) and logs a warning when ADMIN_TOKEN is not set", async () => {
    const before = t.ctx.logs.length;
    const noAdmin = await buildApp({ ...t.ctx, env: { ...t.ctx.env, ADMIN_TOKEN: undefined } });
    try {
      const withToken = await noAdmin.inject({ method: "POST", url: "/v1/admin/workspaces", headers: admin(), payload: { name: "x" } });
      responses.push({ req: "POST /v1/admin/workspaces (no ADMIN_TOKEN)", status: withToken.statusCode });
      expectError(withToken, 404, "not_found");

      const without = await noAdmin.inject({ method: "POST", url: "/v1/admin/workspaces", payload: { name: "x" } });
      responses.push({ req: "POST /v1/admin/workspaces (no ADMIN_TOKEN, no header)", status: without.statusCode });
      expectError(without, 404, "not_found");

      const keys = await noAdmin.inject({ method: "POST", url: `/v1/admin/workspaces/${randomUUID()}/keys` });
      responses.push({ req: "POST keys (no ADMIN_TOKEN)", status: keys.statusCode });
      expectError(keys, 404, "not_found");
    } finally {
      await noAdmin.close();
    }
    const warnings = t.ctx.logs.slice(before).map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(warnings.some((l) => l.level === 40 && /ADMIN_TOKEN/.test(l.msg))).toBe(true);
  });
});

describe("API key authentication", () => {
  it("GET /v1/me with a valid key answers 200 {workspaceId}", async () => {
    const ws = await createWorkspace("Me");
    const res = await call({ method: "GET", url: "/v1/me", headers: bearer(ws.apiKey) });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ workspaceId: ws.id });
  });

  it("accepts the scheme case-insensitively", async () => {
    const ws = await createWorkspace("Scheme");
    const res = await call({ method: "GET", url: "/v1/me", headers: { authorization: `bearer ${ws.apiKey}` } });
    expect(res.statusCode, res.body).toBe(200);
  });

  it("answers 401 in the error shape to every missing, malformed, unknown or foreign credential", async () => {
    const ws = await createWorkspace("Bad keys");
    const good = ws.apiKey;
    const cases: Record<string, Record<string, string>> = {
      "no Authorization header": {},
      "empty Authorization header": { authorization: "" },
      "Bearer without a key": { authorization: "Bearer " },
      "Basic scheme": { authorization: `Basic ${Buffer.from(`u:${good}`).toString("base64")}` },
      "Token scheme": { authorization: `Token ${good}` },
      "the key without a scheme": { authorization: good },
      "two keys": { authorization: `Bearer ${good} ${good}` },
      "garbled key": bearer("rst_???"),
      "key too short by one": bearer(good.slice(0, -1)),
      "key too long by one": bearer(`${good}A`),
      "key with another prefix": bearer(`sk_${good.slice(4)}`),
      "key in another case": bearer(good.toUpperCase() === good ? good.toLowerCase() : good.toUpperCase()),
      "well-formed but unknown key": bearer(generateApiKey().key),
      "well-formed key of only A": bearer(`rst_${"A".repeat(43)}`),
      "the admin token": admin(),
      "a very long token": bearer(`rst_${"x".repeat(8_000)}`),
      "SQL in the key": bearer("rst_' or '1'='1"),
      "a NUL-ish escape": bearer("rst_%00%00"),
    };
    for (const [label, headers] of Object.entries(cases)) {
      const res = await call({ method: "GET", url: "/v1/me", headers });
      expect(res.statusCode, `${label}: ${res.body}`).toBe(401);
      expectError(res, 401, "unauthorized");
    }
  });

  it("creates an additional key with POST /v1/admin/workspaces/:id/keys (201 {id, apiKey}); both keys work", async () => {
    const ws = await createWorkspace("Two keys");
    const res = await call({ method: "POST", url: `/v1/admin/workspaces/${ws.id}/keys`, headers: admin() });
    expect(res.statusCode, res.body).toBe(201);
    const key = res.json() as { id: string; apiKey: string };
    secrets.push(key.apiKey);
    expect(key).toEqual({ id: expect.any(String), apiKey: expect.stringMatching(/^rst_[A-Za-z0-9_-]{43}$/) });
    expect(key.apiKey).not.toBe(ws.apiKey);
    expect(key.id).not.toBe(ws.keyId);

    for (const k of [ws.apiKey, key.apiKey]) {
      const me = await call({ method: "GET", url: "/v1/me", headers: bearer(k) });
      expect(me.statusCode, me.body).toBe(200);
      expect(me.json()).toEqual({ workspaceId: ws.id });
    }
  });

  it("POST keys for an unknown or malformed workspace id answers 404", async () => {
    expectError(await call({ method: "POST", url: `/v1/admin/workspaces/${randomUUID()}/keys`, headers: admin() }), 404, "not_found");
    expectError(await call({ method: "POST", url: "/v1/admin/workspaces/not-a-uuid/keys", headers: admin() }), 404, "not_found");
  });

  it("a revoked key answers 401 while the workspace's other keys keep working", async () => {
    const ws = await createWorkspace("Revoke");
    const second = (await call({ method: "POST", url: `/v1/admin/workspaces/${ws.id}/keys`, headers: admin() })).json() as {
      id: string;
      apiKey: string;
    };
    secrets.push(second.apiKey);
    expect((await call({ method: "GET", url: "/v1/me", headers: bearer(ws.apiKey) })).statusCode).toBe(200);

    const del = await call({ method: "DELETE", url: `/v1/admin/workspaces/${ws.id}/keys/${ws.keyId}`, headers: admin() });
    expect(del.statusCode, del.body).toBe(204);
    expect(del.body).toBe("");

    expectError(await call({ method: "GET", url: "/v1/me", headers: bearer(ws.apiKey) }), 401, "unauthorized");
    const other = await call({ method: "GET", url: "/v1/me", headers: bearer(second.apiKey) });
    expect(other.statusCode, other.body).toBe(200);

    const [row] = await t.ctx.db.$client`select revoked_at is not null as revoked from api_keys where id = ${ws.keyId}`;
    expect(row?.revoked).toBe(true);

    // Revoking again is harmless (204), and the key stays revoked.
    const again = await call({ method: "DELETE", url: `/v1/admin/workspaces/${ws.id}/keys/${ws.keyId}`, headers: admin() });
    expect(again.statusCode, again.body).toBe(204);
    expectError(await call({ method: "GET", url: "/v1/me", headers: bearer(ws.apiKey) }), 401, "unauthorized");
  });

  it("revoking a key through another workspace's id answers 404 and leaves the key working", async () => {
    const a = await createWorkspace("Owner");
    const b = await createWorkspace("Other");
    const res = await call({ method: "DELETE", url: `/v1/admin/workspaces/${b.id}/keys/${a.keyId}`, headers: admin() });
    expectError(res, 404, "not_found");
    const me = await call({ method: "GET", url: "/v1/me", headers: bearer(a.apiKey) });
    expect(me.statusCode, me.body).toBe(200);
    expect(me.json()).toEqual({ workspaceId: a.id });

    expectError(await call({ method: "DELETE", url: `/v1/admin/workspaces/${a.id}/keys/${randomUUID()}`, headers: admin() }), 404, "not_found");
    expectError(await call({ method: "DELETE", url: `/v1/admin/workspaces/${a.id}/keys/nope`, headers: admin() }), 404, "not_found");
  });

  it("revoking needs the admin token", async () => {
    const ws = await createWorkspace("Self revoke");
    const res = await call({ method: "DELETE", url: `/v1/admin/workspaces/${ws.id}/keys/${ws.keyId}`, headers: bearer(ws.apiKey) });
    expectError(res, 401, "unauthorized");
    expect((await call({ method: "GET", url: "/v1/me", headers: bearer(ws.apiKey) })).statusCode).toBe(200);
  });
});

describe("errors and logs", () => {
  it("an unknown route answers 404 in the error shape", async () => {
    expectError(await call({ method: "GET", url: "/nope" }), 404, "not_found");
    expectError(await call({ method: "GET", url: "/v1/nope?x=1" }), 404, "not_found");
    expectError(await call({ method: "PATCH", url: "/v1/me" }), 404, "not_found");
  });

  it("echoes a well-formed X-Request-Id and replaces a malformed one", async () => {
    const given = await call({ method: "GET", url: "/v1/me", headers: { "x-request-id": "trace-123.abc" } });
    expect(expectError(given, 401, "unauthorized").requestId).toBe("trace-123.abc");
    const bad = await call({ method: "GET", url: "/v1/me", headers: { "x-request-id": "bad id\twith spaces" } });
    expect(expectError(bad, 401, "unauthorized").requestId).not.toContain(" ");
  });

  it("no request of this file answered 5xx", () => {
    expect(responses.length).toBeGreaterThan(20);
    expect(responses.filter((r) => r.status >= 500)).toEqual([]);
  });

  it("no log line contains an API key or the admin token", () => {
    const logs = t.ctx.logs.join("");
    expect(logs.length).toBeGreaterThan(0);
    expect(secrets.length).toBeGreaterThan(5);
    for (const s of secrets) {
      expect(s.length).toBeGreaterThan(15);
      expect(logs.includes(s), `a secret starting ${s.slice(0, 8)} was logged`).toBe(false);
    }
  });
});
