import { describe, expect, it } from "vitest";
import { parseDate } from "../../src/domain/imports/values.js";

const iso = (raw: string, tz?: string) => parseDate(raw, tz)?.toISOString() ?? null;

describe("parseDate time zones", () => {
  it("reads a time without an offset as UTC by default, and honours an explicit offset", () => {
    expect(iso("2026-11-21 10:00")).toBe("2026-11-21T10:00:00.000Z");
    expect(iso("2026-11-21")).toBe("2026-11-21T00:00:00.000Z");
    expect(iso("2026-11-21T10:00:00-05:00", "Europe/Paris")).toBe("2026-11-21T15:00:00.000Z");
    expect(iso("2026-11-21T10:00:00Z", "Europe/Paris")).toBe("2026-11-21T10:00:00.000Z");
    expect(iso("1732000000", "Europe/Paris")).toBe("2024-11-19T07:06:40.000Z");
  });

  it("reads a time without an offset in the given zone, across DST changes", () => {
    expect(iso("2026-01-15 12:00", "Europe/Paris")).toBe("2026-01-15T11:00:00.000Z");
    expect(iso("2026-07-15 12:00", "Europe/Paris")).toBe("2026-07-15T10:00:00.000Z");
    expect(iso("07/04/2026 09:30", "America/New_York")).toBe("2026-07-04T13:30:00.000Z");
    expect(iso("15.01.2026", "Asia/Tokyo")).toBe("2026-01-14T15:00:00.000Z");
    // 02:30 does not exist in Paris on 29 March 2026: it moves forward by the hour skipped.
    expect(iso("2026-03-29 02:30", "Europe/Paris")).toBe("2026-03-29T01:30:00.000Z");
    // 02:30 happens twice on 25 October 2026: the earlier (summer time) one is taken.
    expect(iso("2026-10-25 02:30", "Europe/Paris")).toBe("2026-10-25T00:30:00.000Z");
  });

  it("rejects what is not a date", () => {
    expect(iso("yesterday")).toBeNull();
    expect(iso("2026-02-30")).toBeNull();
  });
});
