import type { BatchContext, RowHandler } from "../handler.js";
import type { MappingTarget } from "../targets.js";
import { ContactRowEncoder, encodeContactRows, ensureContactStage, markUniqueRows, writeContactBatch, type LabelIds } from "./batch.js";
import { compileContactRows, type ContactRow } from "./validate.js";

/** kind=contacts: people created or updated by their identifier, with labels, segments and person events. */
export function contactsHandler(ctx: BatchContext, headers: string[], mapping: Record<string, MappingTarget>): RowHandler<ContactRow> {
  const labelIds: LabelIds = new Map();
  const rows = compileContactRows(headers, mapping, ctx.identifier, ctx.options);
  return {
    ensureStage: ensureContactStage,
    validate: rows.validate,
    line: rows.line,
    dedupeByKey: true,
    encoder: (expected) => new ContactRowEncoder(expected),
    markUnique: markUniqueRows,
    writeBatch: (conn, b) => writeContactBatch(conn, ctx, b.encoded ?? encodeContactRows(b.staged), labelIds),
  };
}
