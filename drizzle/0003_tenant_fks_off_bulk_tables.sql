ALTER TABLE "events" DROP CONSTRAINT "events_workspace_id_workspaces_id_fk";
--> statement-breakpoint
ALTER TABLE "people" DROP CONSTRAINT "people_workspace_id_workspaces_id_fk";
