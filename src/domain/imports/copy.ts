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

/**
 * COPY rows into `table` through the reserved connection, honouring the stream's backpressure. A connection that dies
 * mid-COPY (pg_terminate_backend, network) closes the stream without "finish" or "drain": that rejects, never hangs.
 */
export async function copyRows(conn: ReservedSql, table: string, columns: readonly string[], rows: (string | number | null)[][]): Promise<void> {
  if (rows.length === 0) return;
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
  let chunk = "";
  for (const row of rows) {
    chunk += row.map(copyText).join("\t") + "\n";
    if (chunk.length >= CHUNK_BYTES) {
      if (failure) throw failure;
      if (!stream.write(chunk)) await Promise.race([new Promise((r) => stream.once("drain", r)), done]);
      chunk = "";
    }
  }
  if (failure) throw failure;
  if (chunk) stream.write(chunk);
  stream.end();
  await done;
}
