import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { GENERATED, generatedTypes } from "../../console/scripts/openapi-types.js";

describe("console API types", () => {
  it("console/src/api.gen.ts matches the OpenAPI document the routes make now (npm run build regenerates it)", async () => {
    expect(await readFile(GENERATED, "utf8"), "stale: run npm run build and commit console/src/api.gen.ts").toBe(await generatedTypes());
  }, 60_000);
});
