import type { Db } from "../../db/client.js";
import { cleanupExpiredExports } from "../../domain/exports/cleanup.js";
import type { Storage } from "../../storage/storage.js";
import type { Processor } from "../types.js";

export function exportCleanupProcessor(deps: { db: Db; storage: Storage }): Processor<"export.cleanup"> {
  return async (_payload, ctx) => cleanupExpiredExports({ db: deps.db, storage: deps.storage, log: ctx.log });
}
