ALTER TABLE "people" ADD COLUMN "label_ids" bigint[] DEFAULT '{}'::bigint[] NOT NULL;--> statement-breakpoint
-- Existing links move onto their person, sorted and distinct, before the link table goes.
UPDATE "people" p SET "label_ids" = x.ids
FROM (SELECT pl.person_id, array_agg(DISTINCT pl.label_id ORDER BY pl.label_id) AS ids FROM "person_labels" pl GROUP BY pl.person_id) x
WHERE p.id = x.person_id;--> statement-breakpoint
DROP TABLE "person_labels" CASCADE;--> statement-breakpoint
CREATE INDEX "people_label_ids_gin" ON "people" USING gin ("label_ids");
