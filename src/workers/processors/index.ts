import type { Runtime } from "../../runtime.js";
import type { Processors } from "../types.js";
import { importRunProcessor } from "./import-run.js";
import { refreshAllProcessor, segmentRecomputeProcessor, workspaceRecomputeProcessor } from "./segments.js";

/** One processor per job kind of the contract (startup fails if one is missing). */
export function buildProcessors(rt: Pick<Runtime, "db" | "storage" | "env" | "producer">): Processors {
  const segmentDeps = { db: rt.db, producer: rt.producer };
  return {
    "import.run": importRunProcessor({ db: rt.db, storage: rt.storage, batchSize: rt.env.IMPORT_BATCH_SIZE, producer: rt.producer }),
    "segment.recompute": segmentRecomputeProcessor(segmentDeps),
    "segments.recompute_workspace": workspaceRecomputeProcessor(segmentDeps),
    "segments.refresh_all": refreshAllProcessor(segmentDeps),
  };
}
