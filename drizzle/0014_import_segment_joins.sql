CREATE TABLE "import_segment_joins" (
	"import_id" uuid NOT NULL,
	"person_id" bigint NOT NULL,
	"segment_id" uuid NOT NULL,
	"row" bigint NOT NULL,
	"was_member" boolean NOT NULL,
	"before_value" text,
	"after_value" text,
	CONSTRAINT "import_segment_joins_pk" PRIMARY KEY("import_id","person_id","segment_id")
);
