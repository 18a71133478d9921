import { Readable } from "node:stream";
import { stringify } from "csv-stringify/sync";
import type { Db } from "../../db/client.js";
import { neutraliseCell } from "../../lib/spreadsheet-safe.js";
import { ERROR_REPORT_COLUMNS } from "./error-report.js";
import { getImport } from "./service.js";

/** Rows fetched per round trip while streaming the report. */
const CURSOR_ROWS = 500;

/**
 * The import's row errors as CSV: `row,column,value,code,message`, one line per error, followed by the row's cells
 * under the file's own headers. Fix the cells and upload the report again as is: the first five columns are ignored.
 * Cells are neutralised for spreadsheets (they repeat what the uploaded file held). Once the upload expired, value and
 * cells are empty and each message says the cells expired.
 */
export async function streamImportErrors(db: Db, workspaceId: string, id: string): Promise<{ filename: string; stream: Readable }> {
  const imp = await getImport(db, workspaceId, id);
  // The report of a re-uploaded report replaces the old report columns instead of repeating them (duplicate headers
  // would make it impossible to upload a third time).
  const own = ERROR_REPORT_COLUMNS.every((c, i) => imp.headers[i] === c) ? ERROR_REPORT_COLUMNS.length : 0;
  const width = imp.headers.length;
  // The cells went with the upload (retention): the report keeps row, column, code and message and says so.
  const expired = imp.cellsExpiredAt !== null;
  async function* lines(): AsyncGenerator<string> {
    yield stringify([[...ERROR_REPORT_COLUMNS, ...imp.headers.slice(own)].map(neutraliseCell)]);
    // A requested run counts from zero: the rows of the run before it (a dry run) stay until the new run claims the import.
    if (imp.errorCount === 0) return;
    const cursor = db.$client`
      select row, "column", value, code, message, record from import_errors
      where import_id = ${imp.id} order by row, seq`.cursor(CURSOR_ROWS);
    for await (const rows of cursor) {
      yield stringify(
        rows.map((r) => {
          const record = (r.record as string[] | null) ?? [];
          const cells = Array.from({ length: width - own }, (_, i) => record[own + i] ?? "");
          const message = expired ? `${r.message as string} (cells expired with the upload)` : (r.message as string);
          return [String(r.row), r.column ?? "", r.value ?? "", r.code, message, ...cells].map((c: string) => neutraliseCell(c));
        }),
      );
    }
  }
  return { filename: `import-${imp.id}-errors.csv`, stream: Readable.from(lines()) };
}
