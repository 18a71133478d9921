import type { Readable } from "node:stream";
import type { Db } from "../../db/client.js";
import { neutraliseSql } from "../../lib/spreadsheet-safe.js";
import { getImport } from "./service.js";

/**
 * The import's row errors as CSV (`row,column,value,code,message`), formatted and streamed by Postgres.
 * Values are neutralised for spreadsheets: they repeat what the uploaded file held.
 */
export async function streamImportErrors(db: Db, workspaceId: string, id: string): Promise<{ filename: string; stream: Readable }> {
  const imp = await getImport(db, workspaceId, id);
  const query = `copy (
      select row, ${neutraliseSql('"column"')} as "column", ${neutraliseSql("value")} as value, code, message
      from import_errors where import_id = '${imp.id}' order by row, seq
    ) to stdout with (format csv, header)`;
  const stream = await db.$client.unsafe(query).readable();
  return { filename: `import-${imp.id}-errors.csv`, stream };
}
