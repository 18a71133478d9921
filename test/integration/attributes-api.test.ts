import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, errorReport, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { csvRows, download, runExportVia } from "../helpers/exports.js";

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

const identify = (c: Client, body: object) => c.request("POST", "/v1/users/identify", { payload: body });
const putType = (c: Client, key: string, type: string) => c.request("PUT", `/v1/attributes/${key}`, { payload: { type } });

async function waitForCheck(c: Client, key: string): Promise<any> {
  for (let i = 0; i < 300; i++) {
    const res = await c.request("GET", `/v1/attributes/${key}`);
    if (res.json?.check && ["done", "failed"].includes(res.json.check.status)) return res.json;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`check of ${key} did not finish`);
}

describe("GET /v1/attributes", () => {
  it("lists every key people hold, with counts kept current by imports and identify, and declared keys nobody holds", async () => {
    const c = await createClient(t.ctx, client.app, "Listing");
    expect((await c.request("GET", "/v1/attributes")).json).toEqual({ data: [], nextCursor: null });
    const done = await importAndWait(c, "email,plan,seats\na@l.test,pro,3\nb@l.test,free,\n");
    expect(done.status).toBe("done");
    expect((await identify(c, { email: "c@l.test", attributes: { plan: "pro", nested: { a: 1 } } })).status).toBe(201);
    expect((await putType(c, "unused", "date")).status).toBe(200);
    const list = await c.request("GET", "/v1/attributes");
    expect(list.status).toBe(200);
    expect(list.json.data).toEqual([
      { key: "nested", type: null, peopleCount: 1, updatedAt: null },
      { key: "plan", type: null, peopleCount: 3, updatedAt: null },
      { key: "seats", type: null, peopleCount: 1, updatedAt: null },
      { key: "unused", type: "date", peopleCount: 0, updatedAt: expect.any(String) },
    ]);
    const first = await c.request("GET", "/v1/attributes?limit=2");
    expect(first.json.data.map((a: any) => a.key)).toEqual(["nested", "plan"]);
    const second = await c.request("GET", `/v1/attributes?limit=2&cursor=${first.json.nextCursor}`);
    expect(second.json).toMatchObject({ data: [{ key: "seats" }, { key: "unused" }], nextCursor: null });
    expect((await c.request("GET", "/v1/attributes?cursor=!!")).status).toBe(422);
  });

  it("answers 404 for a key nobody holds and nobody declared, and 422 for a key no import could name", async () => {
    expect((await client.request("GET", "/v1/attributes/nobody_has_this")).status).toBe(404);
    const bad = await putType(client, "has-dash", "number");
    expect(bad.status).toBe(422);
    expect(bad.json.error.code).toBe("invalid_attribute_key");
    expect((await putType(client, "ok", "decimal")).status).toBe(422);
  });
});

describe("PUT /v1/attributes/:key", () => {
  it("declares a type with 200 when nobody holds the key, and changes nothing when the type is the same", async () => {
    const res = await putType(client, "fresh_key", "number");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ key: "fresh_key", type: "number", peopleCount: 0, check: null });
    const again = await putType(client, "fresh_key", "number");
    expect(again.status).toBe(200);
    expect(again.json.updatedAt).toBe(res.json.updatedAt);
  });

  it("answers 202 and checks stored values with a job, reporting those that do not fit", async () => {
    const c = await createClient(t.ctx, client.app, "Checks");
    const ids: string[] = [];
    for (const [email, score] of [["n1@c.test", 10], ["n2@c.test", "12.5"], ["n3@c.test", "lots"], ["n4@c.test", true]] as const) {
      ids.push((await identify(c, { email, attributes: { score } })).json.id);
    }
    const res = await putType(c, "score", "number");
    expect(res.status).toBe(202);
    expect(res.headers.location).toBe("/v1/attributes/score");
    expect(res.json).toMatchObject({ key: "score", type: "number", peopleCount: 4, check: { status: expect.stringMatching(/queued|running|done/) } });
    const checked = await waitForCheck(c, "score");
    expect(checked.check).toMatchObject({ status: "done", checked: 4, mismatched: 2, failureReason: null });
    expect(checked.check.sample).toEqual([
      { personId: ids[2], value: "lots" },
      { personId: ids[3], value: true },
    ]);
    // The values themselves are kept as they were.
    expect((await c.request("GET", `/v1/users/${ids[2]}`)).json.attributes.score).toBe("lots");

    // A change to another type is a new check.
    const toString = await putType(c, "score", "string");
    expect(toString.status).toBe(202);
    expect(toString.json.check.id).not.toBe(checked.check.id);
    expect((await waitForCheck(c, "score")).check).toMatchObject({ status: "done", checked: 4, mismatched: 0, sample: [] });
  });
});

