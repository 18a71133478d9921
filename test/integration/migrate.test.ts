import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
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
      "person_labels",
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
