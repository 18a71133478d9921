import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, errorReport, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

/**
 * Emails whose lower case JavaScript and PostgreSQL used to disagree on (README "Imports", emails): the final sigma
 * (`ΟΔΥΣΣΕΑΣ` lowers to `οδυσσεας` in JavaScript, `οδυσσεασ` in PostgreSQL) and the dotted capital I (`İ` lowers to
 * `i̇`, i + U+0307, in JavaScript and to a plain `i` in PostgreSQL under glibc). Every path matches on one key now.
 */
const t = useTestContext();
let client: Client;
let workers: WorkerPool;

beforeAll(async () => {
  workers = await startTestWorkers(t.ctx);
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

/** A fresh workspace per test, so each starts with no one. */
async function freshClient(): Promise<Client> {
  const app = client?.app;
  client = await createClient(t.ctx, app);
  return client;
}

const COUNTS0 = { created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0 };

async function people(c: Client) {
  const rows = await t.ctx.db.$client`select email, attributes from people where workspace_id = ${c.workspaceId} order by id`;
  return rows.map((r) => [r.email, r.attributes]);
}

async function contacts(c: Client, csv: string, mapping?: Record<string, string>) {
  return importAndWait(c, csv, mapping ? { mapping } : {});
}

const expectCounts = (done: { status: string; counts: Record<string, number> }, counts: Partial<typeof COUNTS0>) => {
  expect(done.status).toBe("done");
  expect(done.counts).toMatchObject({ ...COUNTS0, ...counts });
};

describe("contacts import", () => {
  it("the final-sigma repro imports twice: the second run finds both people unchanged", async () => {
    const c = await freshClient();
    const csv = "email,n\nr1@x.test,1\nΟΔΥΣΣΕΑΣ@x.test,y\n";
    const mapping = { email: "email", n: "attribute:n" };
    expectCounts(await contacts(c, csv, mapping), { created: 2 });
    const again = await contacts(c, csv, mapping);
    expectCounts(again, { unchanged: 2 });
    expect(await people(c)).toEqual([
      ["r1@x.test", { n: "1" }],
      ["ΟΔΥΣΣΕΑΣ@x.test", { n: "y" }],
    ]);
    // Lower-case spellings, with either sigma, are the same person.
    expectCounts(await contacts(c, "email,n\nοδυσσεας@x.test,z\nοδυσσεασ@X.TEST,w\n", mapping), { updated: 1, skipped: 1 });
    expect((await people(c)).length).toBe(2);
  });

  it("istanbul@ and İstanbul@ are two people, in one batch or two, and neither fails the batch", async () => {
    const c = await freshClient();
    const csv = "email\nistanbul@x.test\nİstanbul@x.test\n";
    expectCounts(await contacts(c, csv), { created: 2 });
    expectCounts(await contacts(c, csv), { unchanged: 2 });
    // İ lower-cases to i + U+0307 (combining dot above): typing that, or İSTANBUL, is the dotted one again.
    expectCounts(await contacts(c, "email\ni\u0307stanbul@x.test\nISTANBUL@x.test\n"), { updated: 2 });
    expect((await people(c)).map((p) => p[0])).toEqual(["ISTANBUL@x.test", "i\u0307stanbul@x.test"]);
  });

  it("the email as a non-identifier column is keyed the same way (conflicts and updates)", async () => {
    const c = await freshClient();
    expectCounts(await importAndWait(c, "external_id,email\nu1,ΟΔΥΣΣΕΑΣ@x.test\nu2,r2@x.test\n", { identifier: "external_id" }), { created: 2 });
    // u1 again with another spelling of its own email: no conflict with itself.
    // u2 taking u1's email, spelt with a final sigma: a conflict, found by the key, not by a unique violation.
    const done = await importAndWait(c, "external_id,email\nu1,οδυσσεας@x.test\nu2,Οδυσσεας@x.test\nu3,İstanbul@x.test\nu4,istanbul@x.test\n", { identifier: "external_id" });
    expectCounts(done, { updated: 1, created: 2, failed: 1 });
    expect((await errorReport(c, done.id)).map((e) => [e.row, e.code])).toEqual([["2", "conflict"]]);
  });

  it("composed and decomposed é are one person, and the email is stored composed (NFC)", async () => {
    const c = await freshClient();
    expectCounts(await contacts(c, "email\nre\u0301my@x.test\n"), { created: 1 });
    expect((await people(c)).map((p) => p[0])).toEqual(["r\u00e9my@x.test"]);
    expectCounts(await contacts(c, "email\nr\u00e9my@x.test\nre\u0301my@x.test\n"), { unchanged: 1, skipped: 1 });
    expectCounts(await contacts(c, "email\nRE\u0301MY@X.TEST\n"), { updated: 1 });
    expect((await people(c)).map((p) => p[0])).toEqual(["R\u00c9MY@X.TEST"]);
  });

  it("an IDN domain and its punycode are one person", async () => {
    const c = await freshClient();
    expectCounts(await contacts(c, "email\na@bücher.example\n"), { created: 1 });
    expectCounts(await contacts(c, "email\na@xn--bcher-kva.example\n"), { updated: 1 });
    expectCounts(await contacts(c, "email\na@XN--BCHER-KVA.example\nA@BÜCHER.EXAMPLE\n"), { updated: 1, skipped: 1 });
    expect((await people(c)).map((p) => p[0])).toEqual(["A@BÜCHER.EXAMPLE"]);
  });

  it("zero-width and other invisible characters make an email invalid; an apostrophe is only undone as exports add it", async () => {
    const c = await freshClient();
    const csv = ["email", "a\u200b@x.test", "b@x\u200d.test", "c\ufeff@x.test", "d\u00ad@x.test", "'@x.test", "''@x.test", "'e@x.test", "\ufefff@x.test"].join("\n");
    const done = await contacts(c, csv);
    expectCounts(done, { created: 3, failed: 5 });
    expect((await errorReport(c, done.id)).map((e) => [e.row, e.value, e.code])).toEqual([
      ["1", "a\u200b@x.test", "invalid_email"],
      ["2", "b@x\u200d.test", "invalid_email"],
      ["3", "c\ufeff@x.test", "invalid_email"],
      ["4", "d\u00ad@x.test", "invalid_email"],
      // The import takes back the apostrophe an export puts before a leading @: what is left has no local part.
      // (The report neutralises the value again for spreadsheets, so it reads '@x.test as the file did.)
      ["5", "'@x.test", "invalid_email"],
    ]);
    // ''@x.test is how an export writes the address '@x.test; 'e@x.test is an ordinary address (' is allowed).
    // A BOM at either end of the cell is trimmed with the whitespace.
    expect((await people(c)).map((p) => p[0])).toEqual(["'@x.test", "'e@x.test", "f@x.test"]);
  });
});

describe("members import", () => {
  it("a first import counts every member it inserts (it once counted 1 created for 2 inserted)", async () => {
    const c = await freshClient();
    // The insert was joined back to its rows on lower(email), which is not the key the rows carried: the Greek row
    // was inserted, matched no staged row, and was counted nowhere.
    expectCounts(await importAndWait(c, "email\nr1@x.test\nΟΔΥΣΣΕΑΣ@x.test\n", { kind: "members" }), { created: 2 });
    const [n] = await t.ctx.db.$client`select count(*)::int as n from team_members where workspace_id = ${c.workspaceId}`;
    expect(n!.n).toBe(2);
  });

  it("members imported twice with such emails: every insert counted, then all unchanged", async () => {
    const c = await freshClient();
    const csv = "email,first_name\nr1@x.test,R\nΟΔΥΣΣΕΑΣ@x.test,O\nistanbul@x.test,I\nİstanbul@x.test,J\n";
    expectCounts(await importAndWait(c, csv, { kind: "members" }), { created: 4 });
    expectCounts(await importAndWait(c, csv, { kind: "members" }), { unchanged: 4 });
    expectCounts(await importAndWait(c, "email,first_name\nοδυσσεας@x.test,Od\n", { kind: "members" }), { updated: 1 });
    const rows = await t.ctx.db.$client`select email, first_name from team_members where workspace_id = ${c.workspaceId} order by id`;
    expect(rows.map((r) => [r.email, r.first_name])).toEqual([
      ["r1@x.test", "R"],
      ["οδυσσεας@x.test", "Od"],
      ["istanbul@x.test", "I"],
      ["İstanbul@x.test", "J"],
    ]);
  });
});

describe("events import", () => {
  it("createMissingPeople makes one person per key, and a second run finds them", async () => {
    const c = await freshClient();
    const csv = "email,event\nΟΔΥΣΣΕΑΣ@x.test,A\nοδυσσεας@x.test,B\nİstanbul@x.test,C\nistanbul@x.test,D\n";
    const opts = { kind: "events", options: { createMissingPeople: true } };
    const first = await importAndWait(c, csv, opts);
    expect(first.failureReason ?? null, first.failureReason).toBeNull();
    expectCounts(first, { created: 4 });
    expect((await people(c)).map((p) => p[0]).sort()).toEqual(["istanbul@x.test", "οδυσσεας@x.test", "İstanbul@x.test"].sort());
    expectCounts(await importAndWait(c, csv, opts), { created: 4 });
    expect((await people(c)).length).toBe(3);
    const byPerson = await t.ctx.db.$client`
      select p.email, string_agg(e.name, '' order by e.name) as names from events e join people p on p.id = e.person_id
      where p.workspace_id = ${c.workspaceId} group by p.email order by p.email`;
    expect(byPerson.map((r) => r.names).sort()).toEqual(["AABB", "CC", "DD"]);
  });

  it("without createMissingPeople, the events find people imported with another spelling", async () => {
    const c = await freshClient();
    expectCounts(await contacts(c, "email\nΟΔΥΣΣΕΑΣ@x.test\n"), { created: 1 });
    expectCounts(await importAndWait(c, "email,event\nοδυσσεας@x.test,A\n", { kind: "events" }), { created: 1 });
  });
});

describe("identify and the API", () => {
  it("identify then import: the import updates the identified person", async () => {
    const c = await freshClient();
    const res = await c.request("POST", "/v1/users/identify", { payload: { email: "ΟΔΥΣΣΕΑΣ@x.test", firstName: "O" } });
    expect(res.status).toBe(201);
    expectCounts(await contacts(c, "email,first_name\nοδυσσεας@x.test,Od\n"), { updated: 1 });
    expect((await people(c)).length).toBe(1);
  });

  it("import then identify: identify finds the imported person; İ is not I", async () => {
    const c = await freshClient();
    expectCounts(await contacts(c, "email\nοδυσσεας@x.test\nİstanbul@x.test\n"), { created: 2 });
    const same = await c.request("POST", "/v1/users/identify", { payload: { email: "ΟΔΥΣΣΕΑΣ@X.TEST", firstName: "O" } });
    expect(same.status).toBe(200);
    const other = await c.request("POST", "/v1/users/identify", { payload: { email: "istanbul@x.test" } });
    expect(other.status).toBe(201);
    const invisible = await c.request("POST", "/v1/users/identify", { payload: { email: "a\u200b@x.test" } });
    expect(invisible.status).toBe(422);
    expect(invisible.json.error.code).toBe("invalid_email");
  });

  it("segment conditions on email (eq, neq, in, not_in) use the same key", async () => {
    const c = await freshClient();
    expectCounts(await contacts(c, "email\nΟΔΥΣΣΕΑΣ@x.test\nİstanbul@x.test\nre\u0301my@x.test\n"), { created: 3 });
    const count = async (conditions: object) => {
      const res = await c.request("POST", "/v1/segments/preview", { payload: { conditions } });
      expect(res.status).toBe(200);
      return res.json.count as number;
    };
    expect(await count({ field: "email", op: "eq", value: "οδυσσεας@x.test" })).toBe(1);
    expect(await count({ field: "email", op: "eq", value: "οδυσσεασ@x.test" })).toBe(1);
    expect(await count({ field: "email", op: "eq", value: "istanbul@x.test" })).toBe(0);
    expect(await count({ field: "email", op: "eq", value: "İSTANBUL@x.test" })).toBe(1);
    expect(await count({ field: "email", op: "eq", value: "r\u00e9my@x.test" })).toBe(1);
    expect(await count({ field: "email", op: "neq", value: "οδυσσεας@x.test" })).toBe(2);
    expect(await count({ field: "email", op: "in", value: ["οδυσσεας@x.test", "istanbul@x.test", "RÉMY@x.test"] })).toBe(2);
    expect(await count({ field: "email", op: "not_in", value: ["οδυσσεας@x.test"] })).toBe(2);
  });

  it("static segment members and tracked events by email use the same key", async () => {
    const c = await freshClient();
    expectCounts(await contacts(c, "email\nΟΔΥΣΣΕΑΣ@x.test\nİstanbul@x.test\n"), { created: 2 });
    const seg = await c.request("POST", "/v1/segments", { payload: { name: "S", type: "static" } });
    expect(seg.status).toBe(201);
    const added = await c.request("POST", `/v1/segments/${seg.json.id}/members`, {
      payload: { users: [{ email: "οδυσσεας@x.test" }, { email: "istanbul@x.test" }] },
    });
    expect(added.status).toBe(200);
    expect(added.json).toMatchObject({ added: 1, notFound: [{ email: "istanbul@x.test" }] });
    const tracked = await c.request("POST", "/v1/events", { payload: { events: [{ user: { email: "οδυσσεας@X.test" }, event: "E" }, { user: { email: "istanbul@x.test" }, event: "E" }] } });
    expect(tracked.json).toMatchObject({ accepted: 1, rejected: [{ index: 1, code: "unknown_user" }] });
  });
});
