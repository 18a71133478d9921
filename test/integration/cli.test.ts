import path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { REPO_ROOT, spawnTs } from "../helpers/processes.js";

const CLI = path.join(REPO_ROOT, "src/cli/main.ts");
const FIXTURES = path.join(REPO_ROOT, "test/fixtures/cli");
const CLI_TIMEOUT_MS = 60_000;

const t = useTestContext();
let app: FastifyInstance;
let workers: WorkerPool;
let client: Client;
let url: string;

beforeAll(async () => {
  app = await buildApp(t.ctx);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const addr = app.server.address();
  url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  client = await createClient(t.ctx, app);
  workers = await startTestWorkers(t.ctx);
});
afterAll(async () => {
  await workers?.close();
  await app?.close();
});

/** Runs `roster <args>` as its own process against the listening server. */
async function roster(args: string[], env: Record<string, string | undefined> = {}) {
  const p = spawnTs(CLI, { ROSTER_URL: url, ROSTER_API_KEY: client.apiKey, ...env }, args);
  const exit = await p.exited(CLI_TIMEOUT_MS);
  return { code: exit.code, stdout: p.stdout(), stderr: p.stderr() };
}

describe("roster CLI against a running server", () => {
  it("import --wait uploads, maps, shows progress and prints the final counts and where the errors are", async () => {
    const res = await roster([
      "import",
      path.join(FIXTURES, "contacts.csv"),
      "--identifier",
      "email",
      "--map",
      "E-mail=email",
      "--map",
      "Given name=first_name",
      "--map",
      "Surname=last_name",
      "--map",
      "Plan=attribute:plan",
      "--wait",
    ]);
    expect(res.stderr).toMatch(/upload\s+\[.*\] 100%/);
    expect(res.stderr).toMatch(/processing\s+\[.*\] 100% \| 4\/4 rows \| done/);
    expect(res.code).toBe(0);
    const id = /import ([0-9a-f-]{36}): done/.exec(res.stdout)?.[1];
    expect(id, res.stdout).toBeDefined();
    expect(res.stdout).toContain("rows 4: created 3, updated 0, unchanged 0, skipped 0, failed 1");
    expect(res.stdout).toContain(`1 row error(s): ${url}/v1/imports/${id}/errors`);
    expect(res.stdout + res.stderr).not.toContain(client.apiKey);
    // --wait follows the progress stream instead of polling the import.
    const logs = t.ctx.logs.join("");
    expect(logs).toContain(`"url":"/v1/imports/${id}/progress"`);
    expect(logs).not.toContain(`"url":"/v1/imports/${id}"`);

    const view = await client.request("GET", `/v1/imports/${id}`);
    expect(view.json).toMatchObject({ status: "done", filename: "contacts.csv", identifier: "email" });
    expect(view.json.mapping).toEqual({ "E-mail": "email", "Given name": "first_name", Surname: "last_name", Plan: "attribute:plan" });
    const people = await t.ctx.db.$client`select email, first_name, attributes from people where workspace_id = ${client.workspaceId} order by email`;
    expect(people.map((p) => [p.email, p.first_name, p.attributes.plan])).toEqual([
      ["ada@example.com", "Ada", "pro"],
      ["alan@example.com", "Alan", "pro"],
      ["grace@example.com", "Grace", "free"],
    ]);
  });

  it("exits non-zero and says why when the import fails (an unterminated quote)", async () => {
    const res = await roster(["import", path.join(FIXTURES, "unterminated-quote.csv"), "--identifier", "email", "--wait"]);
    expect(res.code).not.toBe(0);
    expect(res.stdout).toMatch(/import [0-9a-f-]{36}: failed/);
    expect(res.stdout).toMatch(/reason: .*quote/i);
  });

  it("without --wait prints the queued import and returns", async () => {
    const res = await roster(["import", path.join(FIXTURES, "contacts.csv"), "--map", "E-mail=email"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/import [0-9a-f-]{36}: queued/);
  });

  it("imports list shows the imports, newest first", async () => {
    const res = await roster(["imports", "list"]);
    expect(res.code).toBe(0);
    const lines = res.stdout.trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/failed .*unterminated-quote\.csv$/);
    expect(lines[2]).toMatch(/done .*created 3 .*contacts\.csv$/);
    const failed = await roster(["imports", "list", "--status", "failed", "--json"]);
    expect(JSON.parse(failed.stdout).map((v: { filename: string }) => v.filename)).toEqual(["unterminated-quote.csv"]);
  });

  it("fails clearly on a bad key, a bad --map and a missing key", async () => {
    const badKey = await roster(["imports", "list"], { ROSTER_API_KEY: "rk_wrong" });
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toContain("(unauthorized, HTTP 401)");
    const badMap = await roster(["import", path.join(FIXTURES, "contacts.csv"), "--map", "Nope=email"]);
    expect(badMap.code).toBe(1);
    expect(badMap.stderr).toContain("--map names columns the file does not have: Nope");
    const noKey = await roster(["imports", "list"], { ROSTER_API_KEY: undefined });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain("Set ROSTER_API_KEY");
  });

  it("export users --out --wait writes the finished CSV to the file", async () => {
    const out = path.join(t.ctx.storageDir, "people.csv");
    const res = await roster(["export", "users", "--out", out, "--column", "email", "--column", "first_name"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/export [0-9a-f-]{36}: done, 3 rows/);
    const { readFile } = await import("node:fs/promises");
    const lines = (await readFile(out, "utf8")).trim().split(/\r?\n/);
    expect(lines[0]).toBe("email,first_name");
    expect(lines.slice(1).sort()).toEqual(["ada@example.com,Ada", "alan@example.com,Alan", "grace@example.com,Grace"]);
  });

  it("segments recompute --all queues every dynamic segment and no static one", async () => {
    const dyn = await client.request("POST", "/v1/segments", { payload: { name: "Pro", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "pro" } } });
    const stat = await client.request("POST", "/v1/segments", { payload: { name: "Hand-picked", type: "static" } });
    expect([dyn.status, stat.status]).toEqual([201, 201]);
    const res = await roster(["segments", "recompute", "--all"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`segment ${dyn.json.id}: recompute queued`);
    expect(res.stdout).not.toContain(stat.json.id);
    expect(res.stdout).toContain("1 segment(s) queued");
    for (let i = 0; i < 100; i++) {
      const seg = await client.request("GET", `/v1/segments/${dyn.json.id}`);
      if (seg.json.status === "ready" && seg.json.memberCount === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const seg = await client.request("GET", `/v1/segments/${dyn.json.id}`);
    expect(seg.json).toMatchObject({ status: "ready", memberCount: 2 });
  });
});
