-- Every change to an API key (a revocation, a delete, a truncate), whichever path makes it, is announced on the channel
-- roster_api_keys at commit, with the hex of the key's hash ("*" for a truncate): each API process listens and drops
-- the key from its in-memory cache (src/domain/workspaces/api-key-cache.ts), so a revoked key stops working everywhere.
CREATE FUNCTION "api_keys_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('roster_api_keys', '*');
    RETURN NULL;
  END IF;
  PERFORM pg_notify('roster_api_keys', encode(OLD."key_hash", 'hex'));
  IF TG_OP = 'UPDATE' AND NEW."key_hash" IS DISTINCT FROM OLD."key_hash" THEN
    PERFORM pg_notify('roster_api_keys', encode(NEW."key_hash", 'hex'));
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "api_keys_notify" AFTER UPDATE OR DELETE ON "api_keys" FOR EACH ROW EXECUTE FUNCTION "api_keys_notify"();--> statement-breakpoint
CREATE TRIGGER "api_keys_notify_truncate" AFTER TRUNCATE ON "api_keys" FOR EACH STATEMENT EXECUTE FUNCTION "api_keys_notify"();
