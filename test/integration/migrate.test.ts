import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { backfillEmailKeys } from "../../src/db/email-keys.js";
import { MIGRATIONS_DIR, runMigrations } from "../../src/db/migrate.js";
import { dbUrl } from "../helpers/global-setup.js";
import { REPO_ROOT, closedPort, isListening, spawnTs, withPort } from "../helpers/processes.js";

const MIGRATE_CLI = "src/db/migrate-cli.ts";
/** Generous: each process starts tsx, then waits its turn on the migration lock. */
const EXIT_WITHIN_MS = 45_000;

const adminUrl = inject("pgAdminUrl");
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
const created: string[] = [];

async function createEmptyDatabase(): Promise<string> {
  const name = `roster_mig_${randomBytes(4).toString("hex")}`;
  await admin.unsafe(`create database "${name}"`);
  created.push(name);
  return name;
}

async function journalEntries(): Promise<number> {
  const journal = JSON.parse(await readFile(path.join(REPO_ROOT, "drizzle/meta/_journal.json"), "utf8")) as { entries: unknown[] };
  return journal.entries.length;
}

/** Runs migrate-cli once with exactly these variables and resolves with its exit and output. */
async function runMigrateCli(env: Record<string, string>) {
  const p = spawnTs(MIGRATE_CLI, env);
  try {
    const exit = await p.exited(EXIT_WITHIN_MS);
    return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
  } finally {
    await p.kill();
  }
}

afterAll(async () => {
  for (const name of created) await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end();
});

describe("migrate-cli on a fresh database", () => {
  let name: string;
  let db: postgres.Sql;
  let results: Awaited<ReturnType<typeof runMigrateCli>>[];

  beforeAll(async () => {
    name = await createEmptyDatabase();
    db = postgres(dbUrl(adminUrl, name), { max: 1, onnotice: () => {} });
    const env = { DATABASE_URL: dbUrl(adminUrl, name), LOG_LEVEL: "silent" };
    // Two at once, as when several replicas start together.
    results = await Promise.all([runMigrateCli(env), runMigrateCli(env)]);
  }, 2 * EXIT_WITHIN_MS);

  afterAll(async () => {
    await db?.end();
  });

  it("both concurrent processes exit 0", () => {
    for (const r of results) expect({ code: r.code, signal: r.signal }, r.stderr + r.stdout).toEqual({ code: 0, signal: null });
  });

  it("creates every table", async () => {
    const rows = await db<{ table_name: string }[]>`
      select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`;
    const tables = rows.map((r) => r.table_name);
    for (const table of [
      "workspaces",
      "api_keys",
      "people",
      "team_members",
      "labels",
      "attribute_definitions",
      "events",
      "segments",
      "segment_memberships",
      "imports",
      "import_errors",
      "import_people",
      "exports",
      "idempotency_keys",
    ]) {
      expect(tables, `table ${table}`).toContain(table);
    }
  });

  it("leaves a tenth of each people page free, for updates that stay on their page", async () => {
    const [row] = await db<{ options: string[] }[]>`select reloptions as options from pg_class where oid = 'people'::regclass`;
    expect(row?.options).toContain("fillfactor=90");
  });

  it("deleting an import deletes its ledger and before-images (a trigger: their rows carry no foreign key to check)", async () => {
    const [ws] = await db`insert into workspaces (name) values ('cascade') returning id`;
    const imp = async () => {
      const [row] = await db`
        insert into imports (workspace_id, kind, status, filename, storage_key, size_bytes, encoding, delimiter, headers, sample, suggested_mapping)
        values (${ws!.id}, 'contacts', 'draft', 'x.csv', 'k', 1, 'utf-8', ',', '[]', '[]', '{}') returning id`;
      return row!.id as string;
    };
    const [gone, kept] = [await imp(), await imp()];
    for (const id of [gone, kept]) {
      await db`insert into import_people (import_id, person_id, row, outcome) values (${id}, 1, 1, 'updated'), (${id}, 2, 2, 'unchanged')`;
      await db`insert into import_changes (import_id, person_id, row, before) values (${id}, 1, 1, '{}'::jsonb)`;
    }
    await db`delete from imports where id = ${gone}`;
    const left = await db`
      select 'people' as t, import_id from import_people union all select 'changes', import_id from import_changes order by 1, 2`;
    expect(left.map((r) => [r.t, r.import_id])).toEqual([
      ["changes", kept],
      ["people", kept],
      ["people", kept],
    ]);
    const fks = await db`select conname from pg_constraint where contype = 'f' and conrelid in ('import_people'::regclass, 'import_changes'::regclass)`;
    expect(fks).toEqual([]);
  });

  it("records each migration of the journal exactly once", async () => {
    const [row] = await db<{ n: number }[]>`select count(*)::int as n from drizzle.__drizzle_migrations`;
    expect(row?.n).toBe(await journalEntries());
  });

  it("a third run on the migrated database is a no-op that exits 0", async () => {
    const r = await runMigrateCli({ DATABASE_URL: dbUrl(adminUrl, name), LOG_LEVEL: "silent" });
    expect({ code: r.code, signal: r.signal }, r.stderr + r.stdout).toEqual({ code: 0, signal: null });
    const [row] = await db<{ n: number }[]>`select count(*)::int as n from drizzle.__drizzle_migrations`;
    expect(row?.n).toBe(await journalEntries());
  });
});

