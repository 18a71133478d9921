ALTER TABLE "attribute_definitions" ADD COLUMN "updated_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "attribute_definitions" ADD COLUMN "check_id" uuid;--> statement-breakpoint
ALTER TABLE "attribute_definitions" ADD COLUMN "check_status" text;--> statement-breakpoint
ALTER TABLE "attribute_definitions" ADD COLUMN "check_checked" bigint;--> statement-breakpoint
ALTER TABLE "attribute_definitions" ADD COLUMN "check_mismatched" bigint;--> statement-breakpoint
ALTER TABLE "attribute_definitions" ADD COLUMN "check_sample" jsonb;--> statement-breakpoint
ALTER TABLE "attribute_definitions" ADD COLUMN "check_failure_reason" text;--> statement-breakpoint
ALTER TABLE "attribute_definitions" ADD COLUMN "check_finished_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "attribute_definitions_check_uq" ON "attribute_definitions" USING btree ("check_id");