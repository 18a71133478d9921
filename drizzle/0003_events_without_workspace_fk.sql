ALTER TABLE "events" DROP CONSTRAINT "events_workspace_id_workspaces_id_fk";