describe("migrate-cli creating its database", () => {
  it("creates a missing database, then migrates it", async () => {
    const name = `roster_mig_${randomBytes(4).toString("hex")}`;
    created.push(name);
    const r = await runMigrateCli({ DATABASE_URL: dbUrl(adminUrl, name), LOG_LEVEL: "silent" });
    expect({ code: r.code, signal: r.signal }, r.stderr + r.stdout).toEqual({ code: 0, signal: null });
    const db = postgres(dbUrl(adminUrl, name), { max: 1, onnotice: () => {} });
    try {
      const [row] = await db<{ n: number }[]>`select count(*)::int as n from drizzle.__drizzle_migrations`;
      expect(row?.n).toBe(await journalEntries());
    } finally {
      await db.end();
    }
  });
});

describe("migrate-cli failures", () => {
  it("exits non-zero when nothing listens at DATABASE_URL", async () => {
    const port = await closedPort();
    expect(await isListening(port)).toBe(false);
    const r = await runMigrateCli({ DATABASE_URL: withPort(dbUrl(adminUrl, "roster_nowhere"), port), LOG_LEVEL: "info" });
    expect(r.signal).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/migration failed/);
  });

  it("exits non-zero on an invalid PORT and names the variable", async () => {
    const r = await runMigrateCli({ DATABASE_URL: dbUrl(adminUrl, "roster_unused"), PORT: "notanumber", LOG_LEVEL: "silent" });
    expect(r.signal).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/\bPORT\b/);
  });

  it("reports an invalid configuration as a clean message, without a stack trace (like server.ts and workers/main.ts)", async () => {
    const r = await runMigrateCli({ DATABASE_URL: dbUrl(adminUrl, "roster_unused"), PORT: "notanumber", LOG_LEVEL: "silent" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Invalid configuration/);
    expect(r.stderr, r.stderr).not.toMatch(/^\s+at /m);
  });
});

/** A copy of the migrations folder holding only the first `n` migrations of the journal. */
async function migrationsUpTo(n: number): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "roster-migrations-"));
  await mkdir(path.join(dir, "meta"));
  const journal = JSON.parse(await readFile(path.join(MIGRATIONS_DIR, "meta/_journal.json"), "utf8")) as { entries: { tag: string }[] };
  journal.entries = journal.entries.slice(0, n);
  await writeFile(path.join(dir, "meta/_journal.json"), JSON.stringify(journal));
  for (const e of journal.entries) await copyFile(path.join(MIGRATIONS_DIR, `${e.tag}.sql`), path.join(dir, `${e.tag}.sql`));
  return dir;
}

