import { contactsHandler } from "./contacts/handler.js";
import { eventsHandler } from "./events/handler.js";
import type { BatchContext, RowHandler } from "./handler.js";
import { membersHandler } from "./members/handler.js";
import type { ImportKind, MappingTarget } from "./targets.js";

/** The row handler of each import kind: the only part of the pipeline that differs between kinds. */
export function createRowHandler(kind: ImportKind, ctx: BatchContext, headers: string[], mapping: Record<string, MappingTarget>): RowHandler {
  switch (kind) {
    case "contacts":
      return contactsHandler(ctx, headers, mapping);
    case "members":
      return membersHandler(ctx, headers, mapping);
    case "events":
      return eventsHandler(ctx, headers, mapping);
  }
}
