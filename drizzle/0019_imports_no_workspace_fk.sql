ALTER TABLE "imports" DROP CONSTRAINT "imports_workspace_id_workspaces_id_fk";
