import type { ReservedSql } from "postgres";
import type { Identifier } from "../targets.js";
import { emptyCounts, readStageOutcome, type BatchContext, type BatchResult, type EncodedRows, type StageQuery } from "../handler.js";
import { CONTACT_STAGE_COLUMNS, type ContactRow } from "./validate.js";
import { CopyTextBuffer, copyText, copyValue } from "../copy.js";
import { hashMayRepeat, mayRepeat, type KeySketch } from "../key-sketch.js";

/**
 * One batch of contact rows, written set-based inside the caller's transaction:
 * COPY into a temp table, resolve each row into the temp staging table (its person, what it changes), check what only
 * the database can check, then insert new people, update
 * changed ones (labels are an array on the person), segments, events and the per-import ledger, each as one
 * statement in key order.
 */

/** A batch's rows as its COPY writes them (COPY_COLUMNS): read once, by the resolve pass (1). */
const CONTACT_COPY_TABLE = "import_copy_contacts";
/** A batch's rows as the resolve pass writes them, with their person, outcome and changes: every later step works here. */
export const CONTACT_STAGE_TABLE = "import_stage_contacts";

const ROW_COLUMNS = `email text, email_key text, external_id text, username text, first_name text, last_name text, name text, company_id text,
    attributes jsonb, labels text, label_ids text, segment text, segment_value text`;
const CREATE_COPY = `
  create temp table if not exists ${CONTACT_COPY_TABLE} (
    row bigint not null,
    key text not null,
    label_cell int, set_cell int,
    may_repeat boolean not null,
    ${ROW_COLUMNS}
  ) on commit delete rows`;
const CREATE_STAGE = `
  create temp table if not exists ${CONTACT_STAGE_TABLE} (
    row bigint not null,
    key text not null,
    ${ROW_COLUMNS},
    may_repeat boolean not null,
    set_cell int,
    want_labels bigint[],
    person_id bigint,
    seen_version xid,
    prev_row bigint,
    prev_outcome text,
    outcome text,
    changed text[],
    err_code text, err_column text, err_value text, err_message text
  ) on commit delete rows`;

export type ContactBatchContext = BatchContext;
export type { BatchResult, Outcome } from "../handler.js";

/** Identity columns matched per identifier; emails on their key (emailKey(), computed when rows are validated), as the unique index is. */
const MATCH: Record<Identifier, { people: string; stage: string }> = {
  email: { people: "p.email_key", stage: "s.key" },
  external_id: { people: "p.external_id", stage: "s.key" },
  username: { people: "p.username", stage: "s.key" },
};
const UNIQUE_FIELDS: { field: Identifier; people: string; stage: string; label: string }[] = [
  { field: "email", people: "p.email_key", stage: "s.email_key", label: "email" },
  { field: "external_id", people: "p.external_id", stage: "s.external_id", label: "external id" },
  { field: "username", people: "p.username", stage: "s.username", label: "username" },
];
const FIELDS = ["email", "external_id", "username", "first_name", "last_name", "name", "company_id"] as const;
/** A person `p`'s before-image as import_changes keeps it (exported for the bench, which replays the insert to cost it). */
export const BEFORE_IMAGE = `jsonb_build_object(${FIELDS.map((f) => `'${f}', p.${f}`).join(", ")}, 'email_key', p.email_key,
         'attributes', p.attributes, 'label_ids', to_jsonb(p.label_ids))`;

const UNIQUE_VIOLATION = "23505";

/** A row still in play: no check failed or skipped it. */
const ACTIVE = "s.err_code is null";

/**
 * A dry run rolls every batch back, the ledger (import_people) and the people it would create with it: so that a row
 * repeating a person of an earlier batch still finds the earlier row (and counts as the real run would), a dry run
 * keeps, by key, which row last touched each person in this session-local table, written after each rollback.
 */
const DRY_LEDGER_TABLE = "import_dry_ledger";
const CREATE_DRY_LEDGER = `create temp table if not exists ${DRY_LEDGER_TABLE} (key text primary key, row bigint not null, outcome text not null)`;

/** Readies the session's staging tables for a run: the dry-run ledger starts empty (a dry run always starts fresh). */
export async function ensureContactStage(conn: ReservedSql): Promise<void> {
  await conn.unsafe(CREATE_COPY);
  await conn.unsafe(CREATE_STAGE);
  await conn.unsafe(CREATE_DRY_LEDGER);
  await conn.unsafe(`truncate ${DRY_LEDGER_TABLE}`);
}

/** Runs (reserved connections) that know their staging table has statistics: every batch of an import looks alike. */
const analysed = new WeakSet<ReservedSql>();
/** The rows a batch must have written to its staging table for its statistics to stand for the batches after it. */
const ANALYZE_MIN_ROWS = 1_000;

/**
 * Which fields of staged row `r` differ from the person `p` (a non-empty cell that differs; empty cells change nothing).
 * Attribute values are scalars (cells), so containment (`@>`, one cheap call) proves most rows change no attribute.
 * Labels (`want`: the row's label ids, sorted and distinct; null when the row lists none) change when the person lacks
 * one of them, or, with `replace`, has another one too (both arrays are sorted and distinct, so `<>` compares sets).
 */
const diff = (r: string, want: string, replace: boolean) => `array_remove(array[${FIELDS.map((f) => `case when ${r}.${f} is not null and ${r}.${f} is distinct from p.${f} then '${f}' end`).join(", ")},
     case when ${want} is not null and ${replace ? `p.label_ids <> ${want}` : `not p.label_ids @> ${want}`} then 'labels' end], null)
  || case when ${r}.attributes is null or p.attributes @> ${r}.attributes then '{}'
     else coalesce(array(select 'attributes.' || e.key from jsonb_each(${r}.attributes) e where p.attributes -> e.key is distinct from e.value order by e.key collate "C"), '{}') end`;

/**
 * Whether staged row `r` changes nothing of person `p`: `diff` would be empty. True only when every comparison is
 * (a cell that differs from a null field makes the conjunction null, not true). One boolean per row instead of an
 * array of eight cases: most rows of a re-import change nothing, and building their empty arrays was a third of the
 * resolve pass (10k unchanged rows: ~90 → ~56 ms in psql).
 */
