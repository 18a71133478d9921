import type { Runtime } from "../../runtime.js";
import type { Processors } from "../types.js";
import { importRunProcessor } from "./import-run.js";

/** One processor per job kind of the contract (startup fails if one is missing). */
export function buildProcessors(rt: Pick<Runtime, "db" | "storage" | "env" | "metrics">): Processors {
  return {
    "import.run": importRunProcessor({ db: rt.db, storage: rt.storage, batchSize: rt.env.IMPORT_BATCH_SIZE, metrics: rt.metrics }),
  };
}
