import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { IMPORT_ACTIVE } from "../../domain/imports/lifecycle.js";
import { importProgress } from "../../domain/imports/progress.js";
import { isIn } from "../../domain/runs.js";
import { getImport, importView } from "../../domain/imports/service.js";
import type { AppDeps } from "../app.js";
import { textResponse } from "../schemas/common.js";

/** How often the stream reads the import: progress moves once per committed batch, so twice a second is plenty. */
const POLL_MS = 500;
/** A comment line this often keeps proxies and load balancers from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;

const idParams = z.object({ id: z.string() });

/**
 * GET /v1/imports/:id/progress: Server-Sent Events of the import's progress, ending with the import itself. Auth and
 * the workspace check run before the stream opens, so another workspace's id is an ordinary 404.
 */
export async function importProgressRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db">) {
  const app = base.withTypeProvider<ZodTypeProvider>();
  app.get(
    "/imports/:id/progress",
    {
      schema: { params: idParams, response: { 200: textResponse("event: progress (data: the progress object) … then event: import (data: the import object)", "text/event-stream") } },
      config: {
        docs: {
          summary: "Follow an import's progress as Server-Sent Events",
          description:
            "`text/event-stream`. While the import is queued or running, an `event: progress` (data: the import's `progress` object) is sent each time it changes (the server looks every 500 ms), with a `: keep-alive` comment every 15 s otherwise. When the import is no longer queued or running (at once for a draft or a finished one), the last progress is sent if it changed, then `event: import` with the whole import object, and the stream closes. Each event has an increasing `id`.",
        },
      },
    },
    async (req, reply) => {
      let row = await getImport(deps.db, req.workspaceId, req.params.id);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
        "x-request-id": req.id,
      });
      // A queued import may send nothing for a while: the client learns at once that the stream is open.
      res.flushHeaders();
      let closed = false;
      let wake: (() => void) | null = null;
      res.on("close", () => {
        closed = true;
        wake?.();
      });
      const pause = (ms: number) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      let seq = 0;
      let lastWrite = Date.now();
      const send = (event: string, data: unknown) => {
        res.write(`id: ${++seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        lastWrite = Date.now();
      };
      let lastProgress = "null";
      try {
        while (!closed) {
          const progress = importProgress(row);
          const text = JSON.stringify(progress);
          if (progress && text !== lastProgress) send("progress", progress);
          lastProgress = text;
          // Queued or running, the import moves on its own: the stream waits for what comes next.
          if (!isIn(IMPORT_ACTIVE, row.status)) {
            send("import", await importView(deps.db, row));
            break;
          }
          if (Date.now() - lastWrite >= HEARTBEAT_MS) {
            res.write(": keep-alive\n\n");
            lastWrite = Date.now();
          }
          await pause(POLL_MS);
          if (closed) break;
          row = await getImport(deps.db, req.workspaceId, row.id);
        }
      } catch (err) {
        // The stream is open: the failure is told as an event in the API's error shape, then the stream ends.
        req.log.warn({ err, importId: row.id }, "import progress stream failed");
        if (!closed) send("error", { error: { code: "progress_unavailable", message: "The import's progress could not be read; reconnect to follow it again." }, requestId: req.id });
      } finally {
        res.end();
        req.log.debug({ importId: row.id, events: seq, clientGone: closed }, "import progress stream ended");
      }
    },
  );
}
