import type { Db } from "../../db/client.js";
import type { AttributeType } from "../imports/mapping.js";
import { fitsSql } from "./fits.js";

/** Values a finished check shows that do not fit, lowest person id first: enough to see the pattern, small to store. */
export const CHECK_SAMPLE_SIZE = 20;

export type CheckOutcome = { skipped: string } | { checked: number; mismatched: number };

/**
 * Runs one check of stored values against a key's declared type and records it on the definition. Idempotent: it
 * reads the values as they are now and overwrites the result, so a retried or duplicated job gives the same answer;
 * a check a newer type change replaced (another check id) finds nothing and is skipped. One statement per check:
 * it reads the workspace's people once (as GET /v1/attributes does), bounded by the statement timeout.
 */
export async function runAttributeCheck(db: Db, ids: { workspaceId: string; checkId: string }): Promise<CheckOutcome> {
  const [def] = await db.$client<{ key: string; type: AttributeType }[]>`
    update attribute_definitions set check_status = 'running'
    where workspace_id = ${ids.workspaceId}::uuid and check_id = ${ids.checkId}::uuid and check_status in ('queued', 'running')
    returning key, type`;
  if (!def) return { skipped: "the check is finished or was replaced by a newer type change" };

  // fitsSql is SQL text built from constants only; the key and ids are bound parameters.
  const fits = fitsSql(def.type, "v.value");
  const [result] = await db.$client.unsafe<{ checked: number; mismatched: number; sample: { personId: string; value: unknown }[] | null }[]>(
    `with v as (
       select p.id, p.attributes -> $2::text as value
       from people p
       where p.workspace_id = $1::uuid and p.attributes ? $2::text and jsonb_typeof(p.attributes -> $2::text) <> 'null'
     ), bad as (select id, value from v where not ${fits})
     update attribute_definitions d set
       check_status = 'done',
       check_checked = (select count(*) from v),
       check_mismatched = (select count(*) from bad),
       check_sample = (select coalesce(jsonb_agg(jsonb_build_object('personId', s.id::text, 'value', s.value) order by s.id), '[]'::jsonb)
                       from (select id, value from bad order by id limit ${CHECK_SAMPLE_SIZE}) s),
       check_failure_reason = null,
       check_finished_at = now()
     where d.workspace_id = $1::uuid and d.check_id = $3::uuid
     returning d.check_checked::float8 as checked, d.check_mismatched::float8 as mismatched, d.check_sample as sample`,
    [ids.workspaceId, def.key, ids.checkId],
  );
  return result ? { checked: Number(result.checked), mismatched: Number(result.mismatched) } : { skipped: "the check was replaced" };
}

/** Records a check BullMQ gave up on (its retries are spent), so the attribute does not show it queued for ever. */
export async function failAttributeCheck(db: Db, ids: { workspaceId: string; checkId: string }, reason: string): Promise<void> {
  await db.$client`
    update attribute_definitions set check_status = 'failed', check_failure_reason = ${reason}, check_finished_at = now()
    where workspace_id = ${ids.workspaceId}::uuid and check_id = ${ids.checkId}::uuid and check_status in ('queued', 'running')`;
}
