import { desc, sql, type SQL } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import { decodeCursor, encodeCursor } from "../lib/cursor.js";
import { decodeIdCursor } from "../lib/id-cursor.js";
import { ValidationError } from "./errors.js";

const invalidCursor = () => new ValidationError("invalid_cursor", "The cursor is not one this API returned.");

/**
 * Keyset paging of a newest-first list on (createdAt, id): the condition for the rows after `cursor` (undefined on
 * the first page) and the order. Timestamps compare at millisecond precision, what the cursor carries.
 */
export function newestFirst(cols: { createdAt: PgColumn; id: PgColumn }, cursor: string | undefined): { after: SQL | undefined; orderBy: SQL[] } {
  const createdMs = sql`date_trunc('milliseconds', ${cols.createdAt})`;
  let after: SQL | undefined;
  if (cursor !== undefined) {
    const c = decodeCursor(cursor);
    if (!c) throw invalidCursor();
    after = sql`(${createdMs}, ${cols.id}) < (${c.createdAt.toISOString()}::timestamptz, ${c.id}::uuid)`;
  }
  return { after, orderBy: [desc(createdMs), desc(cols.id)] };
}

/** `{data, nextCursor}` from up to limit + 1 rows fetched newest first. */
export function newestFirstPage<R extends { createdAt: Date; id: string }, V>(rows: R[], limit: number, view: (row: R) => V): { data: V[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { data: page.map(view), nextCursor: rows.length > limit && last ? encodeCursor(last.createdAt, last.id) : null };
}

/** The numeric id a keyset page ordered by id ascending starts after (0 on the first page). */
export function idAfter(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  const after = decodeIdCursor(cursor);
  if (after === null) throw invalidCursor();
  return after;
}
