CREATE TABLE "segment_dependencies" (
	"workspace_id" uuid NOT NULL,
	"segment_id" uuid NOT NULL,
	"depends_on_id" uuid NOT NULL,
	CONSTRAINT "segment_dependencies_pk" PRIMARY KEY("segment_id","depends_on_id")
);
--> statement-breakpoint
ALTER TABLE "segments" ADD COLUMN "recompute_requested_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "segment_dependencies" ADD CONSTRAINT "segment_dependencies_segment_id_segments_id_fk" FOREIGN KEY ("segment_id") REFERENCES "public"."segments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "segment_dependencies" ADD CONSTRAINT "segment_dependencies_depends_on_id_segments_id_fk" FOREIGN KEY ("depends_on_id") REFERENCES "public"."segments"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "segment_dependencies_depends_on_idx" ON "segment_dependencies" USING btree ("depends_on_id");