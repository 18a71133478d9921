import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, pasteImport, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

// Small batches: the import below commits many checkpoints, so the stream sees the progress move.
// Debug logs: the stream says when it ended and why.
const t = useTestContext({ IMPORT_BATCH_SIZE: "500", LOG_LEVEL: "debug" });
let client: Client;
let other: Client;
let base: string;
let workers: WorkerPool | undefined;

beforeAll(async () => {
  client = await createClient(t.ctx);
  other = await createClient(t.ctx, client.app, "Other");
  await client.app.listen({ host: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${(client.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

interface SseEvent {
  id: number;
  event: string;
  data: any;
}

/** Opens the stream over a real connection and collects its events until the server closes it. */
function readStream(path: string, key = client.apiKey, onEvent: (e: SseEvent) => void = () => {}): Promise<{ status: number; type: string; events: SseEvent[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } }, (res) => {
      const events: SseEvent[] = [];
      let buf = "";
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const fields: Record<string, string> = Object.fromEntries(block.split("\n").filter((l) => !l.startsWith(":")).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]));
          if (!fields.event) continue;
          const e = { id: Number(fields.id), event: fields.event, data: JSON.parse(fields.data ?? "null") };
          events.push(e);
          onEvent(e);
        }
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), events, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

function contactsCsv(rows: number): string {
  const lines = ["email,first_name,last_name,plan"];
  for (let i = 0; i < rows; i++) lines.push(`person${i}@example.com,First${i},Last${i},plan-${i % 7}`);
  return lines.join("\n");
}

describe("import progress", () => {
  it("streams progress events in order while the import runs, percent rising to 100, then the final import, and closes", async () => {
    // Enough batches that the import outlasts several of the stream's 500 ms looks even on a fast, idle machine
    // (15k rows once finished between two looks).
    const rows = 60_000;
    const created = await pasteImport(client, contactsCsv(rows), { identifier: "email", start: true });
    expect(created.status).toBe(201);
    expect(created.json.status).toBe("queued");
    expect(created.json.progress).toBeNull();
    const id = created.json.id as string;
    const seenWhileRunning: any[] = [];
    const streaming = readStream(`/v1/imports/${id}/progress`, client.apiKey, (e) => {
      // The import object says the same as the stream while it runs.
      if (e.event === "progress" && e.data.percent < 100) void client.request("GET", `/v1/imports/${id}`).then((r) => seenWhileRunning.push(r.json));
    });
    // The stream is open (and waiting on a queued import) before any worker exists.
    await new Promise((r) => setTimeout(r, 300));
    workers = await startTestWorkers(t.ctx);
    const { status, type, events } = await streaming;

    expect(status).toBe(200);
    expect(type).toMatch(/^text\/event-stream/);
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    const progress = events.filter((e) => e.event === "progress").map((e) => e.data);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    for (const p of progress) expect(Object.keys(p).sort()).toEqual(["bytesProcessed", "bytesTotal", "etaSeconds", "percent", "rowsPerSecond"]);
    const percents = progress.map((p) => p.percent);
    expect(percents).toEqual([...percents].sort((x, y) => x - y));
    expect(percents[0]).toBeLessThan(100);
    expect(percents.at(-1)).toBe(100);
    expect(progress.some((p) => p.percent > 0 && p.percent < 100 && p.rowsPerSecond > 0 && p.etaSeconds !== null)).toBe(true);
    expect(new Set(progress.map((p) => p.bytesTotal))).toEqual(new Set([created.json.sizeBytes]));

    const last = events.at(-1)!;
    expect(last.event).toBe("import");
    expect(last.data.id).toBe(id);
    expect(last.data.status).toBe("done");
    expect(last.data.counts.processed).toBe(rows);
    expect(last.data.progress).toMatchObject({ bytesProcessed: created.json.sizeBytes, bytesTotal: created.json.sizeBytes, percent: 100, etaSeconds: 0 });
    expect(last.data.progress.rowsPerSecond).toBeGreaterThan(0);
    const final = await client.request("GET", `/v1/imports/${id}`);
    expect(last.data).toEqual(final.json);
    expect(seenWhileRunning.some((imp) => ["processing", "done"].includes(imp.status) && imp.progress !== null)).toBe(true);
  }, 120_000);

  it("answers a draft or finished import with the import at once; another workspace's id is a plain 404", async () => {
    const draft = await pasteImport(client, "email\nd@example.com");
    const { status, events } = await readStream(`/v1/imports/${draft.json.id}/progress`);
    expect(status).toBe(200);
    expect(events).toEqual([{ id: 1, event: "import", data: expect.objectContaining({ id: draft.json.id, status: "draft", progress: null }) }]);

    const theirs = await readStream(`/v1/imports/${draft.json.id}/progress`, other.apiKey);
    expect(theirs.status).toBe(404);
    expect(JSON.parse(theirs.body).error.code).toBe("not_found");
    expect((await readStream(`/v1/imports/not-an-id/progress`)).status).toBe(404);
    expect((await readStream(`/v1/imports/${draft.json.id}/progress`, "rst_wrong")).status).toBe(401);
  });

  it("stops reading when the client goes away", async () => {
    // The small-import queue (a one-row file runs there) is paused: the import stays queued and the stream would wait;
    // the client leaves first.
    const queue = t.ctx.producer.queue("imports-small");
    await queue.pause();
    const created = await pasteImport(client, "email\nq@example.com", { identifier: "email", start: true });
    const id = created.json.id as string;
    const req = http.get(`${base}/v1/imports/${id}/progress`, { headers: { authorization: `Bearer ${client.apiKey}` } });
    const res = await new Promise<http.IncomingMessage>((r) => req.on("response", r));
    expect(res.statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 700));
    req.destroy();
    const ended = () => t.ctx.logs.filter((l) => l.includes("import progress stream ended") && l.includes(id));
    for (let i = 0; i < 40 && ended().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(ended()).toHaveLength(1);
    expect(JSON.parse(ended()[0]!)).toMatchObject({ clientGone: true, events: 0 });
    expect((await client.request("POST", `/v1/imports/${id}/cancel`)).json.status).toBe("cancelled");
    await queue.resume();
  });
});
