/**
 * Builds the web console into dist/console: regenerates the API types from the app's OpenAPI document, type-checks
 * the console against them (a changed route fails here, not in a browser), then bundles it with esbuild.
 */
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { GENERATED, generatedTypes } from "./openapi-types.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const OUT = path.join(ROOT, "dist/console");

await writeFile(GENERATED, await generatedTypes());
execFileSync(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", path.join(ROOT, "console/tsconfig.json")], { stdio: "inherit" });
await mkdir(OUT, { recursive: true });
await build({
  entryPoints: [path.join(ROOT, "console/src/main.tsx")],
  outfile: path.join(OUT, "console.js"),
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  jsx: "automatic",
  jsxImportSource: "preact",
  logLevel: "warning",
});
await copyFile(path.join(ROOT, "console/index.html"), path.join(OUT, "index.html"));
await copyFile(path.join(ROOT, "console/console.css"), path.join(OUT, "console.css"));
process.stdout.write(`console built into ${path.relative(process.cwd(), OUT)}\n`);
process.exit(0);