const same = (r: string, want: string, replace: boolean) => `(${FIELDS.map((f) => `(${r}.${f} is null or ${r}.${f} = p.${f})`).join(" and ")}
     and (${want} is null or ${replace ? `p.label_ids = ${want}` : `p.label_ids @> ${want}`})
     and (${r}.attributes is null or p.attributes @> ${r}.attributes))`;

/** A run's label vocabulary: name → id. Labels are never deleted or renamed, so an id once read stays right for the run. */
export type LabelIds = Map<string, string>;

const COPY_COLUMNS = ["row", "key", "label_cell", "set_cell", "may_repeat", ...CONTACT_STAGE_COLUMNS];
/**
 * The COPY table as its readers see it: every staging column, the email's two as given. The validator sends the email
 * once (contactRowValidator): by email, the key is the email's key, email_key comes as null and so does the email
 * when it is its own key; by another identifier, email_key comes as null when it equals the email. A simple subquery:
 * PostgreSQL pulls it up into the statement that reads it.
 */
const copySource = (identifier: Identifier) =>
  `(select row, key, label_cell, set_cell, may_repeat, ${identifier === "email" ? "coalesce(email, key) as email, key as email_key" : "email, coalesce(email_key, email) as email_key"},
     ${CONTACT_STAGE_COLUMNS.filter((c) => c !== "email" && c !== "email_key").join(", ")} from ${CONTACT_COPY_TABLE})`;
/**
 * A batch's rows as the COPY text of the staging table, made where the rows were parsed (RowHandler.encoder), as UTF-8
 * in a buffer of its own (not Node's shared pool: a parse thread hands it over by transfer). Each line is written as
 * it is made: joined first, a batch's text was one string of ~50,000 pieces that encoding had to flatten (a tenth of
 * the thread's time). Files repeat a few label combinations and a few sets of filled columns over and over: each row
 * refers to its distinct pair of label cells (label_cell) and to its set_fields (set_cell) by number, 1-based; the run
 * turns each distinct pair into label ids once per batch (wantLabels), and the resolve pass reads set_fields from the
 * batch's list.
 */
export function encodeContactRows(rows: ContactRow[]): EncodedRows {
  const encoder = new ContactRowEncoder(rows);
  for (const r of rows) encoder.add(r);
  return encoder.finish();
}

/**
 * encodeContactRows a row at a time: the batch builder hands it each row as the row is validated
 * (RowHandler.encoder), so a batch does not hold 10,000 rows until its end (they outlived the parse thread's young
 * generation, and its collector copied and promoted every one). A row a later row of the batch supersedes (the same
 * person) has its line dropped: left out when the batch is finished.
 */
export class ContactRowEncoder {
  private readonly cells = new Map<string, number>();
  private readonly sets = new Map<string, number>();
  private readonly text: CopyTextBuffer;
  private rows = 0;
  private mayRepeat = 0;
  /** Per line added (dropped ones too): where it starts in the text, its row, its label cell (0: none). */
  private starts: Uint32Array;
  private lineRows: Float64Array;
  private lineCells: Uint32Array;
  private lines = 0;
  /** Dropped lines, in the order dropped. */
  private readonly dropped: number[] = [];

  /** `rows`: the batch's rows when known at once, to size the buffer; else how many are expected (~300 bytes each). */
  constructor(rows: readonly ContactRow[] | number) {
    // Room for every line when the text is ASCII (the cells, the key and ~40 bytes of numbers and tabs), plus the worst
    // case of the longest line: a batch of ASCII rows never grows its buffer; one with other characters may, once or twice.
    let size = 1024;
    let longest = 0;
    if (typeof rows === "number") size += rows * 320;
    else {
      for (const r of rows) {
        const length = r.cells.length + r.key.length + 64;
        size += length;
        if (length > longest) longest = length;
      }
    }
    this.text = new CopyTextBuffer(size + 3 * longest);
    const lines = Math.max(16, typeof rows === "number" ? rows : rows.length);
    this.starts = new Uint32Array(lines);
    this.lineRows = new Float64Array(lines);
    this.lineCells = new Uint32Array(lines);
  }

  add(r: ContactRow): number {
    this.rows++;
    if (r.repeat !== false) this.mayRepeat++;
    let cell = 0;
    if (r.labelCell !== null) {
      let i = this.cells.get(r.labelCell);
      if (i === undefined) this.cells.set(r.labelCell, (i = this.cells.size + 1));
      cell = i;
    }
    let f = this.sets.get(r.setFields);
    if (f === undefined) this.sets.set(r.setFields, (f = this.sets.size + 1));
    if (this.lines === this.starts.length) {
      const grow = <T extends Uint32Array | Float64Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts);
      this.lineRows = grow(this.lineRows);
      this.lineCells = grow(this.lineCells);
    }
    const index = this.lines++;
    if (r.lineCells) {
      // A plain line's row (ContactValidator.line): its key and cells are ASCII with nothing to escape.
      const text = this.text;
      this.starts[index] = text.reserve(r.key.length + r.lineCells.bytes + 64);
      text.putNumber(r.row);
      text.putByte(TAB);
      text.putAscii(r.key);
      text.putByte(TAB);
      if (cell === 0) text.putAscii("\\N");
      else text.putNumber(cell);
      text.putByte(TAB);
      text.putNumber(f);
      text.putByte(TAB);
      text.putByte(r.repeat === false ? 0x66 : 0x74);
      text.putByte(TAB);
      text.putFrom(r.lineCells, r.row);
    } else this.starts[index] = this.text.write(`${r.row}\t${copyValue(r.key)}\t${cell === 0 ? "\\N" : cell}\t${f}\t${r.repeat === false ? "f" : "t"}\t${r.cells}\n`);
    this.lineRows[index] = r.row;
    this.lineCells[index] = cell;
    return index;
  }

  drop(line: number): number {
    if (line < 0 || line >= this.lines) throw new RangeError(`No line ${line} in this batch`);
    this.dropped.push(line);
    this.rows--;
    // Only a row that may repeat can be superseded.
    this.mayRepeat--;
    return this.lineRows[line]!;
  }

  finish(): EncodedRows {
    const labelCells = [...this.cells.keys()];
    if (this.dropped.length) {
      // The kept lines move up over the dropped ones, in order.
      const gone = new Uint8Array(this.lines);
      for (const d of this.dropped) gone[d] = 1;
      const used = new Uint32Array(labelCells.length + 1);
      this.text.keepLines(this.starts, this.lines, (i) => {
        if (gone[i]) return false;
        used[this.lineCells[i]!]! += 1;
        return true;
      });
      // A label cell only dropped rows listed names no label: its labels are not created (wantLabels).
      for (let i = 1; i <= labelCells.length; i++) if (used[i] === 0) labelCells[i - 1] = "";
    }
    return { rows: this.rows, copy: this.text.bytes(), labelCells, setFields: [...this.sets.keys()], mayRepeat: this.mayRepeat };
  }
}

