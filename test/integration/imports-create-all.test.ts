import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReservedSql } from "postgres";
import { createClient, pasteImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { CONTACT_STAGE_TABLE } from "../../src/domain/imports/contacts/batch.js";
import { contactsHandler } from "../../src/domain/imports/contacts/handler.js";
import type { BatchContext, BatchResult, RowHandler } from "../../src/domain/imports/handler.js";
import { importOptionsSchema } from "../../src/domain/imports/mapping.js";
import type { ContactRow } from "../../src/domain/imports/contacts/validate.js";

// A batch of people nobody has yet is inserted without the resolve pass (createAll, contacts/batch.ts); a batch where
// one of them exists after all falls back to it. Each batch here is written as a run writes it, in its own
// transaction on one reserved connection; the staging table (emptied at commit) tells which way it went.
const t = useTestContext();
const headers = ["email", "first_name", "external_id", "labels"];
const mapping = { email: "email", first_name: "first_name", external_id: "external_id", labels: "labels" } as const;

let client: Client;
let conn: ReservedSql;
let ctx: BatchContext;
let handler: RowHandler<ContactRow>;
let nextRow = 1;

beforeAll(async () => {
  client = await createClient(t.ctx, undefined, "CreateAll");
  const draft = await pasteImport(client, "email\nx@x.io", { identifier: "email" });
  expect(draft.status).toBe(201);
  ctx = {
    workspaceId: client.workspaceId,
    importId: draft.json.id,
    identifier: "email",
    options: importOptionsSchema.parse({}),
    headerOf: { email: "email", first_name: "first_name", external_id: "external_id", labels: "labels" },
    createdSegmentId: null,
    dryRun: false,
  };
  handler = contactsHandler(ctx, headers, mapping) as RowHandler<ContactRow>;
  conn = await t.ctx.db.$client.reserve();
  await handler.ensureStage(conn);
});
afterAll(async () => {
  conn?.release();
  await client?.app.close();
});

/** Writes one batch of records (numbered on from the last batch's) and commits it; `staged`: its rows in the staging table. */
async function batch(records: string[][]): Promise<BatchResult & { staged: number }> {
  const rows = records.map((record) => {
    const res = handler.validate(record, nextRow++, record.join(","));
    if (!res.ok) throw new Error(JSON.stringify(res.errors));
    return res.staged;
  });
  await conn.unsafe("begin");
  try {
    const result = await handler.writeBatch(conn, { staged: rows });
    const [stage] = await conn.unsafe(`select count(*)::int as n from ${CONTACT_STAGE_TABLE}`);
    await conn.unsafe("commit");
    return { ...result, staged: Number(stage!.n) };
  } catch (err) {
    await conn.unsafe("rollback");
    throw err;
  }
}

describe("a batch of new people after a batch that created everyone (createAll)", () => {
  it("is inserted without the resolve pass, with its events, labels and provenance; a batch meeting a person that exists takes the resolve pass", async () => {
    // The run's first batch takes the resolve pass.
    const first = await batch([
      ["a@x.io", "Ann", "A-1", "VIP"],
      ["b@x.io", "Bob", "", ""],
    ]);
    expect(first.counts).toMatchObject({ created: 2, updated: 0, failed: 0 });
    expect(first.staged).toBe(2);

    // Everyone was created: the next batch goes straight in.
    const second = await batch([
      ["c@x.io", "Cid", "C-1", "VIP:Trial"],
      ["d@x.io", "", "", ""],
    ]);
    expect(second).toMatchObject({ counts: { created: 2, updated: 0, unchanged: 0, skipped: 0, failed: 0 }, errors: [], superseded: [], staged: 0 });

    // b@x.io (row 2) exists: the insert fails, the batch takes the resolve pass, and b's earlier row is superseded.
    const third = await batch([
      ["e@x.io", "Eve", "", ""],
      ["b@x.io", "Bobby", "", ""],
    ]);
    expect(third.staged).toBe(2);
    expect(third.counts).toMatchObject({ created: 2, failed: 0 });
    expect(third.superseded).toEqual([{ row: 2, outcome: "created", key: "b@x.io" }]);

    // A batch that repeated an earlier row's person is not followed by an insert straight away...
    const fourth = await batch([["f@x.io", "Fay", "", ""]]);
    expect(fourth.staged).toBe(1);
    // ...but after one that created everyone, again.
    const fifth = await batch([["g@x.io", "Gus", "G-1", ""]]);
    expect(fifth.staged).toBe(0);

    // h@x.io is new, but its external id is c@x.io's: the insert fails, and the resolve pass fails that row alone.
    const sixth = await batch([
      ["h@x.io", "Hal", "C-1", ""],
      ["i@x.io", "Ida", "", ""],
    ]);
    expect(sixth.staged).toBe(2);
    expect(sixth.counts).toMatchObject({ created: 1, failed: 1 });
    expect(sixth.errors).toMatchObject([{ row: 9, code: "conflict", column: "external_id", value: "C-1" }]);

    const people = await t.ctx.db.$client.unsafe(
      `select p.email_key, p.first_name, p.external_id, p.created_import_row::int as row,
         array(select l.name from labels l where l.id = any(p.label_ids) order by l.name) as labels
       from people p where p.workspace_id = $1 order by p.email_key`,
      [client.workspaceId],
    );
    expect(people.map((p) => [p.email_key, p.first_name, p.external_id, p.row, p.labels])).toEqual([
      ["a@x.io", "Ann", "A-1", 1, ["VIP"]],
      ["b@x.io", "Bobby", null, 2, []],
      ["c@x.io", "Cid", "C-1", 3, ["Trial", "VIP"]],
      ["d@x.io", null, null, 4, []],
      ["e@x.io", "Eve", null, 5, []],
      ["f@x.io", "Fay", null, 7, []],
      ["g@x.io", "Gus", "G-1", 8, []],
      ["i@x.io", "Ida", null, 10, []],
    ]);
    // One person.created event per person, naming what its own row set; b's second row is its update.
    const events = await t.ctx.db.$client.unsafe(
      `select p.email_key, e.name, e.properties from events e join people p on p.id = e.person_id where e.import_id = $1 order by e.id`,
      [ctx.importId],
    );
    expect(events.map((e) => [e.email_key, e.name, e.properties])).toEqual([
      ["a@x.io", "person.created", { importId: ctx.importId, changed: ["email", "external_id", "first_name"] }],
      ["b@x.io", "person.created", { importId: ctx.importId, changed: ["email", "first_name"] }],
      ["c@x.io", "person.created", { importId: ctx.importId, changed: ["email", "external_id", "first_name"] }],
      ["d@x.io", "person.created", { importId: ctx.importId, changed: ["email"] }],
      ["e@x.io", "person.created", { importId: ctx.importId, changed: ["email", "first_name"] }],
      ["b@x.io", "person.updated", { importId: ctx.importId, changed: ["first_name"] }],
      ["f@x.io", "person.created", { importId: ctx.importId, changed: ["email", "first_name"] }],
      ["g@x.io", "person.created", { importId: ctx.importId, changed: ["email", "external_id", "first_name"] }],
      ["i@x.io", "person.created", { importId: ctx.importId, changed: ["email", "first_name"] }],
    ]);
  });
});
