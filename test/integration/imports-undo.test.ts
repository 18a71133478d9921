import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, errorReport, importAndWait, pasteImport, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";

// Batches of 2, so the undo works through several batches of each kind.
const t = useTestContext({ DELETION_BATCH_SIZE: "2", IMPORT_BATCH_SIZE: "2" });
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

async function waitForUndone(id: string, timeoutMs = 30_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await client.request("GET", `/v1/imports/${id}`);
    if (res.status !== 200) throw new Error(`GET import: ${res.status} ${res.body}`);
    if (res.json.status !== "undoing") return res.json;
    if (Date.now() > until) throw new Error(`import ${id} still undoing`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function person(email: string) {
  const [row] = await t.ctx.db.$client`
    select p.first_name, p.attributes, array(select l.name from labels l where l.id = any(p.label_ids) order by l.name) as labels
    from people p where p.workspace_id = ${client.workspaceId}::uuid and p.email = ${email}`;
  return row ?? null;
}

describe("POST /v1/imports/:id/undo", () => {
  it("erases the people the import created, restores the ones it changed, keeps the ones changed since", async () => {
    expect((await identify({ email: "uno@undo.test", attributes: { plan: "free" }, labels: ["Old"] })).status).toBeLessThan(300);
    expect((await identify({ email: "dos@undo.test", attributes: { plan: "free" }, labels: ["Old"] })).status).toBeLessThan(300);
    const csv = [
      "email,first_name,plan,labels",
      "n1@undo.test,N1,pro,New",
      "n2@undo.test,N2,pro,",
      "n3@undo.test,N3,pro,",
      "uno@undo.test,Uno,pro,New",
      "dos@undo.test,Dos,pro,New",
    ].join("\n");
    const done = await importAndWait(client, csv);
    expect(done.status).toBe("done");
    expect(done.counts).toMatchObject({ created: 3, updated: 2 });
    expect(done.undo).toBeNull();
    const [changes] = await t.ctx.db.$client`select count(*)::int as n from import_changes where import_id = ${done.id}::uuid`;
    expect(changes?.n).toBe(2);

    // Dos changes again after the import.
    expect((await identify({ email: "dos@undo.test", firstName: "Dora" })).status).toBeLessThan(300);

    const res = await client.request("POST", `/v1/imports/${done.id}/undo`);
    expect(res.status).toBe(202);
    expect(res.json.status).toBe("undoing");
    const undone = await waitForUndone(done.id);
    expect(undone.status).toBe("undone");
    expect(undone.undo).toEqual({ deleted: 3, restored: 1, kept: 1 });

    for (const e of ["n1@undo.test", "n2@undo.test", "n3@undo.test"]) expect(await person(e)).toBeNull();
    expect(await person("uno@undo.test")).toEqual({ first_name: null, attributes: { plan: "free" }, labels: ["Old"] });
    expect(await person("dos@undo.test")).toEqual({ first_name: "Dora", attributes: { plan: "pro" }, labels: ["New", "Old"] });

    const errors = await errorReport(client, done.id);
    const kept = errors.filter((e) => e.code === "changed_since_import");
    expect(kept).toHaveLength(1);
    expect(kept[0]!.row).toBe("5");
    const [left] = await t.ctx.db.$client`select count(*)::int as n from import_changes where import_id = ${done.id}::uuid`;
    expect(left?.n).toBe(0);

    const again = await client.request("POST", `/v1/imports/${done.id}/undo`);
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe("not_undoable");
  });

  it("keeps a person whose earlier email someone else has taken since, says why, and still ends undone", async () => {
    expect((await identify({ externalId: "swap-1", email: "before@swap.test" })).status).toBeLessThan(300);
    const done = await importAndWait(client, "external_id,email\nswap-1,after@swap.test\n", { identifier: "external_id" });
    expect(done.counts).toMatchObject({ updated: 1 });
    // The address the import moved away from is free again, and another person takes it.
    expect((await identify({ externalId: "swap-2", email: "before@swap.test" })).status).toBe(201);

    expect((await client.request("POST", `/v1/imports/${done.id}/undo`)).status).toBe(202);
    const undone = await waitForUndone(done.id);
    expect(undone.status, String(undone.failureReason)).toBe("undone");
    expect(undone.undo).toEqual({ deleted: 0, restored: 0, kept: 1 });
    const owners = await t.ctx.db.$client`select external_id, email from people where workspace_id = ${client.workspaceId}::uuid and external_id like 'swap-%' order by external_id`;
    expect(owners.map((r) => [r.external_id, r.email])).toEqual([["swap-1", "after@swap.test"], ["swap-2", "before@swap.test"]]);
    const errors = await errorReport(client, done.id);
    expect(errors.filter((e) => e.code === "restore_conflict")).toHaveLength(1);
  });

  it("answers 409 not_undoable for a draft", async () => {
    const draft = await pasteImport(client, "email\nz@undo.test\n", { identifier: "email" });
    expect(draft.status).toBe(201);
    const res = await client.request("POST", `/v1/imports/${draft.json.id}/undo`);
    expect(res.status).toBe(409);
    expect(res.json.error.code).toBe("not_undoable");
  });

  it("answers 422 not_undoable_kind for a members import, saying why", async () => {
    const members = await pasteImport(client, "email,first_name\nm@undo.test,Mo\n", { kind: "members", identifier: "email" });
    expect(members.status).toBe(201);
    const res = await client.request("POST", `/v1/imports/${members.json.id}/undo`);
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("not_undoable_kind");
    expect(res.json.error.message).toMatch(/team-member import/);
  });

  it("answers 404 for another workspace's import", async () => {
    const other = await createClient(t.ctx, client.app, "Other");
    const draft = await pasteImport(client, "email\ny@undo.test\n", { identifier: "email" });
    expect((await other.request("POST", `/v1/imports/${draft.json.id}/undo`)).status).toBe(404);
  });
});