describe("imports coerce to the declared type", () => {
  it("without options.attributeTypes, a declared number/boolean/date key is coerced and a cell that does not fit is a row error", async () => {
    const c = await createClient(t.ctx, client.app, "Imports");
    for (const [key, type] of [["age", "number"], ["vip", "boolean"], ["joined", "date"]]) expect((await putType(c, key!, type!)).status).toBe(200);
    const csv = "email,age,vip,joined,note\nok@i.test,42,yes,03/15/2024,7\nbad@i.test,forty,maybe,someday,x\n";
    const done = await importAndWait(c, csv);
    expect(done.status).toBe("done");
    expect(done.counts).toMatchObject({ created: 1, failed: 1 });
    const errors = await errorReport(c, done.id);
    expect(errors.map((e) => e.code).sort()).toEqual(["invalid_boolean", "invalid_date", "invalid_number"]);
    const people = await c.request("POST", "/v1/users/search", { payload: { conditions: { field: "email", op: "eq", value: "ok@i.test" } } });
    const person = await c.request("GET", `/v1/users/${people.json.data[0].id}`);
    // Undeclared keys stay strings, as before.
    expect(person.json.attributes).toEqual({ age: 42, vip: true, joined: "2024-03-15T00:00:00.000Z", note: "7" });
  });

  it("options.attributeTypes still wins over the declared type", async () => {
    const c = await createClient(t.ctx, client.app, "Override");
    expect((await putType(c, "code", "number")).status).toBe(200);
    const done = await importAndWait(c, "email,code\nx@o.test,007\n", { options: { attributeTypes: { code: "string" } } });
    expect(done.counts).toMatchObject({ created: 1, failed: 0 });
    const people = await c.request("POST", "/v1/users/search", { payload: { conditions: { field: "email", op: "eq", value: "x@o.test" } } });
    expect((await c.request("GET", `/v1/users/${people.json.data[0].id}`)).json.attributes).toEqual({ code: "007" });
  });
});

describe("segment conditions compare by the declared type", () => {
  it("a number-typed key compares numerically even when the condition value is the string \"10\"; undeclared keys compare as before", async () => {
    const c = await createClient(t.ctx, client.app, "Conditions");
    await identify(c, { email: "ten@s.test", attributes: { seats: 10, flag: "yes", since: "2024-03-15", code: 7 } });
    await identify(c, { email: "ten-text@s.test", attributes: { seats: "10.0", flag: true, since: "2024-03-15T00:00:00Z", code: "7" } });
    await identify(c, { email: "eleven@s.test", attributes: { seats: 11, flag: "no", since: "2024-03-16", code: "07" } });
    const emails = async (conditions: object) => {
      const res = await c.request("POST", "/v1/users/search", { payload: { conditions } });
      expect(res.status).toBe(200);
      return res.json.data.map((p: any) => p.email).sort();
    };
    // Regression: before a type is declared, the string "10" compares as text, so 10 matches and "10.0" does not.
    expect(await emails({ field: "attributes.seats", op: "eq", value: "10" })).toEqual(["ten@s.test"]);
    expect((await putType(c, "seats", "number")).status).toBe(202);
    expect(await emails({ field: "attributes.seats", op: "eq", value: "10" })).toEqual(["ten-text@s.test", "ten@s.test"]);
    expect(await emails({ field: "attributes.seats", op: "in", value: ["11", 12] })).toEqual(["eleven@s.test"]);
    expect(await emails({ field: "attributes.seats", op: "neq", value: "10" })).toEqual(["eleven@s.test"]);
    expect(await emails({ field: "attributes.seats", op: "eq", value: "ten" })).toEqual([]);

    expect((await putType(c, "flag", "boolean")).status).toBe(202);
    expect(await emails({ field: "attributes.flag", op: "eq", value: true })).toEqual(["ten-text@s.test", "ten@s.test"]);
    expect(await emails({ field: "attributes.flag", op: "eq", value: "false" })).toEqual(["eleven@s.test"]);

    expect((await putType(c, "since", "date")).status).toBe(202);
    expect(await emails({ field: "attributes.since", op: "eq", value: "2024-03-15" })).toEqual(["ten-text@s.test", "ten@s.test"]);

    // A string-typed key compares text: 7 and "7" are the same, "07" is not.
    expect((await putType(c, "code", "string")).status).toBe(202);
    expect(await emails({ field: "attributes.code", op: "eq", value: 7 })).toEqual(["ten-text@s.test", "ten@s.test"]);
    // Dynamic segments follow the same compiler.
    const seg = await c.request("POST", "/v1/segments", { payload: { name: "ten seats", type: "dynamic", conditions: { field: "attributes.seats", op: "eq", value: "10" } } });
    expect(seg.status).toBe(201);
  });
});

describe("users exports format by the declared type", () => {
  it("writes declared dates as ISO-8601 UTC, numbers and booleans canonically, undeclared keys as stored", async () => {
    const c = await createClient(t.ctx, client.app, "Exports");
    await identify(c, { email: "e1@x.test", attributes: { joined: "2024-03-15", score: "1.50", vip: "yes", raw: "1.50" } });
    await identify(c, { email: "e2@x.test", attributes: { joined: "someday", score: 1e3, vip: false, raw: 2 } });
    const columns = ["email", "attributes.joined", "attributes.score", "attributes.vip", "attributes.raw"];
    const before = csvRows((await download(c, (await runExportVia(c, { kind: "users", columns })).id)).text);
    expect(before.slice(1)).toEqual([
      ["e1@x.test", "2024-03-15", "1.50", "yes", "1.50"],
      ["e2@x.test", "someday", "1000", "false", "2"],
    ]);
    for (const [key, type] of [["joined", "date"], ["score", "number"], ["vip", "boolean"]]) expect((await putType(c, key!, type!)).status).toBe(202);
    const after = csvRows((await download(c, (await runExportVia(c, { kind: "users", columns })).id)).text);
    expect(after[0]).toEqual(columns);
    expect(after.slice(1)).toEqual([
      ["e1@x.test", "2024-03-15T00:00:00.000Z", "1.5", "true", "1.50"],
      // A value that does not fit its type is written as stored.
      ["e2@x.test", "someday", "1000", "false", "2"],
    ]);
  });
});
