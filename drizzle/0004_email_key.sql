-- Emails are matched on a key computed by one function, emailKey() in src/domain/people/email.ts, and stored next to
-- the email; the unique indexes move from lower(email) to it. SQL fills the key only where its lower() provably
-- equals emailKey(): printable ASCII with no "xn--" (lower() under COLLATE "C" changes A-Z only, whatever the
-- database's locale). Other emails are left null, and so is any later duplicate of a key (an older person keeps it):
-- backfillEmailKeys (src/db/email-keys.ts) computes the rest in JavaScript right after the migrations, and reports
-- the duplicates, which are kept as they are.
DROP INDEX "people_workspace_email_uq";--> statement-breakpoint
DROP INDEX "team_members_workspace_email_uq";--> statement-breakpoint
ALTER TABLE "people" ADD COLUMN "email_key" text;--> statement-breakpoint
ALTER TABLE "team_members" ADD COLUMN "email_key" text;--> statement-breakpoint
UPDATE "people" p SET "email_key" = k.key
FROM (
  SELECT id, lower("email" COLLATE "C") AS key,
    row_number() OVER (PARTITION BY "workspace_id", lower("email" COLLATE "C") ORDER BY id) AS n
  FROM "people"
  WHERE "email" COLLATE "C" ~ '^[!-~]+$' AND "email" !~* 'xn--'
) k
WHERE p.id = k.id AND k.n = 1;--> statement-breakpoint
UPDATE "team_members" m SET "email_key" = k.key
FROM (
  SELECT id, lower("email" COLLATE "C") AS key,
    row_number() OVER (PARTITION BY "workspace_id", lower("email" COLLATE "C") ORDER BY id) AS n
  FROM "team_members"
  WHERE "email" COLLATE "C" ~ '^[!-~]+$' AND "email" !~* 'xn--'
) k
WHERE m.id = k.id AND k.n = 1;--> statement-breakpoint
CREATE UNIQUE INDEX "people_workspace_email_key_uq" ON "people" USING btree ("workspace_id","email_key");--> statement-breakpoint
CREATE INDEX "people_email_key_pending_idx" ON "people" USING btree ("id") WHERE "people"."email" is not null and "people"."email_key" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "team_members_workspace_email_key_uq" ON "team_members" USING btree ("workspace_id","email_key");--> statement-breakpoint
CREATE INDEX "team_members_email_key_pending_idx" ON "team_members" USING btree ("id") WHERE "team_members"."email_key" is null;
