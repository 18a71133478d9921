import { createHash, randomUUID } from "node:crypto";
import { PassThrough, Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SQL, getTableColumns, is } from "drizzle-orm";
import type postgres from "postgres";
import type { Db } from "../../db/client.js";
import { imports } from "../../db/schema.js";
import type { Storage } from "../../storage/storage.js";
import { DomainError, ValidationError } from "../errors.js";
import { applyTemplate, resolveTemplate } from "../mapping-templates/service.js";
import { mergeMapping, resolveRequestedMapping, suggestMapping, validateMapping, type ImportKind, type MappingField } from "./mapping.js";
import { redactSample } from "./members/redact.js";
import { decodeStream, sniffCsv, type SniffResult } from "./sniff.js";
import { EncodingScanner, encodingRefusal, judgeEncoding, type EncodingScan } from "./encoding-scan.js";

/** What the sniffer reads first; a header longer than that (thousands of columns) gets a second, larger look. */
const HEAD_BYTES = 64 * 1024;
const LARGE_HEAD_BYTES = 4 * 1024 * 1024;

export interface StoredUpload {
  key: string;
  sizeBytes: number;
  /** SHA-256 of the bytes as uploaded: part of the Idempotency-Key fingerprint. */
  sha256: string;
  /** The first min(sizeBytes, HEAD_BYTES) bytes, kept as they streamed past, so the sniffer need not read the file back. */
  head?: Buffer;
  /** What every byte of the upload says about its encoding (the sniffer sees only the head). */
  encodingScan: EncodingScan;
}

/** Streams an upload into storage (never buffered whole, unless it came whole), counting and hashing it; too large → 413, nothing kept. */
export async function storeUpload(storage: Storage, workspaceId: string, body: Readable | Buffer, maxBytes: number): Promise<StoredUpload> {
  const key = `uploads/${workspaceId}/${randomUUID()}.upload`;
  if (Buffer.isBuffer(body)) {
    // Already in memory (a pasted CSV): hashed and written as is, no streams.
    const { sizeBytes } = await storage.write(key, body, { maxBytes, contentType: "text/csv" });
    const scanner = new EncodingScanner();
    scanner.push(body);
    // Only an Idempotency-Key fingerprint reads the hash: computed then, from the bytes still in memory.
    let sha256: string | undefined;
    return {
      key,
      sizeBytes,
      get sha256() {
        return (sha256 ??= createHash("sha256").update(body).digest("hex"));
      },
      head: body.subarray(0, HEAD_BYTES),
      encodingScan: scanner.end(),
    };
  }
  const hash = createHash("sha256");
  const scanner = new EncodingScanner();
  const headChunks: Buffer[] = [];
  let headBytes = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      scanner.push(chunk);
      if (headBytes < HEAD_BYTES) {
        const part = chunk.subarray(0, HEAD_BYTES - headBytes);
        // A copy: the stream may reuse the chunk's memory after this callback.
        headChunks.push(Buffer.from(part));
        headBytes += part.length;
      }
      cb(null, chunk);
    },
  });
  const through = new PassThrough();
  const piping = pipeline(body, hasher, through);
  // Both settle before anything is thrown, so a failed upload's partial file is gone by the time the client hears of it.
  const [stored, piped] = await Promise.allSettled([
    storage.write(key, through, { maxBytes, contentType: "text/csv" }),
    piping.catch((err: unknown) => {
      through.destroy(err as Error);
      throw err;
    }),
  ]);
  // The storage's own verdict (too large, no space) names the cause; the body's (a stall, a malformed part) otherwise.
  if (stored.status === "rejected" && (stored.reason instanceof DomainError || piped.status === "fulfilled")) throw stored.reason;
  if (piped.status === "rejected") throw piped.reason;
  if (stored.status === "rejected") throw stored.reason;
  const written = stored.value;
  const head = Buffer.concat(headChunks, headBytes);
  // Only a head that matches what storage holds is kept (it always should; anything else reads the file back).
  return { key, sizeBytes: written.sizeBytes, sha256: hash.digest("hex"), encodingScan: scanner.end(), ...(head.length === Math.min(written.sizeBytes, HEAD_BYTES) ? { head } : {}) };
}

export interface NewImportInput {
  kind: ImportKind;
  filename: string | null;
  identifier?: string;
  /** Laid over the suggestion (mergeMapping); "suggested" is the suggestion as it is. */
  mapping?: MappingField;
  options?: unknown;
  /** Validated by the caller (callbackUrlSchema). */
  callbackUrl?: string | null;
  /**
   * Insert the import already `queued` (its run is the caller's to enqueue next, see enqueueImportRun): one statement
   * instead of insert + update. Needs identifier and mapping (422 mapping_required, nothing stored, otherwise).
   */
  start?: boolean;
  /**
   * A saved mapping (id or name) laid over the suggestion before `mapping`; its identifier and options apply unless
   * the request gives its own. `kindGiven`: the request named its kind (else the template's kind is the import's).
   */
  template?: { ref: string; kindGiven: boolean };
}

