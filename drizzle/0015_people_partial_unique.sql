DROP INDEX "people_workspace_email_key_uq";--> statement-breakpoint
DROP INDEX "people_workspace_external_id_uq";--> statement-breakpoint
DROP INDEX "people_workspace_username_uq";--> statement-breakpoint
CREATE UNIQUE INDEX "people_workspace_email_key_uq" ON "people" USING btree ("workspace_id","email_key") WHERE "people"."email_key" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "people_workspace_external_id_uq" ON "people" USING btree ("workspace_id","external_id") WHERE "people"."external_id" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "people_workspace_username_uq" ON "people" USING btree ("workspace_id","username") WHERE "people"."username" is not null;