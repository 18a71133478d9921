import { sql } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../../db/client.js";
import type { Logger } from "../../lib/logger.js";
import { keyedValuesSchema } from "../attributes.js";
import { ValidationError } from "../errors.js";
import { normaliseIsoDate } from "../segments/conditions.js";
import { resolvePeople, type PersonRef } from "../segments/members.js";
import { evaluatePeople } from "../segments/realtime.js";

/** Events in one request (API.md). */
export const MAX_EVENTS_PER_REQUEST = 1000;
/** Event names Roster writes itself; a client sending them would forge membership history. */
const RESERVED_PREFIX = "segment.";

export const trackSchema = z
  .object({
    events: z
      .array(
        z
          .object({
            user: z.union([z.object({ email: z.string().min(1).max(320) }).strict(), z.object({ externalId: z.string().min(1).max(1000) }).strict()]),
            event: z.string().trim().min(1).max(200),
            occurredAt: z.string().max(40).optional(),
            properties: keyedValuesSchema("a property").optional(),
          })
          .strict(),
      )
      .min(1)
      .max(MAX_EVENTS_PER_REQUEST),
  })
  .strict();
export type TrackInput = z.infer<typeof trackSchema>;

/**
 * Records events for known people (by email or externalId), set-based, then re-evaluates those people's dynamic
 * segments at once. Events naming no one are reported by index, not stored: people are created by identify or
 * imports, never as a side effect of tracking.
 */
export async function trackEvents(db: Db, workspaceId: string, input: TrackInput, log: Pick<Logger, "info" | "warn">) {
  const problems: { field: string; reason: string }[] = [];
  const occurred = input.events.map((e, i) => {
    if (e.event.startsWith(RESERVED_PREFIX)) problems.push({ field: `events.${i}.event`, reason: `names starting with "${RESERVED_PREFIX}" are reserved` });
    if (e.occurredAt === undefined) return null;
    const iso = normaliseIsoDate(e.occurredAt);
    if (!iso) problems.push({ field: `events.${i}.occurredAt`, reason: "must be an ISO-8601 date-time" });
    return iso;
  });
  if (problems.length) throw new ValidationError("invalid_events", "Some events are invalid; nothing was recorded.", { problems });

  const refs: PersonRef[] = input.events.map((e) => e.user);
  const { each } = await resolvePeople(db, workspaceId, refs);
  const rows: { person_id: number; name: string; occurred_at: string | null; properties: Record<string, unknown> }[] = [];
  const rejected: { index: number; code: string; message: string }[] = [];
  input.events.forEach((e, i) => {
    const personId = each[i];
    if (personId === undefined) rejected.push({ index: i, code: "unknown_user", message: "No user of this workspace has that email or externalId." });
    else rows.push({ person_id: personId, name: e.event, occurred_at: occurred[i] ?? null, properties: e.properties ?? {} });
  });

  if (rows.length) {
    const json = JSON.stringify(rows);
    await db.transaction(async (tx) => {
      await tx.execute(sql`
        insert into events (workspace_id, person_id, name, occurred_at, properties)
        select ${workspaceId}::uuid, r.person_id, r.name, coalesce(r.occurred_at, now()), coalesce(r.properties, '{}'::jsonb)
        from jsonb_to_recordset(${json}::jsonb) as r(person_id bigint, name text, occurred_at timestamptz, properties jsonb)`);
      // Tracking means the person was seen, at the latest event time that is not in the future.
      await tx.execute(sql`
        update people p set last_seen_at = greatest(p.last_seen_at, s.seen)
        from (select r.person_id, least(max(coalesce(r.occurred_at, now())), now()) as seen
              from jsonb_to_recordset(${json}::jsonb) as r(person_id bigint, occurred_at timestamptz) group by r.person_id) s
        where p.id = s.person_id and p.workspace_id = ${workspaceId}::uuid`);
    });
  }
  const people = [...new Set(rows.map((r) => r.person_id))];
  const changes = await evaluatePeople(db, workspaceId, people, log);
  return {
    accepted: rows.length,
    rejected,
    segments: { entered: changes.entered, left: changes.left },
  };
}
