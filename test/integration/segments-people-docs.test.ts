import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RouteDocs } from "../../src/api/plugins/docs.js";
import { peopleDocs } from "../../src/api/schemas/people.js";
import { segmentDocs } from "../../src/api/schemas/segments.js";
import { createClient, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";

/**
 * The documented success shapes of the segments and people routes are documentation only (nothing validates the
 * responses at runtime), so this checks real responses against them: the status is a documented one, and parsing
 * the body with the documented zod shape neither fails (missing or mistyped field) nor drops anything (undocumented field).
 */
const t = useTestContext();
let client: Client;

beforeAll(async () => {
  client = await createClient(t.ctx);
});
afterAll(async () => {
  await client?.app.close();
});

async function expectDocumented(docs: RouteDocs, res: { status: number; json: unknown; body: string }) {
  const documented = docs.responses?.[res.status];
  expect(documented, `status ${res.status} (${res.body.slice(0, 200)}) is documented`).toBeDefined();
  const shape = documented?.content?.["application/json"];
  if (!shape) {
    expect(res.body).toBe("");
    return;
  }
  const parsed = shape.safeParse(res.json);
  expect(parsed.error?.issues ?? []).toEqual([]);
  expect(parsed.data).toEqual(res.json);
}

describe("documented success responses match what the routes send", () => {
  it("segments", async () => {
    const identified = await client.request("POST", "/v1/users/identify", { payload: { email: "ann@docs.test", attributes: { plan: "pro" } } });
    const dynamic = await client.request("POST", "/v1/segments", { payload: { name: "Pro", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "pro" } } });
    await expectDocumented(segmentDocs.create, dynamic);
    const stat = await client.request("POST", "/v1/segments", { payload: { name: "Hand-picked", description: "picked by hand", type: "static" } });
    await expectDocumented(segmentDocs.create, stat);

    await expectDocumented(segmentDocs.list, await client.request("GET", "/v1/segments?limit=1"));
    await expectDocumented(segmentDocs.get, await client.request("GET", `/v1/segments/${dynamic.json.id}`));
    await expectDocumented(segmentDocs.update, await client.request("PATCH", `/v1/segments/${stat.json.id}`, { payload: { description: null } }));
    await expectDocumented(segmentDocs.preview, await client.request("POST", "/v1/segments/preview", { payload: { conditions: { field: "attributes.plan", op: "eq", value: "pro" } } }));
    await expectDocumented(segmentDocs.recompute, await client.request("POST", `/v1/segments/${dynamic.json.id}/recompute`));

    const users = { users: [{ id: identified.json.id }, { email: "nobody@docs.test" }] };
    const added = await client.request("POST", `/v1/segments/${stat.json.id}/members`, { payload: users });
    expect(added.json.notFound).toEqual([{ email: "nobody@docs.test" }]);
    await expectDocumented(segmentDocs.addMembers, added);
    const members = await client.request("GET", `/v1/segments/${stat.json.id}/members`);
    expect(members.json.data).toHaveLength(1);
    await expectDocumented(segmentDocs.members, members);
    await expectDocumented(segmentDocs.removeMembers, await client.request("DELETE", `/v1/segments/${stat.json.id}/members`, { payload: users }));
    await expectDocumented(segmentDocs.delete, await client.request("DELETE", `/v1/segments/${stat.json.id}`));
  });

  it("people and events", async () => {
    const team = await client.request("POST", "/v1/segments", { payload: { name: "Team plan", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "team" } } });
    const created = await client.request("POST", "/v1/users/identify", { payload: { externalId: "u-1", email: "bo@docs.test", firstName: "Bo", labels: ["VIP"], attributes: { plan: "team" } } });
    expect(created.status).toBe(201);
    expect(created.json.segments).toEqual({ entered: [team.json.id], left: [] });
    await expectDocumented(peopleDocs.identify, created);
    const updated = await client.request("POST", "/v1/users/identify", { payload: { externalId: "u-1", lastName: "Lee" } });
    expect(updated.status).toBe(200);
    await expectDocumented(peopleDocs.identify, updated);

    const seg = await client.request("POST", "/v1/segments", { payload: { name: "Picked", type: "static" } });
    await client.request("POST", `/v1/segments/${seg.json.id}/members`, { payload: { users: [{ externalId: "u-1" }] } });
    const tracked = await client.request("POST", "/v1/events", {
      payload: { events: [{ user: { externalId: "u-1" }, event: "Signed In", properties: { via: "sso" } }, { user: { email: "ghost@docs.test" }, event: "Signed In" }] },
    });
    expect(tracked.json.rejected).toHaveLength(1);
    await expectDocumented(peopleDocs.track, tracked);

    const profile = await client.request("GET", `/v1/users/${created.json.id}`);
    expect(profile.json.labels).toHaveLength(1);
    expect(profile.json.segments.map((x: any) => x.name)).toEqual(["Picked", "Team plan"]);
    // Segment entries are events too (segment.entered), beside the tracked one.
    expect(profile.json.recentEvents.map((e: any) => e.event)).toContain("Signed In");
    await expectDocumented(peopleDocs.get, profile);
    await expectDocumented(peopleDocs.list, await client.request("GET", `/v1/users?segmentId=${seg.json.id}`));
    await expectDocumented(peopleDocs.search, await client.request("POST", "/v1/users/search", { payload: { conditions: { label: "VIP", op: "has" }, limit: 5 } }));
  });
});
