import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { specProblems, toOpenApiPath } from "../helpers/api-contract.js";
import { createClient, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";

/**
 * Real responses against the OpenAPI spec the app serves: the status is one the operation declares, and the body fits
 * its schema (no field the spec lacks, none it requires missing, no value of another type). The declared zod responses
 * serialise the routes and generate the spec, so this proves the generated document says what the routes send.
 */
const t = useTestContext();
let client: Client;
let spec: any;

beforeAll(async () => {
  client = await createClient(t.ctx);
  spec = (await client.app.inject({ method: "GET", url: "/openapi.json" })).json();
});
afterAll(async () => {
  await client?.app.close();
});

async function expectDocumented(method: string, route: string, res: { status: number; json: unknown; body: string }) {
  const op = spec.paths[toOpenApiPath(route)]?.[method.toLowerCase()];
  expect(op, `${method} ${route} is in the spec`).toBeDefined();
  const documented = op.responses[String(res.status)];
  expect(documented, `${method} ${route}: status ${res.status} (${res.body.slice(0, 200)}) is documented`).toBeDefined();
  const schema = documented.content?.["application/json"]?.schema;
  if (!schema) {
    expect(res.body).toBe("");
    return;
  }
  expect(specProblems(schema, res.json), `${method} ${route} ${res.status}`).toEqual([]);
}

describe("responses match the OpenAPI spec", () => {
  it("segments", async () => {
    const identified = await client.request("POST", "/v1/users/identify", { payload: { email: "ann@docs.test", attributes: { plan: "pro" } } });
    const dynamic = await client.request("POST", "/v1/segments", { payload: { name: "Pro", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "pro" } } });
    await expectDocumented("POST", "/v1/segments", dynamic);
    const stat = await client.request("POST", "/v1/segments", { payload: { name: "Hand-picked", description: "picked by hand", type: "static" } });
    await expectDocumented("POST", "/v1/segments", stat);

    await expectDocumented("GET", "/v1/segments", await client.request("GET", "/v1/segments?limit=1"));
    await expectDocumented("GET", "/v1/segments/:id", await client.request("GET", `/v1/segments/${dynamic.json.id}`));
    await expectDocumented("PATCH", "/v1/segments/:id", await client.request("PATCH", `/v1/segments/${stat.json.id}`, { payload: { description: null } }));
    await expectDocumented("POST", "/v1/segments/preview", await client.request("POST", "/v1/segments/preview", { payload: { conditions: { field: "attributes.plan", op: "eq", value: "pro" } } }));
    await expectDocumented("POST", "/v1/segments/:id/recompute", await client.request("POST", `/v1/segments/${dynamic.json.id}/recompute`));

    const users = { users: [{ id: identified.json.id }, { email: "nobody@docs.test" }] };
    const added = await client.request("POST", `/v1/segments/${stat.json.id}/members`, { payload: users });
    expect(added.json.notFound).toEqual([{ email: "nobody@docs.test" }]);
    await expectDocumented("POST", "/v1/segments/:id/members", added);
    const members = await client.request("GET", `/v1/segments/${stat.json.id}/members`);
    expect(members.json.data).toHaveLength(1);
    await expectDocumented("GET", "/v1/segments/:id/members", members);
    await expectDocumented("DELETE", "/v1/segments/:id/members", await client.request("DELETE", `/v1/segments/${stat.json.id}/members`, { payload: users }));
    await expectDocumented("DELETE", "/v1/segments/:id", await client.request("DELETE", `/v1/segments/${stat.json.id}`));
    await expectDocumented("GET", "/v1/segments/:id", await client.request("GET", `/v1/segments/${stat.json.id}`));
  });

  it("people, events and deletions", async () => {
    const team = await client.request("POST", "/v1/segments", { payload: { name: "Team plan", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "team" } } });
    const created = await client.request("POST", "/v1/users/identify", { payload: { externalId: "u-1", email: "bo@docs.test", firstName: "Bo", labels: ["VIP"], attributes: { plan: "team" } } });
    expect(created.status).toBe(201);
    expect(created.json.segments).toEqual({ entered: [team.json.id], left: [] });
    await expectDocumented("POST", "/v1/users/identify", created);
    const updated = await client.request("POST", "/v1/users/identify", { payload: { externalId: "u-1", lastName: "Lee" } });
    expect(updated.status).toBe(200);
    await expectDocumented("POST", "/v1/users/identify", updated);

    const seg = await client.request("POST", "/v1/segments", { payload: { name: "Picked", type: "static" } });
    await client.request("POST", `/v1/segments/${seg.json.id}/members`, { payload: { users: [{ externalId: "u-1" }] } });
    const tracked = await client.request("POST", "/v1/events", {
      payload: { events: [{ user: { externalId: "u-1" }, event: "Signed In", properties: { via: "sso" } }, { user: { email: "ghost@docs.test" }, event: "Signed In" }] },
    });
    expect(tracked.json.rejected).toHaveLength(1);
    await expectDocumented("POST", "/v1/events", tracked);

    const profile = await client.request("GET", `/v1/users/${created.json.id}`);
    expect(profile.json.labels).toHaveLength(1);
    expect(profile.json.segments.map((x: any) => x.name)).toEqual(["Picked", "Team plan"]);
    // Segment entries are events too (segment.entered), beside the tracked one.
    expect(profile.json.recentEvents.map((e: any) => e.event)).toContain("Signed In");
    await expectDocumented("GET", "/v1/users/:id", profile);
    await expectDocumented("GET", "/v1/users", await client.request("GET", `/v1/users?segmentId=${seg.json.id}`));
    await expectDocumented("POST", "/v1/users/search", await client.request("POST", "/v1/users/search", { payload: { conditions: { label: "VIP", op: "has" }, limit: 5 } }));
    await expectDocumented("GET", "/v1/users/:id", await client.request("GET", "/v1/users/999999"));

    const deletion = await client.request("POST", "/v1/deletions", { payload: { users: [{ externalId: "u-1" }], dryRun: true } });
    expect(deletion.status).toBe(202);
    await expectDocumented("POST", "/v1/deletions", deletion);
    await expectDocumented("GET", "/v1/deletions/:id", await client.request("GET", `/v1/deletions/${deletion.json.id}`));
    await expectDocumented("GET", "/v1/deletions", await client.request("GET", "/v1/deletions"));
    await expectDocumented("DELETE", "/v1/users/:id", await client.request("DELETE", `/v1/users/${created.json.id}`));
  });

  it("imports and exports", async () => {
    const csv = "email,first_name,plan\nada@docs.test,Ada,pro\nnot-an-email,Eve,free\n";
    const created = await client.request("POST", "/v1/imports", { payload: { csv, identifier: "email" } });
    expect(created.status).toBe(201);
    await expectDocumented("POST", "/v1/imports", created);
    const id = created.json.id;
    await expectDocumented("PUT", "/v1/imports/:id/mapping", await client.request("PUT", `/v1/imports/${id}/mapping`, { payload: { identifier: "email", mapping: { plan: "attribute:plan" } } }));
    await expectDocumented("GET", "/v1/imports/:id", await client.request("GET", `/v1/imports/${id}`));
    await expectDocumented("GET", "/v1/imports", await client.request("GET", "/v1/imports?limit=1"));
    await expectDocumented("POST", "/v1/imports/:id/cancel", await client.request("POST", `/v1/imports/${id}/cancel`));
    await expectDocumented("POST", "/v1/imports/:id/start", await client.request("POST", `/v1/imports/${id}/start`));
    await expectDocumented("POST", "/v1/imports", await client.request("POST", "/v1/imports", { payload: { csv: "" } }));

    const exp = await client.request("POST", "/v1/exports", { payload: { kind: "users", columns: ["email"] } });
    expect(exp.status).toBe(202);
    await expectDocumented("POST", "/v1/exports", exp);
    await expectDocumented("GET", "/v1/exports/:id", await client.request("GET", `/v1/exports/${exp.json.id}`));
    await expectDocumented("GET", "/v1/exports", await client.request("GET", "/v1/exports"));
    await expectDocumented("GET", "/v1/exports/:id/download", await client.request("GET", `/v1/exports/${exp.json.id}/download`));
    await expectDocumented("GET", "/v1/me", await client.request("GET", "/v1/me"));
  });
});
