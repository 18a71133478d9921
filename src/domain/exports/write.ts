/** Streams one export from Postgres (COPY … TO STDOUT) to storage in constant memory, optionally gzipped. */
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import type { Sql } from "../../db/client.js";
import { neutraliseCell } from "../../lib/spreadsheet-safe.js";
import type { Storage } from "../../storage/storage.js";
import type { ExportStatements } from "./sql.js";

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** One CSV field as Postgres's COPY writes them: quoted only when it must be. */
function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

export function headerLine(headers: string[]): string {
  return `${headers.map((h) => csvField(neutraliseCell(h))).join(",")}\n`;
}

async function* prefixed(prefix: Buffer, body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield prefix;
  yield* body;
}

export interface WriteOptions {
  gzip: boolean;
  bom: boolean;
  statementTimeoutMs: number;
  /** Aborting stops the COPY and rolls back; nothing is published (the storage write is atomic). */
  signal?: AbortSignal;
}

/**
 * Runs the statements in one repeatable-read transaction, so the row count and the rows written come from the same
 * snapshot, and the temp tables live on the connection the COPY runs on. The header is written here rather than by
 * COPY's HEADER option, so no client-chosen name is ever part of SQL text.
 */
export async function writeExport(client: Sql, storage: Storage, key: string, stmts: ExportStatements, opts: WriteOptions): Promise<{ rowCount: number; sizeBytes: number }> {
  return client.begin("isolation level repeatable read", async (tx) => {
    await tx`select set_config('statement_timeout', ${String(opts.statementTimeoutMs)}, true)`;
    let rowCount = 0;
    for (const s of stmts.setup) {
      const res = await tx.unsafe(s.text, s.params as never[]);
      rowCount = res.count;
    }
    if (stmts.count) {
      const [row] = await tx.unsafe<{ n: string }[]>(stmts.count.text, stmts.count.params as never[]);
      rowCount = Number(row?.n ?? 0);
    }
    const copy = await tx.unsafe(stmts.copy).readable();
    const head = Buffer.concat([opts.bom ? UTF8_BOM : Buffer.alloc(0), Buffer.from(headerLine(stmts.headers), "utf8")]);
    const source = Readable.from(prefixed(head, copy as AsyncIterable<Buffer>), { objectMode: false });
    const out = new PassThrough();
    const piping = pipeline([source, ...(opts.gzip ? [createGzip()] : []), out], { signal: opts.signal });
    const [written] = await Promise.all([
      storage.write(key, out, { contentType: opts.gzip ? "application/gzip" : "text/csv" }),
      piping.catch((err: unknown) => {
        out.destroy(err as Error);
        throw err;
      }),
    ]);
    return { rowCount, sizeBytes: written.sizeBytes };
  });
}