describe("migration 0004 (email keys) on existing data", () => {
  let db: postgres.Sql;
  const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
  const ids = new Map<string, number>();
  let ws: string;

  beforeAll(async () => {
    const name = await createEmptyDatabase();
    const url = dbUrl(adminUrl, name);
    const before = await migrationsUpTo(4);
    try {
      await runMigrations(url, before);
    } finally {
      await rm(before, { recursive: true, force: true });
    }
    db = postgres(url, { max: 1, onnotice: () => {} });
    const [w] = await db`insert into workspaces (name) values ('W') returning id`;
    ws = w!.id as string;
    // Each of these was a person of its own under lower(email), or a person without an email. (istanbul@ could
    // not be one next to İstanbul@: under glibc, lower('İ') is 'i'.)
    const emails: [string, string | null][] = [
      ["ascii", "Ada@Example.com"],
      ["sigma", "ΟΔΥΣΣΕΑΣ@x.test"],
      ["dotted", "İstanbul@x.test"],
      ["nfd", "re\u0301my@x.test"],
      ["nfc", "R\u00e9my@x.test"],
      ["idn", "a@bücher.example"],
      ["puny", "A@xn--bcher-kva.example"],
      ["punyAlone", "b@XN--BCHER-KVA.example"],
      ["none", null],
    ];
    for (const [tag, email] of emails) {
      const [row] = await db`insert into people (workspace_id, email, external_id) values (${ws}, ${email}, ${tag}) returning id`;
      ids.set(tag, Number(row!.id));
    }
    await db`insert into team_members (workspace_id, email) values (${ws}, 'ΟΔΥΣΣΕΑΣ@x.test'), (${ws}, 'Bo@X.test')`;
    await runMigrations(url, undefined, { info: () => {}, warn: (obj: Record<string, unknown>, msg: string) => warnings.push({ obj, msg }) } as never);
  });

  afterAll(async () => {
    await db?.end();
  });

  it("keys every email as emailKey() does, and keeps every row", async () => {
    const rows = await db<{ external_id: string; email: string | null; email_key: string | null }[]>`
      select external_id, email, email_key from people order by id`;
    expect(rows.map((r) => [r.external_id, r.email_key])).toEqual([
      ["ascii", "ada@example.com"],
      ["sigma", "οδυσσεασ@x.test"],
      ["dotted", "i\u0307stanbul@x.test"],
      ["nfd", "r\u00e9my@x.test"],
      // Two people the old index told apart share a key now: the older keeps it, this one keeps its data.
      ["nfc", null],
      ["idn", "a@bücher.example"],
      ["puny", null],
      ["punyAlone", "b@bücher.example"],
      ["none", null],
    ]);
    expect(rows[3]!.email).toBe("re\u0301my@x.test");
    const members = await db`select email, email_key from team_members order by id`;
    expect(members.map((m) => m.email_key)).toEqual(["οδυσσεασ@x.test", "bo@x.test"]);
  });

  it("reports the rows left without a key, naming the row that holds it", () => {
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.obj).toMatchObject({
      count: 2,
      duplicates: [
        { table: "people", id: ids.get("nfc"), heldBy: ids.get("nfd") },
        { table: "people", id: ids.get("puny"), heldBy: ids.get("idn") },
      ],
    });
  });

  it("the unique index is on the key, and later runs find nothing new to key", async () => {
    await expect(db`insert into people (workspace_id, email, email_key) values (${ws}, 'x', 'ada@example.com')`).rejects.toMatchObject({ code: "23505" });
    await db`insert into people (workspace_id, email) values (${ws}, 'Late@Example.com')`;
    const again = await backfillEmailKeys(db);
    expect(again.keyed).toBe(1);
    expect(again.duplicates.map((d) => d.id)).toEqual([ids.get("nfc"), ids.get("puny")]);
    const [late] = await db`select email_key from people where email = 'Late@Example.com'`;
    expect(late!.email_key).toBe("late@example.com");
  });
});
