CREATE TABLE "deletion_targets" (
	"deletion_id" uuid NOT NULL,
	"person_id" bigint NOT NULL,
	CONSTRAINT "deletion_targets_pk" PRIMARY KEY("deletion_id","person_id")
);
--> statement-breakpoint
CREATE TABLE "deletions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"workspace_id" uuid NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"selector_kind" text NOT NULL,
	"selector" jsonb,
	"dry_run" boolean DEFAULT false NOT NULL,
	"matched" bigint,
	"deleted" bigint DEFAULT 0 NOT NULL,
	"fence" bigint DEFAULT 0 NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"failure_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "imports" ADD COLUMN "upload_expired_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "imports" ADD COLUMN "cells_expired_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "deletion_targets" ADD CONSTRAINT "deletion_targets_deletion_id_deletions_id_fk" FOREIGN KEY ("deletion_id") REFERENCES "public"."deletions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deletions" ADD CONSTRAINT "deletions_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "deletions_workspace_created_idx" ON "deletions" USING btree ("workspace_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "deletions_active_idx" ON "deletions" USING btree ("status") WHERE "deletions"."status" in ('queued', 'processing');--> statement-breakpoint
CREATE INDEX "imports_upload_held_idx" ON "imports" USING btree ("status","updated_at") WHERE "imports"."upload_expired_at" is null;