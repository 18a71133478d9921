import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, errorReport, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

// Issue 13, items 4 (secret columns in contacts imports) and 8 (mappings that lose no column, common exports).
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

async function person(email: string, workspaceId = client.workspaceId) {
  const [p] = await t.ctx.db.$client`
    select p.first_name, p.last_name, p.attributes,
      coalesce((select array_agg(l.name order by l.name) from labels l where l.id = any(p.label_ids)), '{}') as labels
    from people p where p.workspace_id = ${workspaceId} and lower(p.email) = ${email}`;
  return p;
}

function multipart(file: { name: string; content: string }, fields: Record<string, string> = {}) {
  const boundary = "----rostermapping";
  const parts = Object.entries(fields).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
  parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.name}"\r\nContent-Type: text/csv\r\n\r\n${file.content}\r\n`);
  return { payload: Buffer.from(parts.join("") + `--${boundary}--\r\n`), headers: { "content-type": `multipart/form-data; boundary=${boundary}` } };
}

describe("README: A walk through the API", () => {
  it("runs as written: the curl commands of the README, in order, against the API", async () => {
    const readme = await readFile(path.join(import.meta.dirname, "../../README.md"), "utf8");
    const block = readme.split("## A walk through the API")[1]!.split("```sh")[1]!.split("```")[0]!;
    const commands = block
      .replace(/\\\n\s*/g, " ")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.startsWith("curl") || l.startsWith("printf"));
    expect(commands.length).toBeGreaterThanOrEqual(10);

    const files = new Map<string, string>();
    let key = "";
    let id = "";
    const seen: { method: string; url: string; status: number; json: any; body: string }[] = [];
    for (const command of commands) {
      const printf = /^printf '([^']*)' > (\S+)/.exec(command);
      if (printf) {
        files.set(printf[2]!, printf[1]!.replaceAll("\\n", "\n"));
        continue;
      }
      const method = /-X (\w+)/.exec(command)?.[1] ?? "GET";
      const url = /localhost:3000(\/[^\s']*)/.exec(command)![1]!.replace("$ID", id);
      const auth = url.startsWith("/v1/admin/") ? t.ctx.env.ADMIN_TOKEN! : key;
      const data = /-d '([^']*)'/.exec(command)?.[1];
      const file = /-F file=@(\S+)/.exec(command)?.[1];
      const body = file ? multipart({ name: file, content: files.get(file)! }) : data ? { payload: JSON.parse(data) as object, headers: {} } : { headers: {} };
      const res = await client.app.inject({ method: method as "GET", url, payload: body.payload, headers: { authorization: `Bearer ${auth}`, ...body.headers } });
      const json = res.headers["content-type"]?.toString().startsWith("application/json") ? res.json() : undefined;
      seen.push({ method, url, status: res.statusCode, json, body: res.body });
      expect([method, url, res.statusCode < 300]).toEqual([method, url, true]);
      if (url === "/v1/admin/workspaces") key = json.apiKey;
      if (method === "POST" && url === "/v1/imports" && file) id = json.id;
      // A person reads the answer before the next step: long work is waited for.
      if (res.statusCode === 202 || (method === "POST" && json?.status === "queued")) await waitForImport({ ...client, request: req(key) }, json.id);
    }

    const pasted = seen.find((s) => s.method === "POST" && s.url === "/v1/imports" && s.json.status === "queued")!;
    const uploaded = seen.find((s) => s.method === "POST" && s.url === "/v1/imports" && s.json.status === "draft")!;
    expect(uploaded.json.suggestedMapping).toEqual({ Email: "email", "First Name": "first_name", "Last Name": "last_name", Plan: "attribute:plan" });
    const mapped = seen.find((s) => s.method === "PUT")!;
    // The README's partial mapping loses no column.
    expect(mapped.json.mapping).toEqual({ Email: "email", "First Name": "first_name", "Last Name": "last_name", Plan: "attribute:plan" });
    expect(seen.find((s) => s.url.endsWith("/errors"))!.body).toContain("not-an-email");
    const history = seen.at(-1)!.json.data.map((i: { id: string }) => i.id);
    expect(history).toEqual(expect.arrayContaining([pasted.json.id, id]));

    const [{ workspace_id: ws }] = (await t.ctx.db.$client`select workspace_id from imports where id = ${id}`) as unknown as [{ workspace_id: string }];
    expect(await person("ada@example.com", ws)).toMatchObject({ first_name: "Ada", last_name: "Lovelace" });
    expect(await person("bob@example.com", ws)).toMatchObject({ first_name: "Bob", last_name: "Babbage", attributes: { plan: "pro" } });
  });
});

