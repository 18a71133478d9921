import type { ReservedSql } from "postgres";
import { copyRows } from "../copy.js";
import { readStageOutcome, type BatchContext, type BatchResult } from "../handler.js";
import { REDACTED } from "./redact.js";
import { MEMBER_TEXT_COLUMNS, type MemberRow } from "./validate.js";

/**
 * One batch of team members, written set-based inside the caller's transaction, like contacts: COPY into a temp
 * staging table (passwords only as hashes), match on the email key, insert new members in key order, update the
 * changed ones. Team members are not people: no person events, labels or segments.
 */

export const MEMBER_STAGE_TABLE = "import_stage_members";
const T = MEMBER_STAGE_TABLE;

const CREATE_STAGE = `
  create temp table if not exists ${T} (
    row bigint not null,
    key text not null,
    email text, first_name text, last_name text, active boolean, role text,
    password_hash text,
    password_redacted boolean not null default false,
    member_id bigint,
    prev_outcome text,
    outcome text,
    changed text[] not null default '{}',
    err_code text, err_column text, err_value text, err_message text
  ) on commit delete rows`;

/** Fields compared and written as they are; a null (empty cell) leaves the stored value. */
const FIELDS = ["email", "first_name", "last_name", "active", "role"] as const;
const ACTIVE = "s.outcome is null and s.err_code is null";
const REDACTED_PASSWORD_MESSAGE = `The password cell reads "${REDACTED}", as error reports show passwords: type the password again, or empty the cell to create the team member without one.`;

export async function ensureMemberStage(conn: ReservedSql): Promise<void> {
  await conn.unsafe(CREATE_STAGE);
}

export async function writeMemberBatch(conn: ReservedSql, ctx: BatchContext, rows: MemberRow[]): Promise<BatchResult> {
  const ws = ctx.workspaceId;
  const q = (text: string, params: unknown[] = []) => conn.unsafe(text, params as never[]);
  const emailHeader = ctx.headerOf.email ?? "email";
  const passwordHeader = ctx.headerOf.password ?? "password";

  await copyRows(
    conn,
    T,
    ["row", "key", ...MEMBER_TEXT_COLUMNS, "password_hash", "password_redacted"],
    rows.map((r) => [r.row, r.key, ...r.values, r.hash, String(r.passwordRedacted)]),
  );

  await q(`update ${T} s set member_id = m.id from team_members m where m.workspace_id = $1 and m.email_key = s.key`, [ws]);
  if (ctx.options.mode === "create_only") {
    await q(
      `update ${T} s set outcome = 'skipped', err_code = 'already_exists', err_column = $1, err_value = s.key,
         err_message = 'A team member with this email exists; create_only leaves them as they are.'
       where ${ACTIVE} and s.member_id is not null`,
      [emailHeader],
    );
  } else if (ctx.options.mode === "update_only") {
    await q(
      `update ${T} s set outcome = 'skipped', err_code = 'not_found', err_column = $1, err_value = s.key,
         err_message = 'No team member has this email; update_only creates no one.'
       where ${ACTIVE} and s.member_id is null`,
      [emailHeader],
    );
  }

  // "[redacted]" keeps an existing member's password (an empty cell does the same); a new member would be created
  // without the password the person meant to give, so the row fails and says how to fix it.
  await q(
    `update ${T} s set outcome = 'failed', err_code = 'password_redacted', err_column = $1, err_value = $2, err_message = $3
     where ${ACTIVE} and s.member_id is null and s.password_redacted`,
    [passwordHeader, REDACTED, REDACTED_PASSWORD_MESSAGE],
  );

  // Rows that repeat a member an earlier batch of this file already handled: this later row wins.
  // The ledger (import_people) holds team_members ids for a members import.
  const superseded = await q(
    `update ${T} s set prev_outcome = ip.outcome
     from import_people ip where ip.import_id = $1 and ip.person_id = s.member_id and ${ACTIVE}
     returning ip.row as row, ip.outcome as outcome, s.key as key`,
    [ctx.importId],
  );

  // Lock the existing members this batch touches, in id order, so concurrent imports cannot deadlock.
  await q(`select m.id from team_members m join ${T} s on s.member_id = m.id where ${ACTIVE} order by m.id for update of m`);

  // New members get their ids first, so no join back on what the insert returns is needed: joining back on
  // lower(email) (which the key was not) once left rows inserted but never counted.
  await q(
    `update ${T} s set member_id = nextval((select pg_get_serial_sequence('team_members', 'id')::regclass)), outcome = 'created'
     where ${ACTIVE} and s.member_id is null`,
  );
  await q(
    `insert into team_members (id, workspace_id, email, email_key, first_name, last_name, active, role, password_hash)
     overriding system value
     select s.member_id, $1, s.email, s.key, s.first_name, s.last_name, coalesce(s.active, true), s.role, s.password_hash
     from ${T} s where s.outcome = 'created' and s.err_code is null
     order by s.key`,
    [ws],
  );

  // What each existing member's row changes: a non-empty cell that differs, and a password that did not verify.
  await q(
    `update ${T} s set changed = array_remove(array[
       ${FIELDS.map((f) => `case when s.${f} is not null and s.${f} is distinct from m.${f} then '${f}' end`).join(", ")},
       case when s.password_hash is not null then 'password' end], null)
     from team_members m where m.id = s.member_id and ${ACTIVE}`,
  );
  await q(`update ${T} s set outcome = case when cardinality(s.changed) > 0 then 'updated' else 'unchanged' end where ${ACTIVE} and s.member_id is not null`);
  await q(
    `update team_members m set
       ${FIELDS.map((f) => `${f} = coalesce(s.${f}, m.${f})`).join(", ")},
       password_hash = coalesce(s.password_hash, m.password_hash),
       updated_at = now()
     from ${T} s where m.id = s.member_id and s.outcome = 'updated'`,
  );
  // A row repeating a member this file created still counts as a creation: the earlier row is the one skipped.
  await q(`update ${T} s set outcome = 'created' where s.prev_outcome = 'created' and s.outcome in ('updated', 'unchanged')`);

  await q(
    `insert into import_people (import_id, person_id, row, outcome)
     select $1, s.member_id, s.row, s.outcome from ${T} s
     where s.member_id is not null and s.outcome in ('created', 'updated', 'unchanged')
     order by s.member_id
     on conflict (import_id, person_id) do update set row = excluded.row, outcome = excluded.outcome`,
    [ctx.importId],
  );

  const { counts, errors } = await readStageOutcome(q, T);
  return {
    counts,
    errors,
    superseded: superseded.map((s) => ({ row: Number(s.row), outcome: s.outcome as "created", key: s.key as string })),
  };
}
