/**
 * The `conditions` filter of users exports, in the segment condition language. The export stores the client's JSON
 * as sent (checked here at request time) and compiles it when it runs, so relative dates ("within the last 30 days")
 * are read at the time the file is written.
 */
import type { SQL } from "drizzle-orm";
import { compileConditions, parseConditions, referencedSegments } from "../segments/conditions.js";

/** Checks `conditions` (422 invalid_conditions naming each problem); returns what the export stores. */
export function checkConditions(raw: unknown): unknown {
  parseConditions(raw);
  return raw;
}

/** Segment ids a stored conditions tree refers to: each must belong to the export's workspace. */
export function conditionSegments(raw: unknown): string[] {
  return referencedSegments(parseConditions(raw));
}

/** The boolean predicate over people aliased `p`, every value a bound parameter. */
export function conditionsPredicate(raw: unknown, ctx: { workspaceId: string; now: Date }): SQL {
  return compileConditions(parseConditions(raw), ctx);
}
