import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { dumpRedis } from "../helpers/redis-dump.js";

// A signing key, so workspace A can hold a webhook subscription for the walk.
const t = useTestContext({ WEBHOOK_SIGNING_KEY: "tenant-isolation-signing-key-0123456789" });
let a: Client;
let b: Client;
let workers: WorkerPool;
/** Every string that identifies workspace A's data: none may appear in anything workspace B is answered. */
const aSecrets: string[] = [];
/** A's ids per collection (`imports`, `users`, …), found through A's own list routes. */
const aIds = new Map<string, string>();
let spec: any;

/** Operations that are not workspace data: admin (its own token), health, docs. */
const OUT_OF_SCOPE = (p: string) => !p.startsWith("/v1/") || p.startsWith("/v1/admin/");

beforeAll(async () => {
  workers = await startTestWorkers(t.ctx);
  a = await createClient(t.ctx, undefined, "Tenant A");
  b = await createClient(t.ctx, b?.app, "Tenant B");
  const csv = ["email,first_name,labels", "alpha-only-a@tenant-a.example,Alphonse,SecretLabelA", "beta-only-a@tenant-a.example,Beatrix,SecretLabelA", "not-an-email,Bad,"].join("\n");
  const done = await importAndWait(a, csv, { options: { createSegment: { name: "Tenant A segment" } } });
  expect(done.status).toBe("done");
  aSecrets.push(a.workspaceId, a.apiKey, done.id, "alpha-only-a@tenant-a.example", "beta-only-a@tenant-a.example", "SecretLabelA", "Tenant A segment");
  aSecrets.push(...done.segmentIds);
  // A team member, so the members routes are walked with an id of A's too.
  const members = await importAndWait(a, "email,first_name\nmember-only-a@tenant-a.example,Mona", { kind: "members" });
  expect(members.status).toBe("done");
  aSecrets.push("member-only-a@tenant-a.example");
  // A saved mapping, so the mapping-template routes are walked with an id of A's too.
  const tpl = await a.request("POST", "/v1/mapping-templates", { payload: { name: "Template only A", identifier: "email", mapping: { "Column only A": "email" } } });
  expect(tpl.status).toBe(201);
  aSecrets.push("Template only A", "Column only A");
  const hook = await a.request("POST", "/v1/webhooks", { payload: { url: "http://127.0.0.1:9/hook-only-a", events: ["segment.entered"], segmentIds: done.segmentIds } });
  expect(hook.status).toBe(201);
  aSecrets.push("hook-only-a");
  // A finished export, so the export routes are walked with an id of A's too.
  const exp = await a.request("POST", "/v1/exports", { payload: { kind: "users" } });
  expect(exp.status).toBe(202);
  for (let i = 0; i < 200; i++) {
    const cur = await a.request("GET", `/v1/exports/${exp.json.id}`);
    if (cur.json.status === "done") break;
    await new Promise((r) => setTimeout(r, 50));
  }
  // An attribute A's people hold, declared, so the attribute routes are walked with a key of A's too.
  expect((await a.request("POST", "/v1/users/identify", { payload: { email: "alpha-only-a@tenant-a.example", attributes: { secret_attr_only_a: "x" } } })).status).toBe(200);
  expect((await a.request("PUT", "/v1/attributes/secret_attr_only_a", { payload: { type: "string" } })).status).toBe(202);
  aSecrets.push("secret_attr_only_a");
  // A deletion (a dry run: nobody of A's is erased), so the deletion routes are walked with an id of A's too.
  const del = await a.request("POST", "/v1/deletions", { payload: { users: [{ email: "alpha-only-a@tenant-a.example" }], dryRun: true } });
  expect(del.status).toBe(202);

  const res = await a.app.inject({ method: "GET", url: "/openapi.json" });
  spec = res.json();
  // A's ids per collection, from A's own list routes, so collections added later are covered without editing this file.
  for (const p of Object.keys(spec.paths)) {
    const m = /^\/v1\/([a-z-]+)\/\{(?:id|key)\}/.exec(p);
    if (!m || OUT_OF_SCOPE(p) || aIds.has(m[1]!)) continue;
    const list = await a.request("GET", `/v1/${m[1]}`);
    // Attributes are named by their key, every other collection by its id.
    const first = list.json?.data?.[0]?.id ?? list.json?.data?.[0]?.key;
    if (typeof first === "string") {
      aIds.set(m[1]!, first);
      aSecrets.push(...list.json.data.map((r: { id?: string; key?: string }) => r.id ?? r.key ?? ""));
    }
  }
}, 60_000);
afterAll(async () => {
  await workers?.close();
  await a?.app.close();
});

interface Operation {
  method: string;
  path: string;
  url: string;
  /** The spec documents a request body (then an empty one is sent: it may fail validation, which reveals nothing). */
  hasBody: boolean;
}

/** Every workspace operation of the OpenAPI spec, with A's ids in its path parameters. */
function operations(): Operation[] {
  const ops: Operation[] = [];
  for (const [p, byMethod] of Object.entries<any>(spec.paths)) {
    if (OUT_OF_SCOPE(p)) continue;
    for (const method of Object.keys(byMethod)) {
      const url = p.replace(/\{(\w+)\}/g, (_, name: string) => {
        const collection = /^\/v1\/([a-z-]+)\//.exec(p)?.[1] ?? "";
        const id = name === "id" || name === "key" ? aIds.get(collection) : undefined;
        if (!id) throw new Error(`${method.toUpperCase()} ${p}: no id of workspace A for {${name}}; seed A with a ${collection} so isolation is checked`);
        return id;
      });
      ops.push({ method: method.toUpperCase(), path: p, url, hasBody: Boolean(byMethod[method]?.requestBody) });
    }
  }
  return ops;
}

