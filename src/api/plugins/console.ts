import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";

/** dist/console, from src/api/plugins (tsx) and dist/api/plugins (built) alike. */
export const CONSOLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../dist/console");

const NOT_BUILT = "The Roster web console is not built. Run `npm run build`, then restart the API.\n";

/**
 * The web console (console/, built by `npm run build`) at `/`. It is static files that call the public /v1 API with
 * the workspace's key, so it needs nothing of the server but these files. Without the build, `/` says how to make it.
 */
export async function consolePlugin(app: FastifyInstance, opts: { dir?: string } = {}): Promise<void> {
  const dir = opts.dir ?? CONSOLE_DIR;
  if (!existsSync(path.join(dir, "index.html"))) {
    app.get("/", { schema: { hide: true } }, async (_req, reply) => reply.code(503).type("text/plain; charset=utf-8").send(NOT_BUILT));
    return;
  }
  // Only the files present at start are served (no wildcard): an unknown path keeps the API's JSON 404.
  await app.register(fastifyStatic, { root: dir, prefix: "/", wildcard: false, index: ["index.html"], schemaHide: true });
  app.addHook("onSend", async (req, reply) => {
    if (req.url === "/" || req.url.startsWith("/index.html")) reply.header("cache-control", "no-cache");
  });
}