/** A client's request function for another key (the workspace the README creates). */
function req(key: string): Client["request"] {
  return async (method, url, opts = {}) => {
    const res = await client.app.inject({ method, url, ...opts, headers: { authorization: `Bearer ${key}`, ...(opts.headers ?? {}) } });
    return { status: res.statusCode, json: res.json(), body: res.body, headers: res.headers as Record<string, unknown> };
  };
}

describe("partial mappings", () => {
  const csv = "Email,First Name,Last Name,Plan\ncy@x.io,Cy,Cole,pro\n";

  it("POST /v1/imports with a partial mapping (JSON or multipart) lays it over the suggestion", async () => {
    const json = await pasteImport(client, csv, { identifier: "email", mapping: { Plan: "attribute:tier", "Last Name": "ignore" } });
    expect(json.status).toBe(201);
    expect(json.json.mapping).toEqual({ Email: "email", "First Name": "first_name", "Last Name": "ignore", Plan: "attribute:tier" });
    const form = multipart({ name: "c.csv", content: csv }, { identifier: "email", mapping: JSON.stringify({ Plan: "attribute:tier" }) });
    const res = await client.request("POST", "/v1/imports", form);
    expect(res.status).toBe(201);
    expect(res.json.mapping).toEqual({ Email: "email", "First Name": "first_name", "Last Name": "last_name", Plan: "attribute:tier" });
  });

  it('"suggested" or no mapping at all accepts the suggestion; a later partial PUT keeps the earlier choices', async () => {
    const suggested = { Email: "email", "First Name": "first_name", "Last Name": "last_name", Plan: "attribute:plan" };
    const form = multipart({ name: "c.csv", content: csv }, { identifier: "email", mapping: "suggested" });
    const viaForm = await client.request("POST", "/v1/imports", form);
    expect(viaForm.json.mapping).toEqual(suggested);

    const draft = (await pasteImport(client, csv)).json;
    const put = (body: object) => client.request("PUT", `/v1/imports/${draft.id}/mapping`, { payload: body });
    const accepted = await put({ identifier: "email" });
    expect([accepted.status, accepted.json.mapping]).toEqual([200, suggested]);
    const first = await put({ identifier: "email", mapping: { Plan: "ignore" } });
    expect(first.json.mapping).toEqual({ ...suggested, Plan: "ignore" });
    // Merged over the current mapping, not the suggestion: Plan stays ignored.
    const second = await put({ identifier: "email", mapping: { "Last Name": "attribute:surname" } });
    expect(second.json.mapping).toEqual({ ...suggested, Plan: "ignore", "Last Name": "attribute:surname" });
    // A target moved to another column leaves its old column ignored, not mapped twice.
    const moved = await put({ identifier: "email", mapping: { Plan: "first_name" } });
    expect(moved.json.mapping).toEqual({ Email: "email", "First Name": "ignore", "Last Name": "attribute:surname", Plan: "first_name" });
    const reset = await put({ identifier: "email", mapping: "suggested" });
    expect(reset.json.mapping).toEqual(suggested);
  });
});

