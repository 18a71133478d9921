import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.js";
import { useTestContext } from "../helpers/context.js";

/** Debian's chromium (installed by .ci/run); CHROMIUM_PATH overrides it. Playwright downloads no browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ADMIN_TOKEN = "test-admin-token-0123456789";

const t = useTestContext({ ADMIN_TOKEN });
let app: FastifyInstance;
let base: string;
let browser: Browser;
const importId = randomUUID();

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`);
  app = await buildApp(t.ctx);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  // No worker runs in this file: the job stays waiting for the dashboard to show.
  await t.ctx.producer.enqueue("import.run", { workspaceId: randomUUID(), importId }, { jobId: `import-${importId}` });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
});

describe("queue dashboard in a browser", () => {
  it("answers 401 with a Basic challenge without the token or with a wrong one; Bearer works for scripts", async () => {
    const anon = await fetch(`${base}/admin/queues`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get("www-authenticate")).toMatch(/^Basic realm="Roster queues"/);
    const wrong = await fetch(`${base}/admin/queues/api/queues`, { headers: { authorization: `Basic ${Buffer.from("admin:not-the-token").toString("base64")}` } });
    expect(wrong.status).toBe(401);
    const bearer = await fetch(`${base}/admin/queues/api/queues`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(bearer.status).toBe(200);
  });

  it("logs in with the admin token and shows the three queues and the enqueued job", async () => {
    const ctx = await browser.newContext({ httpCredentials: { username: "admin", password: ADMIN_TOKEN } });
    try {
      const page = await ctx.newPage();
      const res = await page.goto(`${base}/admin/queues`);
      expect(res?.status()).toBe(200);
      for (const q of ["imports", "segments", "exports"]) {
        await page.getByRole("link", { name: q, exact: true }).first().waitFor({ timeout: 15_000 });
      }
      await page.getByRole("link", { name: "imports", exact: true }).first().click();
      await page.getByText(/waiting/i).first().click();
      await page.getByText(`import-${importId}`).first().waitFor({ timeout: 15_000 });
      await page.getByText("import.run", { exact: true }).first().waitFor({ timeout: 15_000 });
      expect(await page.locator("body").innerText()).toContain(importId);
    } finally {
      await ctx.close();
    }
  });
});
