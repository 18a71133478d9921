ALTER TABLE "import_errors" ADD COLUMN "record" jsonb;--> statement-breakpoint
ALTER TABLE "imports" ADD COLUMN "callback_url" text;--> statement-breakpoint
ALTER TABLE "imports" ADD COLUMN "webhook_status" text;--> statement-breakpoint
ALTER TABLE "imports" ADD COLUMN "webhook_attempts" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "imports" ADD COLUMN "webhook_last_error" text;--> statement-breakpoint
ALTER TABLE "imports" ADD CONSTRAINT "imports_webhook_status_ck" CHECK ("imports"."webhook_status" in ('pending', 'delivered', 'failed'));