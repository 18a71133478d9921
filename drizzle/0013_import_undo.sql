CREATE TABLE "import_changes" (
	"import_id" uuid NOT NULL,
	"person_id" bigint NOT NULL,
	"row" bigint NOT NULL,
	"before" jsonb NOT NULL,
	CONSTRAINT "import_changes_pk" PRIMARY KEY("import_id","person_id")
);
--> statement-breakpoint
ALTER TABLE "imports" ADD COLUMN "undo" jsonb;--> statement-breakpoint
ALTER TABLE "import_changes" ADD CONSTRAINT "import_changes_import_id_imports_id_fk" FOREIGN KEY ("import_id") REFERENCES "public"."imports"("id") ON DELETE cascade ON UPDATE no action;