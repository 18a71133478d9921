import type { ReservedSql } from "postgres";
import { CopyTextBuffer, copyLine, copyText } from "../copy.js";
import { readStageOutcome, type BatchContext, type BatchResult, type EncodedRows, type RowEncoder, type ValuesRow } from "../handler.js";
import { IDENTIFIERS } from "../targets.js";
import { EVENT_STAGE_COLUMNS } from "./validate.js";

/**
 * One batch of event rows, written set-based inside the caller's transaction: COPY into a temp staging table,
 * resolve each row's person by the identifier (creating missing people when the options say so), then insert
 * one event per row. events_import_row_uq (import_id, import_row) makes a replayed row write nothing.
 */

export const EVENT_STAGE_TABLE = "import_stage_events";
const T = EVENT_STAGE_TABLE;

const CREATE_STAGE = `
  create temp table if not exists ${T} (
    row bigint not null,
    key text not null,
    email text, email_key text, external_id text, username text,
    event text, occurred_at timestamptz, properties jsonb,
    person_id bigint,
    new_person boolean not null default false,
    outcome text,
    err_code text, err_column text, err_value text, err_message text
  ) on commit delete rows`;

/** How a person is matched on each identifier; emails on their key (emailKey()), as the unique index is. */
const PEOPLE_COLUMN = { email: "p.email_key", external_id: "p.external_id", username: "p.username" } as const;
const STAGE_COLUMN = { email: "s.email_key", external_id: "s.external_id", username: "s.username" } as const;
const ACTIVE = "s.outcome is null and s.err_code is null";

export async function ensureEventStage(conn: ReservedSql): Promise<void> {
  await conn.unsafe(CREATE_STAGE);
}

/**
 * A batch's event rows as the COPY text of the staging table, each written as it is validated (RowHandler.encoder):
 * held as objects to the batch's end, 10,000 rows outlived the parse thread's young generation (BENCHMARKS.md,
 * "Imports, 2026-12-01 (twelfth session)"). Event rows never supersede each other: nothing is dropped.
 */
export class EventRowEncoder implements RowEncoder<ValuesRow> {
  private readonly text: CopyTextBuffer;
  private rows = 0;

  /** `expected`: how many rows the batch may hold (~200 bytes each). */
  constructor(expected: number) {
    this.text = new CopyTextBuffer(expected * 200);
  }

  add(r: ValuesRow): number {
    this.text.write(copyLine([r.row, r.key, ...r.values]));
    return this.rows++;
  }

  drop(): number {
    throw new Error("An event row is never superseded");
  }

  finish(): EncodedRows {
    return { rows: this.rows, copy: this.text.bytes(), labelCells: [], setFields: [], mayRepeat: 0 };
  }
}

/** The rows encoded at once (EventRowEncoder), for a batch built without an encoder. */
export function encodeEventRows(rows: readonly ValuesRow[]): EncodedRows {
  const encoder = new EventRowEncoder(rows.length);
  for (const r of rows) encoder.add(r);
  return encoder.finish();
}

export async function writeEventBatch(conn: ReservedSql, ctx: BatchContext, batch: EncodedRows): Promise<BatchResult> {
  const ws = ctx.workspaceId;
  const q = (text: string, params: unknown[] = []) => conn.unsafe(text, params as never[]);
  const idHeader = ctx.headerOf[ctx.identifier] ?? ctx.identifier;

  await copyText(conn, T, ["row", "key", ...EVENT_STAGE_COLUMNS], batch.copy);
  await q(`update ${T} s set person_id = p.id from people p where p.workspace_id = $1 and ${PEOPLE_COLUMN[ctx.identifier]} = s.key`, [ws]);

  if (ctx.options.createMissingPeople) {
    // A new person also gets the row's other identity columns, unless someone else already holds one of them.
    for (const f of IDENTIFIERS) {
      if (f === ctx.identifier || !ctx.headerOf[f]) continue;
      await q(
        `update ${T} s set outcome = 'failed', err_code = 'conflict', err_column = $2, err_value = s.${f},
           err_message = 'The person is new, but another person already has this ${f.replace("_", " ")}.'
         where ${ACTIVE} and s.person_id is null and s.${f} is not null and (
           exists (select 1 from people p where p.workspace_id = $1 and ${PEOPLE_COLUMN[f]} = ${STAGE_COLUMN[f]})
           or exists (select 1 from ${T} o where o.row < s.row and o.err_code is null and o.person_id is null and o.key <> s.key
                      and ${STAGE_COLUMN[f].replace("s.", "o.")} = ${STAGE_COLUMN[f]}))`,
        [ws, ctx.headerOf[f]],
      );
    }
    // One person per key, its id drawn first (nothing joins back on what the insert returns); when several rows
    // name the same new person, the last row's identity columns win. Inserted in the order a contacts import inserts
    // its new people (byte order of the key), so the two cannot deadlock on each other's new keys.
    // (Materialised: a join may rescan its inner side, and each rescan would draw new ids.)
    await q(
      `with n as materialized (
         select k.key, nextval((select pg_get_serial_sequence('people', 'id')::regclass)) as id
         from (select distinct s.key from ${T} s where ${ACTIVE} and s.person_id is null order by s.key) k)
       update ${T} s set person_id = n.id, new_person = true
       from n where n.key = s.key and ${ACTIVE} and s.person_id is null`,
    );
    await q(
      `insert into people (id, workspace_id, email, email_key, external_id, username)
       overriding system value
       select n.person_id, $1, n.email, n.email_key, n.external_id, n.username from (
         select distinct on (s.key) s.key, s.person_id, s.email, s.email_key, s.external_id, s.username
         from ${T} s where ${ACTIVE} and s.new_person order by s.key, s.row desc) n
       order by n.key collate "C"`,
      [ws],
    );
  } else {
    await q(
      `update ${T} s set outcome = 'failed', err_code = 'unknown_person', err_column = $1, err_value = s.key,
         err_message = $2
       where ${ACTIVE} and s.person_id is null`,
      [idHeader, `No person has this ${ctx.identifier.replace("_", " ")}; set options.createMissingPeople to create them.`],
    );
  }

  // Rows this import already wrote (a replay after a lost checkpoint) insert nothing and count as unchanged.
  await q(
    `with written as (
       insert into events (workspace_id, person_id, name, occurred_at, properties, import_id, import_row)
       select $1, s.person_id, s.event, coalesce(s.occurred_at, now()), coalesce(s.properties, '{}'::jsonb), $2::uuid, s.row
       from ${T} s where ${ACTIVE} and s.person_id is not null
       order by s.row
       on conflict (import_id, import_row) where import_row is not null do nothing
       returning import_row)
     update ${T} s set outcome = case when s.row in (select import_row from written) then 'created' else 'unchanged' end
     where ${ACTIVE} and s.person_id is not null`,
    [ws, ctx.importId],
  );

  // The ledger of people this import touched, for createSegment.
  await q(
    `insert into import_people (import_id, person_id, row, outcome)
     select distinct on (s.person_id) $1::uuid, s.person_id, s.row, case when s.new_person then 'created' else 'updated' end
     from ${T} s where s.outcome in ('created', 'unchanged')
     order by s.person_id, s.row desc
     on conflict (import_id, person_id) do nothing`,
    [ctx.importId],
  );

  const { counts, errors } = await readStageOutcome(q, T);
  return { counts, errors, superseded: [] };
}
