import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.js";
import { loadEnv } from "../../src/config/env.js";
import { verifySignature } from "../../src/domain/webhooks/signature.js";
import { randomUUID } from "node:crypto";
import { checkExportRequest, createExportSchema } from "../../src/domain/exports/request.js";
import type { Storage } from "../../src/storage/storage.js";
import { buildProcessors } from "../../src/workers/processors/index.js";
import { startWorkers, type WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { waitForExport } from "../helpers/exports.js";

const t = useTestContext({ WEBHOOK_SIGNING_KEY: "test-webhook-signing-key-0123456789abcdef", WEBHOOK_BACKOFF_MS: "100", WEBHOOK_MAX_ATTEMPTS: "3" });
let client: Client;
let workers: WorkerPool;
let secret: string;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real receiver on 127.0.0.1: records every delivery and answers with the status `answer` picks. */
async function startReceiver(answer: (n: number) => number): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(answer(received.length)).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/roster`, received };
}

async function waitFor<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  client = await createClient(t.ctx);
  workers = await startTestWorkers(t.ctx);
  const res = await client.app.inject({
    method: "GET",
    url: `/v1/admin/workspaces/${client.workspaceId}/webhook-secret`,
    headers: { authorization: `Bearer ${t.ctx.env.ADMIN_TOKEN}` },
  });
  expect(res.statusCode).toBe(200);
  secret = res.json().secret;
  expect(secret).toMatch(/^whsec_[0-9a-f]{64}$/);
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

describe("import webhooks", () => {
  it("POSTs the finished import, signed, and retries after the receiver fails the first delivery", async () => {
    const rx = await startReceiver((n) => (n === 1 ? 500 : 204));
    try {
      const created = await pasteImport(client, "email,first_name\nann@example.com,Ann\nbob@example.com,Bob\n", { identifier: "email", start: true, callbackUrl: rx.url });
      expect(created.status).toBe(201);
      expect(created.json.callbackUrl).toBe(rx.url);
      expect(created.json.webhookStatus).toBeNull();
      const id = created.json.id as string;
      expect((await waitForImport(client, id)).status).toBe("done");

      const view = await waitFor(async () => {
        const r = await client.request("GET", `/v1/imports/${id}`);
        return r.json.webhookStatus === "delivered" ? r.json : undefined;
      }, "the webhook to be delivered");
      expect(view).toMatchObject({ webhookStatus: "delivered", webhookAttempts: 2, webhookLastError: null });

      expect(rx.received).toHaveLength(2);
      const now = Math.floor(Date.now() / 1000);
      for (const d of rx.received) {
        expect(d.path).toBe("/hooks/roster");
        expect(d.headers["content-type"]).toBe("application/json");
        expect(d.headers["roster-event"]).toBe("import.done");
        const header = String(d.headers["roster-signature"]);
        expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
        expect(verifySignature(secret, header, d.body, now)).toBe(true);
        // Tampered body, another workspace's secret, or a stale timestamp: refused.
        expect(verifySignature(secret, header, d.body.replace("ann@", "eve@"), now)).toBe(false);
        expect(verifySignature(secret.replace(/.$/, (c) => (c === "0" ? "1" : "0")), header, d.body, now)).toBe(false);
        expect(verifySignature(secret, header, d.body, now + 3600)).toBe(false);
      }
      const body = JSON.parse(rx.received[1]!.body);
      expect(body).toMatchObject({ event: "import.done", data: { id, status: "done", counts: { created: 2, failed: 0 } } });
      expect(rx.received[0]!.headers["roster-delivery"]).toBe(rx.received[1]!.headers["roster-delivery"]);
    } finally {
      rx.server.close();
    }
  });

  it("gives up after WEBHOOK_MAX_ATTEMPTS and says why on the import", async () => {
    const rx = await startReceiver(() => 503);
    try {
      const created = await pasteImport(client, "email\ncid@example.com\n", { identifier: "email", start: true, callbackUrl: rx.url });
      const id = created.json.id as string;
      const view = await waitFor(async () => {
        const r = await client.request("GET", `/v1/imports/${id}`);
        return r.json.webhookStatus === "failed" ? r.json : undefined;
      }, "the webhook to fail");
      expect(view).toMatchObject({ status: "done", webhookStatus: "failed", webhookAttempts: 3, webhookLastError: "The receiver answered HTTP 503." });
      expect(rx.received).toHaveLength(3);
    } finally {
      rx.server.close();
    }
  });

  it("announces an import cancelled before it ran", async () => {
    const rx = await startReceiver(() => 200);
    try {
      const created = await pasteImport(client, "email\ndee@example.com\n", { callbackUrl: rx.url });
      expect(created.json.status).toBe("draft");
      const cancelled = await client.request("POST", `/v1/imports/${created.json.id}/cancel`);
      expect(cancelled.status).toBe(202);
      expect(cancelled.json.webhookStatus).toBe("pending");
      await waitFor(async () => (rx.received.length ? true : undefined), "the cancel webhook");
      expect(JSON.parse(rx.received[0]!.body)).toMatchObject({ event: "import.cancelled", data: { id: created.json.id, status: "cancelled" } });
    } finally {
      rx.server.close();
    }
  });

  it("accepts only http(s) callback URLs", async () => {
    for (const callbackUrl of ["ftp://example.com/x", "javascript:alert(1)", "not a url", "http://user:pw@example.com/"]) {
      const res = await pasteImport(client, "email\ne@example.com\n", { callbackUrl });
      expect(res.status).toBe(422);
      expect(res.json.error.details.problems).toEqual([expect.objectContaining({ field: "callbackUrl" })]);
    }
  });

  it("refuses a callbackUrl when the server has no signing key", async () => {
    const env = loadEnv({ ...Object.fromEntries(Object.entries(t.ctx.env).map(([k, v]) => [k, String(v)])), WEBHOOK_SIGNING_KEY: "" });
    const app = await buildApp({ ...t.ctx, env });
    try {
      const other = await createClient(t.ctx, app, "NoHooks");
      const res = await pasteImport(other, "email\nf@example.com\n", { callbackUrl: "https://example.com/hook" });
      expect(res.status).toBe(422);
      expect(res.json.error.code).toBe("webhooks_disabled");
    } finally {
      await app.close();
    }
  });
});

describe("export webhooks", () => {
  /** Polls GET /v1/exports/:id until its webhook is no longer pending. */
  const settledExport = (id: string) =>
    waitFor(async () => {
      const r = await client.request("GET", `/v1/exports/${id}`);
      return r.json.webhookStatus === "delivered" || r.json.webhookStatus === "failed" ? r.json : undefined;
    }, "the export webhook to settle");

  /** An export recorded with a callbackUrl but no job: the test queues or runs it itself. */
  async function recordedExport(body: Record<string, unknown>, callbackUrl: string): Promise<string> {
    const params = checkExportRequest(createExportSchema.parse(body), () => null);
    const [row] = await t.ctx.db.$client`
      insert into exports (workspace_id, kind, params, callback_url)
      values (${client.workspaceId}, ${body.kind as string}, ${JSON.stringify(params)}::jsonb, ${callbackUrl}) returning id`;
    return row!.id as string;
  }

  it("POSTs the finished export, signed, retries after a failed first delivery, and shows the outcome on the export", async () => {
    await t.ctx.db.$client`insert into people (workspace_id, email) values (${client.workspaceId}, 'exp1@example.com'), (${client.workspaceId}, 'exp2@example.com')`;
    const [{ n: people }] = (await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${client.workspaceId}`) as unknown as [{ n: number }];
    const rx = await startReceiver((n) => (n === 1 ? 500 : 204));
    try {
      const created = await client.request("POST", "/v1/exports", { payload: { kind: "users", columns: ["email"], callbackUrl: rx.url } });
      expect(created.status).toBe(202);
      expect(created.json).toMatchObject({ callbackUrl: rx.url, webhookStatus: null, webhookAttempts: 0, webhookLastError: null });
      const id = created.json.id as string;
      expect((await waitForExport(client, id)).status).toBe("done");

      const view = await settledExport(id);
      expect(view).toMatchObject({ status: "done", rowCount: people, webhookStatus: "delivered", webhookAttempts: 2, webhookLastError: null });

      expect(rx.received).toHaveLength(2);
      const now = Math.floor(Date.now() / 1000);
      for (const d of rx.received) {
        expect(d.path).toBe("/hooks/roster");
        expect(d.headers["content-type"]).toBe("application/json");
        expect(d.headers["roster-event"]).toBe("export.done");
        const header = String(d.headers["roster-signature"]);
        expect(verifySignature(secret, header, d.body, now)).toBe(true);
        expect(verifySignature(secret, header, d.body.replace(`"rowCount":${people}`, `"rowCount":${people + 1}`), now)).toBe(false);
      }
      expect(rx.received[0]!.headers["roster-delivery"]).toBe(rx.received[1]!.headers["roster-delivery"]);
      const body = JSON.parse(rx.received[1]!.body);
      expect(body.event).toBe("export.done");
      expect(Number.isNaN(Date.parse(body.sentAt))).toBe(false);
      // The body's data is the export object as GET /v1/exports/:id shows it; only the delivery fields moved on since.
      const { webhookStatus, webhookAttempts, webhookLastError, ...rest } = view;
      expect(body.data).toEqual({ ...rest, webhookStatus: "pending", webhookAttempts: 1, webhookLastError: "The receiver answered HTTP 500." });
      expect([webhookStatus, webhookAttempts, webhookLastError]).toEqual(["delivered", 2, null]);
    } finally {
      rx.server.close();
    }
  });

  it("announces an export that failed, with its failure reason", async () => {
    const rx = await startReceiver(() => 200);
    try {
      const id = await recordedExport({ kind: "users", segmentId: randomUUID() }, rx.url);
      await t.ctx.producer.enqueue("export.run", { workspaceId: client.workspaceId, exportId: id }, { jobId: `export-${id}` });
      expect(await settledExport(id)).toMatchObject({ status: "failed", webhookStatus: "delivered", webhookAttempts: 1 });
      expect(rx.received).toHaveLength(1);
      expect(rx.received[0]!.headers["roster-event"]).toBe("export.failed");
      expect(verifySignature(secret, String(rx.received[0]!.headers["roster-signature"]), rx.received[0]!.body, Math.floor(Date.now() / 1000))).toBe(true);
      expect(JSON.parse(rx.received[0]!.body)).toMatchObject({
        event: "export.failed",
        data: { id, status: "failed", failureReason: "The segment it was limited to was deleted.", callbackUrl: rx.url },
      });
    } finally {
      rx.server.close();
    }
  });

  it("announces an export failed because its job ran out of attempts, and records a delivery that kept failing", async () => {
    const rx = await startReceiver(() => 502);
    const id = await recordedExport({ kind: "users", columns: ["email"] }, rx.url);
    const broken: Storage = Object.assign(Object.create(t.ctx.storage) as Storage, {
      write: async () => {
        throw new Error("bucket unreachable");
      },
    });
    // The shared workers would run the job with working storage: this test's pool is the only one listening.
    await workers.close();
    const pool = await startWorkers(t.ctx.env, t.ctx.logger, buildProcessors({ ...t.ctx, storage: broken }), { queues: ["exports", "webhooks"] });
    try {
      await t.ctx.producer.queue("exports").add("export.run", { workspaceId: client.workspaceId, exportId: id }, { jobId: `export-${id}`, attempts: 1 });
      expect(await settledExport(id)).toMatchObject({
        status: "failed",
        failureReason: "The export stopped after 1 attempts: bucket unreachable",
        webhookStatus: "failed",
        webhookAttempts: 3,
        webhookLastError: "The receiver answered HTTP 502.",
      });
      expect(rx.received).toHaveLength(3);
      expect(rx.received.map((d) => d.headers["roster-event"])).toEqual(["export.failed", "export.failed", "export.failed"]);
    } finally {
      rx.server.close();
      await pool.close();
      workers = await startTestWorkers(t.ctx);
    }
  });

  it("accepts only http(s) callback URLs", async () => {
    for (const callbackUrl of ["ftp://example.com/x", "javascript:alert(1)", "not a url", "http://user:pw@example.com/"]) {
      const res = await client.request("POST", "/v1/exports", { payload: { kind: "users", callbackUrl } });
      expect(res.status).toBe(422);
      // JSON body problems are named body.<field>, as for every JSON route (imports take form fields).
      expect(res.json.error.details.problems).toEqual([expect.objectContaining({ field: "body.callbackUrl" })]);
    }
  });

  it("refuses a callbackUrl when the server has no signing key, and records nothing", async () => {
    const env = loadEnv({ ...Object.fromEntries(Object.entries(t.ctx.env).map(([k, v]) => [k, String(v)])), WEBHOOK_SIGNING_KEY: "" });
    const app = await buildApp({ ...t.ctx, env });
    try {
      const other = await createClient(t.ctx, app, "NoExportHooks");
      const res = await other.request("POST", "/v1/exports", { payload: { kind: "users", callbackUrl: "https://example.com/hook" } });
      expect(res.status).toBe(422);
      expect(res.json.error.code).toBe("webhooks_disabled");
      expect(await t.ctx.db.$client`select 1 from exports where workspace_id = ${other.workspaceId}`).toHaveLength(0);
      // Without a callbackUrl the same server takes the export.
      expect((await other.request("POST", "/v1/exports", { payload: { kind: "users" } })).status).toBe(202);
    } finally {
      await app.close();
    }
  });
});