const TAB = 0x09;
const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;
const COPY_ESCAPES: Record<string, string> = { "\\": "\\", t: "\t", n: "\n", r: "\r" };

/**
 * Marks the rows of a batch encoded before its run's key sketch was complete (every row then may repeat: the
 * encoder wrote `t`), now that the sketch is: a row whose key no other row of the file has gets `f`, in place, as if
 * the sketch had been complete when the row was read (batch-builder.ts addRecord). Its batch then neither probes
 * nor writes the ledger for it (a re-import's first batches, parsed while the sketch is still being read, took the
 * ledger for every row: ~3× the time of a later batch). Its rows were deduplicated within the batch as always, and a
 * key another row of the file shares stays `t` (the sketch never says unique for a repeated key).
 * The COPY line is `row, key, label_cell, set_cell, may_repeat, …` (COPY_COLUMNS); a plain key (ASCII, no
 * escape) is hashed from its bytes, as keyHash hashes its characters (one UTF-16 unit per ASCII byte).
 */
export function markUniqueRows(encoded: EncodedRows, sketch: KeySketch): void {
  const text = encoded.copy;
  let mayRepeatRows = 0;
  let at = 0;
  while (at < text.length) {
    const keyStart = text.indexOf(TAB, at) + 1;
    const keyEnd = text.indexOf(TAB, keyStart);
    const flag = text.indexOf(TAB, text.indexOf(TAB, keyEnd + 1) + 1) + 1;
    const lineEnd = text.indexOf(NEWLINE, flag);
    if (keyStart === 0 || keyEnd < 0 || flag === 0 || lineEnd < 0 || (text[flag] !== 0x74 && text[flag] !== 0x66)) {
      throw new Error(`A contacts batch line at byte ${at} is not laid out as COPY_COLUMNS.`);
    }
    if (text[flag] === 0x74) {
      let plain = true;
      let h = 0x811c9dc5;
      for (let i = keyStart; i < keyEnd; i++) {
        const b = text[i]!;
        if (b >= 0x80 || b === BACKSLASH) {
          plain = false;
          break;
        }
        h = Math.imul(h ^ b, 0x01000193);
      }
      const repeats = plain
        ? hashMayRepeat(sketch, h >>> 0)
        : mayRepeat(sketch, Buffer.from(text.buffer, text.byteOffset + keyStart, keyEnd - keyStart).toString("utf8").replace(/\\(.)/g, (_, c: string) => COPY_ESCAPES[c] ?? c));
      if (repeats) mayRepeatRows++;
      else text[flag] = 0x66;
    }
    at = lineEnd + 1;
  }
  encoded.mayRepeat = mayRepeatRows;
}

/** A new person's columns in people, and their values from staged row `r` with its labels `want` ($1 the workspace, $2 the import). */
const NEW_PERSON_COLUMNS = `workspace_id, email, email_key, external_id, username, first_name, last_name, name, company_id, attributes, label_ids,
       created_import_id, created_import_row`;
const newPerson = (r: string, want: string) => `$1, ${r}.email, ${r}.email_key, ${r}.external_id, ${r}.username, ${r}.first_name, ${r}.last_name,
       ${r}.name, ${r}.company_id, coalesce(${r}.attributes, '{}'::jsonb), coalesce(${want}, '{}'), $2, ${r}.row`;
/** A new person's `person.created` properties, from the batch's list (setFieldsProperties, parameter `list`) by staged row `r`'s set_cell. */
const createdProperties = (r: string, list: string) => `(select ${list}::text[]::jsonb[])[${r}.set_cell]`;
const setFieldsProperties = (batch: EncodedRows, importId: string) =>
  batch.setFields.map((fields) => JSON.stringify({ importId, changed: fields === "" ? [] : fields.split(",") }));

/** Whether the last batch of a run created a person for every row (createAll): the next is tried that way first. */
const createdAllLast = new WeakMap<ContactBatchContext, boolean>();

/**
 * Whether a batch may be written by createAll: a real run that creates people (not update_only), without the checks
 * that read the staging table (label_ids, a segment column), whose last batch created a person for every row, none of
 * them repeating an earlier row. A run's first batch takes the resolve pass: a re-import would find its first person
 * taken at once, but the insert would wait for any open transaction changing that person before it failed.
 */
function mayCreateAll(ctx: ContactBatchContext): boolean {
  return !ctx.dryRun && ctx.options.mode !== "update_only" && !ctx.headerOf.label_ids && !ctx.headerOf.segment && createdAllLast.get(ctx) === true;
}

/**
 * A batch of people nobody has yet (a fresh import, and the new part of a growing one) written without the resolve
 * pass: every row is inserted as a new person straight from the COPY table, with its `person.created` event, by one
 * statement under a savepoint. When a row's person exists (its identifier, or another unique field, is taken: by an
 * earlier batch of this file too), the unique index fails the insert; it is undone, and the batch takes the resolve
 * pass, which finds who exists. The batch builder already left one row per identifier in a batch (a later row
 * supersedes an earlier one), so a batch that inserts is exactly what the resolve pass would have made of it: every
 * row created, no earlier row, nothing to record in the ledger (a person this import created has it as provenance).
 * The resolve pass's probes and its staging table were ~20% of a fresh import's PostgreSQL time (BENCHMARKS.md).
 * Returns null when the batch must take the resolve pass.
 */