describe("common exports", () => {
  it("a Mailchimp audience export imports with its suggested mapping, TAGS as separate labels", async () => {
    const header = "Email Address,First Name,Last Name,Address,Phone Number,Birthday,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS";
    const row = 'mc@x.io,Mia,Chimp,,,,2,"2024-01-02 10:00:00",,"2024-01-02 10:01:00",,,,,,,,,"2024-02-01 09:00:00",123456,abc123,,"""Newsletter"", ""VIP"""';
    const created = await pasteImport(client, `${header}\n${row}\n`, { identifier: "email", start: true });
    expect(created.status).toBe(201);
    expect(created.json.suggestedMapping).toMatchObject({ "Email Address": "email", TAGS: "labels" });
    const done = await waitForImport(client, created.json.id);
    expect(done.counts).toMatchObject({ created: 1, failed: 0 });
    expect(await person("mc@x.io")).toMatchObject({ first_name: "Mia", last_name: "Chimp", labels: ["Newsletter", "VIP"] });
  });

  it("Google Contacts and HubSpot exports find the email, names and record id", async () => {
    const google = "Name,Given Name,Additional Name,Family Name,E-mail 1 - Type,E-mail 1 - Value\nGail Goo,Gail,,Goo,* Home,gail@x.io\n";
    const g = await waitForImport(client, (await pasteImport(client, google, { identifier: "email", start: true })).json.id);
    expect(g.counts.created).toBe(1);
    expect(await person("gail@x.io")).toMatchObject({ first_name: "Gail", last_name: "Goo" });
    const hubspot = "Record ID,First Name,Last Name,Email,Lead Status\n901,Hub,Spot,hub@x.io,NEW\n";
    const h = await pasteImport(client, hubspot, { identifier: "external_id", start: true });
    expect(h.json.mapping).toMatchObject({ "Record ID": "external_id", Email: "email" });
    expect((await waitForImport(client, h.json.id)).counts.created).toBe(1);
  });
});

describe("secret-looking columns in a contacts import", () => {
  const csv = "Email,Password,api_key,Plan\nsam@x.io,Hunter-2-secret,key-9f8e7d,pro\nbad-email,Other-secret-1,key-111,free\n";

  it("are suggested as ignore, hidden in the sample and the error report, and never stored", async () => {
    const created = await pasteImport(client, csv, { identifier: "email", start: true });
    expect(created.json.suggestedMapping).toEqual({ Email: "email", Password: "ignore", api_key: "ignore", Plan: "attribute:plan" });
    expect(created.json.sample).toEqual([
      ["sam@x.io", "[redacted]", "[redacted]", "pro"],
      ["bad-email", "[redacted]", "[redacted]", "free"],
    ]);
    const done = await waitForImport(client, created.json.id);
    expect(done.counts).toMatchObject({ created: 1, failed: 1 });
    expect((await person("sam@x.io"))!.attributes).toEqual({ plan: "pro" });
    const report = await errorReport(client, done.id);
    expect(report[0]).toMatchObject({ Email: "bad-email", Password: "[redacted]", api_key: "[redacted]", Plan: "free" });
    const stored = await t.ctx.db.$client`select (select string_agg(sample::text, '') from imports where id = ${done.id}) || (select string_agg(record::text, '') from import_errors where import_id = ${done.id}) as text`;
    for (const secret of ["Hunter-2-secret", "key-9f8e7d", "Other-secret-1", "key-111"]) expect(stored[0]!.text).not.toContain(secret);
  });

  it("an explicit attribute mapping of one → 422 secret_column pointing to kind=members", async () => {
    const draft = (await pasteImport(client, csv)).json;
    const res = await client.request("PUT", `/v1/imports/${draft.id}/mapping`, { payload: { identifier: "email", mapping: { Password: "attribute:password" } } });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("secret_column");
    expect(res.json.error.message).toContain("kind=members");
    expect(res.json.error.details.problems).toEqual([expect.objectContaining({ field: "mapping.Password", code: "secret_column" })]);
    // Renaming the key does not get it through: the header is checked too, and the key by itself.
    const renamed = await client.request("PUT", `/v1/imports/${draft.id}/mapping`, { payload: { identifier: "email", mapping: { Password: "attribute:login", Plan: "attribute:api_token" } } });
    expect(renamed.json.error.details.problems.map((p: { field: string }) => p.field)).toEqual(["mapping.Password", "mapping.Plan"]);
    const atIntake = await pasteImport(client, csv, { identifier: "email", mapping: { api_key: "attribute:api_key" } });
    expect([atIntake.status, atIntake.json.error.code]).toEqual([422, "secret_column"]);
  });
});