type ImportRow = typeof imports.$inferSelect;

/** Every column an intake sets; the rest keep their defaults. */
const INSERT_COLUMNS = [
  "workspaceId", "kind", "status", "filename", "storageKey", "sizeBytes", "encoding", "delimiter", "dataOffset", "headerLines", "headers",
  "sample", "suggestedMapping", "identifier", "mapping", "options", "callbackUrl", "queuedAt", "updatedAt", "template", "storedBytes",
] as const;
type InsertedColumn = (typeof INSERT_COLUMNS)[number];

/**
 * The insert runs once per upload. Its SQL is built once, from the drizzle table (column names, SQL types, encoders),
 * and runs as a prepared statement straight on postgres.js: one round trip, and none of drizzle's per-query work. It
 * returns only the columns the database fills itself (SQL defaults: the id, created_at): the new row is the values
 * sent, the schema's defaults and those, so the ~2 KB row (jsonb headers, sample, mappings) is not sent back and
 * parsed again. test/integration/imports-input.test.ts compares the row with a select of it.
 */
const IMPORT_COLUMNS = getTableColumns(imports);
type ImportColumn = keyof typeof IMPORT_COLUMNS;
const SENT = new Set<ImportColumn>(INSERT_COLUMNS);
/** Filled by the database: an SQL default (gen_random_uuid(), now()); one drizzle would compute ($defaultFn) is refused. */
const FILLED_BY_DB = (Object.keys(IMPORT_COLUMNS) as ImportColumn[]).filter((c) => {
  const column = IMPORT_COLUMNS[c];
  if (column.defaultFn !== undefined && !SENT.has(c)) throw new Error(`imports.${c}: a $defaultFn column must be in INSERT_COLUMNS`);
  return !SENT.has(c) && is(column.default, SQL);
});
/** The other columns' values in a new row: their default (as JSON, so each row gets its own copy), else null. */
const DEFAULTS_JSON = JSON.stringify(
  Object.fromEntries(
    (Object.keys(IMPORT_COLUMNS) as ImportColumn[])
      .filter((c) => !SENT.has(c) && !FILLED_BY_DB.includes(c))
      .map((c) => [c, IMPORT_COLUMNS[c].hasDefault ? IMPORT_COLUMNS[c].default : null]),
  ),
);
const quoted = (c: ImportColumn) => `"${IMPORT_COLUMNS[c].name}"`;
// Every parameter carries its column's type, so a null is SQL NULL (never JSON null) and nothing is left to inference.
const IMPORT_INSERT_SQL =
  `insert into "imports" (${INSERT_COLUMNS.map(quoted).join(", ")}) ` +
  `values (${INSERT_COLUMNS.map((c, i) => `$${i + 1}::${IMPORT_COLUMNS[c].getSQLType()}`).join(", ")}) ` +
  `returning ${FILLED_BY_DB.map(quoted).join(", ")}`;

/** Inserts a new import and returns it as a select would. */
async function insertImport(db: Db, values: Pick<ImportRow, InsertedColumn>): Promise<ImportRow> {
  const params = INSERT_COLUMNS.map((c) => {
    const value = values[c];
    return value === null || value === undefined ? null : (IMPORT_COLUMNS[c].mapToDriverValue(value as never) as postgres.ParameterOrJSON<never>);
  });
  const [filled] = await db.$client.unsafe<Record<string, unknown>[]>(IMPORT_INSERT_SQL, params, { prepare: true });
  if (!filled) throw new Error("import insert returned nothing");
  // Object.assign, not {...a, ...b}: spreading objects with this many keys takes V8 ~30 µs, assigning ~2.
  const row: Record<string, unknown> = Object.assign(JSON.parse(DEFAULTS_JSON) as Record<string, unknown>, values);
  for (const c of FILLED_BY_DB) row[c] = IMPORT_COLUMNS[c].mapFromDriverValue(filled[IMPORT_COLUMNS[c].name] as never);
  return row as ImportRow;
}

/**
 * Turns a stored upload into an import (a draft, or queued with `start`): sniffs encoding, delimiter and header;
 * transcodes anything that is not plain UTF-8 so that workers read one format and byte offsets stay exact; suggests
 * a mapping; and, when the caller sent one, validates it. Any problem deletes the upload and throws a ValidationError.
 */
