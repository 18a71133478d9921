import net from "node:net";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { createSql, type Sql } from "../../src/db/client.js";

// The service's PostgreSQL pools (createSql) open their own sockets (noDelaySocket): see why there.
const admin = new URL(inject("pgAdminUrl"));
const opened: Sql[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(opened.splice(0).map((s) => s.end({ timeout: 1 })));
});
function sql(url: string): Sql {
  const s = createSql(url, { max: 1 });
  opened.push(s);
  return s;
}

describe("the service's PostgreSQL connections", () => {
  it("are opened with TCP_NODELAY, and answer a statement sent just after a COPY", async () => {
    const noDelay = vi.spyOn(net.Socket.prototype, "setNoDelay");
    const s = sql(admin.toString());
    const conn = await s.reserve();
    try {
      await conn.unsafe("create temp table nagle (a int, b text)");
      const stream = await conn.unsafe("copy nagle from stdin").writable();
      const done = new Promise((resolve, reject) => stream.on("finish", resolve).on("error", reject));
      stream.end(Buffer.from(Array.from({ length: 5_000 }, (_, i) => `${i}\t${"x".repeat(100)}\n`).join("")));
      await done;
      const [row] = await conn`select count(*)::int as n from nagle`;
      expect(row?.n).toBe(5_000);
    } finally {
      conn.release();
    }
    const sockets = noDelay.mock.contexts as net.Socket[];
    expect(noDelay.mock.calls.some(([on]) => on === true)).toBe(true);
    expect(sockets.some((socket) => socket.remotePort === Number(admin.port || 5432))).toBe(true);
  });

  it("try the URL's hosts in turn, as postgres.js does: a refused first host falls through to the next", async () => {
    // postgres.js reads `host:port,host:port` from the URL's authority; URL() cannot hold a comma-separated host.
    const url = admin.toString().replace(`@${admin.host}`, `@127.0.0.1:1,${admin.hostname}:${admin.port || 5432}`);
    const [row] = await sql(url)`select 1 as one`;
    expect(row?.one).toBe(1);
  });

  it("ask for the array types once per pool, so a pool ended while it grows leaves no unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on("unhandledRejection", onUnhandled);
    try {
      for (let i = 0; i < 10; i++) {
        const s = createSql(admin.toString(), { max: 3 });
        const [row] = await s<{ a: string[] }[]>`select array['x', 'y'] as a`;
        expect(row?.a).toEqual(["x", "y"]);
        // Two more connections open for these; the pool is ended while they connect.
        const pending = Promise.allSettled([s`select pg_sleep(0.05)`, s`select pg_sleep(0.05)`, s`select 2`]);
        await new Promise((resolve) => setTimeout(resolve, 1));
        await s.end({ timeout: 0 });
        await pending;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it("parse arrays on every connection of a pool, the ones opened after the first too", async () => {
    const s = createSql(admin.toString(), { max: 4 });
    opened.push(s);
    await s`select 1`;
    const rows = await Promise.all(Array.from({ length: 8 }, (_, i) => s<{ a: number[]; t: string[] }[]>`select array[${i}::int, 2] as a, ${["p", "q"]}::text[] as t, pg_sleep(0.02)`));
    rows.forEach(([row], i) => expect(row).toMatchObject({ a: [i, 2], t: ["p", "q"] }));
  });

  it("report a refused connection as the error it is", async () => {
    const url = admin.toString().replace(`@${admin.host}`, "@127.0.0.1:1");
    await expect(sql(url)`select 1`).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});
