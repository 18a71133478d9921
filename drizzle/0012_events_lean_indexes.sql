ALTER TABLE "events" DROP CONSTRAINT "events_person_id_people_id_fk";
--> statement-breakpoint
DROP INDEX "events_import_row_uq";--> statement-breakpoint
CREATE UNIQUE INDEX "events_import_row_uq" ON "events" USING btree ("import_id","import_row") WHERE "events"."import_row" is not null;