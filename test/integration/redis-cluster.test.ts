import { Cluster } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient, importAndWait, type Client } from "../helpers/api.js";
import { createTestContext, type TestContext } from "../helpers/context.js";
import { csvRows, download, runExportVia } from "../helpers/exports.js";
import { spawnWorker } from "../helpers/faults.js";
import type { Spawned } from "../helpers/processes.js";
import { startRedisCluster, type LocalRedisCluster } from "../helpers/redis-cluster.js";
import { waitForComputed } from "../helpers/segments.js";

// A real three-master Redis Cluster of this file's own: the `{prefix}` hash tag must keep every BullMQ key in one slot,
// or the first multi-key script fails with CROSSSLOT.
let cluster: LocalRedisCluster;
let ctx: TestContext;
let client: Client;
let worker: Spawned | undefined;
beforeAll(async () => {
  cluster = await startRedisCluster();
  ctx = await createTestContext({ REDIS_CLUSTER_NODES: cluster.nodes });
  client = await createClient(ctx, undefined, "Clustered");
}, 60_000);
afterEach(async () => {
  await worker?.kill();
  worker = undefined;
});
afterAll(async () => {
  await client?.app.close();
  await ctx?.close();
  await cluster?.stop();
});

describe("Roster on a three-master Redis Cluster (REDIS_CLUSTER_NODES)", () => {
  it("runs an import, a segment recompute and an export through the cluster; the health probe and metrics see it", async () => {
    expect(ctx.redis).toBeInstanceOf(Cluster);
    worker = spawnWorker(ctx, { REDIS_CLUSTER_NODES: cluster.nodes, RECONCILE_INTERVAL_MS: "1000" });
    await worker.waitFor(/recurring jobs scheduled/, 30_000);

    const imported = await importAndWait(client, "email,first_name,plan\na@x.io,Ann,pro\nb@x.io,Bo,free\nc@x.io,Cy,pro\n", { identifier: "email" });
    expect(imported.status, JSON.stringify(imported)).toBe("done");
    expect(JSON.stringify(imported)).toContain('"created":3');

    const seg = await client.request("POST", "/v1/segments", { payload: { name: "Pro", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "pro" } } });
    expect(seg.status, seg.body).toBe(201);
    const ready = await waitForComputed(client, seg.json.id);
    expect(ready.memberCount).toBe(2);

    const exported = await runExportVia(client, { kind: "users", segmentId: seg.json.id });
    expect(exported.status, JSON.stringify(exported)).toBe("done");
    const file = await download(client, exported.id);
    expect(file.status).toBe(200);
    const rows = csvRows(file.text);
    expect(rows.slice(1).map((r) => r[rows[0]!.indexOf("email")]).sort()).toEqual(["a@x.io", "c@x.io"]);

    // The queue keys sit in one slot, on one master: the hash tag did its job.
    const slots = new Set<number>();
    for (const node of (ctx.redis as Cluster).nodes("master")) {
      for (const key of (await node.keys(`${ctx.env.QUEUE_PREFIX}:*`)).slice(0, 50)) slots.add(Number(await node.cluster("KEYSLOT", key)));
    }
    expect(slots.size).toBe(1);

    const ready2 = await client.app.inject({ method: "GET", url: "/readyz" });
    expect(ready2.statusCode, ready2.body).toBe(200);
    const metrics = await client.app.inject({ method: "GET", url: "/metrics", headers: { authorization: `Bearer ${ctx.env.ADMIN_TOKEN}` } });
    expect(metrics.statusCode).toBe(200);
    // A small file: its import ran in the small-import lane.
    expect(metrics.body).toMatch(/bullmq_job_count\{queue="imports-small", ?state="completed"\} 1/);
  }, 120_000);
});