async function createAll(q: Query, ctx: ContactBatchContext, batch: EncodedRows, want: string[]): Promise<BatchResult | null> {
  await q("savepoint all_new");
  try {
    // The people first (the events read what their insert returns), so that a unique violation stops the statement
    // before any event is written. Their ids come from the sequence as they are inserted, in key order: the resolve
    // pass draws them in row order and the insert then takes them in key order, which writes the primary key's and
    // (workspace_id, id)'s new entries out of order (~10 ms of a 10k-row batch).
    await q(
      `with created as (
         insert into people (${NEW_PERSON_COLUMNS})
         select ${newPerson("o", "($3::text[])[o.label_cell]::bigint[]")} from ${copySource(ctx.identifier)} o order by o.key collate "C"
         returning id, created_import_row)
       insert into events (workspace_id, person_id, name, properties, import_id)
       select $1, c.id, 'person.created', ${createdProperties("o", "$4")}, $2::uuid
       from created c join ${CONTACT_COPY_TABLE} o on o.row = c.created_import_row
       order by o.row`,
      [ctx.workspaceId, ctx.importId, want, setFieldsProperties(batch, ctx.importId)],
    );
  } catch (err) {
    if ((err as { code?: unknown }).code !== UNIQUE_VIOLATION) throw err;
    await q("rollback to savepoint all_new");
    createdAllLast.set(ctx, false);
    return null;
  }
  await q("release savepoint all_new");
  createdAllLast.set(ctx, true);
  return { counts: { ...emptyCounts(), created: batch.rows }, errors: [], superseded: [] };
}

