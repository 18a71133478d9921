import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifySignature, workspaceWebhookSecret } from "../../src/domain/webhooks/signature.js";
import { createClient, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

const SIGNING_KEY = "test-webhook-signing-key-0123456789abcdef";
const t = useTestContext({ WEBHOOK_SIGNING_KEY: SIGNING_KEY, WEBHOOK_BACKOFF_MS: "100", WEBHOOK_MAX_ATTEMPTS: "3" });
let client: Client;
let other: Client;
let workers: WorkerPool;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real receiver on 127.0.0.1 that records each delivery and answers with the status `answer` picks. */
async function startReceiver(answer: (n: number) => number): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(answer(received.length)).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received };
}

async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  client = await createClient(t.ctx);
  other = await createClient(t.ctx, client.app, "Other");
  workers = await startTestWorkers(t.ctx);
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

async function staticSegment(name: string): Promise<string> {
  const res = await client.request("POST", "/v1/segments", { payload: { name, type: "static" } });
  expect(res.status).toBe(201);
  return res.json.id;
}

describe("webhook subscriptions to segment membership", () => {
  it("validates the request and keeps subscriptions per workspace", async () => {
    const seg = await staticSegment("Validation");
    expect((await client.request("POST", "/v1/webhooks", { payload: { url: "ftp://x", events: ["segment.entered"] } })).status).toBe(422);
    expect((await client.request("POST", "/v1/webhooks", { payload: { url: "http://127.0.0.1/x", events: ["person.created"] } })).status).toBe(422);
    const unknown = await client.request("POST", "/v1/webhooks", { payload: { url: "http://127.0.0.1/x", events: ["segment.left"], segmentIds: [seg, "00000000-0000-4000-8000-000000000000"] } });
    expect(unknown.status).toBe(422);
    expect(unknown.json.error.code).toBe("unknown_segment");
    // Another workspace cannot name this workspace's segment, list or delete its subscriptions.
    expect((await other.request("POST", "/v1/webhooks", { payload: { url: "http://127.0.0.1/x", events: ["segment.left"], segmentIds: [seg] } })).status).toBe(422);
    const created = await client.request("POST", "/v1/webhooks", { payload: { url: "http://127.0.0.1:9/x", events: ["segment.left"], segmentIds: [seg] } });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe(`/v1/webhooks/${created.json.id}`);
    expect(created.json).toMatchObject({ url: "http://127.0.0.1:9/x", events: ["segment.left"], segmentIds: [seg], deliveredCount: 0, lastStatus: null });
    expect((await other.request("GET", "/v1/webhooks")).json.data).toEqual([]);
    expect((await other.request("DELETE", `/v1/webhooks/${created.json.id}`)).status).toBe(404);
    expect((await client.request("GET", "/v1/webhooks")).json.data.map((w: { id: string }) => w.id)).toContain(created.json.id);
    expect((await client.request("DELETE", `/v1/webhooks/${created.json.id}`)).status).toBe(204);
    expect((await client.request("DELETE", `/v1/webhooks/${created.json.id}`)).status).toBe(404);
  });

  it("delivers entered and left events of the chosen segment, batched, signed, in order, retried after a failure; nothing from before", async () => {
    const seg = await staticSegment("VIP");
    const elsewhere = await staticSegment("Elsewhere");
    for (const email of ["a@example.com", "b@example.com", "c@example.com"]) {
      expect((await client.request("POST", "/v1/users/identify", { payload: { email } })).status).toBe(201);
    }
    // Written before the subscription: never delivered.
    await client.request("POST", `/v1/segments/${seg}/members`, { payload: { users: [{ email: "c@example.com" }] } });

    const rx = await startReceiver((n) => (n === 1 ? 500 : 204));
    const quiet = await startReceiver(() => 204);
    try {
      const sub = await client.request("POST", "/v1/webhooks", { payload: { url: rx.url, events: ["segment.entered", "segment.left"], segmentIds: [seg] } });
      expect(sub.status).toBe(201);
      const onlyLeft = await client.request("POST", "/v1/webhooks", { payload: { url: quiet.url, events: ["segment.left"], segmentIds: [elsewhere] } });
      expect(onlyLeft.status).toBe(201);

      await client.request("POST", `/v1/segments/${seg}/members`, { payload: { users: [{ email: "a@example.com" }, { email: "b@example.com" }] } });
      await client.request("POST", `/v1/segments/${elsewhere}/members`, { payload: { users: [{ email: "a@example.com" }] } });
      await client.request("DELETE", `/v1/segments/${seg}/members`, { payload: { users: [{ email: "a@example.com" }] } });

      const delivered = async () => {
        const list = await client.request("GET", "/v1/webhooks");
        return list.json.data.find((w: { id: string }) => w.id === sub.json.id);
      };
      await until(async () => (await delivered()).deliveredCount === 3, "three delivered events");
      expect(await delivered()).toMatchObject({ lastStatus: "delivered", lastError: null, deliveredCount: 3 });

      // The first POST failed (500) and the same batch came again.
      expect(rx.received.length).toBeGreaterThanOrEqual(2);
      const bodies = rx.received.map((r) => JSON.parse(r.body));
      expect(bodies[1].data.events.slice(0, bodies[0].data.events.length)).toEqual(bodies[0].data.events);
      const secret = workspaceWebhookSecret(SIGNING_KEY, client.workspaceId);
      for (const r of rx.received) {
        expect(r.headers["roster-event"]).toBe("segment.membership");
        expect(verifySignature(secret, String(r.headers["roster-signature"]), r.body, Math.floor(Date.now() / 1000))).toBe(true);
      }
      const events = bodies.slice(1).flatMap((b) => b.data.events);
      expect(bodies.every((b) => b.event === "segment.membership" && b.data.subscriptionId === sub.json.id)).toBe(true);
      expect(events.map((e: any) => [e.event, e.segmentId, e.user.email])).toEqual([
        ["segment.entered", seg, "a@example.com"],
        ["segment.entered", seg, "b@example.com"],
        ["segment.left", seg, "a@example.com"],
      ]);
      expect(events.map((e: any) => Number(e.id))).toEqual([...events.map((e: any) => Number(e.id))].sort((x, y) => x - y));
      expect(events[0]).toMatchObject({ segmentName: "VIP", user: { id: expect.any(String), externalId: null }, occurredAt: expect.any(String) });
      // The other subscription wants only "left" of another segment: nothing happened there.
      expect(quiet.received).toEqual([]);

      // Deleted: later events are not sent.
      expect((await client.request("DELETE", `/v1/webhooks/${sub.json.id}`)).status).toBe(204);
      const before = rx.received.length;
      await client.request("DELETE", `/v1/segments/${seg}/members`, { payload: { users: [{ email: "b@example.com" }] } });
      await new Promise((r) => setTimeout(r, 3_000));
      expect(rx.received.length).toBe(before);
    } finally {
      rx.server.close();
      quiet.server.close();
    }
  });
});
