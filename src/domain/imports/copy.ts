import type { ReservedSql } from "postgres";

/** Rows are joined into chunks of about this size per write: far fewer writes than one per row. */
const CHUNK_BYTES = 256 * 1024;

/** Escapes a value for COPY's text format; null becomes \N. */
export function copyText(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return "\\N";
  const s = String(v);
  // Fast path: most cells need no escaping.
  if (!/[\\\t\n\r]/.test(s)) return s;
  return s.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r"));
}

/** COPY rows into `table` through the reserved connection, honouring the stream's backpressure. */
export async function copyRows(conn: ReservedSql, table: string, columns: readonly string[], rows: (string | number | null)[][]): Promise<void> {
  if (rows.length === 0) return;
  const stream = await conn.unsafe(`copy ${table} (${columns.join(", ")}) from stdin`).writable();
  const done = new Promise<void>((resolve, reject) => {
    stream.on("finish", resolve);
    stream.on("error", reject);
  });
  let chunk = "";
  for (const row of rows) {
    chunk += row.map(copyText).join("\t") + "\n";
    if (chunk.length >= CHUNK_BYTES) {
      if (!stream.write(chunk)) await new Promise((r) => stream.once("drain", r));
      chunk = "";
    }
  }
  if (chunk) stream.write(chunk);
  stream.end();
  await done;
}
