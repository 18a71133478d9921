import { existsSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.js";
import { consolePlugin } from "../../src/api/plugins/console.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, startTestWorkers, type Client } from "../helpers/api.js";
import { buildConsole, screenshot, seriousA11yViolations } from "../helpers/console.js";
import { useTestContext } from "../helpers/context.js";

/** Debian's chromium (installed by .ci/run); CHROMIUM_PATH overrides it. Playwright downloads no browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const t = useTestContext();
let app: FastifyInstance;
let client: Client;
let workers: WorkerPool;
let base: string;
let browser: Browser;
let page: Page;

// 30 people (more than one page of 25), one row with a bad email.
const CSV = ["Email,First Name,Plan", ...Array.from({ length: 30 }, (_, i) => `person${String(i).padStart(2, "0")}@example.com,P${i},${i % 2 ? "pro" : "free"}`), "not-an-email,Broken,free", "ada@example.com,Ada,pro"].join("\n");

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`);
  buildConsole();
  app = await buildApp(t.ctx);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  client = await createClient(t.ctx, app);
  workers = await startTestWorkers(t.ctx);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"] });
  page = await (await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } })).newPage();
  page.setDefaultTimeout(15_000);
});
afterAll(async () => {
  await browser?.close();
  await workers?.close();
  await app?.close();
});

async function expectAccessible(name: string) {
  await screenshot(page, name);
  expect(await seriousA11yViolations(page)).toEqual([]);
}

describe("web console in Chromium", () => {
  it("answers at / a clear message when the console is not built", async () => {
    const bare = (await import("fastify")).default();
    await bare.register(consolePlugin, { dir: "/nonexistent" });
    const res = await bare.inject({ method: "GET", url: "/" });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain("npm run build");
    await bare.close();
  });

  it("signs in with the API key, showing the API's sentence for a wrong key", async () => {
    await page.goto(base);
    await page.getByLabel("API key").fill("rst_not_a_key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").innerText()).toMatch(/\w+ \w+/);
    await expectAccessible("0-sign-in");
    await page.getByLabel("API key").fill(client.apiKey);
    await page.getByLabel("API key").press("Enter");
    await page.getByRole("button", { name: "New import" }).waitFor();
    expect(await page.getByText("Loading the console…").count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem("roster.apiKey"))).toBe(client.apiKey);
    expect(await page.evaluate(() => (globalThis as any).localStorage.length)).toBe(0);
  });

  it("imports pasted CSV with the keyboard: draft, Identifier, mapping, Validate, Start import, the summary by name", async () => {
    await page.getByRole("button", { name: "New import" }).focus();
    await page.keyboard.press("Enter");
    await page.getByLabel("Paste CSV").focus();
    await page.keyboard.insertText(CSV);
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter"); // Upload
    await page.getByLabel("Identifier").waitFor();
    expect(await page.getByLabel("Identifier").inputValue()).toBe("email");
    expect(await page.getByLabel("Target for column First Name").inputValue()).toBe("first_name");
    await page.getByLabel("Target for column Plan").focus();
    await page.getByLabel("Target for column Plan").selectOption("attribute:Plan");
    await expectAccessible("1-import-draft");

    await page.getByRole("button", { name: "Validate" }).focus();
    await page.keyboard.press("Enter");
    await page.locator(".outcome .badge", { hasText: "validated" }).waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-count="failed"]').innerText()).toBe("1");
    await page.locator(".outcome").getByRole("cell", { name: "not-an-email" }).first().waitFor();
    const report = page.waitForEvent("download");
    await page.getByRole("button", { name: "Download error report (CSV)" }).click();
    expect((await report).suggestedFilename()).toMatch(/errors\.csv$/);
    await expectAccessible("2-import-validated");

    await page.getByRole("button", { name: "Start import" }).focus();
    await page.keyboard.press("Enter");
    await page.locator(".outcome .badge", { hasText: "done" }).waitFor({ timeout: 30_000 });
    const summary = await page.locator(".counts").innerText();
    for (const name of ["created", "updated", "unchanged", "skipped", "failed"]) expect(summary).toContain(name);
    expect(await page.locator('[data-count="created"]').innerText()).toBe("31");
    expect(await page.locator('[data-count="failed"]').innerText()).toBe("1");
    // The running import was followed through its progress stream (Server-Sent Events), not by polling.
    expect(t.ctx.logs.join("")).toMatch(/"url":"\/v1\/imports\/[0-9a-f-]{36}\/progress"/);
    await expectAccessible("3-import-done");

    await page.getByRole("button", { name: "Back to history" }).click();
    await page.getByRole("row").filter({ hasText: "done" }).first().waitFor();
    await expectAccessible("4-import-history");
  });

  it("uploads a CSV file through the same flow", async () => {
    await page.getByRole("button", { name: "New import" }).click();
    await page.getByLabel("CSV file").setInputFiles({ name: "more.csv", mimeType: "text/csv", buffer: Buffer.from("email,first_name\nzed@example.com,Zed\n") });
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByRole("heading", { name: "Import more.csv" }).waitFor();
    await page.getByRole("button", { name: "Start import" }).click();
    await page.locator(".outcome .badge", { hasText: "done" }).waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-count="created"]').innerText()).toBe("1");
    await page.getByRole("button", { name: "Back to history" }).click();
  });

  it("lists people by keyset pages, counts a filter live and opens a profile", async () => {
    await page.getByRole("link", { name: "Users" }).click();
    await page.getByRole("button", { name: "Next page" }).waitFor();
    await page.getByRole("table").getByRole("button").first().waitFor();
    const first = await page.getByRole("table").getByRole("button").first().innerText();
    await page.getByRole("button", { name: "Next page" }).click();
    await expect.poll(async () => page.getByRole("table").getByRole("button").first().innerText().catch(() => first)).not.toBe(first);

    await page.getByLabel("Add…").selectOption("field");
    await page.getByLabel("Value").fill("ada@");
    await expect.poll(() => page.locator(".match-count [role=status]").innerText()).toBe("1 person matches");
    await page.getByLabel("Add…").first().selectOption("group");
    await page.getByRole("button", { name: "Apply filter" }).click();
    await page.getByRole("button", { name: "ada@example.com" }).click();
    await page.getByRole("heading", { name: "Profile" }).waitFor();
    await page.locator(".panel").getByText("pro", { exact: true }).waitFor();
    await expectAccessible("5-users");
  });

  it("creates a dynamic segment with a live preview, lists its count, and explains a 409 on delete", async () => {
    await page.getByRole("link", { name: "Segments" }).click();
    await page.getByLabel("Segment name").fill("Pro plan");
    await page.getByLabel("Add…").selectOption("attribute");
    await page.getByLabel("Attribute key").fill("Plan");
    await page.getByLabel("Value", { exact: true }).fill("pro");
    await expect.poll(() => page.locator(".match-count [role=status]").innerText()).toBe("16 people match");
    await page.getByRole("button", { name: "Create segment" }).click();
    const row = page.getByRole("row").filter({ hasText: "Pro plan" });
    await row.getByText("ready").waitFor({ timeout: 30_000 });
    await expect.poll(() => row.locator("[data-members]").innerText(), { timeout: 30_000 }).toBe("16");

    const pro = (await client.request("GET", "/v1/segments")).json.data.find((s: any) => s.name === "Pro plan");
    const dependent = await client.request("POST", "/v1/segments", { payload: { name: "Pro and Ada", type: "dynamic", conditions: { all: [{ segment: pro.id, op: "in" }] } } });
    expect(dependent.status).toBe(201);
    await page.getByRole("button", { name: "Recompute Pro plan" }).click();
    await page.getByRole("button", { name: "Delete Pro plan" }).click();
    await row.getByRole("alert").waitFor();
    expect(await row.getByRole("alert").innerText()).toMatch(/cannot be deleted while another segment's conditions refer to it/);
    await expectAccessible("6-segments");
  });

  it("exports people with chosen attributes and downloads the file", async () => {
    await page.getByRole("link", { name: "Exports" }).click();
    await page.getByLabel("Attributes to add (comma-separated keys)").fill("Plan");
    await page.getByLabel("Limit to segment").selectOption({ label: "Pro plan" });
    await page.getByRole("button", { name: "Start export" }).click();
    const dl = page.getByRole("button", { name: /^Download users export/ }).first();
    await dl.waitFor({ timeout: 30_000 });
    await page.getByLabel("Events").check();
    await page.getByLabel("Event types (comma-separated; empty for all)").waitFor();
    await expectAccessible("7-exports");
    const file = page.waitForEvent("download");
    await dl.click();
    const download = await file;
    const text = await (await import("node:fs/promises")).readFile((await download.path())!, "utf8");
    expect(text.split("\n")[0]).toContain("attributes.Plan");
    expect(text.trim().split("\n")).toHaveLength(17);
  });

  it("links to the queue dashboard and the API docs, and signing out forgets the key", async () => {
    expect(await page.getByRole("link", { name: "Queue dashboard" }).getAttribute("href")).toBe("/admin/queues");
    expect(await page.getByRole("link", { name: "API docs" }).getAttribute("href")).toBe("/docs");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API key").waitFor();
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem("roster.apiKey"))).toBeNull();
    await page.reload();
    await page.getByLabel("API key").waitFor();
  });
});
