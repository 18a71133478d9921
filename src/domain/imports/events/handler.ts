import type { BatchContext, RowHandler, ValuesRow } from "../handler.js";
import type { MappingTarget } from "../targets.js";
import { EventRowEncoder, encodeEventRows, ensureEventStage, writeEventBatch } from "./batch.js";
import { eventRowValidator } from "./validate.js";

/** kind=events: one event per row for the person the identifier names; rows never supersede each other. */
export function eventsHandler(ctx: BatchContext, headers: string[], mapping: Record<string, MappingTarget>): RowHandler<ValuesRow> {
  return {
    ensureStage: ensureEventStage,
    validate: eventRowValidator(headers, mapping, ctx.identifier, ctx.options.timezone),
    dedupeByKey: false,
    encoder: (expected) => new EventRowEncoder(expected),
    writeBatch: (conn, b) => writeEventBatch(conn, ctx, b.encoded ?? encodeEventRows(b.staged)),
  };
}
