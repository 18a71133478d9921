/**
 * The statements of one export, run in one repeatable-read transaction (write.ts). COPY takes no bind parameters,
 * so everything a client chose reaches the COPY through temp tables filled with bound parameters:
 * export_people (the matching person ids), export_params (attribute keys), export_event_names. The only values
 * written into SQL text are ones validated here: the workspace uuid and ISO-8601 UTC timestamps.
 */
import { sql, type SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import { neutraliseSql } from "../../lib/spreadsheet-safe.js";
import { isUuid } from "../../lib/uuid.js";
import { USER_JOINS, eventColumnsSql, userColumnsSql, type ColumnSql } from "./columns.js";
import type { ExportParams } from "./request.js";

const dialect = new PgDialect();

export interface Statement {
  text: string;
  params: unknown[];
}

export interface ExportStatements {
  /** Temp tables and their contents, in order. */
  setup: Statement[];
  /** Counts the rows the COPY will write (same snapshot), as `n`. */
  count: Statement;
  copy: string;
  headers: string[];
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function uuidLiteral(v: string): string {
  if (!isUuid(v)) throw new Error(`Not a uuid: ${JSON.stringify(v)}`);
  return `'${v}'::uuid`;
}

function timestampLiteral(v: string): string {
  const iso = new Date(v).toISOString();
  if (!ISO_UTC.test(iso)) throw new Error(`Not an ISO timestamp: ${JSON.stringify(v)}`);
  return `'${iso}'::timestamptz`;
}

function toStatement(q: SQL): Statement {
  const { sql: text, params } = dialect.sqlToQuery(q);
  return { text, params };
}

/** One row; analyzed so the planner does not guess a thousand rows and cost the COPY as a huge nested loop. */
function paramsTable(workspaceId: string, attributeKeys: string[]): Statement[] {
  return [
    { text: "create temp table export_params (attr_keys text[] not null, attr_types text[] not null) on commit drop", params: [] },
    {
      // Each key's declared type (null when undeclared), in the keys' order: attribute cells are formatted by it.
      text: `insert into export_params (attr_keys, attr_types)
        select $1::text[], array(select d.type from unnest($1::text[]) with ordinality k(key, n)
          left join attribute_definitions d on d.workspace_id = $2::uuid and d.key = k.key order by k.n)`,
      params: [attributeKeys, workspaceId],
    },
    { text: "analyze export_params", params: [] },
  ];
}

/**
 * Each cell neutralised in an outer select, so a subquery column (labels) is evaluated once, not three times.
 * The inner query is already in `orderBy` order (an index scan or merge join), so the outer ORDER BY costs no sort.
 */
function copyOf(columns: ColumnSql[], inner: string, orderBy: string): string {
  const cells = columns.map((c, i) => (c.neutralise ? neutraliseSql(`t.c${i}`) : `t.c${i}`));
  // offset 0 keeps Postgres from flattening the subquery (and so from duplicating its expressions).
  return `copy (select ${cells.join(", ")} from (${inner} offset 0) t order by ${orderBy}) to stdout (format csv)`;
}

/**
 * `predicate` is the compiled `conditions` filter (a boolean over people aliased `p`), when there is one. Without a
 * filter the COPY reads the workspace's people directly in id order; with one, the matching ids are materialised
 * first (the predicate has bind parameters, which COPY cannot take) and merge-joined back in id order.
 */
export function usersStatements(workspaceId: string, params: ExportParams, predicate: SQL | null): ExportStatements {
  const { columns, attributeKeys } = userColumnsSql(params.columns);
  const ws = uuidLiteral(workspaceId);
  const exprs = columns.map((c, i) => `, ${c.expr} as c${i}`).join("");
  const filtered = Boolean(params.segmentId || predicate);
  const scope = (alias: string, personId = `${alias}.person_id`) => `${alias}.workspace_id = ${ws}${filtered ? ` and ${personId} in (select id from export_people)` : ""}`;
  const joins = [...new Set(columns.flatMap((c) => (c.join ? [c.join] : [])))].map((j) => ` ${USER_JOINS[j](scope)}`).join("");
  const from = `from people p cross join export_params x${joins} where p.workspace_id = ${ws}`;
  const headers = columns.map((c) => c.header);
  if (!filtered) {
    return {
      setup: paramsTable(workspaceId, attributeKeys),
      count: { text: `select count(*)::bigint as n from people p where p.workspace_id = ${ws}`, params: [] },
      copy: copyOf(columns, `select p.id as pid${exprs} ${from} order by p.id`, "t.pid"),
      headers,
    };
  }
  const where: SQL[] = [sql`p.workspace_id = ${workspaceId}`];
  if (params.segmentId) {
    where.push(
      sql`exists (select 1 from segment_memberships m where m.segment_id = ${params.segmentId} and m.workspace_id = ${workspaceId} and m.person_id = p.id)`,
    );
  }
  if (predicate) where.push(predicate);
  return {
    setup: [
      ...paramsTable(workspaceId, attributeKeys),
      { text: "create temp table export_people (id bigint primary key) on commit drop", params: [] },
      toStatement(sql`insert into export_people (id) select p.id from people p where ${sql.join(where, sql` and `)}`),
      { text: "analyze export_people", params: [] },
    ],
    count: { text: "select count(*)::bigint as n from export_people", params: [] },
    copy: copyOf(columns, `select p.id as pid${exprs} ${from} and p.id in (select id from export_people) order by p.id`, "t.pid"),
    headers,
  };
}

export function eventsStatements(workspaceId: string, params: ExportParams): ExportStatements {
  const columns = eventColumnsSql(params.columns);
  const setup: Statement[] = paramsTable(workspaceId, []);
  const where = [`e.workspace_id = ${uuidLiteral(workspaceId)}`];
  if (params.events) {
    setup.push(
      { text: "create temp table export_event_names (name text primary key) on commit drop", params: [] },
      { text: "insert into export_event_names (name) select distinct unnest($1::text[])", params: [params.events] },
      { text: "analyze export_event_names", params: [] },
    );
    where.push("e.name in (select name from export_event_names)");
  }
  if (params.from) where.push(`e.occurred_at >= ${timestampLiteral(params.from)}`);
  if (params.to) where.push(`e.occurred_at < ${timestampLiteral(params.to)}`);
  const filter = where.join(" and ");
  const exprs = columns.map((c, i) => `${c.expr} as c${i}`);
  const inner = `select e.occurred_at as ord, e.id as eid${exprs.map((e) => `, ${e}`).join("")} from events e join people p on p.id = e.person_id cross join export_params x where ${filter} order by e.occurred_at, e.id`;
  return {
    setup,
    count: { text: `select count(*)::bigint as n from events e where ${filter}`, params: [] },
    copy: copyOf(columns, inner, "t.ord, t.eid"),
    headers: columns.map((c) => c.header),
  };
}
