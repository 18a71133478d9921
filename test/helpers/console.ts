import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser, type Page } from "playwright-core";
import { expect, inject } from "vitest";
import { buildApp } from "../../src/api/app.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, startTestWorkers, type Client } from "./api.js";
import type { TestContext } from "./context.js";
import { REPO_ROOT } from "./processes.js";

export const SCREENSHOTS = path.join(REPO_ROOT, "test/.screenshots");
/** Debian's chromium (installed by .ci/run); CHROMIUM_PATH overrides it. Playwright downloads no browser. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Builds the console as `npm run build` does, so the browser tests drive the real built assets. */
export function buildConsole(): void {
  execFileSync(process.execPath, [path.join(REPO_ROOT, "node_modules/tsx/dist/cli.mjs"), path.join(REPO_ROOT, "console/scripts/build.ts")], { cwd: REPO_ROOT, stdio: "pipe" });
}

const BUILD_LOCK = path.join(REPO_ROOT, "dist/.console-build.lock");
const BUILT_FOR = path.join(REPO_ROOT, "dist/.console-built-for-run");

/**
 * buildConsole once per test run, whichever browser test file comes first: the others wait for it and use its
 * files (rebuilding while another file's browser loads console.js could hand it half a file).
 */
export async function buildConsoleOnce(): Promise<void> {
  const run = inject("runId");
  mkdirSync(path.dirname(BUILD_LOCK), { recursive: true });
  const until = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(BUILD_LOCK);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      // A lock left by a run that was killed mid-build: a build takes seconds, not minutes.
      const lock = statSync(BUILD_LOCK, { throwIfNoEntry: false });
      if (lock && Date.now() - lock.mtimeMs > 120_000) rmSync(BUILD_LOCK, { recursive: true, force: true });
      if (Date.now() > until) throw new Error(`${BUILD_LOCK} held for 3 minutes`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (existsSync(BUILT_FOR) && readFileSync(BUILT_FOR, "utf8") === run && existsSync(path.join(REPO_ROOT, "dist/console/index.html"))) return;
    buildConsole();
    writeFileSync(BUILT_FOR, run);
  } finally {
    rmSync(BUILD_LOCK, { recursive: true, force: true });
  }
}

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

/** Runs axe-core in the page (no network) and returns the serious and critical violations, one line each. */
export async function seriousA11yViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(ctx: unknown): Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: unknown }[] }[] }> } }).axe;
    const r = await axe.run((globalThis as unknown as { document: unknown }).document);
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => JSON.stringify(n.target)).join(" ") }));
  });
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.targets}`);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** A screenshot of the screen as it is, then the axe audit: no serious or critical violation. */
export async function expectAccessible(page: Page, name: string): Promise<void> {
  await screenshot(page, name);
  expect(await seriousA11yViolations(page)).toEqual([]);
}

/** One API on a real port, workers, a workspace and one Chromium page for a whole browser test file. */
export interface ConsoleSession {
  app: FastifyInstance;
  base: string;
  client: Client;
  workers: WorkerPool;
  browser: Browser;
  page: Page;
  /** Uncaught exceptions in the page so far. */
  errors: string[];
  close(): Promise<void>;
}

export async function openConsole(ctx: TestContext): Promise<ConsoleSession> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`);
  await buildConsoleOnce();
  const app = await buildApp(ctx);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const addr = app.server.address();
  const base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  const client = await createClient(ctx, app);
  const workers = await startTestWorkers(ctx);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"] });
  const page = await (await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } })).newPage();
  page.setDefaultTimeout(15_000);
  // An exception in the console's own code is a failure of the test that caused it, whatever it waits for next.
  const errors: string[] = [];
  page.on("pageerror", (err) => {
    errors.push(err.stack ?? err.message);
    process.stderr.write(`console page error: ${err.stack ?? err.message}\n`);
  });
  return {
    errors,
    app,
    base,
    client,
    workers,
    browser,
    page,
    async close() {
      await browser.close();
      await workers.close();
      await app.close();
    },
  };
}

/** Signs in through the form, as a person does, and waits for the first screen. */
export async function signIn(page: Page, base: string, apiKey: string): Promise<void> {
  await page.goto(base);
  await page.getByLabel("API key").fill(apiKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "New import" }).waitFor();
}

/** The text of a file the page downloaded when `click` ran. */
export async function downloadedText(page: Page, click: () => Promise<void>): Promise<{ name: string; text: string }> {
  const file = page.waitForEvent("download");
  await click();
  const download = await file;
  return { name: download.suggestedFilename(), text: readFileSync((await download.path())!, "utf8") };
}
