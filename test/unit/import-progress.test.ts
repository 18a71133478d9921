import { describe, expect, it } from "vitest";
import type { imports } from "../../src/db/schema.js";
import { importProgress } from "../../src/domain/imports/progress.js";

type Row = typeof imports.$inferSelect;
const started = new Date("2026-01-01T00:00:00Z");
const row = (over: Partial<Row>): Row =>
  ({ status: "processing", sizeBytes: 1000, storedBytes: 1000, dataOffset: 100, checkpointByte: 100, processed: 0, startedAt: started, finishedAt: null, ...over }) as Row;
const at = (seconds: number) => new Date(started.getTime() + seconds * 1000);

describe("importProgress", () => {
  it("is null before a run starts (draft, queued)", () => {
    expect(importProgress(row({ status: "draft", startedAt: null }))).toBeNull();
    expect(importProgress(row({ status: "queued" }))).toBeNull();
  });

  it("reports bytes, percent, rows per second and an ETA from the byte rate while running", () => {
    expect(importProgress(row({ checkpointByte: 550, processed: 90 }), at(10))).toEqual({ bytesProcessed: 550, bytesTotal: 1000, percent: 55, rowsPerSecond: 9, etaSeconds: 10 });
    // Before the first batch there is no rate to go by.
    expect(importProgress(row({}), at(1))).toMatchObject({ percent: 10, rowsPerSecond: 0, etaSeconds: null });
  });

  it("counts in the stored file (a transcoded upload's UTF-8 copy), and in sizeBytes for imports without it", () => {
    expect(importProgress(row({ sizeBytes: 500, storedBytes: 1000, checkpointByte: 1000 }), at(2))).toMatchObject({ bytesTotal: 1000, percent: 100 });
    expect(importProgress(row({ storedBytes: null, sizeBytes: 800, checkpointByte: 200 }), at(2))).toMatchObject({ bytesTotal: 800, percent: 25 });
  });

  it("keeps the last figures once finished: 100% and ETA 0 when complete, the checkpoint when failed", () => {
    expect(importProgress(row({ status: "done", checkpointByte: 990, processed: 50, finishedAt: at(5) }), at(60))).toEqual({ bytesProcessed: 1000, bytesTotal: 1000, percent: 100, rowsPerSecond: 10, etaSeconds: 0 });
    expect(importProgress(row({ status: "failed", checkpointByte: 400, processed: 30, finishedAt: at(3) }), at(60))).toEqual({ bytesProcessed: 400, bytesTotal: 1000, percent: 40, rowsPerSecond: 10, etaSeconds: null });
  });
});
