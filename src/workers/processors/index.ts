import type { Env } from "../../config/env.js";
import { createSql, type Sql } from "../../db/client.js";
import type { Runtime } from "../../runtime.js";
import type { Processors } from "../types.js";
import { exportCleanupProcessor } from "./export-cleanup.js";
import { exportRunProcessor } from "./export-run.js";
import { importRunProcessor } from "./import-run.js";

/** One processor per job kind of the contract (startup fails if one is missing). */
export function buildProcessors(rt: Pick<Runtime, "db" | "storage" | "env">): Processors {
  return {
    "import.run": importRunProcessor({ db: rt.db, storage: rt.storage, batchSize: rt.env.IMPORT_BATCH_SIZE }),
    "export.run": exportRunProcessor({ db: rt.db, storage: rt.storage, ttlDays: rt.env.EXPORT_TTL_DAYS, timeoutMs: rt.env.EXPORT_TIMEOUT_MS, connect: exportConnection(rt.env) }),
    "export.cleanup": exportCleanupProcessor({ db: rt.db, storage: rt.storage }),
  };
}

/** One connection per export run, with the export's own statement timeout (a big COPY outlives the default). */
export function exportConnection(env: Pick<Env, "DATABASE_URL" | "EXPORT_TIMEOUT_MS">): () => Sql {
  return () => createSql(env.DATABASE_URL, { max: 1, statementTimeoutMs: env.EXPORT_TIMEOUT_MS, applicationName: "roster-export" });
}
