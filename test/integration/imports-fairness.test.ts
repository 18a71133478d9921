import { describe, expect, it } from "vitest";
import { contactRows, startCsvImport, useBigAndSmall, waitForImport } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";

// One slot, short slices and small batches: a big import spans many slices, so the waiting ones can overtake it. No
// small-import lane (imports-small-lane.test.ts has it): every import here shares the one slot, as imports too big for
// the lane do.
const t = useTestContext({ IMPORT_CONCURRENCY: "1", IMPORT_TIME_SLICE_MS: "200", IMPORT_BATCH_SIZE: "500", IMPORT_SMALL_MAX_BYTES: "0" });
const w = useBigAndSmall(t);

const BIG_ROWS = 30_000;
const SMALL_ROWS = 20;

const contacts = contactRows;
const upload = startCsvImport;

interface Row {
  status: string;
  processed: number;
  attempts: number;
  finishedAt: Date | null;
}

async function row(id: string): Promise<Row> {
  const [r] = await t.ctx.db.$client`select status, processed, attempts, finished_at from imports where id = ${id}`;
  return { status: String(r?.status), processed: Number(r?.processed), attempts: Number(r?.attempts), finishedAt: r?.finished_at ? new Date(String(r.finished_at)) : null };
}

/** Polls until `ok` holds for the import's row; fails with the last row seen. */
async function until(id: string, ok: (r: Row) => boolean, timeoutMs = 60_000): Promise<Row> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await row(id);
    if (ok(r)) return r;
    if (Date.now() > deadline) throw new Error(`import ${id}: condition not met, last seen ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

describe("import time slices (one slot)", () => {
  it("small imports of another workspace finish while a big one still runs; the big one ends with exact counts", async () => {
    const bigId = await upload(w.big, contacts("b", BIG_ROWS));
    await until(bigId, (r) => r.status === "processing" && r.processed > 0);

    const smallIds: string[] = [];
    for (let i = 0; i < 4; i++) smallIds.push(await upload(w.small, contacts(`s${i}-`, SMALL_ROWS)));
    const smallDone = await Promise.all(smallIds.map((id) => waitForImport(w.small, id, 60_000)));
    // The moment the last small one ended, the big one had not: it yielded its slot and still holds its place.
    const bigWhenSmallDone = await row(bigId);

    for (const s of smallDone) {
      expect(s.status).toBe("done");
      expect(s.counts).toMatchObject({ total: SMALL_ROWS, created: SMALL_ROWS, failed: 0 });
    }
    expect(bigWhenSmallDone.status).toBe("processing");
    expect(bigWhenSmallDone.processed).toBeLessThan(BIG_ROWS);

    const bigDone = await waitForImport(w.big, bigId, 120_000);
    expect(bigDone.status).toBe("done");
    expect(bigDone.counts).toEqual({ total: BIG_ROWS, processed: BIG_ROWS, created: BIG_ROWS, updated: 0, unchanged: 0, skipped: 0, failed: 0 });
    for (const s of smallDone) expect(new Date(s.finishedAt).getTime()).toBeLessThan(new Date(bigDone.finishedAt).getTime());

    const [state] = await t.ctx.db.$client`
      select
        (select count(*)::int from people where workspace_id = ${w.big.workspaceId}) as people,
        (select count(*)::int from import_people where import_id = ${bigId}) as ledger`;
    expect(state).toEqual({ people: BIG_ROWS, ledger: 0 });
    // It yielded (a slice ended with others waiting), and giving a slot up is not an attempt.
    expect(t.ctx.logs.some((l) => l.includes(bigId) && l.includes("yielding its slot"))).toBe(true);
    expect((await row(bigId)).attempts).toBe(1);
  });

  it("two big imports share the one slot in turns: neither waits for the other to end", async () => {
    const first = await upload(w.big, contacts("f", BIG_ROWS));
    await until(first, (r) => r.status === "processing" && r.processed > 0);
    const second = await upload(w.small, contacts("g", BIG_ROWS));

    // The second makes progress while the first still runs, and the first resumes while the second still runs.
    await until(second, (r) => r.processed > 0);
    const firstMeanwhile = await row(first);
    expect(firstMeanwhile.status).toBe("processing");
    const secondAt = (await row(second)).processed;
    await until(first, (r) => r.processed > firstMeanwhile.processed);
    const secondMeanwhile = await row(second);
    expect(secondMeanwhile.status).toBe("processing");
    expect(secondAt).toBeLessThan(BIG_ROWS);

    for (const [client, id] of [[w.big, first], [w.small, second]] as const) {
      const done = await waitForImport(client, id, 120_000);
      expect(done.status).toBe("done");
      expect(done.counts).toEqual({ total: BIG_ROWS, processed: BIG_ROWS, created: BIG_ROWS, updated: 0, unchanged: 0, skipped: 0, failed: 0 });
    }
  });
});