export async function writeContactBatch(conn: ReservedSql, ctx: ContactBatchContext, batch: EncodedRows, labelIds: LabelIds): Promise<BatchResult> {
  const ws = ctx.workspaceId;
  const imp = ctx.importId;
  const q = (text: string, params: unknown[] = []) => conn.unsafe(text, params as never[]);

  // 0. The batch's distinct label cells as label ids, from the run's vocabulary: the resolve pass (1) gives each row
  //    the ids of its cell (label_cell), so the database does not look names up row by row (that lookup was ~30% of
  //    the resolve pass).
  const want = await wantLabels(q, ctx, batch.labelCells, labelIds);
  await copyText(conn, CONTACT_COPY_TABLE, COPY_COLUMNS, batch.copy);
  if (mayCreateAll(ctx)) {
    const all = await createAll(q, ctx, batch, want);
    if (all) return all;
  }

  // 1. One pass resolves each row: its person (an index probe per row), a new id from the people sequence when there
  //    is none (the sequence is looked up once, not per row), what the row would change, and the earlier row of this
  //    file for the same person: the person's own provenance when this import created them, else the ledger (probed
  //    only for people that exist, and only for rows whose key may repeat: step 6); in a dry run, the dry-run ledger
  //    by key. Labels are compared as the row's label ids (step 0) against the person's array.
  // Each lookup is a LATERAL index probe per staged row: a plain join let the planner (whose statistics lag a
  // fast-growing workspace) hash the whole workspace's people for every batch, which grows with each batch.
  // `offset 0` keeps Postgres from flattening the LATERAL subquery back into that join (and, on the diff, from
  // inlining it twice: once for `outcome`, once for `changed`). The workspace is compared with `(select $1)`, a value
  // the planner cannot look up in the statistics: for a workspace they do not know yet (a new one, its first import)
  // it estimated one person and probed through the (workspace_id, id) index, filtering by the key, which reads every
  // person of the workspace per row; with another import (or another part of this one) filling the workspace while the
  // statement ran, one batch of a split 1M-row import ran for minutes. Estimated as an average workspace, the probe
  // takes the unique index on (workspace, key) whatever the statistics say. The diff is taken without a
  // lock: rows found unchanged write nothing to the person, and rows that change are read again under the lock (4).
  const m = MATCH[ctx.identifier];
  const replace = ctx.options.labels === "replace";
  // The earlier row of this file for the same person: the ledger, probed only for rows whose key may repeat (a batch
  // with none leaves the probe out); then, in a real run, the person's own provenance.
  let earlier: string | null = null;
  if (batch.mayRepeat > 0) {
    earlier = ctx.dryRun
      ? `select d.row, d.outcome from ${DRY_LEDGER_TABLE} d where o.may_repeat and d.key = o.key`
      : "select ip.row, ip.outcome from import_people ip where o.may_repeat and p.id is not null and ip.import_id = $3 and ip.person_id = p.id";
  }
  const createdHere = (value: string) => `case when p.created_import_id = $3 then ${value} end`;
  const prevRow = [earlier && "ip.row", !ctx.dryRun && createdHere("p.created_import_row")].filter(Boolean);
  const prevOutcome = [earlier && "ip.outcome", !ctx.dryRun && createdHere("'created'")].filter(Boolean);
  const resolved: [string, string][] = [
    ["want_labels", "w.want"],
    ["person_id", "coalesce(p.id, nextval((select pg_get_serial_sequence('people', 'id')::regclass)))"],
    ["seen_version", "p.version"],
    ["outcome", "case when p.id is null then 'created' when cardinality(c.changed) > 0 then 'updated' else 'unchanged' end"],
    // A new person's changes are what its row sets (set_fields, by set_cell): not written out per row (a 10-element
    // array in each of 10,000 rows was ~15 ms of a fresh batch's resolve pass); its event takes them from the batch's list.
    ["changed", "c.changed"],
  ];
  if (prevRow.length) resolved.push(["prev_row", `coalesce(${prevRow.join(", ")})`], ["prev_outcome", `coalesce(${prevOutcome.join(", ")})`]);
  const copied = ["row", "key", "may_repeat", "set_cell", ...CONTACT_STAGE_COLUMNS];
  // The unique fields (besides the identifier) the file sets: a row that creates a person, or changes one of them on a
  // person, may clash with another person's (step 2). The resolve pass counts the rows that change one.
  const unique = UNIQUE_FIELDS.filter((u) => u.field !== ctx.identifier && ctx.headerOf[u.field]);
  const uniqueChange = unique.length ? `count(*) filter (where changed && '{${unique.map((u) => u.field).join(",")}}'::text[])::int` : "0";
  // The rows are written resolved into the second table (an insert), not updated in place: an update joined the
  // table to itself by row and wrote a second version of every row, ~20 ms of a 10k-row batch's ~95.
  // The statement also counts what it found, so the steps below that have nothing to do in this batch are not sent
  // (each would scan the staging table for nothing: ~2–5 ms apiece, a fifth of an unchanged batch).
  // A row that changes nothing, whose key no other row of the file has, leaves nothing for the steps below to do: it is
  // counted, not written to the staging table (most rows of a re-import: ~17% of its PostgreSQL CPU). Unless a step below
  // reads unchanged rows too: create_only skips them, and the segment column joins them to a segment.
  // A person whose email has no key yet (migration 0004 left non-ASCII ones for backfillEmailKeys) cannot be found by
  // the conflict check's probe on the key, only by its window over the batch's rows: such a row stays in.
  const dropUnchanged = ctx.options.mode !== "create_only" && !ctx.headerOf.segment;
  const pendingKey = dropUnchanged && unique.some((u) => u.field === "email");
  const columns = [...copied, ...resolved.map(([c]) => c)];
  const [found] = await q(
    `with resolved as (
     insert into ${CONTACT_STAGE_TABLE} (${columns.join(", ")})
     select ${columns.join(", ")} from (
     select ${copied.map((c) => `o.${c}`).join(", ")}, ${resolved.map(([c, v]) => `${v} as ${c}`).join(", ")}${pendingKey ? ", p.email_key is null and p.email is not null as pending_key" : ""}
     from ${copySource(ctx.identifier)} o
       cross join lateral (select ($2::text[])[o.label_cell]::bigint[] as want offset 0) w
       left join lateral (${personProbe(m.people, m.stage.replace("s.", "o."))}) p on true${earlier ? `
       left join lateral (${earlier} offset 0) ip on true` : ""}
       cross join lateral (select case when p.id is null then null when ${same("o", "w.want", replace)} then '{}'::text[]
         else ${diff("o", "w.want", replace)} end as changed offset 0) c) r${
         dropUnchanged ? `
     where not (r.outcome = 'unchanged' and not r.may_repeat${prevRow.length ? " and r.prev_row is null" : ""}${pendingKey ? " and not r.pending_key" : ""})` : ""
       }
     returning outcome, prev_row, changed)
     select count(*) filter (where outcome = 'created')::int as created, count(*) filter (where outcome = 'updated')::int as updated,
       count(*) filter (where outcome = 'unchanged')::int as unchanged, count(*) filter (where prev_row is not null)::int as repeated,
       ${uniqueChange} as unique_changes
     from resolved`,
    ctx.dryRun ? [ws, want] : [ws, want, imp],
  );
  // Every copied row resolves to one row (each probe finds at most one): those not written were unchanged.
  const unwritten = batch.rows - Number(found?.created) - Number(found?.updated) - Number(found?.unchanged);
  if (unwritten < 0 || (unwritten > 0 && !dropUnchanged)) throw new Error(`The resolve pass wrote ${batch.rows - unwritten} rows of a batch of ${batch.rows}.`);
  // A temp table has no statistics until analysed: without them the joins below plan as nested loops. The statistics
  // outlive `on commit delete rows` and live as long as the session's table, and every batch looks alike: a session
  // analyses once, on its first batch, not each run (a run resumed after a time slice would pay ~100 ms again). Not on
  // a batch that wrote few of its rows (a re-import's unchanged rows are not written): a later batch with more to do.
  if (!analysed.has(conn) && batch.rows - unwritten >= Math.min(batch.rows, ANALYZE_MIN_ROWS)) {
    const [stats] = await q(`select reltuples from pg_class where oid = '${CONTACT_STAGE_TABLE}'::regclass`);
    if (Number(stats?.reltuples) < 0) await q(`analyze ${CONTACT_STAGE_TABLE}`);
    analysed.add(conn);
  }
  const created = Number(found?.created) > 0;
  // The segment column (writeSegmentColumn) can make an unchanged person updated: it joins them to a segment.
  const updated = Number(found?.updated) > 0 || Boolean(ctx.headerOf.segment);
  const repeated = Number(found?.repeated) > 0;
  // Whether any step below moved a row's outcome or gave it an error: until one does, the resolve pass's counts are
  // the batch's, and the staging table is not read again for them (two scans, ~6 ms of every batch).
  let moved = false;
  const change = async (text: string, params: unknown[] = []) => {
    const result = await conn.unsafe(text, params as never[]);
    if (result.count > 0) moved = true;
  };

  // 2. Checks only the database can make, before anything is written. A failed or skipped row keeps its error.
  if (ctx.headerOf.label_ids) await change(
    `update ${CONTACT_STAGE_TABLE} s set outcome = 'failed', err_code = 'unknown_label_id', err_column = $2, err_value = s.label_ids,
       err_message = 'Label id ' || u.lid || ' does not exist; ' || coalesce('nearest existing ids: ' || (
         select string_agg(n.id || ' (' || n.name || ')', ', ' order by n.id) from (
           select c.id, c.name from (
             (select l.id, l.name from labels l where l.workspace_id = $1 and l.id < u.lid order by l.id desc limit 3)
             union all
             (select l.id, l.name from labels l where l.workspace_id = $1 and l.id > u.lid order by l.id limit 3)) c
           order by abs(c.id - u.lid), c.id limit 3) n), 'the workspace has no labels (GET /v1/labels lists them)')
     from (
       -- The row's first unknown id; its message names up to 3 existing ids of the workspace nearest to it.
       select o.row, (select lid from unnest(string_to_array(o.label_ids, ':')::bigint[]) lid
                      where not exists (select 1 from labels l where l.id = lid and l.workspace_id = $1) order by lid limit 1) as lid
       from ${CONTACT_STAGE_TABLE} o where o.label_ids is not null) u
     where s.row = u.row and u.lid is not null and ${ACTIVE}`,
    [ws, ctx.headerOf.label_ids ?? "label_ids"],
  );
  if (ctx.headerOf.segment) await change(
    `update ${CONTACT_STAGE_TABLE} s set outcome = 'failed', err_code = 'segment_not_static', err_column = $2, err_value = s.segment,
       err_message = 'A dynamic segment has this name; people join static segments only.'
     where ${ACTIVE} and s.segment is not null and exists (
       select 1 from segments g where g.workspace_id = $1 and g.name = s.segment and g.type <> 'static')`,
    [ws, ctx.headerOf.segment ?? "segment"],
  );
  if (ctx.options.mode === "create_only") {
    await change(
      `update ${CONTACT_STAGE_TABLE} s set outcome = 'skipped', err_code = 'already_exists', err_column = $1, err_value = s.key,
         err_message = 'A person with this identifier exists; create_only leaves them as they are.'
       where ${ACTIVE} and s.outcome <> 'created'`,
      [ctx.headerOf[ctx.identifier] ?? ctx.identifier],
    );
  } else if (ctx.options.mode === "update_only") {
    await change(
      `update ${CONTACT_STAGE_TABLE} s set outcome = 'skipped', err_code = 'not_found', err_column = $1, err_value = s.key,
         err_message = 'No person has this identifier; update_only creates no one.'
       where ${ACTIVE} and s.outcome = 'created'`,
      [ctx.headerOf[ctx.identifier] ?? ctx.identifier],
    );
  }
  // Another person (in the database, or an earlier row of this batch) already holds a unique field of this row.
  // Only rows that set the field are checked: a person keeping their own value cannot clash (the index is unique).
  const checkUnique = async () => {
    for (const u of unique) await change(
      `update ${CONTACT_STAGE_TABLE} s set outcome = 'failed', err_code = 'conflict', err_column = $2, err_value = s.${u.field},
         err_message = 'Another person already has this ${u.label}.'
       where ${ACTIVE} and s.${u.field} is not null and (s.outcome = 'created' or '${u.field}' = any(s.changed)) and (
         exists (select 1 from people p where p.workspace_id = (select $1::uuid) and ${u.people} = ${u.stage} and p.id <> s.person_id)
         or s.row in (
           -- Two rows of this batch for different people with the same value: the first keeps it.
           select w.row from (
             select o.row, o.key, first_value(o.key) over (partition by ${u.stage.replaceAll("s.", "o.")} order by o.row) as first_key
             from ${CONTACT_STAGE_TABLE} o where o.err_code is null and o.${u.field} is not null) w
           where w.key <> w.first_key))`,
      [ws, ctx.headerOf[u.field]],
    );
  };
  // Only a row that creates a person or changes a unique field of one can clash. When no row changes one, the new
  // people are left to the unique indexes: most batches clash with nobody, and the check was a tenth of a batch that
  // creates 10,000 people (~35 ms). They are inserted under a savepoint; on a unique violation the insert is undone,
  // the rows are checked as above, and the rest inserted. A batch where a row changes a unique field is checked first:
  // that update could take a value a new person of the batch takes too.
  const uniqueChanges = Number(found?.unique_changes) > 0;
  const optimistic = created && !uniqueChanges && unique.length > 0;
  if (uniqueChanges) await checkUnique();

  // 3. New people, inserted in key order (their ids were drawn in step 1, so nothing joins back on the key): byte order
  //    (`collate "C"`), which sorts without the locale's comparison (10k keys: ~7 → ~5 ms under C.UTF-8; more under
  //    other locales). Any fixed order keeps concurrent imports from deadlocking on each other's new keys; the events
  //    import inserts its new people in the same order.
  const insertPeople = () => q(
    `insert into people (id, ${NEW_PERSON_COLUMNS}) overriding system value
     select s.person_id, ${newPerson("s", "s.want_labels")}
     from ${CONTACT_STAGE_TABLE} s where s.outcome = 'created' and ${ACTIVE}
     order by s.key collate "C"`,
    [ws, imp],
  );
  if (optimistic) {
    await q("savepoint new_people");
    try {
      await insertPeople();
    } catch (err) {
      if ((err as { code?: unknown }).code !== UNIQUE_VIOLATION) throw err;
      await q("rollback to savepoint new_people");
      await checkUnique();
      await insertPeople();
    }
    await q("release savepoint new_people");
  } else if (created) await insertPeople();

  // Joining a segment makes an unchanged person updated.
  if (ctx.headerOf.segment) {
    await writeSegmentColumn(q, ctx);
    moved = true;
  }

  // 4. Lock the existing people this batch changes, in id order, so concurrent imports cannot deadlock; then read them
  //    again under the lock, so the update and its event name exactly what changes. Unchanged people are not locked:
  //    nothing is written to them, so the batch orders before any concurrent change to them.
  if (updated) {
    // The lock also tells whether any of these people changed since step 1 read them (their row version, xmin, moved:
    // another import or an API call committed a change meanwhile); only then are their rows diffed again, under the lock.
    // Usually none has: the second diff, ~20 ms of a batch that changes 1,000 people, is then not made.
    const [lock] = await q(
      `with locked as materialized (
         select s.seen_version, l.version from (
           select s.person_id, s.seen_version from ${CONTACT_STAGE_TABLE} s where ${ACTIVE} and s.outcome = 'updated' order by s.person_id) s
         cross join lateral (select p.xmin as version from people p where p.id = s.person_id for update) l)
       select count(*) filter (where version <> seen_version or seen_version is null)::int as moved from locked`,
    );
    if (Number(lock?.moved) > 0) await change(
      `update ${CONTACT_STAGE_TABLE} s set changed = c.changed,
         outcome = case when cardinality(c.changed) > 0 then 'updated' else 'unchanged' end
       from ${CONTACT_STAGE_TABLE} o
         cross join lateral (select * from people p where p.id = o.person_id offset 0) p
         cross join lateral (select ${diff("o", "o.want_labels", replace)}
           || array(select x from unnest(o.changed) x where x = 'segments') as changed) c
       where s.row = o.row and o.outcome = 'updated' and o.err_code is null`,
    );
    // The before-image of each person this import changes for the first time (an undo restores it), written by the same
    // statement: the CTE reads the rows as they were (one snapshot for the whole statement), only for rows that change,
    // and not for people this import created (an undo erases those). A dry run writes none (it rolls back anyway).
    await byProbes(q, () => q(
      `${
        ctx.dryRun
          ? ""
          : `with saved as (
         insert into import_changes (import_id, person_id, row, before)
         select $1, p.id, s.row, ${BEFORE_IMAGE}
         from ${CONTACT_STAGE_TABLE} s join people p on p.id = s.person_id
         where s.outcome = 'updated' and s.err_code is null and p.created_import_id is distinct from $1
         order by p.id
         on conflict (import_id, person_id) do nothing)
       `
      }update people p set
         ${FIELDS.map((f) => `${f} = coalesce(s.${f}, p.${f})`).join(", ")},
         -- The key moves with the email (only when the email changes: that is when step 2 checked it for conflicts).
         email_key = case when s.email is distinct from p.email and s.email is not null then s.email_key else p.email_key end,
         attributes = case when s.attributes is null then p.attributes else p.attributes || s.attributes end,
         -- (A row whose labels the person already has, as most rows of a re-import, keeps the array as it is.)
         label_ids = case when s.want_labels is null or not 'labels' = any(s.changed) then p.label_ids
           ${replace ? "else s.want_labels" : "else array(select unnest(p.label_ids) union select unnest(s.want_labels) order by 1)"} end,
         updated_at = now()
       from ${CONTACT_STAGE_TABLE} s where p.id = s.person_id and s.outcome = 'updated' and s.err_code is null`,
      ctx.dryRun ? [] : [imp],
    ));
  }
  // A row repeating a person this file created still counts as a creation: the earlier row is the one skipped.
  if (repeated) await change(`update ${CONTACT_STAGE_TABLE} s set outcome = 'created' where s.prev_outcome = 'created' and s.outcome in ('updated', 'unchanged') and ${ACTIVE}`);

  // 5. One event per created or updated person. The batch commits with its checkpoint under the run's fence, so it is
  //    never written twice: the events need no (import_id, import_row) unique index entry, and carry no row.
  //    A new person's event (no `changed` of its own: step 1) takes its properties from the batch's list, one per
  //    distinct set of filled columns, built here once (sent as text and read as JSON once, in the sub-select).
  if (created || updated) await q(
    `insert into events (workspace_id, person_id, name, properties, import_id)
     select $1, s.person_id,
       case when s.outcome = 'created' and s.prev_row is null then 'person.created' else 'person.updated' end,
       case when s.changed is null then ${createdProperties("s", "$3")} else jsonb_build_object('importId', $2::text, 'changed', to_jsonb(s.changed)) end, $2::uuid
     from ${CONTACT_STAGE_TABLE} s where s.outcome in ('created', 'updated') and ${ACTIVE} and (s.changed is null or cardinality(s.changed) > 0)
     order by s.row`,
    [ws, imp, setFieldsProperties(batch, imp)],
  );

  // 6. The ledger: which row of this file last touched each person that existed before the row (a person the row
  //    created has it in created_import_id/row). A dry run keeps it by key, after the rollback (afterRollback). Only
  //    rows whose key may repeat in the file (may_repeat, key-sketch.ts) are recorded, and only they look the ledger
  //    up in step 1: a row no other row shares a key with can neither find nor be found by another.
  let afterRollback: BatchResult["afterRollback"];
  if (ctx.dryRun && batch.mayRepeat > 0) {
    const touched = await q(`select s.key, s.row, s.outcome from ${CONTACT_STAGE_TABLE} s where ${ACTIVE} and s.may_repeat and s.outcome in ('created', 'updated', 'unchanged')`);
    afterRollback = async () => {
      await q(
        `insert into ${DRY_LEDGER_TABLE} (key, row, outcome)
         select * from unnest($1::text[], $2::bigint[], $3::text[])
         on conflict (key) do update set row = excluded.row, outcome = excluded.outcome`,
        [touched.map((r) => r.key), touched.map((r) => r.row), touched.map((r) => r.outcome)],
      );
    };
  } else if (!ctx.dryRun) {
    // A row with no earlier row (prev_row null) has no ledger entry yet, and a batch holds one row per person: a plain
    // insert, without the conflict check (90 → 65 ms per 10k rows, BENCHMARKS.md 2026-11-26); only repeats update.
    // (Only rows of people that existed: a batch that only creates people has none to record.)
    if (batch.mayRepeat > 0 && Number(found?.updated) + Number(found?.unchanged) > 0) await q(
      `insert into import_people (import_id, person_id, row, outcome)
       select $1, s.person_id, s.row, s.outcome from ${CONTACT_STAGE_TABLE} s
       where ${ACTIVE} and s.may_repeat and s.outcome in ('updated', 'unchanged') and s.prev_row is null
       order by s.person_id`,
      [imp],
    );
    if (repeated) await q(
      `insert into import_people (import_id, person_id, row, outcome)
       select $1, s.person_id, s.row, s.outcome from ${CONTACT_STAGE_TABLE} s
       where ${ACTIVE} and s.outcome in ('created', 'updated', 'unchanged') and s.prev_row is not null
       order by s.person_id
       on conflict (import_id, person_id) do update set row = excluded.row, outcome = excluded.outcome`,
      [imp],
    );
  }

  const superseded = !repeated ? [] : await q(
    `select s.prev_row as row, s.prev_outcome as outcome, s.key from ${CONTACT_STAGE_TABLE} s where s.prev_row is not null and ${ACTIVE}`,
  );
  const { counts, errors } = moved
    ? await readStageOutcome(q, CONTACT_STAGE_TABLE)
    : { counts: { ...emptyCounts(), created: Number(found?.created), updated: Number(found?.updated), unchanged: Number(found?.unchanged) }, errors: [] };
  counts.unchanged += unwritten;
  createdAllLast.set(ctx, counts.created === batch.rows && !repeated);
  return {
    counts,
    errors,
    superseded: superseded.map((s) => ({ row: Number(s.row), outcome: s.outcome as "created", key: s.key as string })),
    afterRollback,
  };
}

