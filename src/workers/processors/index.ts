import type { Runtime } from "../../runtime.js";
import type { Processors } from "../types.js";
import { exportCleanupProcessor } from "./export-cleanup.js";
import { exportRunProcessor } from "./export-run.js";
import { importRunProcessor } from "./import-run.js";

/** One processor per job kind of the contract (startup fails if one is missing). */
export function buildProcessors(rt: Pick<Runtime, "db" | "storage" | "env">): Processors {
  return {
    "import.run": importRunProcessor({ db: rt.db, storage: rt.storage, batchSize: rt.env.IMPORT_BATCH_SIZE }),
    "export.run": exportRunProcessor({ db: rt.db, storage: rt.storage, ttlDays: rt.env.EXPORT_TTL_DAYS, statementTimeoutMs: rt.env.EXPORT_STATEMENT_TIMEOUT_MS }),
    "export.cleanup": exportCleanupProcessor({ db: rt.db, storage: rt.storage }),
  };
}