describe("tenant isolation: every operation of the OpenAPI spec, called with workspace B's key", () => {
  it("covers the import routes (and every route added later)", () => {
    const paths = operations().map((o) => `${o.method} ${o.path}`);
    expect(paths).toEqual(expect.arrayContaining(["GET /v1/imports", "GET /v1/imports/{id}", "GET /v1/imports/{id}/errors", "POST /v1/imports/{id}/start", "GET /v1/members/{id}", "PATCH /v1/members/{id}", "PUT /v1/mapping-templates/{id}", "DELETE /v1/mapping-templates/{id}", "GET /v1/imports/{id}/progress", "DELETE /v1/webhooks/{id}", "GET /v1/attributes/{key}", "PUT /v1/attributes/{key}", "PATCH /v1/labels/{id}", "DELETE /v1/labels/{id}", "POST /v1/labels/{id}/merge"]));
  });

  it("answers 404 for A's ids, never A's data, and changes nothing of A's", async () => {
    const snapshot = () => t.ctx.db.$client`
      select (select json_agg(i order by i.id) from (select id, status, updated_at, mapping from imports where workspace_id = ${a.workspaceId}) i) as imports,
             (select json_agg(s order by s.id) from (select id, name, updated_at, member_count from segments where workspace_id = ${a.workspaceId}) s) as segments,
             (select json_agg(e order by e.id) from (select id, status, storage_key from exports where workspace_id = ${a.workspaceId}) e) as exports,
             (select count(*)::int from segment_memberships where workspace_id = ${a.workspaceId}) as memberships,
             (select json_agg(w order by w.id) from (select id, url, after_event_id from webhook_subscriptions where workspace_id = ${a.workspaceId}) w) as webhooks,
             (select json_agg(m order by m.id) from (select id, name, mapping, updated_at from mapping_templates where workspace_id = ${a.workspaceId}) m) as templates,
             (select json_agg(m order by m.id) from (select id, first_name, active, password_hash, updated_at from team_members where workspace_id = ${a.workspaceId}) m) as members,
             (select json_agg(d order by d.key) from (select key, type, updated_at, check_id from attribute_definitions where workspace_id = ${a.workspaceId}) d) as attributes,
             (select json_agg(l order by l.id) from (select id, name from labels where workspace_id = ${a.workspaceId}) l) as labels,
             (select json_agg(p order by p.id) from (select id, email, updated_at, label_ids from people where workspace_id = ${a.workspaceId}) p) as people`;
    const before = await snapshot();
    const problems: string[] = [];
    for (const op of operations()) {
      const hasId = op.path.includes("{");
      const payload = op.method === "GET" || (op.method === "DELETE" && !op.hasBody) ? undefined : {};
      const res = await b.request(op.method as "GET", op.url, payload === undefined ? {} : { payload });
      // Short numeric ids would match anywhere; A's emails, labels and uuids identify its data.
      const leaked = aSecrets.filter((s) => s.length >= 8 && res.body.includes(s));
      if (leaked.length) problems.push(`${op.method} ${op.path}: ${res.status} leaks ${leaked.join(", ")}`);
      if (res.status >= 500) problems.push(`${op.method} ${op.path}: ${res.status}`);
      // With A's id: 404 (a body that fails validation first may say 422/400/415, which reveals nothing either).
      if (hasId && res.status !== 404 && !(payload !== undefined && [400, 415, 422].includes(res.status))) {
        problems.push(`${op.method} ${op.path}: ${res.status} instead of 404`);
      }
      if (hasId && res.status === 404 && res.json?.error?.code !== "not_found") problems.push(`${op.method} ${op.path}: 404 without code not_found`);
    }
    expect(problems).toEqual([]);
    expect(await snapshot()).toEqual(before);
    expect((await a.request("GET", `/v1/imports/${aIds.get("imports")}`)).status).toBe(200);
  });

  it("with B's key, A's ids answer 404 even for bodies that pass validation", async () => {
    const id = aIds.get("imports")!;
    const mapping = await b.request("PUT", `/v1/imports/${id}/mapping`, { payload: { identifier: "email", mapping: { email: "email" } } });
    expect(mapping.status).toBe(404);
    for (const action of ["start", "validate", "cancel"]) expect((await b.request("POST", `/v1/imports/${id}/${action}`)).status).toBe(404);
  });

  it("neither workspace's API key reaches the logs or the job data in Redis", async () => {
    const logs = t.ctx.logs.join("");
    expect(logs).toContain("\"outcome\":\"done\",\"msg\":\"run ended\"");
    const redis = await dumpRedis(t.ctx.redis, t.ctx.env.QUEUE_PREFIX);
    expect(redis).toContain(a.workspaceId);
    for (const key of [a.apiKey, b.apiKey]) {
      expect(logs).not.toContain(key);
      expect(redis).not.toContain(key);
    }
  });
});
