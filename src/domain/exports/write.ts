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

/**
 * The header, then the COPY's bytes. postgres.js 3.4.9 can leave its socket paused when the last CopyData filled the
 * stream's buffer in the same chunk as CopyDone (porsager/postgres#499, fix proposed in PR #1016): the transaction's
 * next statement then never gets an answer. The stream's own read() resumes the socket, so it is called once more
 * after the COPY ended.
 */
async function* prefixed(prefix: Buffer, copy: Readable): AsyncGenerator<Buffer> {
  yield prefix;
  // COPY sends one message per row: joined into ~64 KB chunks, every stage downstream (gzip, the byte counter, the
  // file or S3 upload) handles a few thousand chunks instead of a million.
  let parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of copy as AsyncIterable<Buffer>) {
    parts.push(chunk);
    size += chunk.length;
    if (size >= CHUNK_BYTES) {
      yield Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(parts, size);
  (copy as unknown as { _read(size: number): void })._read(0);
}

const CHUNK_BYTES = 64 * 1024;

export class ExportTimeoutError extends Error {
  constructor(ms: number) {
    super(`The export took longer than ${ms} ms (EXPORT_TIMEOUT_MS).`);
  }
}

export interface WriteOptions {
  gzip: boolean;
  bom: boolean;
  /** Aborting (worker shutdown) stops the COPY and rolls back; nothing is published (the storage write is atomic). */
  signal?: AbortSignal;
  /**
   * Client-side deadline for the whole run, besides the connection's statement_timeout: a COPY the server aborts
   * midway never ends its postgres.js stream, so without it a failed run could wait forever.
   */
  timeoutMs: number;
  /**
   * Ends a backend from another connection (pg_terminate_backend). A backend blocked sending COPY data to a client
   * that stopped reading neither sees the client's Terminate nor honours a cancel; only termination frees it (and
   * its snapshot, which would otherwise hold back vacuum until the statement timeout).
   */
  terminateBackend: (pid: number) => Promise<unknown>;
}

/**
 * Runs the statements in one repeatable-read transaction, so the row count and the rows written come from the same
 * snapshot, and the temp tables live on the connection the COPY runs on. The header is written here rather than by
 * COPY's HEADER option, so no client-chosen name is ever part of SQL text.
 *
 * `client` is a connection of this run's own (createSql), always closed here: when anything fails or the run is
 * aborted, its backend is terminated and the connection destroyed, so Postgres rolls back (a postgres.js connection
 * whose COPY was abandoned midway is unusable anyway). The first error is the one reported.
 */
export async function writeExport(client: Sql, storage: Storage, key: string, stmts: ExportStatements, opts: WriteOptions): Promise<{ rowCount: number; sizeBytes: number }> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new ExportTimeoutError(opts.timeoutMs)), opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, deadline.signal]) : deadline.signal;
  let failure: unknown = null;
  let backendPid: number | null = null;
  let killing: Promise<void> | null = null;
  // The client side goes first: a backend terminated under a live postgres.js connection makes it reconnect (to send
  // the transaction's ROLLBACK), and destroying a connection mid-reconnect is an unhandled rejection in postgres.js
  // 3.4.9 (its array-type query), or a write to a null socket (porsager/postgres#1208). Then the backend, which may
  // be blocked sending the rest of the COPY to a socket nobody reads.
  const kill = () =>
    (killing ??= (async () => {
      await client.end({ timeout: 0 }).catch(() => {});
      if (backendPid !== null) await opts.terminateBackend(backendPid).catch(() => {});
    })());
  const onAbort = () => void kill();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal.aborted) throw signal.reason;
    return await client.begin("isolation level repeatable read", async (tx) => {
      try {
        const [me] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
        backendPid = me?.pid ?? null;
        for (const s of stmts.setup) await tx.unsafe(s.text, s.params as never[]);
        const [counted] = await tx.unsafe<{ n: string }[]>(stmts.count.text, stmts.count.params as never[]);
        const rowCount = Number(counted?.n ?? 0);
        const copy = await tx.unsafe(stmts.copy).readable();
        const head = Buffer.concat([opts.bom ? UTF8_BOM : Buffer.alloc(0), Buffer.from(headerLine(stmts.headers), "utf8")]);
        const source = Readable.from(prefixed(head, copy), { objectMode: false });
        const out = new PassThrough();
        const piping = pipeline([source, ...(opts.gzip ? [createGzip()] : []), out], { signal });
        const [written] = await Promise.all([
          storage.write(key, out, { contentType: opts.gzip ? "application/gzip" : "text/csv" }),
          piping.catch((err: unknown) => {
            out.destroy(err as Error);
            throw err;
          }),
        ]);
        return { rowCount, sizeBytes: written.sizeBytes };
      } catch (err) {
        failure ??= err;
        throw err;
      }
    });
  } catch (err) {
    failure ??= err;
    throw signal.aborted ? signal.reason : failure;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    if (failure) await kill();
    else await client.end({ timeout: 5 }).catch(() => {});
  }
}