type Query = StageQuery;

/**
 * Runs `statement` with the planner's merge and hash joins off, for this transaction only (put back as they were after
 * it): for a statement joining the staging table to people by primary key, where one index probe per staged row is
 * always the plan. The staging table's statistics are taken once per session, from one batch, so its person ids end
 * where that batch's ended: the planner took a merge join it expected to stop there, and every later batch walked
 * people's primary key from the first id up to its own last one. A 10% changed re-import on a new session took 96 s
 * instead of ~20, and longer files would grow quadratically (BENCHMARKS.md, "Imports, 2026-12-01").
 */
export async function byProbes<T>(q: Query, statement: () => Promise<T>): Promise<T> {
  const [was] = await q(
    `select current_setting('enable_mergejoin') as merge, current_setting('enable_hashjoin') as hash,
       set_config('enable_mergejoin', 'off', true), set_config('enable_hashjoin', 'off', true)`,
  );
  const result = await statement();
  await q(`select set_config('enable_mergejoin', $1, true), set_config('enable_hashjoin', $2, true)`, [was!.merge, was!.hash]);
  return result;
}

/**
 * The label ids of each distinct label cell pair of a batch (labelCellOf), by name (exact, case-sensitive) and by
 * id, as a sorted, distinct bigint[] literal. Names the run has not seen are added to the workspace's vocabulary (in the batch's
 * transaction) and read back once. A name in a row that a later check fails stays in the vocabulary, unattached; an
 * id that does not exist is the row's `unknown_label_id` error (step 2). In a dry run the insert is rolled back with
 * the batch, and the ids read stay in this run's map: they still tell a person lacking the label from one having it.
 */
