import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  check,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });
const createdAt = () => ts("created_at").notNull().defaultNow();
const bytea = customType<{ data: Buffer }>({ dataType: () => "bytea" });
const id64 = (name = "id") => bigint(name, { mode: "number" });

export const workspaces = pgTable("workspaces", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: text("name").notNull(),
  createdAt: createdAt(),
});

export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    workspaceId: uuid("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    /** First characters of the key, for display only ("rst_ab12…"). */
    displayPrefix: text("display_prefix").notNull(),
    /** SHA-256 of the whole key; the key itself is never stored. */
    keyHash: bytea("key_hash").notNull(),
    createdAt: createdAt(),
    lastUsedAt: ts("last_used_at"),
    revokedAt: ts("revoked_at"),
  },
  (t) => [uniqueIndex("api_keys_key_hash_uq").on(t.keyHash), index("api_keys_workspace_idx").on(t.workspaceId)],
);

/** Stored with fillfactor 90 (drizzle/0018_people_fillfactor.sql): an update that changes no indexed column stays on its page. */
export const people = pgTable(
  "people",
  {
    id: id64().primaryKey().generatedAlwaysAsIdentity(),
    /**
     * No foreign key to workspaces: the id always comes from the authenticated workspace, and workspaces are never
     * deleted, so the check would only cost every person written ~10 µs of CPU (a quarter of an import's people insert).
     */
    workspaceId: uuid("workspace_id").notNull(),
    email: text("email"),
    /**
     * emailKey(email) (src/domain/people/email.ts), written with the email by every path that sets one: the unique
     * index and every match by email use it, never lower(email). Null while the email is null, and for an email
     * the key has not been computed for yet (backfillEmailKeys fills those when migrations run).
     */
    emailKey: text("email_key"),
    externalId: text("external_id"),
    username: text("username"),
    firstName: text("first_name"),
    lastName: text("last_name"),
    name: text("name"),
    companyId: text("company_id"),
    attributes: jsonb("attributes").$type<Record<string, unknown>>().notNull().default({}),
    /**
     * The person's labels: ids of the workspace's `labels`, sorted and distinct. An array on the row instead of a link
     * table: an import writes no second table (two indexes and two foreign-key checks per link), and the GIN index
     * answers the label conditions of segments (`label_ids @> array[id]`). Deleting or merging a label (labels/service.ts)
     * rewrites the arrays that hold it in the same transaction.
     */
    labelIds: id64("label_ids").array().notNull().default(sql`'{}'::bigint[]`),
    /**
     * Provenance: the import (and its data row) that created this person; null for people created otherwise. It is
     * the import's ledger entry for the people it creates (a later row of the same file finds the earlier one here),
     * and what undoing an import deletes. No index: only createSegment and undo read it, by workspace.
     */
    createdImportId: uuid("created_import_id"),
    createdImportRow: bigint("created_import_row", { mode: "number" }),
    createdAt: createdAt(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
    lastSeenAt: ts("last_seen_at"),
  },
  (t) => [
    // The unique identifier indexes hold only set values: a NULL never conflicts, and an import of people without a
    // username (or external id, or email) would otherwise add a NULL entry per person (+1.3 s of PostgreSQL CPU per
    // 1M rows, BENCHMARKS.md 2026-11-29). Lookups by value (`= x`) use them all the same.
    uniqueIndex("people_workspace_email_key_uq").on(t.workspaceId, t.emailKey).where(sql`${t.emailKey} is not null`),
    /** Emails without a key yet: empty, except right after migration 0004 or a write that skipped the key. */
    index("people_email_key_pending_idx").on(t.id).where(sql`${t.email} is not null and ${t.emailKey} is null`),
    uniqueIndex("people_workspace_external_id_uq").on(t.workspaceId, t.externalId).where(sql`${t.externalId} is not null`),
    uniqueIndex("people_workspace_username_uq").on(t.workspaceId, t.username).where(sql`${t.username} is not null`),
    index("people_workspace_id_idx").on(t.workspaceId, t.id),
    index("people_label_ids_gin").using("gin", t.labelIds),
    check("people_has_identifier_ck", sql`num_nonnulls(${t.email}, ${t.externalId}, ${t.username}) > 0`),
  ],
);

export const teamMembers = pgTable(
  "team_members",
  {
    id: id64().primaryKey().generatedAlwaysAsIdentity(),
    workspaceId: uuid("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    email: text("email").notNull(),
    /** emailKey(email), as on people. */
    emailKey: text("email_key"),
    firstName: text("first_name"),
    lastName: text("last_name"),
    /** argon2id hash; the password itself is never stored. */
    passwordHash: text("password_hash"),
    active: boolean("active").notNull().default(true),
    role: text("role"),
    createdAt: createdAt(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("team_members_workspace_email_key_uq").on(t.workspaceId, t.emailKey),
    index("team_members_email_key_pending_idx").on(t.id).where(sql`${t.emailKey} is null`),
  ],
);

export const labels = pgTable(
  "labels",
  {
    id: id64().primaryKey().generatedAlwaysAsIdentity(),
    workspaceId: uuid("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    /** Case-sensitive: "VIP" and "vip" are two labels. */
    name: text("name").notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("labels_workspace_name_uq").on(t.workspaceId, t.name)],
);

/** Known custom attribute keys per workspace, with the type segments compare them as. */
export const attributeDefinitions = pgTable(
  "attribute_definitions",
  {
    workspaceId: uuid("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    type: text("type", { enum: ["string", "number", "boolean", "date"] }).notNull().default("string"),
    createdAt: createdAt(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
    /**
     * The latest check of stored values against `type` (src/domain/attribute-definitions/check.ts): a new id per type
     * change, so a job of an older check finds nothing to write. Null when no check was needed.
     */
    checkId: uuid("check_id"),
    checkStatus: text("check_status", { enum: ["queued", "running", "done", "failed"] }),
    checkChecked: bigint("check_checked", { mode: "number" }),
    checkMismatched: bigint("check_mismatched", { mode: "number" }),
    /** Up to CHECK_SAMPLE_SIZE `{personId, value}` that do not fit, lowest person id first. */
    checkSample: jsonb("check_sample").$type<{ personId: string; value: unknown }[]>(),
    checkFailureReason: text("check_failure_reason"),
    checkFinishedAt: ts("check_finished_at"),
  },
  (t) => [primaryKey({ name: "attribute_definitions_pk", columns: [t.workspaceId, t.key] }), uniqueIndex("attribute_definitions_check_uq").on(t.checkId)],
);

export const events = pgTable(
  "events",
  {
    id: id64().primaryKey().generatedAlwaysAsIdentity(),
    /** No foreign key to workspaces, as on people. */
    workspaceId: uuid("workspace_id").notNull(),
    /**
     * No foreign key to people either: every writer takes the id from the person it has just resolved or inserted in
     * the same transaction, and erasing people (people/erase.ts, the one place that deletes them) deletes their events.
     * The check cost each event ~40% of its insert (it locks the person row FOR KEY SHARE, dirtying its page again).
     */
    personId: id64("person_id").notNull(),
    name: text("name").notNull(),
    occurredAt: ts("occurred_at").notNull().defaultNow(),
    properties: jsonb("properties").$type<Record<string, unknown>>().notNull().default({}),
    /**
     * Set for events an import wrote. An events import writes one event per data row and records the row:
     * (import_id, import_row) is unique, so a replayed row writes nothing twice. A contacts import's person events
     * carry the import id but no row: their batch commits with its checkpoint under the run's fence, so a batch is
     * never written twice, and they stay out of the unique index.
     */
    importId: uuid("import_id"),
    importRow: bigint("import_row", { mode: "number" }),
    createdAt: createdAt(),
  },
  (t) => [
    index("events_person_name_time_idx").on(t.personId, t.name, t.occurredAt),
    index("events_workspace_time_idx").on(t.workspaceId, t.occurredAt),
    index("events_workspace_name_time_idx").on(t.workspaceId, t.name, t.occurredAt),
    uniqueIndex("events_import_row_uq").on(t.importId, t.importRow).where(sql`${t.importRow} is not null`),
  ],
);

export const SEGMENT_STATUSES = ["computing", "ready", "failed"] as const;
export type SegmentStatus = (typeof SEGMENT_STATUSES)[number];

export const segments = pgTable(
  "segments",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    workspaceId: uuid("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    description: text("description"),
    type: text("type", { enum: ["dynamic", "static"] }).notNull(),
    conditions: jsonb("conditions"),
    status: text("status", { enum: SEGMENT_STATUSES }).notNull().default("ready"),
    failureReason: text("failure_reason"),
    memberCount: bigint("member_count", { mode: "number" }).notNull().default(0),
    lastComputedAt: ts("last_computed_at"),
    lastDurationMs: integer("last_duration_ms"),
    /** Set by every recompute request: a recompute that started before it runs once more, so no change is missed. */
    recomputeRequestedAt: ts("recompute_requested_at"),
    createdAt: createdAt(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
  },
  (t) => [uniqueIndex("segments_workspace_name_uq").on(t.workspaceId, t.name)],
);

export const segmentMemberships = pgTable(
  "segment_memberships",
  {
    workspaceId: uuid("workspace_id").notNull(),
    segmentId: uuid("segment_id")
      .notNull()
      .references(() => segments.id, { onDelete: "cascade" }),
    personId: id64("person_id")
      .notNull()
      .references(() => people.id, { onDelete: "cascade" }),
    value: text("value"),
    enteredAt: ts("entered_at").notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "segment_memberships_pk", columns: [t.segmentId, t.personId] }),
    index("segment_memberships_person_idx").on(t.personId),
  ],
);

export const WEBHOOK_STATUSES = ["pending", "delivered", "failed"] as const;
export type WebhookStatus = (typeof WEBHOOK_STATUSES)[number];
/**
 * Which segments a dynamic segment's conditions refer to (segment in/not_in), kept beside the conditions so
 * "who uses this segment" and the dependency order of recomputes are plain lookups. A referenced segment
 * cannot be deleted while a row here points at it.
 */
export const segmentDependencies = pgTable(
  "segment_dependencies",
  {
    workspaceId: uuid("workspace_id").notNull(),
    segmentId: uuid("segment_id")
      .notNull()
      .references(() => segments.id, { onDelete: "cascade" }),
    dependsOnId: uuid("depends_on_id")
      .notNull()
      .references(() => segments.id),
  },
  (t) => [
    primaryKey({ name: "segment_dependencies_pk", columns: [t.segmentId, t.dependsOnId] }),
    index("segment_dependencies_depends_on_idx").on(t.dependsOnId),
  ],
);

export const IMPORT_STATUSES = [
  "draft",
  "queued",
  "validating",
  "validated",
  "processing",
  "done",
  "failed",
  "cancelled",
  "undoing",
  "undone",
] as const;
export type ImportStatus = (typeof IMPORT_STATUSES)[number];

export const imports = pgTable(
  "imports",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    /**
     * No foreign key to workspaces, as on people and events: every insert takes the id from the authenticated API key.
     * The check locked the workspace row FOR KEY SHARE on every enqueue, and concurrent enqueues of one workspace
     * shared that lock through a multixact (BENCHMARKS.md, "Imports, 2026-12-01 (twelfth session)").
     */
    workspaceId: uuid("workspace_id").notNull(),
    kind: text("kind", { enum: ["contacts", "members", "events"] }).notNull().default("contacts"),
    status: text("status", { enum: IMPORT_STATUSES }).notNull().default("draft"),
    filename: text("filename"),
    storageKey: text("storage_key").notNull(),
    sizeBytes: bigint("size_bytes", { mode: "number" }).notNull(),
    /** Size of the file workers read (the UTF-8 copy of a transcoded upload), in which byte offsets count; null: sizeBytes. */
    storedBytes: bigint("stored_bytes", { mode: "number" }),
    encoding: text("encoding").notNull(),
    delimiter: text("delimiter").notNull(),
    /** Byte offset of the first data row in the stored file. */
    dataOffset: bigint("data_offset", { mode: "number" }).notNull().default(0),
    /** Physical lines the header takes (a quoted header cell may span lines). */
    headerLines: integer("header_lines").notNull().default(1),
    headers: jsonb("headers").$type<string[]>().notNull(),
    sample: jsonb("sample").$type<string[][]>().notNull(),
    suggestedMapping: jsonb("suggested_mapping").$type<Record<string, string>>().notNull(),
    identifier: text("identifier"),
    mapping: jsonb("mapping").$type<Record<string, string>>(),
    options: jsonb("options").$type<Record<string, unknown>>().notNull().default({}),
    dryRun: boolean("dry_run").notNull().default(false),
    total: bigint("total", { mode: "number" }).notNull().default(0),
    processed: bigint("processed", { mode: "number" }).notNull().default(0),
    created: bigint("created", { mode: "number" }).notNull().default(0),
    updated: bigint("updated", { mode: "number" }).notNull().default(0),
    unchanged: bigint("unchanged", { mode: "number" }).notNull().default(0),
    skipped: bigint("skipped", { mode: "number" }).notNull().default(0),
    failed: bigint("failed", { mode: "number" }).notNull().default(0),
    errorCount: bigint("error_count", { mode: "number" }).notNull().default(0),
    /** Data rows consumed by committed batches, and the byte offset in the stored file where the next row starts. */
    checkpointRow: bigint("checkpoint_row", { mode: "number" }).notNull().default(0),
    checkpointByte: bigint("checkpoint_byte", { mode: "number" }).notNull().default(0),
    /** Physical lines consumed (header included), so parse errors after a resume still name the right line. */
    checkpointLine: bigint("checkpoint_line", { mode: "number" }).notNull().default(0),
    /** Fencing token: bumped by every run that takes the import; a batch commits only while it still holds the newest. */
    fence: bigint("fence", { mode: "number" }).notNull().default(0),
    attempts: integer("attempts").notNull().default(0),
    cancelRequested: boolean("cancel_requested").notNull().default(false),
    segmentIds: jsonb("segment_ids").$type<string[]>().notNull().default([]),
    failureReason: text("failure_reason"),
    /** Where the finished import is POSTed (signed); null: no webhook. */
    callbackUrl: text("callback_url"),
    /** Outcome of the latest webhook delivery: pending while it is being tried, then delivered or failed. */
    webhookStatus: text("webhook_status", { enum: WEBHOOK_STATUSES }),
    webhookAttempts: integer("webhook_attempts").notNull().default(0),
    webhookLastError: text("webhook_last_error"),
    /**
     * When the stored upload was deleted (retention, the end of a team-member import, an erase): the file, the sample
     * rows and the failed rows' cells are gone; counts and error rows (row, column, code, message) stay.
     */
    uploadExpiredAt: ts("upload_expired_at"),
    /**
     * When the sample rows and the failed rows' cells were deleted: with the file, except for a team-member import,
     * whose file goes when it ends (passwords) while its cells, passwords already redacted, follow UPLOAD_RETENTION_HOURS.
     */
    cellsExpiredAt: ts("cells_expired_at"),
    /** The saved mapping the import started from (`template` on POST /v1/imports), and the file's columns it did not know. */
    template: jsonb("template").$type<ImportTemplateUse>(),
    /** POST /v1/imports/:id/undo: what the undo did so far, and where its run stands (see src/domain/imports/undo.ts). */
    undo: jsonb("undo").$type<ImportUndoState>(),
    createdAt: createdAt(),
    queuedAt: ts("queued_at"),
    startedAt: ts("started_at"),
    finishedAt: ts("finished_at"),
    updatedAt: ts("updated_at").notNull().defaultNow(),
  },
  (t) => [
    index("imports_workspace_created_idx").on(t.workspaceId, t.createdAt.desc(), t.id.desc()),
    index("imports_active_idx").on(t.status).where(sql`${t.status} in ('queued', 'validating', 'processing')`),
    /** The retention sweep's lookup: imports that still hold an upload. */
    index("imports_upload_held_idx").on(t.status, t.updatedAt).where(sql`${t.uploadExpiredAt} is null`),
    check("imports_webhook_status_ck", sql`${t.webhookStatus} in ('pending', 'delivered', 'failed')`),
  ],
);

/**
 * One part of an import split across workers (IMPORT_PARTS): the rows whose identifier hashes to `part` (of `parts`).
 * Each part reads the whole file in order and writes only its rows, under its own fencing token and checkpoint, so
 * parts commit in any order without touching the same person. Its counts are added to the import's as it commits;
 * the part that commits last finishes the import. See src/domain/imports/parts.ts.
 */
export const importParts = pgTable(
  "import_parts",
  {
    importId: uuid("import_id")
      .notNull()
      .references(() => imports.id, { onDelete: "cascade" }),
    part: integer("part").notNull(),
    parts: integer("parts").notNull(),
    status: text("status", { enum: ["queued", "processing", "done"] }).notNull().default("queued"),
    fence: bigint("fence", { mode: "number" }).notNull().default(0),
    attempts: integer("attempts").notNull().default(0),
    checkpointRow: bigint("checkpoint_row", { mode: "number" }).notNull().default(0),
    checkpointByte: bigint("checkpoint_byte", { mode: "number" }).notNull().default(0),
    checkpointLine: bigint("checkpoint_line", { mode: "number" }).notNull().default(0),
    /** People this part created (its statistics refresh counts them across resumed runs). */
    created: bigint("created", { mode: "number" }).notNull().default(0),
    updatedAt: ts("updated_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ name: "import_parts_pk", columns: [t.importId, t.part] })],
);

/** An undo's counts (shown on the import) and its run's state: the status it was undone from, and how far it got. */
export interface ImportUndoState {
  deleted: number;
  restored: number;
  kept: number;
  /** The import's status before the undo was requested (a failed undo run goes back to it). */
  from: "done" | "failed" | "cancelled";
  /** People created by the import with an id up to this one have been dealt with. */
  createdAfter: number;
}

export const importErrors = pgTable(
  "import_errors",
  {
    importId: uuid("import_id")
      .notNull()
      .references(() => imports.id, { onDelete: "cascade" }),
    row: bigint("row", { mode: "number" }).notNull(),
    seq: integer("seq").notNull(),
    column: text("column"),
    value: text("value"),
    code: text("code").notNull(),
    message: text("message").notNull(),
    /** The row's cells as uploaded (secrets redacted), so the error CSV can be fixed and uploaded again; null for skipped rows. */
    record: jsonb("record").$type<string[]>(),
  },
  (t) => [primaryKey({ name: "import_errors_pk", columns: [t.importId, t.row, t.seq] })],
);

/**
 * Which person each import row touched, written in the row's batch transaction. It tells a later row for the
 * same person (in a later batch) that an earlier row of the file must count as skipped, and seeds createSegment.
 * A contacts import writes no entry for a row that creates its person (people.created_import_id/row say it), only
 * for rows that find an existing person. Rows are deleted when the import ends.
 */
export const importPeople = pgTable(
  "import_people",
  {
    // No foreign key to imports: its check was ~3.5 µs a row, ~35 ms of every 10,000 rows a batch writes here. An import
    // deletes these at its end, and the trigger imports_rows_cascade (migration 0020) when the import is deleted.
    importId: uuid("import_id").notNull(),
    personId: id64("person_id").notNull(),
    row: bigint("row", { mode: "number" }).notNull(),
    outcome: text("outcome", { enum: ["created", "updated", "unchanged"] }).notNull(),
  },
  (t) => [primaryKey({ name: "import_people_pk", columns: [t.importId, t.personId] })],
);

/**
 * The before-image of each existing person a contacts import changed: written by the batch's update of changed
 * people, first change wins (on conflict do nothing), so `before` is the person as they were before the import
 * (fields, email_key, attributes, label_ids) and `row` the first row that changed them. Read (and worked off) by an undo.
 */
export const importChanges = pgTable(
  "import_changes",
  {
    // No foreign key to imports: its check was ~3.5 µs a row, ~35 ms of every 10,000 rows a batch writes here. An import
    // deletes these at its end, and the trigger imports_rows_cascade (migration 0020) when the import is deleted.
    importId: uuid("import_id").notNull(),
    personId: id64("person_id").notNull(),
    row: bigint("row", { mode: "number" }).notNull(),
    before: jsonb("before").$type<Record<string, unknown>>().notNull(),
  },
  (t) => [primaryKey({ name: "import_changes_pk", columns: [t.importId, t.personId] })],
);

/**
 * The static-segment joins a contacts import made for people it did not create (an undo erases those): one row per
 * (person, segment) whose membership the import added or whose value it changed. `wasMember`/`beforeValue` is what
 * the join replaced (first change wins), `afterValue` what the import left (last change wins), `row` the first row
 * (for a `createSegment` join, the person's last row). Written by the batch's membership upsert (segment column) and
 * by the finish (createSegment); read and worked off by an undo; an erase deletes a person's. No foreign keys: a
 * segment deleted since has nothing left to undo, and an import that ever joined anyone is never deleted (only drafts
 * and never-enqueued imports are); the per-row check of a foreign key to imports made up about a third of what the
 * recording adds to the membership upsert (A/B in the commit that dropped it).
 */
export const importSegmentJoins = pgTable(
  "import_segment_joins",
  {
    importId: uuid("import_id").notNull(),
    personId: id64("person_id").notNull(),
    segmentId: uuid("segment_id").notNull(),
    row: bigint("row", { mode: "number" }).notNull(),
    wasMember: boolean("was_member").notNull(),
    beforeValue: text("before_value"),
    afterValue: text("after_value"),
  },
  (t) => [primaryKey({ name: "import_segment_joins_pk", columns: [t.importId, t.personId, t.segmentId] })],
);

export const EXPORT_STATUSES = ["queued", "processing", "done", "failed", "expired"] as const;
export type ExportStatus = (typeof EXPORT_STATUSES)[number];

export const exports = pgTable(
  "exports",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    workspaceId: uuid("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    kind: text("kind", { enum: ["users", "events"] }).notNull(),
    /** `expired`: the file was deleted by the cleanup job; the row stays as history. */
    status: text("status", { enum: EXPORT_STATUSES }).notNull().default("queued"),
    params: jsonb("params").$type<Record<string, unknown>>().notNull(),
    storageKey: text("storage_key"),
    rowCount: bigint("row_count", { mode: "number" }),
    sizeBytes: bigint("size_bytes", { mode: "number" }),
    fence: bigint("fence", { mode: "number" }).notNull().default(0),
    failureReason: text("failure_reason"),
    /** Where the finished export (done or failed) is POSTed (signed); null: no webhook. */
    callbackUrl: text("callback_url"),
    /** Outcome of the latest webhook delivery: pending while it is being tried, then delivered or failed. */
    webhookStatus: text("webhook_status", { enum: WEBHOOK_STATUSES }),
    webhookAttempts: integer("webhook_attempts").notNull().default(0),
    webhookLastError: text("webhook_last_error"),
    createdAt: createdAt(),
    startedAt: ts("started_at"),
    finishedAt: ts("finished_at"),
    expiresAt: ts("expires_at"),
  },
  (t) => [
    index("exports_workspace_created_idx").on(t.workspaceId, t.createdAt.desc(), t.id.desc()),
    index("exports_expires_idx").on(t.expiresAt),
    check("exports_webhook_status_ck", sql`${t.webhookStatus} in ('pending', 'delivered', 'failed')`),
  ],
);

export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    workspaceId: uuid("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    /** SHA-256 of method, path and body: the same key with another request is refused. */
    requestHash: text("request_hash").notNull(),
    statusCode: integer("status_code"),
    responseBody: jsonb("response_body"),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ name: "idempotency_keys_pk", columns: [t.workspaceId, t.key] }),
    index("idempotency_keys_created_idx").on(t.createdAt),
  ],
);

export const DELETION_STATUSES = ["queued", "processing", "done", "failed"] as const;
export type DeletionStatus = (typeof DELETION_STATUSES)[number];

/**
 * An erase of many people, run as a job. The selector (conditions or a segment) is kept only until the run has taken
 * its snapshot of who matches (deletion_targets); people named in the request are resolved to ids when it is made, so
 * no email, external id or username of an erased person is ever stored here.
 */
export const deletions = pgTable(
  "deletions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    workspaceId: uuid("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    status: text("status", { enum: DELETION_STATUSES }).notNull().default("queued"),
    /** Which selector the request used; shown after the selector itself is cleared. */
    selectorKind: text("selector_kind", { enum: ["users", "segment", "conditions"] }).notNull(),
    /** `{segmentId}` or `{conditions}` until the snapshot; null afterwards (and for `users`, whose ids are targets at once). */
    selector: jsonb("selector").$type<Record<string, unknown>>(),
    dryRun: boolean("dry_run").notNull().default(false),
    /** People in the snapshot (null until it is taken); `deleted` counts those erased, in committed batches. */
    matched: bigint("matched", { mode: "number" }),
    deleted: bigint("deleted", { mode: "number" }).notNull().default(0),
    /** Fencing token, as on imports: each run bumps it, and a batch commits only while it holds the newest. */
    fence: bigint("fence", { mode: "number" }).notNull().default(0),
    attempts: integer("attempts").notNull().default(0),
    failureReason: text("failure_reason"),
    createdAt: createdAt(),
    startedAt: ts("started_at"),
    finishedAt: ts("finished_at"),
    updatedAt: ts("updated_at").notNull().defaultNow(),
  },
  (t) => [
    index("deletions_workspace_created_idx").on(t.workspaceId, t.createdAt.desc(), t.id.desc()),
    index("deletions_active_idx").on(t.status).where(sql`${t.status} in ('queued', 'processing')`),
  ],
);

/**
 * Who a deletion still has to erase: its snapshot, worked off in person-id order, each batch deleting its rows here in
 * the transaction that erases the people. What is left is what a resumed run does; empty when the deletion is done.
 */
export const deletionTargets = pgTable(
  "deletion_targets",
  {
    deletionId: uuid("deletion_id")
      .notNull()
      .references(() => deletions.id, { onDelete: "cascade" }),
    personId: id64("person_id").notNull(),
  },
  (t) => [primaryKey({ name: "deletion_targets_pk", columns: [t.deletionId, t.personId] })],
);

/** What an import records of the template it was created with (shown as `template` on the import object). */
export interface ImportTemplateUse {
  id: string;
  name: string;
  /** Columns of the file the template has no entry for: they kept their suggested target. */
  unmatched: string[];
}

/**
 * Saved mappings ("mapping templates"): a mapping from column names to targets, with identifier and options, that
 * `template` on POST /v1/imports lays over a new file's suggestion. Names are unique per workspace and kind.
 */
export const mappingTemplates = pgTable(
  "mapping_templates",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    workspaceId: uuid("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    kind: text("kind", { enum: ["contacts", "members", "events"] }).notNull(),
    identifier: text("identifier").notNull(),
    mapping: jsonb("mapping").$type<Record<string, string>>().notNull(),
    options: jsonb("options").$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("mapping_templates_workspace_kind_name_uq").on(t.workspaceId, t.kind, t.name),
    index("mapping_templates_workspace_created_idx").on(t.workspaceId, t.createdAt.desc(), t.id.desc()),
  ],
);

/**
 * Webhook subscriptions to segment membership changes: the `segment.entered` / `segment.left` events written to
 * `events` are delivered in batches, in event id order, from `after_event_id` (the last delivered event) on.
 */
export const webhookSubscriptions = pgTable(
  "webhook_subscriptions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    workspaceId: uuid("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    url: text("url").notNull(),
    events: jsonb("events").$type<string[]>().notNull(),
    /** Only these segments' events; null: every segment's. */
    segmentIds: jsonb("segment_ids").$type<string[]>(),
    /** Events up to this id are delivered (or were written before the subscription existed). */
    afterEventId: bigint("after_event_id", { mode: "number" }).notNull().default(0),
    deliveredCount: bigint("delivered_count", { mode: "number" }).notNull().default(0),
    /** Outcome of the latest delivery attempt: pending while retried, delivered or failed. */
    lastStatus: text("last_status", { enum: WEBHOOK_STATUSES }),
    lastError: text("last_error"),
    lastAttemptAt: ts("last_attempt_at"),
    createdAt: createdAt(),
  },
  (t) => [index("webhook_subscriptions_workspace_created_idx").on(t.workspaceId, t.createdAt.desc(), t.id.desc())],
);
