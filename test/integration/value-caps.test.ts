import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_VALUE_LENGTH } from "../../src/domain/attributes.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, errorReport, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";

// One cap for an attribute or event property value, whichever way it arrives: imports, identify and events.

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

const identify = (body: object) => client.request("POST", "/v1/users/identify", { payload: body });
async function exists(email: string): Promise<boolean> {
  const rows = await t.ctx.db.$client`select 1 from people where workspace_id = ${client.workspaceId} and email = ${email}`;
  return rows.length > 0;
}

describe(`a value holds at most ${MAX_VALUE_LENGTH} characters`, () => {
  it("is 10,000, the imports' attribute cap, and imports keep it at the edge", async () => {
    expect(MAX_VALUE_LENGTH).toBe(10_000);
    const done = await importAndWait(client, `email,bio\nedge@x.test,${"a".repeat(MAX_VALUE_LENGTH)}\nover@x.test,${"a".repeat(MAX_VALUE_LENGTH + 1)}\n`);
    expect(done.counts).toMatchObject({ created: 1, failed: 1 });
    expect((await errorReport(client, done.id)).map((e) => [e.row, e.column, e.code])).toEqual([["2", "bio", "too_long"]]);
  });

  it("identify stores a value at the edge and refuses one over it with 422 naming the attribute", async () => {
    const ok = await identify({ email: "id-edge@x.test", attributes: { bio: "b".repeat(MAX_VALUE_LENGTH) } });
    expect(ok.status).toBe(201);
    const over = await identify({ email: "id-over@x.test", attributes: { plan: "pro", bio: "b".repeat(MAX_VALUE_LENGTH + 1) } });
    expect(over.status).toBe(422);
    expect(over.json).toEqual({
      error: { code: "invalid_request", message: expect.any(String), details: { problems: [{ field: "body.attributes.bio", reason: expect.stringContaining("10000") }] } },
      requestId: expect.any(String),
    });
    expect(await exists("id-over@x.test")).toBe(false);
  });

  it("counts an object or array value by its JSON text", async () => {
    const over = await identify({ email: "id-obj@x.test", attributes: { tags: Array.from({ length: 2000 }, () => "abcd") } });
    expect(over.status).toBe(422);
    expect(over.json.error.details.problems[0].field).toBe("body.attributes.tags");
    expect((await identify({ email: "id-obj@x.test", attributes: { tags: ["a", "b"], n: 3, ok: true, none: null } })).status).toBe(201);
  });

  it("identify with a 9 MiB attribute → 422 naming it; a body over the 10 MiB JSON limit → 413; both with the error shape", async () => {
    const nine = await identify({ email: "id-9mib@x.test", attributes: { blob: "x".repeat(9 * 1024 * 1024) } });
    expect(nine.status).toBe(422);
    expect(nine.json.error.details.problems).toEqual([{ field: "body.attributes.blob", reason: expect.any(String) }]);
    expect(await exists("id-9mib@x.test")).toBe(false);
    const eleven = await identify({ email: "id-11mib@x.test", attributes: { blob: "x".repeat(11 * 1024 * 1024) } });
    expect(eleven.status).toBe(413);
    expect(eleven.json).toEqual({ error: { code: "payload_too_large", message: expect.any(String) }, requestId: expect.any(String) });
  });

  it("events apply the same cap to property values", async () => {
    await identify({ email: "ev-cap@x.test" });
    const event = (value: string) => ({ user: { email: "ev-cap@x.test" }, event: "Wrote", properties: { text: value } });
    const over = await client.request("POST", "/v1/events", { payload: { events: [event("ok"), event("t".repeat(MAX_VALUE_LENGTH + 1))] } });
    expect(over.status).toBe(422);
    expect(over.json.error.details.problems).toEqual([{ field: "body.events.1.properties.text", reason: expect.stringContaining("10000") }]);
    const ok = await client.request("POST", "/v1/events", { payload: { events: [event("t".repeat(MAX_VALUE_LENGTH))] } });
    expect(ok.json.accepted).toBe(1);
  });
});
