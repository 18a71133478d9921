/**
 * The `conditions` filter of users exports. The segment condition language is not on this branch yet, so a request
 * that uses it is refused with a clear 422 rather than silently exporting everyone.
 */
import type { SQL } from "drizzle-orm";
import { ValidationError } from "../errors.js";

/** Checks `conditions` at request time; the value returned is what the export stores. */
export function checkConditions(_raw: unknown): unknown {
  throw new ValidationError(
    "conditions_not_supported",
    "Filtering an export by conditions is not supported yet; limit the export with segmentId instead.",
    { problems: [{ field: "conditions", reason: "Not supported yet." }] },
  );
}

/** The predicate over people aliased `p` for stored conditions (never reached while checkConditions refuses them). */
export function conditionsPredicate(_conditions: unknown, _ctx: { workspaceId: string; now: Date }): SQL {
  throw new ValidationError("conditions_not_supported", "Filtering an export by conditions is not supported yet.");
}