async function wantLabels(q: Query, ctx: ContactBatchContext, labelCells: readonly string[], labelIds: LabelIds): Promise<string[]> {
  if (labelCells.length === 0) return [];
  const unseen = new Set<string>();
  for (const cells of labelCells) for (const n of splitNames(cells)) if (!labelIds.has(n)) unseen.add(n);
  if (unseen.size) {
    const names = [...unseen].sort();
    await q(
      `insert into labels (workspace_id, name) select $1::uuid, n from unnest($2::text[]) n order by n
       on conflict (workspace_id, name) do nothing`,
      [ctx.workspaceId, names],
    );
    // A second statement: one that inserted and read at once could miss a name another import committed meanwhile.
    for (const l of await q(`select id::text, name from labels where workspace_id = $1 and name = any($2::text[])`, [ctx.workspaceId, names])) {
      labelIds.set(l.name as string, l.id as string);
    }
  }
  return labelCells.map((cells) => {
    const nul = cells.indexOf("\u0000");
    const set = new Set<string>(nul < 0 ? [] : cells.slice(nul + 1).split(":"));
    for (const n of splitNames(cells)) set.add(labelIds.get(n)!);
    // Ids are digits without leading zeros: shorter is smaller, then character order is numeric order.
    return `{${[...set].sort((x, y) => x.length - y.length || (x < y ? -1 : x > y ? 1 : 0)).join(",")}}`;
  });
}

