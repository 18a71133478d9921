#!/usr/bin/env node
import { Command } from "commander";
import { loadEnv } from "../config/env.js";
import { createDb } from "../db/client.js";
import { ensureDatabase, runMigrations } from "../db/migrate.js";
import { createWorkspace } from "../domain/workspaces/workspaces.js";
import { ApiError } from "./client.js";
import { registerExportCommands, registerSegmentCommands } from "./exports-segments.js";
import { registerImportCommands } from "./imports.js";

/** The `roster` command line: operator commands that talk to the database directly, and client commands over HTTP. */
export function buildCli(): Command {
  const program = new Command("roster").description("Roster command line").showHelpAfterError();

  const workspace = program.command("workspace").description("manage workspaces (needs DATABASE_URL)");
  workspace
    .command("create")
    .argument("<name>", "the workspace name")
    .option("--json", "print the result as JSON")
    .description("create a workspace and print its id and first API key (shown once)")
    .action(async (name: string, opts: { json?: boolean }) => {
      if (!name.trim()) throw new Error("The workspace name must not be empty.");
      const env = loadEnv();
      await ensureDatabase(env.DATABASE_URL);
      await runMigrations(env.DATABASE_URL);
      const db = createDb(env.DATABASE_URL, { max: 1, applicationName: "roster-cli" });
      try {
        const ws = await createWorkspace(db, name.trim());
        if (opts.json) console.log(JSON.stringify({ id: ws.id, name: ws.name, apiKey: ws.apiKey, keyId: ws.keyId }));
        else console.log(`workspace ${ws.id} (${ws.name})\napi key   ${ws.apiKey}\n(the key is shown once; only its hash is stored)`);
      } finally {
        await db.$client.end({ timeout: 5 });
      }
    });
  registerImportCommands(program);
  registerExportCommands(program);
  registerSegmentCommands(program);
  return program;
}

try {
  await buildCli().parseAsync(process.argv);
} catch (err) {
  console.error(describeError(err));
  process.exitCode = 1;
}

function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    const problems = (err.details as { problems?: { field: string; reason: string }[] } | undefined)?.problems ?? [];
    return [`error: ${err.message} (${err.code}, HTTP ${err.status})`, ...problems.map((p) => `  ${p.field}: ${p.reason}`)].join("\n");
  }
  if (err instanceof Error && "cause" in err && err.cause instanceof Error) return `error: ${err.message}: ${err.cause.message}`;
  return `error: ${err instanceof Error ? err.message : String(err)}`;
}
