import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import type { Page } from "playwright-core";
import { REPO_ROOT } from "./processes.js";

export const SCREENSHOTS = path.join(REPO_ROOT, "test/.screenshots");

/** Builds the console as `npm run build` does, so the browser tests drive the real built assets. */
export function buildConsole(): void {
  execFileSync(process.execPath, [path.join(REPO_ROOT, "node_modules/tsx/dist/cli.mjs"), path.join(REPO_ROOT, "console/scripts/build.ts")], { cwd: REPO_ROOT, stdio: "pipe" });
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
