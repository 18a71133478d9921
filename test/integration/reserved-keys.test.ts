import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";

// The policy for "__proto__": as a name in a file or a request (a CSV header, a mapping key, any JSON key) it is
// data, parsed as an ordinary own key and never as a prototype; it is never the key of a stored attribute or
// event property, and asking for one is a 422 naming it. "constructor" and "prototype" are ordinary keys.

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
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});

/** A JSON body sent as text, so "__proto__" reaches the server as a key (an object literal would set a prototype). */
const rawJson = (method: "POST" | "PUT", url: string, text: string) => client.request(method, url, { payload: text, headers: { "content-type": "application/json" } });

function multipart(fields: Record<string, string>, csv: string) {
  const boundary = "----rosterProtoBoundary";
  const parts = Object.entries(fields).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
  parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\nContent-Type: text/csv\r\n\r\n${csv}\r\n`);
  const payload = `${parts.join("")}--${boundary}--\r\n`;
  return client.request("POST", "/v1/imports", { payload, headers: { "content-type": `multipart/form-data; boundary=${boundary}` } });
}

async function person(email: string) {
  const rows = await t.ctx.db.$client`select attributes from people where workspace_id = ${client.workspaceId} and lower(email) = lower(${email})`;
  return rows[0] as { attributes: Record<string, unknown> } | undefined;
}

const PROTO_CSV = "email,__proto__,constructor\nproto-%@x.test,kept,ctor\n";
const MAPPING = '{"email":"email","__proto__":"attribute:legacy","constructor":"attribute:constructor"}';

describe("a column named __proto__ maps like any other", () => {
  it("through a multipart mapping field", async () => {
    const res = await multipart({ identifier: "email", mapping: MAPPING, start: "true" }, PROTO_CSV.replace("%", "mp"));
    expect(res.status, res.body).toBe(201);
    expect(res.json.mapping).toEqual({ email: "email", ["__proto__"]: "attribute:legacy", constructor: "attribute:constructor" });
    expect(Object.getPrototypeOf(res.json.mapping)).toBe(Object.prototype);
    expect((await waitForImport(client, res.json.id)).counts).toMatchObject({ created: 1, failed: 0 });
    const p = await person("proto-mp@x.test");
    expect(p?.attributes).toEqual({ legacy: "kept", constructor: "ctor" });
  });

  it("through a JSON POST /v1/imports (no misleading invalid_json)", async () => {
    const body = `{"csv":${JSON.stringify(PROTO_CSV.replace("%", "json"))},"identifier":"email","start":true,"mapping":${MAPPING}}`;
    const res = await rawJson("POST", "/v1/imports", body);
    expect(res.status, res.body).toBe(201);
    expect((await waitForImport(client, res.json.id)).counts).toMatchObject({ created: 1, failed: 0 });
    expect((await person("proto-json@x.test"))?.attributes).toEqual({ legacy: "kept", constructor: "ctor" });
  });

  it("through the query string of a raw CSV upload, and through PUT mapping", async () => {
    const created = await client.request("POST", `/v1/imports?identifier=email&mapping=${encodeURIComponent(MAPPING)}`, {
      payload: PROTO_CSV.replace("%", "qs"),
      headers: { "content-type": "text/csv" },
    });
    expect(created.status, created.body).toBe(201);
    expect(created.json.mapping["__proto__"]).toBe("attribute:legacy");
    const put = await rawJson("PUT", `/v1/imports/${created.json.id}/mapping`, `{"identifier":"email","mapping":{"email":"email","__proto__":"attribute:renamed","constructor":"ignore"}}`);
    expect(put.status, put.body).toBe(200);
    expect(put.json.mapping).toEqual({ email: "email", ["__proto__"]: "attribute:renamed", constructor: "ignore" });
    const started = await client.request("POST", `/v1/imports/${created.json.id}/start`);
    expect(started.status).toBe(202);
    expect((await waitForImport(client, created.json.id)).counts).toMatchObject({ created: 1 });
    expect((await person("proto-qs@x.test"))?.attributes).toEqual({ renamed: "kept" });
  });
});

describe("__proto__ is never a stored attribute or property key: 422 naming it, nothing stored", () => {
  it("attribute:__proto__ via PUT mapping", async () => {
    const created = await client.request("POST", "/v1/imports", { payload: "email,Plan\nput@x.test,pro\n", headers: { "content-type": "text/csv" } });
    const res = await client.request("PUT", `/v1/imports/${created.json.id}/mapping`, { payload: { identifier: "email", mapping: { email: "email", Plan: "attribute:__proto__" } } });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("invalid_mapping");
    expect(res.json.error.details.problems).toEqual([{ field: "mapping.Plan", reason: expect.stringContaining('"__proto__"') }]);
    expect(res.json.requestId).toBeTruthy();
  });

  it("attribute:__proto__ via a multipart mapping field, and property:__proto__ in an events import", async () => {
    const res = await multipart({ identifier: "email", mapping: '{"email":"email","Plan":"attribute:__proto__"}', start: "true" }, "email,Plan\nmp2@x.test,pro\n");
    expect(res.status).toBe(422);
    expect(res.json.error.details.problems).toEqual([{ field: "mapping.Plan", reason: expect.stringContaining('"__proto__"') }]);
    const events = await multipart({ kind: "events", identifier: "email", mapping: '{"email":"email","event":"event","Page":"property:__proto__"}' }, "email,event,Page\nmp2@x.test,Viewed,/home\n");
    expect(events.status).toBe(422);
    expect(events.json.error.details.problems).toEqual([{ field: "mapping.Page", reason: expect.stringContaining('"__proto__"') }]);
    expect(await person("mp2@x.test")).toBeUndefined();
  });

  it("a column called attributes.__proto__ (an export's name) is not suggested as attribute:__proto__", async () => {
    const res = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: "email,attributes.__proto__\nsug@x.test,v\n", headers: { "content-type": "text/csv" } });
    expect(res.status, res.body).toBe(201);
    expect(res.json.mapping["attributes.__proto__"]).toBe("attribute:attributes_proto");
    await waitForImport(client, res.json.id);
    expect((await person("sug@x.test"))?.attributes).toEqual({ attributes_proto: "v" });
  });

  it("identify with attributes {__proto__: …}", async () => {
    const res = await rawJson("POST", "/v1/users/identify", '{"email":"ident@x.test","attributes":{"__proto__":{"polluted":true},"plan":"pro"}}');
    expect(res.status, res.body).toBe(422);
    expect(res.json.error.code).toBe("invalid_request");
    expect(res.json.error.details.problems).toEqual([{ field: "body.attributes.__proto__", reason: expect.stringContaining('"__proto__"') }]);
    expect(await person("ident@x.test")).toBeUndefined();
  });

  it("identify stores constructor and prototype as plain attribute keys", async () => {
    const res = await rawJson("POST", "/v1/users/identify", '{"email":"ctor@x.test","attributes":{"constructor":{"prototype":{"x":1}},"prototype":"p"}}');
    expect(res.status, res.body).toBe(201);
    expect((await person("ctor@x.test"))?.attributes).toEqual({ constructor: { prototype: { x: 1 } }, prototype: "p" });
  });

  it("events with properties {__proto__: …}", async () => {
    await client.request("POST", "/v1/users/identify", { payload: { email: "ev@x.test" } });
    const res = await rawJson("POST", "/v1/events", '{"events":[{"user":{"email":"ev@x.test"},"event":"Clicked","properties":{"constructor":"c","__proto__":"x"}}]}');
    expect(res.status, res.body).toBe(422);
    expect(res.json.error.details.problems).toEqual([{ field: "body.events.0.properties.__proto__", reason: expect.stringContaining('"__proto__"') }]);
    const ok = await rawJson("POST", "/v1/events", '{"events":[{"user":{"email":"ev@x.test"},"event":"Clicked","properties":{"constructor":"c"}}]}');
    expect(ok.json.accepted).toBe(1);
    const rows = await t.ctx.db.$client`select properties from events where name = 'Clicked'`;
    expect(rows.map((r) => r.properties)).toEqual([{ constructor: "c" }]);
  });
});
