import type { Db } from "../../db/client.js";
import { failAttributeCheck, runAttributeCheck } from "../../domain/attribute-definitions/check.js";
import type { Processor } from "../types.js";

/**
 * Checks stored values against a key's new type. Like segment jobs it records its own outcome (on the attribute
 * definition) and starts over when retried; the last failed attempt marks the check failed with the reason.
 */
export function attributeCheckProcessor(deps: { db: Db }): Processor<"attribute.check"> {
  return async (payload, ctx) => {
    try {
      const outcome = await runAttributeCheck(deps.db, payload);
      ctx.log.info({ workspaceId: payload.workspaceId, checkId: payload.checkId, ...outcome }, "attribute check finished");
      return outcome;
    } catch (err) {
      const attempts = ctx.job.opts.attempts ?? 1;
      if (ctx.job.attemptsMade + 1 >= attempts) await failAttributeCheck(deps.db, payload, err instanceof Error ? err.message : String(err)).catch(() => {});
      throw err;
    }
  };
}
