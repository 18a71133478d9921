import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

const t = useTestContext();
let client: Client;
let other: Client;
let workers: WorkerPool;

beforeAll(async () => {
  client = await createClient(t.ctx);
  other = await createClient(t.ctx, client.app, "Other");
  workers = await startTestWorkers(t.ctx);
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

/** A CRM export whose headers no suggestion knows: without a template they become attributes. */
const CRM_TEMPLATE = {
  name: "CRM export",
  identifier: "email",
  mapping: { "E-Mail Adresse Primär": "email", "Kunden Nr": "external_id", Tarif: "attribute:plan", Notiz: "ignore" },
  options: { labels: "replace" },
};

async function person(email: string) {
  const [p] = await t.ctx.db.$client`select external_id, first_name, attributes from people where workspace_id = ${client.workspaceId} and lower(email) = ${email}`;
  return p;
}

describe("mapping templates: CRUD", () => {
  it("saves a mapping (201 with Location), reads and lists it; a duplicate name of the same kind is 409", async () => {
    const res = await client.request("POST", "/v1/mapping-templates", { payload: CRM_TEMPLATE });
    expect(res.status, res.body).toBe(201);
    expect(res.headers.location).toBe(`/v1/mapping-templates/${res.json.id}`);
    expect(res.json).toMatchObject({ name: "CRM export", kind: "contacts", identifier: "email", mapping: CRM_TEMPLATE.mapping });
    expect(res.json.options).toMatchObject({ labels: "replace", mode: "upsert" });
    expect((await client.request("GET", `/v1/mapping-templates/${res.json.id}`)).json).toEqual(res.json);
    const list = await client.request("GET", "/v1/mapping-templates");
    expect(list.json).toEqual({ data: [res.json], nextCursor: null });

    const dup = await client.request("POST", "/v1/mapping-templates", { payload: { ...CRM_TEMPLATE, mapping: { Email: "email" } } });
    expect(dup.status).toBe(409);
    expect(dup.json.error.code).toBe("template_name_taken");
    // The same name for another kind is another template; another workspace has names of its own.
    const members = await client.request("POST", "/v1/mapping-templates", { payload: { name: "CRM export", kind: "members", identifier: "email", mapping: { Mail: "email", Pass: "password" } } });
    expect(members.status).toBe(201);
    expect((await other.request("POST", "/v1/mapping-templates", { payload: CRM_TEMPLATE })).status).toBe(201);
    const contactsOnly = await client.request("GET", "/v1/mapping-templates?kind=contacts");
    expect(contactsOnly.json.data.map((d: { id: string }) => d.id)).toEqual([res.json.id]);
  });

  it("refuses a mapping an import would refuse (422 with problems), and columns that differ only by case", async () => {
    const bad = await client.request("POST", "/v1/mapping-templates", { payload: { name: "bad", identifier: "email", mapping: { Mail: "emial" } } });
    expect(bad.status).toBe(422);
    expect(bad.json.error.code).toBe("invalid_mapping");
    expect(bad.json.error.details.problems).toEqual(expect.arrayContaining([expect.objectContaining({ field: "mapping.Mail" })]));
    const twice = await client.request("POST", "/v1/mapping-templates", { payload: { name: "twice", identifier: "email", mapping: { Email: "email", " EMAIL": "ignore" } } });
    expect(twice.status).toBe(422);
    const missing = await client.request("POST", "/v1/mapping-templates", { payload: { name: "no mapping" } });
    expect(missing.status).toBe(422);
  });

  it("PUT changes the fields given, 409 on a taken name; DELETE answers 204, then 404", async () => {
    const created = await client.request("POST", "/v1/mapping-templates", { payload: { name: "Temp", identifier: "email", mapping: { Email: "email" } } });
    const put = await client.request("PUT", `/v1/mapping-templates/${created.json.id}`, { payload: { name: "Temp 2", mapping: { Email: "email", Firma: "company_id" } } });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ name: "Temp 2", identifier: "email", mapping: { Email: "email", Firma: "company_id" } });
    const taken = await client.request("PUT", `/v1/mapping-templates/${created.json.id}`, { payload: { name: "CRM export" } });
    expect(taken.status).toBe(409);
    expect((await other.request("PUT", `/v1/mapping-templates/${created.json.id}`, { payload: { name: "x" } })).status).toBe(404);
    expect((await other.request("DELETE", `/v1/mapping-templates/${created.json.id}`)).status).toBe(404);
    expect((await client.request("DELETE", `/v1/mapping-templates/${created.json.id}`)).status).toBe(204);
    expect((await client.request("GET", `/v1/mapping-templates/${created.json.id}`)).status).toBe(404);
  });
});