export async function createImportFromUpload(db: Db, storage: Storage, workspaceId: string, upload: StoredUpload, input: NewImportInput): Promise<ImportRow> {
  const keys = new Set([upload.key]);
  try {
    if (upload.sizeBytes === 0) throw new ValidationError("empty_file", "The file is empty: the first row must hold the column names.");
    let head = upload.head;
    // The whole file decides between UTF-8 and Windows-1252; a file that is neither is refused before any import exists.
    const verdict = judgeEncoding(upload.encodingScan);
    let sniff = await sniffStored(storage, upload.key, upload.sizeBytes, head, "encoding" in verdict ? verdict.encoding : undefined);
    if ("refuse" in verdict && (sniff.encoding === "utf-8" || sniff.encoding === "windows-1252")) throw await encodingRefusal(storage, upload.key, verdict);
    let key = upload.key;
    const original = sniff;
    if (sniff.encoding !== "utf-8" || sniff.bom) {
      key = upload.key.replace(/\.upload$/, ".utf8.csv");
      keys.add(key);
      const source = await storage.read(upload.key);
      // pipe() does not close the source when the write fails (a full disk): its file handle would leak.
      await storage.write(key, source.pipe(decodeStream(sniff.encoding)).pipe(utf8Encoder())).finally(() => source.destroy());
      await storage.delete(upload.key);
      keys.delete(upload.key);
      head = undefined;
      sniff = await sniffStored(storage, key, await storage.size(key));
    }
    const tpl = input.template ? await resolveTemplate(db, workspaceId, input.template.ref, input.template.kindGiven ? input.kind : undefined) : null;
    const kind = tpl?.kind ?? input.kind;
    const suggested = suggestMapping(sniff.headers, kind);
    const applied = tpl ? applyTemplate(sniff.headers, suggested, tpl) : null;
    const validated = applied
      ? validateMapping({
          kind,
          headers: sniff.headers,
          identifier: input.identifier ?? tpl?.identifier ?? "",
          mapping: input.mapping === "suggested" ? suggested : mergeMapping(sniff.headers, applied.mapping, input.mapping ?? {}),
          options: input.options ?? tpl?.options ?? {},
        })
      : input.identifier !== undefined || input.mapping !== undefined
        ? resolveRequestedMapping(kind, sniff.headers, input.identifier ?? "", input.mapping, input.options)
        : null;
    if (input.start && (!validated?.mapping || !validated.identifier)) {
      throw new ValidationError("mapping_required", "Set the identifier and mapping first (PUT /v1/imports/:id/mapping).");
    }
    const now = new Date();
    const row = await insertImport(db, {
      workspaceId,
      kind,
      status: input.start ? "queued" : "draft",
      filename: input.filename,
      storageKey: key,
      sizeBytes: upload.sizeBytes,
      encoding: original.encoding,
      delimiter: sniff.delimiter,
      dataOffset: sniff.headerBytes,
      headerLines: await countHeaderLines(storage, key, sniff.headerBytes, head),
      headers: sniff.headers,
      sample: redactSample(kind, sniff.headers, sniff.sample, validated?.mapping ?? suggested),
      suggestedMapping: suggested,
      identifier: validated?.identifier ?? null,
      mapping: validated?.mapping ?? null,
      options: validated?.options ?? {},
      callbackUrl: input.callbackUrl ?? null,
      queuedAt: input.start ? now : null,
      updatedAt: now,
      template: applied?.use ?? null,
      // Progress counts bytes in the file the worker reads, which a transcoded upload's copy is.
      storedBytes: key === upload.key ? upload.sizeBytes : await storage.size(key),
    });
    return row;
  } catch (err) {
    await Promise.all([...keys].map((k) => storage.delete(k).catch(() => {})));
    throw err;
  }
}

async function readHead(storage: Storage, key: string, size: number, bytes: number): Promise<Buffer> {
  const stream = await storage.read(key, { start: 0, end: Math.min(size, bytes) - 1 });
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `known`: the file's first bytes captured while it was stored (StoredUpload.head); read back from storage without it. */
async function sniffStored(storage: Storage, key: string, size: number, known?: Buffer, encoding?: "utf-8" | "windows-1252"): Promise<SniffResult> {
  const head = known && known.length === Math.min(size, HEAD_BYTES) ? known : await readHead(storage, key, size, HEAD_BYTES);
  try {
    return sniffCsv(head, { isComplete: size <= HEAD_BYTES, encoding });
  } catch (err) {
    if (!(err instanceof ValidationError && err.code === "header_too_long") || size <= HEAD_BYTES) throw err;
    const larger = await readHead(storage, key, size, LARGE_HEAD_BYTES);
    return sniffCsv(larger, { isComplete: size <= LARGE_HEAD_BYTES, encoding });
  }
}

async function countHeaderLines(storage: Storage, key: string, headerBytes: number, known?: Buffer): Promise<number> {
  if (headerBytes === 0) return 0;
  const bytes = known && known.length >= headerBytes ? known.subarray(0, headerBytes) : await readHead(storage, key, headerBytes, headerBytes);
  const text = bytes.toString("utf8");
  const breaks = text.match(/\r\n|\n|\r/g)?.length ?? 0;
  return Math.max(1, breaks);
}

function utf8Encoder(): Transform {
  return new Transform({
    transform(chunk: string | Buffer, _enc, cb) {
      cb(null, typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk);
    },
  });
}

