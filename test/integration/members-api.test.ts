import { verify } from "@node-rs/argon2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

// Debug level: every log line a request can write is captured and checked for the password and its hash.
const t = useTestContext({ LOG_LEVEL: "debug" });
let client: Client;
let other: Client;
let workers: WorkerPool;
const IMPORTED_PW = "Imported-Pass-71";
const NEW_PW = "Brand-New-Secret-93";

beforeAll(async () => {
  client = await createClient(t.ctx);
  other = await createClient(t.ctx, client.app, "Other");
  workers = await startTestWorkers(t.ctx);
  const csv = ["Email,First Name,Last Name,Password,Active,Role", `ana@example.com,Ana,Lima,${IMPORTED_PW},yes,admin`, "bo@example.com,Bo,Berg,,yes,agent", "cy@example.com,Cy,Cole,,no,agent"].join("\n");
  const done = await importAndWait(client, csv, { kind: "members" });
  expect(done.counts.created).toBe(3);
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

async function storedHash(email: string): Promise<string | null> {
  const [row] = await t.ctx.db.$client`select password_hash from team_members where workspace_id = ${client.workspaceId} and email = ${email}`;
  return (row?.password_hash as string | null) ?? null;
}

describe("team members API", () => {
  it("lists members page by page with a cursor, without passwords or hashes", async () => {
    const first = await client.request("GET", "/v1/members?limit=2");
    expect(first.status).toBe(200);
    expect(first.json.data.map((m: { email: string }) => m.email)).toEqual(["ana@example.com", "bo@example.com"]);
    expect(first.json.data[0]).toEqual({
      id: expect.any(String),
      email: "ana@example.com",
      firstName: "Ana",
      lastName: "Lima",
      role: "admin",
      active: true,
      hasPassword: true,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(first.json.nextCursor).toEqual(expect.any(String));
    const second = await client.request("GET", `/v1/members?limit=2&cursor=${first.json.nextCursor}`);
    expect(second.json).toEqual({ data: [expect.objectContaining({ email: "cy@example.com", active: false, hasPassword: false })], nextCursor: null });
    expect(first.body + second.body).not.toContain("$argon2");
    expect((await client.request("GET", "/v1/members?cursor=nonsense")).json.error.code).toBe("invalid_cursor");
  });

  it("reads one member; another workspace's or an unknown id answers 404", async () => {
    const list = await client.request("GET", "/v1/members");
    const bo = list.json.data[1];
    expect((await client.request("GET", `/v1/members/${bo.id}`)).json).toEqual(bo);
    for (const id of [bo.id, "999999", "abc"]) {
      const res = await other.request("GET", `/v1/members/${id}`);
      expect(res.status).toBe(404);
      expect(res.json.error.code).toBe("not_found");
    }
    expect((await other.request("PATCH", `/v1/members/${bo.id}`, { payload: { active: false } })).status).toBe(404);
    expect((await client.request("GET", `/v1/members/${bo.id}`)).json.active).toBe(true);
  });

  it("changes names and role, and deactivates with active:false", async () => {
    const ana = (await client.request("GET", "/v1/members")).json.data[0];
    const res = await client.request("PATCH", `/v1/members/${ana.id}`, { payload: { firstName: "Anna", role: "owner", active: false } });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id: ana.id, email: "ana@example.com", firstName: "Anna", lastName: "Lima", role: "owner", active: false, hasPassword: true });
    const cleared = await client.request("PATCH", `/v1/members/${ana.id}`, { payload: { lastName: null, active: true } });
    expect(cleared.json).toMatchObject({ lastName: null, active: true });
    // The password stays what the import set.
    expect(await verify((await storedHash("ana@example.com"))!, IMPORTED_PW)).toBe(true);
    const unknown = await client.request("PATCH", `/v1/members/${ana.id}`, { payload: { email: "x@example.com" } });
    expect(unknown.status).toBe(422);
  });

  it("sets a password as an argon2id hash; never returns or logs it or its hash", async () => {
    const bo = (await client.request("GET", "/v1/members")).json.data[1];
    const res = await client.request("PATCH", `/v1/members/${bo.id}`, { payload: { password: NEW_PW } });
    expect(res.status).toBe(200);
    expect(res.json.hasPassword).toBe(true);
    const hash = (await storedHash("bo@example.com"))!;
    expect(hash).toMatch(/^\$argon2id\$/);
    expect(await verify(hash, NEW_PW)).toBe(true);
    expect(res.body).not.toContain(NEW_PW);
    expect(res.body).not.toContain(hash);
    const read = await client.request("GET", `/v1/members/${bo.id}`);
    expect(read.body).not.toContain(hash);
    const logs = t.ctx.logs.join("");
    expect(logs).toContain(bo.id);
    expect(logs).not.toContain(NEW_PW);
    expect(logs).not.toContain(IMPORTED_PW);
    expect(logs).not.toContain(hash);
  });

  it("refuses a password shorter than 6 characters with 422 password_too_short, changing nothing", async () => {
    const bo = (await client.request("GET", "/v1/members")).json.data[1];
    const before = await storedHash("bo@example.com");
    const res = await client.request("PATCH", `/v1/members/${bo.id}`, { payload: { password: "abc12", firstName: "Changed" } });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("password_too_short");
    expect(res.body).not.toContain("abc12");
    expect(await storedHash("bo@example.com")).toBe(before);
    expect((await client.request("GET", `/v1/members/${bo.id}`)).json.firstName).toBe("Bo");
    expect(t.ctx.logs.join("")).not.toContain("abc12");
  });
});
