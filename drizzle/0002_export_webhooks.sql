ALTER TABLE "exports" ADD COLUMN "callback_url" text;--> statement-breakpoint
ALTER TABLE "exports" ADD COLUMN "webhook_status" text;--> statement-breakpoint
ALTER TABLE "exports" ADD COLUMN "webhook_attempts" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "exports" ADD COLUMN "webhook_last_error" text;--> statement-breakpoint
ALTER TABLE "exports" ADD CONSTRAINT "exports_webhook_status_ck" CHECK ("exports"."webhook_status" in ('pending', 'delivered', 'failed'));