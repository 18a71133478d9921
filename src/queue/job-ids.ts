/**
 * Every BullMQ job id Roster builds, in one place. An id derives from what Postgres stores, so a job can be looked up
 * again after a Redis restart (BullMQ's own ids restart at 1 and are never stored as references); one id per request
 * makes a job still queued absorb a duplicate request. BullMQ ids may not contain ':'.
 */

/** One run request of an import: a new request (a new queued_at) is a new job, so a finished job never absorbs it. */
export const importRunJobId = (importId: string, queuedAt: Date) => `import-${importId}-${queuedAt.getTime()}`;

/** One part of a split import, per run request of the import (its queued_at), like the import's own run. */
export const importPartJobId = (importId: string, part: number, queuedAt: Date) => `import-part-${importId}-${part}-${queuedAt.getTime()}`;

/** The run of an export (an export is run once; the reconciler removes a finished job before re-enqueueing). */
export const exportRunJobId = (exportId: string) => `export-${exportId}`;

/** One segment's recompute: a request while one is queued is absorbed by it. */
export const segmentRecomputeJobId = (segmentId: string) => `segment-recompute-${segmentId}`;

/** Every dynamic segment of a workspace (after imports): one queued request per workspace. */
export const workspaceRecomputeJobId = (workspaceId: string) => `segments-workspace-${workspaceId}`;

/** One delivery per resource and status, so a validated-then-done import announces both. */
export const webhookDeliveryJobId = (resource: string, resourceId: string, status: string) => `webhook-${resource}-${resourceId}-${status}`;

/** The run of a deletion (fenced and resumable: a rerun under the same id carries on with whoever is left). */
export const deletionRunJobId = (deletionId: string) => `deletion-${deletionId}`;

/** One check of an attribute's stored values per type change (PUT /v1/attributes/:key). */
export const attributeCheckJobId = (checkId: string) => `attribute-check-${checkId}`;

/** The undo of an import (fenced and resumable: a rerun under the same id carries on with what is left). */
export const importUndoJobId = (importId: string) => `import-undo-${importId}`;
