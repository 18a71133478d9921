import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

const t = useTestContext();
let client: Client;
let workers: WorkerPool;

beforeAll(async () => {
  client = await createClient(t.ctx);
  workers = await startTestWorkers(t.ctx);
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

describe("seed shapes", () => {
  it("Cohort: pasted Email,First Name,Last Name creates people", async () => {
    const csv = "Email,First Name,Last Name\nada@example.com,Ada,Lovelace\nALAN@example.com ,Alan,Turing\n";
    const created = await pasteImport(client, csv);
    expect(created.status).toBe(201);
    expect(created.json.status).toBe("draft");
    expect(created.json.headers).toEqual(["Email", "First Name", "Last Name"]);
    expect(created.json.suggestedMapping).toEqual({ Email: "email", "First Name": "first_name", "Last Name": "last_name" });
    expect(created.json.sample).toEqual([
      ["ada@example.com", "Ada", "Lovelace"],
      ["ALAN@example.com ", "Alan", "Turing"],
    ]);
    const id = created.json.id;
    const mapped = await client.request("PUT", `/v1/imports/${id}/mapping`, {
      payload: { identifier: "email", mapping: created.json.suggestedMapping },
    });
    expect(mapped.status).toBe(200);
    const started = await client.request("POST", `/v1/imports/${id}/start`);
    expect(started.status).toBe(202);
    expect(started.headers.location).toBe(`/v1/imports/${id}`);
    const done = await waitForImport(client, id);
    expect(done.status).toBe("done");
    expect(done.counts).toEqual({ total: 2, processed: 2, created: 2, updated: 0, unchanged: 0, skipped: 0, failed: 0 });
    const people = await t.ctx.db.$client`select email, first_name, last_name from people where workspace_id = ${client.workspaceId} order by lower(email)`;
    expect(people.map((p) => [p.email, p.first_name, p.last_name])).toEqual([
      ["ada@example.com", "Ada", "Lovelace"],
      ["ALAN@example.com", "Alan", "Turing"],
    ]);
    const events = await t.ctx.db.$client`select name, properties from events where import_id = ${id} order by id`;
    expect(events.map((e) => e.name)).toEqual(["person.created", "person.created"]);
    expect(events[0]!.properties).toEqual({ importId: id, changed: ["email", "first_name", "last_name"] });
  });

  it("Jimo: User ID, Segment Name, Segment Value, plan puts people in static segments with values", async () => {
    const csv = "User ID,Segment Name,Segment Value,plan\nu1,Beta testers,wave-1,pro\nu2,Beta testers,wave-2,free\nu3,Churn risk,,pro\n";
    const created = await pasteImport(client, csv, { identifier: "external_id", start: true });
    expect(created.status).toBe(201);
    expect(created.json.status).toBe("queued");
    expect(created.json.mapping).toEqual({ "User ID": "external_id", "Segment Name": "segment", "Segment Value": "segment_value", plan: "attribute:plan" });
    const done = await waitForImport(client, created.json.id);
    expect(done.counts.created).toBe(3);
    const rows = await t.ctx.db.$client`
      select p.external_id, g.name, g.type, m.value, p.attributes
      from segment_memberships m join segments g on g.id = m.segment_id join people p on p.id = m.person_id
      where g.workspace_id = ${client.workspaceId} order by p.external_id`;
    expect(rows.map((r) => [r.external_id, r.name, r.type, r.value, r.attributes])).toEqual([
      ["u1", "Beta testers", "static", "wave-1", { plan: "pro" }],
      ["u2", "Beta testers", "static", "wave-2", { plan: "free" }],
      ["u3", "Churn risk", "static", null, { plan: "pro" }],
    ]);
  });

  it("Helpmonks: lowercase columns, labels and labels_id; a second import updates by email", async () => {
    const [vip] = await t.ctx.db.$client`insert into labels (workspace_id, name) values (${client.workspaceId}, 'VIP') returning id`;
    const csv = `email,first_name,last_name,company_id,labels,labels_id,favorite color\nkim@example.com,Kim,Lee,c-1,Marketing:Trial:Demo,${vip!.id},blue\n`;
    const first = await pasteImport(client, csv, { identifier: "email", start: true });
    const done = await waitForImport(client, first.json.id);
    expect(done.counts).toMatchObject({ created: 1, failed: 0 });
    const labels = await t.ctx.db.$client`
      select l.name from people p cross join unnest(p.label_ids) lid join labels l on l.id = lid
      where p.email = 'kim@example.com' and p.workspace_id = ${client.workspaceId} order by l.name`;
    expect(labels.map((l) => l.name)).toEqual(["Demo", "Marketing", "Trial", "VIP"]);

    const again = `email,first_name,last_name,company_id,labels,labels_id,favorite color\nKIM@example.com,Kimberly,Lee,c-1,Marketing,,blue\n`;
    const second = await pasteImport(client, again, { identifier: "email", start: true });
    const done2 = await waitForImport(client, second.json.id);
    expect(done2.counts).toMatchObject({ created: 0, updated: 1, unchanged: 0 });
    const [kim] = await t.ctx.db.$client`select first_name, email, attributes from people where workspace_id = ${client.workspaceId} and lower(email) = 'kim@example.com'`;
    expect(kim).toMatchObject({ first_name: "Kimberly", email: "KIM@example.com", attributes: { favorite_color: "blue" } });
    const [event] = await t.ctx.db.$client`select name, properties from events where import_id = ${second.json.id}`;
    expect(event!.name).toBe("person.updated");
    expect(event!.properties.changed).toEqual(["email", "first_name"]);
  });
});
