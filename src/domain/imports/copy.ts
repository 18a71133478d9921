import type { ReservedSql } from "postgres";

/** Escapes a value for COPY's text format; null becomes \N. */
export function copyValue(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return "\\N";
  const s = String(v);
  // Fast path: most cells need no escaping.
  if (!/[\\\t\n\r]/.test(s)) return s;
  return s.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r"));
}

/**
 * COPY rows into `table` through the reserved connection, honouring the stream's backpressure. A connection that dies
 * mid-COPY (pg_terminate_backend, network) closes the stream without "finish" or "drain": that rejects, never hangs.
 */
export async function copyRows(conn: ReservedSql, table: string, columns: readonly string[], rows: (string | number | null)[][]): Promise<void> {
  if (rows.length === 0) return;
  // The whole batch is one string written at once (a batch is bounded in rows and bytes): written in pieces, each
  // wait for "drain" let the parser of the next batch hold the event loop while PostgreSQL sat idle mid-COPY.
  let text = "";
  for (const row of rows) text += copyLine(row);
  await copyText(conn, table, columns, text);
}

/** One row as a line of COPY's text format. */
export function copyLine(row: readonly (string | number | null | undefined)[]): string {
  return row.map(copyValue).join("\t") + "\n";
}

/** COPY text already encoded (copyLine; or as UTF-8 bytes) into `table`. */
export async function copyText(conn: ReservedSql, table: string, columns: readonly string[], text: string | Uint8Array): Promise<void> {
  if (text.length === 0) return;
  const stream = await conn.unsafe(`copy ${table} (${columns.join(", ")}) from stdin`).writable();
  let failure: Error | null = null;
  const done = new Promise<void>((resolve, reject) => {
    stream.on("finish", resolve);
    stream.on("error", (err: Error) => {
      failure = err;
      reject(err);
    });
    stream.on("close", () => {
      failure ??= new Error("The database connection closed during COPY.");
      reject(failure);
    });
  });
  done.catch(() => {});
  if (failure) throw failure;
  stream.write(text);
  stream.end();
  await done;
}
