import { describe, expect, it } from "vitest";
import { contactRows, startCsvImport, useBigAndSmall, waitForImport } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";

// One import slot with short slices, and the small-import lane beside it (one slot): files of at most 4 KiB after
// their header run in the lane.
const t = useTestContext({ IMPORT_CONCURRENCY: "1", IMPORT_SMALL_CONCURRENCY: "1", IMPORT_SMALL_MAX_BYTES: "4096", IMPORT_TIME_SLICE_MS: "200", IMPORT_BATCH_SIZE: "500" });
const w = useBigAndSmall(t);

const BIG_ROWS = 20_000;
const SMALL_ROWS = 20;

const contacts = contactRows;
const upload = startCsvImport;

async function row(id: string) {
  const [r] = await t.ctx.db.$client`select status, processed from imports where id = ${id}`;
  return { status: String(r?.status), processed: Number(r?.processed) };
}

/** The worker's log lines about one import's job on one queue. */
const jobLogs = (id: string, queue: string) => t.ctx.logs.filter((l) => l.includes(id) && l.includes(`"queue":"${queue}"`));

describe("the small-import lane", () => {
  it("small imports run beside a big one that holds the only import slot; the big one never gives its slot up for them", async () => {
    const bigId = await upload(w.big, contacts("b", BIG_ROWS));
    for (let r = await row(bigId); !(r.status === "processing" && r.processed > 0); r = await row(bigId)) {
      await new Promise((res) => setTimeout(res, 20));
    }

    const smallIds: string[] = [];
    for (let i = 0; i < 4; i++) smallIds.push(await upload(w.small, contacts(`s${i}-`, SMALL_ROWS)));
    const smallDone = await Promise.all(smallIds.map((id) => waitForImport(w.small, id, 60_000)));
    const bigWhenSmallDone = await row(bigId);

    for (const [i, s] of smallDone.entries()) {
      expect(s.status).toBe("done");
      expect(s.counts).toMatchObject({ total: SMALL_ROWS, created: SMALL_ROWS, failed: 0 });
      // Each ran on the lane's queue, as its own job kind.
      expect(jobLogs(smallIds[i]!, "imports-small").some((l) => l.includes('"job":"import.small"') && l.includes('"outcome":"done"'))).toBe(true);
      expect(jobLogs(smallIds[i]!, "imports")).toEqual([]);
    }
    // The big one was still running, in its slot: the small ones did not wait for it, nor it for them.
    expect(bigWhenSmallDone.status).toBe("processing");
    expect(bigWhenSmallDone.processed).toBeLessThan(BIG_ROWS);

    const bigDone = await waitForImport(w.big, bigId, 120_000);
    expect(bigDone.status).toBe("done");
    expect(bigDone.counts).toEqual({ total: BIG_ROWS, processed: BIG_ROWS, created: BIG_ROWS, updated: 0, unchanged: 0, skipped: 0, failed: 0 });
    // Its slices ended with nobody waiting on its queue: it never yielded, and its one run ended done.
    expect(t.ctx.logs.some((l) => l.includes(bigId) && l.includes("yielding its slot"))).toBe(false);
    expect(jobLogs(bigId, "imports").filter((l) => l.includes('"job":"import.run"') && l.includes('"msg":"run ended"'))).toHaveLength(1);
    const [people] = await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${w.small.workspaceId}`;
    expect(people?.n).toBe(4 * SMALL_ROWS);
  });

  it("a file one byte over the limit runs on the imports queue; one at the limit in the lane", async () => {
    // The header line (with its newline) is not counted: the bytes after it are.
    const header = "email\n";
    const body = (n: number) => `${"a".repeat(n - "@x.io".length)}@x.io`;
    const atLimit = await upload(w.small, header + body(4096));
    const over = await upload(w.small, header + body(4097));
    for (const [id, queue, job] of [[atLimit, "imports-small", "import.small"], [over, "imports", "import.run"]] as const) {
      const done = await waitForImport(w.small, id, 60_000);
      expect(done.status).toBe("done");
      expect(jobLogs(id, queue).some((l) => l.includes(`"job":"${job}"`) && l.includes('"outcome":"done"'))).toBe(true);
    }
  });
});
