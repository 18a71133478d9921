import type { Sql } from "postgres";
import { emailKey } from "../domain/people/email.js";

const BATCH = 1000;

export interface EmailKeyBackfill {
  /** Rows given their key. */
  keyed: number;
  /** Rows left without one: another person (team member) of the workspace already holds that key. */
  duplicates: { table: "people" | "team_members"; id: number; heldBy: number }[];
  /** Rows a concurrent write raced (a unique violation): left for the next run. */
  deferred: number;
}

/**
 * Computes `email_key` for emails that have none: after migration 0004 (which keys only plain-ASCII emails in SQL),
 * and for any row written without a key since (a hand-written insert). The partial index `*_email_key_pending_idx`
 * finds them, so with nothing to do this is one index probe per table.
 *
 * A row whose key another row of its workspace already holds (two people the old lower(email) index told apart,
 * such as a composed and a decomposed `é`, or an IDN domain and its punycode) keeps a null key and is reported:
 * its data stays, but matching by email finds the other, older row. Merge or correct them by hand.
 */
export async function backfillEmailKeys(sql: Sql): Promise<EmailKeyBackfill> {
  const result: EmailKeyBackfill = { keyed: 0, duplicates: [], deferred: 0 };
  const [col] = await sql`
    select 1 from information_schema.columns where table_schema = current_schema() and table_name = 'people' and column_name = 'email_key'`;
  if (!col) return result;
  for (const table of ["people", "team_members"] as const) {
    let after = 0;
    for (;;) {
      const rows = await sql<{ id: string; workspace_id: string; email: string }[]>`
        select id, workspace_id, email from ${sql(table)}
        where email is not null and email_key is null and id > ${after} order by id limit ${BATCH}`;
      if (rows.length === 0) break;
      after = Number(rows[rows.length - 1]!.id);
      const ids = rows.map((r) => r.id);
      const keys = rows.map((r) => emailKey(r.email));
      // Set-based: a row takes its key unless a row of its workspace holds it already, or an earlier row of this
      // batch takes it too (the lower id wins).
      let keyed: { id: string }[];
      try {
        keyed = await sql<{ id: string }[]>`
          with v as (
            select v.id, v.key, t.workspace_id,
              row_number() over (partition by t.workspace_id, v.key order by v.id) as n
            from unnest(${ids}::bigint[], ${keys}::text[]) as v(id, key)
            join ${sql(table)} t on t.id = v.id)
          update ${sql(table)} t set email_key = v.key from v
          where t.id = v.id and v.n = 1 and t.email_key is null
            and not exists (select 1 from ${sql(table)} o where o.workspace_id = v.workspace_id and o.email_key = v.key)
          returning t.id`;
      } catch (err) {
        // A process already running inserted one of these keys meanwhile: the next run (start) retries.
        if ((err as { code?: string }).code !== "23505") throw err;
        result.deferred += rows.length;
        continue;
      }
      result.keyed += keyed.length;
      const done = new Set(keyed.map((k) => String(k.id)));
      const left = rows.map((r, i) => ({ id: r.id, workspaceId: r.workspace_id, key: keys[i]! })).filter((r) => !done.has(String(r.id)));
      if (left.length === 0) continue;
      const holders = await sql<{ id: string; workspace_id: string; email_key: string }[]>`
        select o.id, o.workspace_id, o.email_key from ${sql(table)} o
        join unnest(${left.map((l) => l.workspaceId)}::uuid[], ${left.map((l) => l.key)}::text[]) as v(ws, key)
          on o.workspace_id = v.ws and o.email_key = v.key`;
      const holderOf = new Map(holders.map((h) => [`${h.workspace_id} ${h.email_key}`, Number(h.id)]));
      for (const l of left) result.duplicates.push({ table, id: Number(l.id), heldBy: holderOf.get(`${l.workspaceId} ${l.key}`) ?? 0 });
    }
  }
  return result;
}