/**
 * The probe for a staged row's person by its identifier (`people`: the people column, `stage`: the staged row's), the
 * workspace being $1. `(select $1::uuid)`: see the resolve pass in writeContactBatch.
 */
export function personProbe(people: string, stage: string): string {
  return `select p.*, p.xmin as version from people p where p.workspace_id = (select $1::uuid) and ${people} = ${stage} offset 0`;
}

/** The label names of a cell pair key (the labels cell, before any NUL): none when the row lists only ids. */
function splitNames(cells: string): string[] {
  const nul = cells.indexOf("\u0000");
  const names = nul < 0 ? cells : cells.slice(0, nul);
  return names === "" ? [] : names.split(":");
}

/**
 * The segment / segment_value columns: the person joins that static segment (created if missing) with that value.
 * The import lists every segment its rows named (segmentIds), in the batch's transaction: the import row is already
 * locked by the batch, and a rolled-back (dry-run) batch lists nothing.
 * What each join replaced is recorded (import_segment_joins) by the same statement, as import_changes is: only for
 * joins that change something, not for people this import created (an undo erases those), and not in a dry run.
 */
async function writeSegmentColumn(q: Query, ctx: ContactBatchContext): Promise<void> {
  const ws = ctx.workspaceId;
  const active = "s.err_code is null";
  await q(
    `insert into segments (workspace_id, name, type)
     select distinct $1::uuid, s.segment, 'static' from ${CONTACT_STAGE_TABLE} s where ${active} and s.segment is not null order by 2
     on conflict (workspace_id, name) do nothing`,
    [ws],
  );
  // What each join replaced (an undo puts it back), in the same statement: `joined` returns only the memberships it
  // inserted or changed, and the memberships read beside them are as they were before it (one snapshot for the whole
  // statement): none for a join, the replaced value for a change. A file that changes no membership records nothing.
  const saved = ctx.dryRun
    ? ""
    : `,
     saved as (
       insert into import_segment_joins (import_id, person_id, segment_id, row, was_member, before_value, after_value)
       select $2, j.person_id, j.segment_id, s.row, m.person_id is not null, m.value, j.value
       from joined j join ${CONTACT_STAGE_TABLE} s on s.person_id = j.person_id
         left join segment_memberships m on m.segment_id = j.segment_id and m.person_id = j.person_id
       where s.outcome <> 'created' and s.prev_outcome is distinct from 'created'
       on conflict (import_id, person_id, segment_id) do update set after_value = excluded.after_value)`;
  await q(
    `with joined as (
       insert into segment_memberships (workspace_id, segment_id, person_id, value)
       select $1, g.id, s.person_id, s.segment_value from ${CONTACT_STAGE_TABLE} s
         join segments g on g.workspace_id = $1 and g.name = s.segment
       where ${active} and s.segment is not null
       order by g.id, s.person_id
       on conflict (segment_id, person_id) do update set value = excluded.value
         where segment_memberships.value is distinct from excluded.value
       returning person_id, segment_id, value)${saved}
     update ${CONTACT_STAGE_TABLE} s set changed = s.changed || '{segments}', outcome = 'updated'
     where s.person_id in (select person_id from joined) and s.outcome in ('updated', 'unchanged')`,
    ctx.dryRun ? [ws] : [ws, ctx.importId],
  );
  // Only when the batch names a segment the import does not list yet: the import's row is not locked for the rest of
  // the batch otherwise (the parts of a split import would wait on each other here).
  const newSegments = `from segments g
       where g.workspace_id = $1 and not (i.segment_ids @> jsonb_build_array(g.id::text))
         and g.name in (select s.segment from ${CONTACT_STAGE_TABLE} s where ${active} and s.segment is not null)`;
  await q(
    `update imports i set segment_ids = i.segment_ids || (select jsonb_agg(g.id::text order by g.name) ${newSegments})
     where i.id = $2 and exists (select 1 ${newSegments})`,
    [ws, ctx.importId],
  );
}
