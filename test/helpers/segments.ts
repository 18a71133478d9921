 
import { emailKey } from "../../src/domain/people/email.js";
import type { Client } from "./api.js";
import type { TestContext } from "./context.js";

/** Inserts a person straight into the table (fixture data); returns the id as the API shows it. */
export async function insertPerson(ctx: TestContext, workspaceId: string, fields: { email?: string; externalId?: string; attributes?: Record<string, unknown> }): Promise<string> {
  const q = ctx.db.$client;
  const [row] = await q`
    insert into people (workspace_id, email, email_key, external_id, attributes)
    values (${workspaceId}, ${fields.email ?? null}, ${fields.email === undefined ? null : emailKey(fields.email)}, ${fields.externalId ?? null}, ${JSON.stringify(fields.attributes ?? {})}::jsonb)
    returning id::text as id`;
  return row!.id as string;
}

export async function setAttributes(ctx: TestContext, personId: string, attributes: Record<string, unknown>): Promise<void> {
  await ctx.db.$client`update people set attributes = attributes || ${JSON.stringify(attributes)}::jsonb, updated_at = now() where id = ${personId}`;
}

/** Polls a segment until `done(segment)` holds. */
export async function waitForSegment(client: Client, id: string, done: (s: any) => boolean, timeoutMs = 30_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await client.request("GET", `/v1/segments/${id}`);
    if (res.status !== 200) throw new Error(`GET segment ${id}: ${res.status} ${res.body}`);
    if (done(res.json)) return res.json;
    if (Date.now() > until) throw new Error(`segment ${id} did not reach the expected state: ${res.body}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits for a recompute that finished after `since` (an ISO time or null for the first one). */
export function waitForComputed(client: Client, id: string, since: string | null = null) {
  return waitForSegment(client, id, (s) => s.status === "ready" && s.lastComputedAt !== null && (since === null || s.lastComputedAt > since));
}

/** The segment membership events of a segment, oldest first, as "name:personId". */
export async function membershipEvents(ctx: TestContext, segmentId: string): Promise<string[]> {
  const rows = await ctx.db.$client`
    select name, person_id::text as person_id from events
    where name in ('segment.entered', 'segment.left') and properties->>'segmentId' = ${segmentId}
    order by id`;
  return rows.map((r) => `${r.name}:${r.person_id}`);
}

/** Member ids of a segment through the API (all pages). */
export async function memberIds(client: Client, segmentId: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const res = await client.request("GET", `/v1/segments/${segmentId}/members?limit=1000${cursor ? `&cursor=${cursor}` : ""}`);
    if (res.status !== 200) throw new Error(`members: ${res.status} ${res.body}`);
    ids.push(...res.json.data.map((u: any) => u.id));
    cursor = res.json.nextCursor;
  } while (cursor);
  return ids.sort();
}
