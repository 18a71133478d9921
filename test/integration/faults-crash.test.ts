import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createClient, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { contactsCsv, expectExactlyOnce, holdAtProcessed, importState, spawnWorker } from "../helpers/faults.js";
import type { Spawned } from "../helpers/processes.js";

const t = useTestContext();
let spawned: Spawned[] = [];

afterEach(async () => {
  await Promise.all(spawned.map((s) => s.kill()));
  spawned = [];
});
const clients: Client[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.app.close()));
});

const ROWS = 20_000;

function worker(env: Record<string, string> = {}): Spawned {
  // Runs parse on a parse thread, as a file over IMPORT_PARSE_THREAD_MIN_BYTES does: killed with the process.
  const w = spawnWorker(t.ctx, { IMPORT_PARSE_THREAD_MIN_BYTES: "0", ...env });
  spawned.push(w);
  return w;
}

async function newClient(name: string): Promise<Client> {
  const c = await createClient(t.ctx, undefined, name);
  clients.push(c);
  return c;
}

async function startImport(client: Client, tag: string): Promise<string> {
  const created = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: contactsCsv(ROWS, tag), headers: { "content-type": "text/csv" } });
  expect(created.status).toBe(201);
  return created.json.id as string;
}

/** Starts a worker, lets it commit at least `rows` more rows than now, then SIGKILLs it mid-import. */
async function killMidImport(id: string, env: Record<string, string>): Promise<void> {
  const before = (await importState(t.ctx, id)).processed;
  const w = worker(env);
  await w.waitFor(/workers started/, 30_000);
  const hold = await holdAtProcessed(t.ctx, id, before + 3_000);
  w.child.kill("SIGKILL");
  expect((await w.exited(10_000)).signal).toBe("SIGKILL");
  await hold.release();
  const s = await importState(t.ctx, id);
  expect(s.status).toBe("processing");
  expect(s.processed).toBeLessThan(ROWS);
  // The checkpoint is exactly what committed batches consumed: whole batches of 1,000.
  expect(s.checkpointRow % 1_000).toBe(0);
  expect(s.checkpointRow).toBe(s.processed);
}

describe("workers killed with SIGKILL twice in a row mid-import", () => {
  it("with the default stall limit, a third worker finishes the import: exact counts, no duplicate people or events", async () => {
    const client = await newClient("TwiceDefault");
    const id = await startImport(client, "d");
    await killMidImport(id, {});
    await killMidImport(id, {});
    const third = worker();
    await third.waitFor(/workers started/, 30_000);
    const done = await waitForImport(client, id, 90_000);
    expect(done.status).toBe("done");
    await expectExactlyOnce(t.ctx, client, id, ROWS);
    const [row] = await t.ctx.db.$client`select attempts from imports where id = ${id}`;
    expect(row?.attempts).toBe(3);
  }, 180_000);

  it("when BullMQ fails the job for stalling too often, the import says failed with the reason, and a start resumes it to an exact result", async () => {
    const client = await newClient("TwiceLimit");
    const id = await startImport(client, "s");
    const env = { WORKER_MAX_STALLED_COUNT: "1" };
    await killMidImport(id, env);
    await killMidImport(id, env);
    const atSecondKill = await importState(t.ctx, id);

    // The next worker finds the job stalled a second time: BullMQ fails it without running it.
    const third = worker(env);
    await third.waitFor(/workers started/, 30_000);
    const failed = await waitForImport(client, id, 30_000);
    expect(failed.status).toBe("failed");
    expect(failed.failureReason).toBe(
      "The import stopped: job stalled more than allowable limit. Committed rows are kept; start it again to resume from the last committed batch.",
    );
    // Nothing ran after the second kill: the checkpoint is the last committed batch.
    expect(await importState(t.ctx, id)).toMatchObject({ processed: atSecondKill.processed, checkpointRow: atSecondKill.checkpointRow });

    const restarted = await client.request("POST", `/v1/imports/${id}/start`);
    expect(restarted.status).toBe(202);
    const done = await waitForImport(client, id, 90_000);
    expect(done.status).toBe("done");
    expect(done.failureReason).toBeNull();
    await expectExactlyOnce(t.ctx, client, id, ROWS);
  }, 180_000);
});

describe("a worker sent SIGTERM during a batch", () => {
  it("exits within its grace period with the checkpoint at the last committed batch; another worker resumes to an exact result", async () => {
    const client = await newClient("Term");
    const id = await startImport(client, "t");
    const first = worker({ SHUTDOWN_TIMEOUT_MS: "5000" });
    await first.waitFor(/workers started/, 30_000);
    const hold = await holdAtProcessed(t.ctx, id, 3_000);
    const sentAt = Date.now();
    first.child.kill("SIGTERM");
    // The batch in flight may commit now; the worker must stop after it.
    await hold.release();
    const exit = await first.exited(10_000);
    expect(Date.now() - sentAt).toBeLessThan(5_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(first.stdout()).toContain("worker shutting down");
    expect(first.stdout()).toContain('"outcome":"interrupted"');

    // The run stopped after the batch in flight committed: the checkpoint is exactly the rows committed, in whole batches.
    const s = await importState(t.ctx, id);
    expect(s.status).toBe("processing");
    expect(s.checkpointRow).toBe(s.processed);
    expect(s.checkpointRow % 1_000).toBe(0);
    expect(s.processed).toBeLessThan(ROWS);
    const [people] = await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${client.workspaceId}`;
    expect(people?.n).toBe(s.processed);

    const second = worker();
    await second.waitFor(/workers started/, 30_000);
    expect((await waitForImport(client, id, 90_000)).status).toBe("done");
    await expectExactlyOnce(t.ctx, client, id, ROWS);
  }, 120_000);
});