describe("mapping templates on POST /v1/imports", () => {
  it("applies a template by name: headers matched case-insensitively, unknown columns keep their suggestion and are listed", async () => {
    const csv = ["e-mail adresse primär,KUNDEN NR,tarif,First Name,Lieblingsfarbe", "ada@example.com,K-1,pro,Ada,blau"].join("\n");
    const created = await pasteImport(client, csv, { template: "CRM export", start: true });
    expect(created.status, created.body).toBe(201);
    expect(created.json).toMatchObject({
      kind: "contacts",
      status: "queued",
      identifier: "email",
      mapping: { "e-mail adresse primär": "email", "KUNDEN NR": "external_id", tarif: "attribute:plan", "First Name": "first_name", Lieblingsfarbe: "attribute:lieblingsfarbe" },
      template: { id: expect.any(String), name: "CRM export", unmatched: ["First Name", "Lieblingsfarbe"] },
    });
    expect(created.json.options).toMatchObject({ labels: "replace" });
    const done = await waitForImport(client, created.json.id);
    expect(done.status).toBe("done");
    expect(await person("ada@example.com")).toMatchObject({ external_id: "K-1", first_name: "Ada", attributes: { plan: "pro", lieblingsfarbe: "blau" } });
    expect((await client.request("GET", `/v1/imports/${created.json.id}`)).json.template.unmatched).toEqual(["First Name", "Lieblingsfarbe"]);
  });

  it("applies a template by id; the request's own mapping and identifier go over it; an import without one says template: null", async () => {
    const tpl = (await client.request("GET", "/v1/mapping-templates?kind=contacts")).json.data[0];
    const csv = ["E-Mail Adresse Primär,Kunden Nr,Tarif", "bo@example.com,K-2,free"].join("\n");
    const created = await pasteImport(client, csv, { template: tpl.id, mapping: { Tarif: "attribute:tier" } });
    expect(created.status, created.body).toBe(201);
    expect(created.json.status).toBe("draft");
    expect(created.json.mapping).toEqual({ "E-Mail Adresse Primär": "email", "Kunden Nr": "external_id", Tarif: "attribute:tier" });
    expect(created.json.template).toEqual({ id: tpl.id, name: "CRM export", unmatched: [] });
    const plain = await pasteImport(client, "email\nx@example.com");
    expect(plain.json.template).toBeNull();
  });

  it("takes the template's kind when the request names none; a kind that differs is 422", async () => {
    const csv = ["MAIL,pass", "member@example.com,long-enough-1"].join("\n");
    const members = await client.request("GET", "/v1/mapping-templates?kind=members");
    const created = await pasteImport(client, csv, { template: members.json.data[0].id });
    expect(created.status, created.body).toBe(201);
    expect(created.json).toMatchObject({ kind: "members", mapping: { MAIL: "email", pass: "password" }, sample: [["member@example.com", "[redacted]"]] });
    // By name, two kinds share "CRM export": the request's kind picks one; without a kind, the contacts one (the default kind).
    const byName = await pasteImport(client, csv, { template: "CRM export", kind: "members" });
    expect(byName.json.kind).toBe("members");
    const ambiguous = await pasteImport(client, "E-Mail Adresse Primär\nq@example.com", { template: "CRM export" });
    expect(ambiguous.status, ambiguous.body).toBe(201);
    expect(ambiguous.json.kind).toBe("contacts");
    const mismatch = await pasteImport(client, csv, { template: members.json.data[0].id, kind: "events" });
    expect(mismatch.status).toBe(422);
    expect(mismatch.json.error.code).toBe("template_kind_mismatch");
  });

  it("answers 422 template_not_found for an unknown template, or another workspace's, and keeps nothing", async () => {
    const before = (await client.request("GET", "/v1/imports?limit=1000")).json.data.length;
    const uploads = () => readdir(path.join(t.ctx.storageDir, "uploads", client.workspaceId)).then((f) => f.sort());
    const uploadsBefore = await uploads();
    expect(uploadsBefore.length).toBeGreaterThan(0);
    const theirs = (await other.request("GET", "/v1/mapping-templates")).json.data[0];
    for (const ref of ["No such template", theirs.id, "00000000-0000-4000-8000-000000000000"]) {
      const res = await pasteImport(client, "email\na@example.com", { template: ref });
      expect(res.status).toBe(422);
      expect(res.json.error.code).toBe("template_not_found");
    }
    expect((await client.request("GET", "/v1/imports?limit=1000")).json.data.length).toBe(before);
    expect(await uploads()).toEqual(uploadsBefore);
  });

  it("saves an import's mapping as a template with {name, importId}", async () => {
    const draft = await pasteImport(client, "Work Email,Given Name,Plan\nz@example.com,Zoe,pro", { identifier: "email", mapping: { "Work Email": "email", Plan: "attribute:tier" } });
    const res = await client.request("POST", "/v1/mapping-templates", { payload: { name: "From import", importId: draft.json.id } });
    expect(res.status, res.body).toBe(201);
    expect(res.json).toMatchObject({ kind: "contacts", identifier: "email", mapping: draft.json.mapping });
    const again = await pasteImport(client, "WORK EMAIL,given name,plan\ny@example.com,Yan,free", { template: "From import" });
    expect(again.json.mapping).toEqual({ "WORK EMAIL": "email", "given name": "first_name", plan: "attribute:tier" });
    expect(again.json.template).toMatchObject({ name: "From import", unmatched: [] });
    const theirs = await other.request("POST", "/v1/mapping-templates", { payload: { name: "Steal", importId: draft.json.id } });
    expect(theirs.status).toBe(422);
    expect(theirs.json.error.code).toBe("import_not_found");
    const both = await client.request("POST", "/v1/mapping-templates", { payload: { name: "Both", importId: draft.json.id, identifier: "email" } });
    expect(both.status).toBe(422);
  });
});
