ALTER TABLE "people" ADD COLUMN "created_import_id" uuid;--> statement-breakpoint
ALTER TABLE "people" ADD COLUMN "created_import_row" bigint;--> statement-breakpoint
-- People created by earlier imports get their provenance from their person.created event.
UPDATE "people" p SET "created_import_id" = e.import_id, "created_import_row" = e.import_row
FROM "events" e
WHERE e.person_id = p.id AND e.name = 'person.created' AND e.import_id IS NOT NULL;
