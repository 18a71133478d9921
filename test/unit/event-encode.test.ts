import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { produceBatches } from "../../src/domain/imports/batch-builder.js";
import { copyLine } from "../../src/domain/imports/copy.js";
import { encodeEventRows } from "../../src/domain/imports/events/batch.js";
import { eventRowValidator } from "../../src/domain/imports/events/validate.js";
import type { ValuesRow } from "../../src/domain/imports/handler.js";
import { importOptionsSchema } from "../../src/domain/imports/mapping.js";
import { LocalStorage } from "../../src/storage/local.js";

const headers = ["email", "event", "occurred_at", "plan"];
const mapping = { email: "email", event: "event", occurred_at: "occurred_at", plan: "property:plan" } as const;

describe("an events batch's COPY text (EventRowEncoder)", () => {
  it("is written row by row as the rows are validated, the same lines the rows make, none held to the batch's end", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "event-encode-"));
    try {
      const records = [
        ["a@x.io", "Signed Up", "2026-11-01T10:00:00Z", "pro"],
        ["a@x.io", "Signed Up", "2026-11-01T10:00:00Z", "pro"],
        ["not an email", "Clicked", "2026-11-02T10:00:00Z", ""],
        ["B@x.io", "Clicked\tTab", "2026-11-03T10:00:00+02:00", "say \"hi\"\\"],
        ["c@x.io", "", "2026-11-04T10:00:00Z", "free"],
        ["c@x.io", "Viewed", "2026-11-05T10:00:00Z", ""],
        ["d@x.io", "Viewed", "2026-11-05T10:00:00Z", "été"],
      ];
      const quote = (c: string) => (/[",\n\t\\]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c);
      const csv = [headers.join(","), ...records.map((r) => r.map(quote).join(","))].join("\n") + "\n";
      writeFileSync(path.join(dir, "e.csv"), csv);
      const options = importOptionsSchema.parse({});
      const ctx = { workspaceId: "w", importId: "i", identifier: "email" as const, options, headerOf: { email: "email", event: "event", occurred_at: "occurred_at" }, createdSegmentId: null, dryRun: false };
      const from = { byte: Buffer.byteLength(headers.join(",") + "\n"), row: 0, line: 1 };
      const plan = { kind: "events" as const, ctx, headers, mapping: { ...mapping }, storageKey: "e.csv", delimiter: ",", from, batchSize: 3, fileWidth: headers.length };

      // What each valid row is, validated on its own: its COPY line.
      const validate = eventRowValidator(headers, { ...mapping }, "email", options.timezone);
      const expected: ValuesRow[] = [];
      records.forEach((r, i) => {
        const res = validate(r, i + 1, r.join(","));
        if (res.ok) expected.push(res.staged as ValuesRow);
      });
      expect(expected.map((r) => r.row)).toEqual([1, 2, 4, 6, 7]);

      const text: string[] = [];
      const failed: number[] = [];
      let rows = 0;
      for await (const { batch } of produceBatches(new LocalStorage(dir), plan)) {
        expect(batch.staged).toEqual([]);
        rows += batch.encoded?.rows ?? 0;
        text.push(new TextDecoder().decode(batch.encoded?.copy ?? new Uint8Array()));
        failed.push(...batch.errors.map((e) => e.row));
      }
      // Two rows of the same event for the same person are two events: nothing supersedes anything.
      expect(rows).toBe(5);
      expect(failed).toEqual([3, 5]);
      expect(text.join("")).toBe(expected.map((r) => copyLine([r.row, r.key, ...r.values])).join(""));
      // The encoder of a batch built without one (encodeEventRows) writes the same bytes.
      expect(new TextDecoder().decode(encodeEventRows(expected).copy)).toBe(text.join(""));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
