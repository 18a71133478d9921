import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, errorReport, importAndWait, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { waitForComputed, waitForSegment } from "../helpers/segments.js";

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

async function segmentNamed(name: string): Promise<{ id: string }> {
  const list = await client.request("GET", "/v1/segments?limit=1000");
  const seg = list.json.data.find((s: { name: string }) => s.name === name);
  if (!seg) throw new Error(`no segment ${name}`);
  return seg;
}

/** A segment's members as [email, value], by email. */
async function membersOf(segmentId: string): Promise<[string, string | null][]> {
  const res = await client.request("GET", `/v1/segments/${segmentId}/members?limit=1000`);
  if (res.status !== 200) throw new Error(`members: ${res.status} ${res.body}`);
  return res.json.data.map((m: { email: string; value: string | null }) => [m.email, m.value] as [string, string | null]).sort((a: [string], b: [string]) => a[0].localeCompare(b[0]));
}

const addMembers = (segmentId: string, emails: string[]) =>
  client.request("POST", `/v1/segments/${segmentId}/members`, { payload: { users: emails.map((email) => ({ email })) } });

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

  it("removes the static-segment joins a segment column made and puts back a value it changed", async () => {
    const mapping = { email: "email", seg: "segment", val: "segment_value" };
    // Before: Ana is a VIP with "gold", Dan with "x"; Bea exists and is no member.
    const before = await importAndWait(client, "email,seg,val\nana@seg.test,VIP,gold\ndan@seg.test,VIP,x\nbea@seg.test,,\n", { mapping });
    expect(before.counts).toMatchObject({ created: 3 });
    const vip = await segmentNamed("VIP");
    // Batches of 2: Bea's second row (a later batch) changes the value her first row set.
    const csv = ["email,seg,val", "ana@seg.test,VIP,platinum", "bea@seg.test,VIP,silver", "cal@seg.test,VIP,bronze", "dan@seg.test,VIP,x", "bea@seg.test,VIP,tin"].join("\n");
    const done = await importAndWait(client, csv, { mapping });
    expect(done.counts).toMatchObject({ created: 1, updated: 2, unchanged: 1 });
    expect(await membersOf(vip.id)).toEqual([["ana@seg.test", "platinum"], ["bea@seg.test", "tin"], ["cal@seg.test", "bronze"], ["dan@seg.test", "x"]]);
    await waitForSegment(client, vip.id, (s) => s.memberCount === 4, 10_000);
    // Recorded: what the joins of people it did not create replaced (first change), and what the import left (last).
    const recorded = await t.ctx.db.$client`
      select p.email, j.row::int, j.was_member, j.before_value, j.after_value from import_segment_joins j join people p on p.id = j.person_id
      where j.import_id = ${done.id}::uuid order by p.email`;
    expect(recorded.map((r) => [r.email, r.row, r.was_member, r.before_value, r.after_value])).toEqual([
      ["ana@seg.test", 1, true, "gold", "platinum"],
      ["bea@seg.test", 2, false, null, "tin"],
    ]);

    expect((await client.request("POST", `/v1/imports/${done.id}/undo`)).status).toBe(202);
    const undone = await waitForUndone(done.id);
    expect(undone.status, String(undone.failureReason)).toBe("undone");
    // Cal (created) is erased; Ana and Bea are put back; Dan, whom the import left as he was, keeps his membership.
    expect(undone.undo).toEqual({ deleted: 1, restored: 2, kept: 0 });
    expect(await membersOf(vip.id)).toEqual([["ana@seg.test", "gold"], ["dan@seg.test", "x"]]);
    await waitForSegment(client, vip.id, (s) => s.memberCount === 2, 10_000);
    const [left] = await t.ctx.db.$client`select count(*)::int as n from import_segment_joins where import_id = ${done.id}::uuid`;
    expect(left?.n).toBe(0);
  });

  it("removes createSegment joins, keeps a member from before, and keeps a person or membership changed since", async () => {
    for (const email of ["eve@fair.test", "fay@fair.test", "hal@fair.test", "jon@fair.test", "kim@fair.test"]) {
      expect((await identify({ email })).status).toBeLessThan(300);
    }
    const created = await client.request("POST", "/v1/segments", { payload: { name: "Spring fair", type: "static" } });
    expect(created.status).toBe(201);
    const fair = created.json;
    expect((await addMembers(fair.id, ["hal@fair.test"])).status).toBe(200);

    // Eve, Hal, Jon and Kim are unchanged by the import; Fay gets a name; Gus is new. All six end up in the segment.
    const csv = ["email,first_name", "eve@fair.test,", "fay@fair.test,Fay", "gus@fair.test,Gus", "hal@fair.test,", "jon@fair.test,", "kim@fair.test,"].join("\n");
    const done = await importAndWait(client, csv, { mapping: { email: "email", first_name: "first_name" }, options: { createSegment: { name: "Spring fair" } } });
    expect(done.counts).toMatchObject({ created: 1, updated: 1, unchanged: 4 });
    expect(done.segmentIds).toEqual([fair.id]);
    expect(await membersOf(fair.id)).toEqual(["eve", "fay", "gus", "hal", "jon", "kim"].map((n) => [`${n}@fair.test`, null]));

    // Jon leaves the segment and joins it again after the import: his membership is no longer the import's.
    expect((await client.request("DELETE", `/v1/segments/${fair.id}/members`, { payload: { users: [{ email: "jon@fair.test" }] } })).status).toBe(200);
    expect((await addMembers(fair.id, ["jon@fair.test"])).status).toBe(200);
    // Kim changes after the import: a person changed since is kept whole, her membership included.
    expect((await identify({ email: "kim@fair.test", firstName: "Kim" })).status).toBeLessThan(300);

    expect((await client.request("POST", `/v1/imports/${done.id}/undo`)).status).toBe(202);
    const undone = await waitForUndone(done.id);
    expect(undone.status, String(undone.failureReason)).toBe("undone");
    // Gus is erased; Fay (her name and her join) and Eve (her join) are put back; Jon and Kim are kept as they are now.
    expect(undone.undo).toEqual({ deleted: 1, restored: 2, kept: 2 });
    expect(await membersOf(fair.id)).toEqual([["hal@fair.test", null], ["jon@fair.test", null], ["kim@fair.test", null]]);
    await waitForSegment(client, fair.id, (s) => s.memberCount === 3, 10_000);
    expect((await person("fay@fair.test"))?.first_name).toBeNull();
    const kept = (await errorReport(client, done.id)).filter((e) => e.code === "changed_since_import");
    expect(kept.map((e) => e.row).sort()).toEqual(["5", "6"]);
  });

  it("a dry run records no before-images and no segment joins", async () => {
    expect((await identify({ email: "dry@seg.test", firstName: "Dry" })).status).toBeLessThan(300);
    const csv = "email,first_name,seg,val\ndry@seg.test,Wet,Dry VIP,1\n";
    const draft = await pasteImport(client, csv, {
      identifier: "email",
      mapping: { email: "email", first_name: "first_name", seg: "segment", val: "segment_value" },
      options: { createSegment: { name: "Dry fair" } },
    });
    expect(draft.status).toBe(201);
    expect((await client.request("POST", `/v1/imports/${draft.json.id}/validate`)).status).toBe(202);
    const validated = await waitForImport(client, draft.json.id);
    expect(validated).toMatchObject({ status: "validated", counts: { updated: 1 } });
    const [rec] = await t.ctx.db.$client`
      select (select count(*)::int from import_changes where import_id = ${draft.json.id}::uuid) as changes,
             (select count(*)::int from import_segment_joins where import_id = ${draft.json.id}::uuid) as joins,
             (select count(*)::int from segment_memberships m join people p on p.id = m.person_id where p.email = 'dry@seg.test') as memberships`;
    expect(rec).toEqual({ changes: 0, joins: 0, memberships: 0 });
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

  it("undoes a failed import: exactly what its committed batches wrote", async () => {
    expect((await identify({ email: "f-old@undo.test", firstName: "Before" })).status).toBeLessThan(300);
    // Past the first 64 KiB (an unclosed quote there is refused at intake), so the run fails after committing batches.
    const pad = "p".repeat(25_000);
    const rows = ["f-old@undo.test,After", "f1@undo.test,F1", "f2@undo.test,F2", "f3@undo.test,F3"].map((r) => `${r},${pad}`);
    const csv = ["email,first_name,pad", ...rows, 'f-late@undo.test,"Unclosed,x', "f-after@undo.test,Z,x"].join("\n") + "\n";
    const failed = await importAndWait(client, csv, { mapping: { email: "email", first_name: "first_name", pad: "ignore" } });
    expect(failed.status, String(failed.failureReason)).toBe("failed");
    expect(failed.counts).toMatchObject({ created: 3, updated: 1 });
    expect((await client.request("POST", `/v1/imports/${failed.id}/undo`)).status).toBe(202);
    const undone = await waitForUndone(failed.id);
    expect(undone.status, String(undone.failureReason)).toBe("undone");
    expect(undone.undo).toEqual({ deleted: 3, restored: 1, kept: 0 });
    for (const e of ["f1@undo.test", "f2@undo.test", "f3@undo.test"]) expect(await person(e)).toBeNull();
    expect((await person("f-old@undo.test"))?.first_name).toBe("Before");
  });

  it("undoes an import cancelled mid-run (409 not_undoable while it runs): exactly the batches it committed", async () => {
    expect((await identify({ email: "c-old@undo.test", firstName: "Before" })).status).toBeLessThan(300);
    const rows = Array.from({ length: 1500 }, (_, i) => `c${i}@undo.test,C${i}`);
    const created = await pasteImport(client, ["email,first_name", "c-old@undo.test,After", ...rows].join("\n") + "\n", { identifier: "email", start: true });
    expect(created.status).toBe(201);
    const id = created.json.id;
    // Queued or processing: not undoable yet.
    const early = await client.request("POST", `/v1/imports/${id}/undo`);
    expect(early.status).toBe(409);
    expect(early.json.error.code).toBe("not_undoable");
    for (let i = 0; i < 1000; i++) {
      const cur = (await client.request("GET", `/v1/imports/${id}`)).json;
      if (cur.counts.processed > 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const running = await client.request("POST", `/v1/imports/${id}/undo`);
    expect(running.status).toBe(409);
    expect(running.json.error.code).toBe("not_undoable");
    expect((await client.request("POST", `/v1/imports/${id}/cancel`)).status).toBe(202);
    const cancelled = await waitForImport(client, id);
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.counts.processed).toBeLessThan(1501);
    expect(cancelled.counts.updated).toBe(1);
    const [n] = await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${client.workspaceId}::uuid and created_import_id = ${id}::uuid`;
    expect(n!.n).toBe(cancelled.counts.created);

    expect((await client.request("POST", `/v1/imports/${id}/undo`)).status).toBe(202);
    const undone = await waitForUndone(id);
    expect(undone.status, String(undone.failureReason)).toBe("undone");
    expect(undone.undo).toEqual({ deleted: cancelled.counts.created, restored: 1, kept: 0 });
    const [left] = await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${client.workspaceId}::uuid and email like 'c%@undo.test' and email <> 'c-old@undo.test'`;
    expect(left!.n).toBe(0);
    expect((await person("c-old@undo.test"))?.first_name).toBe("Before");
  });

  it("answers 409 not_undoable for a validated import (a dry run wrote nothing)", async () => {
    const draft = await pasteImport(client, "email\nv@undo.test\n", { identifier: "email" });
    expect((await client.request("POST", `/v1/imports/${draft.json.id}/validate`)).status).toBe(202);
    expect((await waitForImport(client, draft.json.id)).status).toBe("validated");
    const res = await client.request("POST", `/v1/imports/${draft.json.id}/undo`);
    expect(res.status).toBe(409);
    expect(res.json.error.code).toBe("not_undoable");
  });

  it("answers 422 not_undoable_kind for an events import, saying why", async () => {
    const events = await pasteImport(client, "email,event\nev@undo.test,Signed Up\n", { kind: "events", identifier: "email", options: { createMissingPeople: true } });
    expect(events.status).toBe(201);
    expect((await client.request("POST", `/v1/imports/${events.json.id}/start`)).status).toBe(202);
    expect((await waitForImport(client, events.json.id)).status).toBe("done");
    const res = await client.request("POST", `/v1/imports/${events.json.id}/undo`);
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("not_undoable_kind");
    expect(res.json.error.message).toMatch(/events import/);
  });

  it("keeps a person a later import changed: kept, with changed_since_import in the errors CSV", async () => {
    const first = await importAndWait(client, "email,first_name\nk1@undo.test,K1\nk2@undo.test,K2\n");
    expect(first.counts).toMatchObject({ created: 2 });
    const later = await importAndWait(client, "email,first_name\nk2@undo.test,Changed\n");
    expect(later.counts).toMatchObject({ updated: 1 });
    expect((await client.request("POST", `/v1/imports/${first.id}/undo`)).status).toBe(202);
    const undone = await waitForUndone(first.id);
    expect(undone.undo).toEqual({ deleted: 1, restored: 0, kept: 1 });
    expect(await person("k1@undo.test")).toBeNull();
    expect((await person("k2@undo.test"))?.first_name).toBe("Changed");
    const kept = (await errorReport(client, first.id)).filter((e) => e.code === "changed_since_import");
    expect(kept.map((e) => e.row)).toEqual(["2"]);
  });

  it("keeps people who since got events or a static-segment membership through the API (their row unchanged); dynamic segments they entered do not count", async () => {
    const dynamic = await client.request("POST", "/v1/segments", { payload: { name: "Undo pros", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "undo-pro" } } });
    expect(dynamic.status).toBe(201);
    await waitForComputed(client, dynamic.json.id);
    const stat = await client.request("POST", "/v1/segments", { payload: { name: "Undo hand-picked", type: "static" } });
    expect(stat.status).toBe(201);
    const done = await importAndWait(client, "email,plan\nt-event@undo.test,undo-pro\nt-member@undo.test,undo-pro\nt-none@undo.test,undo-pro\n");
    expect(done.counts).toMatchObject({ created: 3 });
    // Wait until the dynamic segment holds them (its recompute after the import writes memberships and events).
    for (let i = 0; i < 200 && (await membersOf(dynamic.json.id)).length < 3; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await membersOf(dynamic.json.id)).toHaveLength(3);
    // An event dated in the past: last_seen_at does not move past the import's end, the event's row does.
    const tracked = await client.request("POST", "/v1/events", { payload: { events: [{ user: { email: "t-event@undo.test" }, event: "Paid", occurredAt: "2020-01-01T00:00:00Z" }] } });
    expect(tracked.json.accepted).toBe(1);
    expect((await addMembers(stat.json.id, ["t-member@undo.test"])).status).toBe(200);
    const [touched] = await t.ctx.db.$client`
      select count(*)::int as n from people where workspace_id = ${client.workspaceId}::uuid and created_import_id = ${done.id}::uuid
        and updated_at > (select finished_at from imports where id = ${done.id}::uuid)`;
    expect(touched!.n).toBe(0);

    expect((await client.request("POST", `/v1/imports/${done.id}/undo`)).status).toBe(202);
    const undone = await waitForUndone(done.id);
    expect(undone.undo).toEqual({ deleted: 1, restored: 0, kept: 2 });
    expect(await person("t-none@undo.test")).toBeNull();
    expect(await person("t-event@undo.test")).not.toBeNull();
    expect(await person("t-member@undo.test")).not.toBeNull();
    const [events] = await t.ctx.db.$client`
      select count(*)::int as n from events e join people p on p.id = e.person_id where p.email = 't-event@undo.test' and e.name = 'Paid'`;
    expect(events!.n).toBe(1);
    expect(await membersOf(stat.json.id)).toEqual([["t-member@undo.test", null]]);
    const kept = (await errorReport(client, done.id)).filter((e) => e.code === "changed_since_import");
    expect(kept.map((e) => e.row).sort()).toEqual(["1", "2"]);
  });

  it("restores only labels that still exist: a label deleted since the import is not put back", async () => {
    expect((await identify({ email: "lab@undo.test", labels: ["Undo keep", "Undo doomed"] })).status).toBeLessThan(300);
    const labelIds = async () => {
      const [row] = await t.ctx.db.$client`select label_ids::text[] as ids from people where workspace_id = ${client.workspaceId}::uuid and email = 'lab@undo.test'`;
      return (row!.ids as string[]).map(String);
    };
    const list = (await client.request("GET", "/v1/labels?limit=1000")).json.data as { id: string; name: string }[];
    const keep = list.find((l) => l.name === "Undo keep")!.id;
    const doomed = list.find((l) => l.name === "Undo doomed")!.id;
    expect((await labelIds()).sort()).toEqual([keep, doomed].sort());
    const done = await importAndWait(client, "email,labels\nlab@undo.test,Undo new\n", { options: { labels: "replace" } });
    expect(done.counts).toMatchObject({ updated: 1 });
    // The person no longer holds the label, so deleting it leaves them untouched.
    expect((await client.request("DELETE", `/v1/labels/${doomed}`)).status).toBe(204);

    expect((await client.request("POST", `/v1/imports/${done.id}/undo`)).status).toBe(202);
    const undone = await waitForUndone(done.id);
    expect(undone.undo).toEqual({ deleted: 0, restored: 1, kept: 0 });
    expect(await labelIds()).toEqual([keep]);
  });

  it("answers 404 for another workspace's import", async () => {
    const other = await createClient(t.ctx, client.app, "Other");
    const draft = await pasteImport(client, "email\ny@undo.test\n", { identifier: "email" });
    expect((await other.request("POST", `/v1/imports/${draft.json.id}/undo`)).status).toBe(404);
  });
});
