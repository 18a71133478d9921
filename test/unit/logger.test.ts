import { Writable } from "node:stream";
import { DrizzleQueryError } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/lib/logger.js";

function capture() {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { log: createLogger({ LOG_LEVEL: "info" }, dest), lines };
}

describe("logged errors", () => {
  it("a failed query is logged as the driver's error, without the statement's parameters", () => {
    const { log, lines } = capture();
    const cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    log.warn({ err: new DrizzleQueryError("select * from people where email = $1", ["ann.secret@example.com"], cause) }, "database unavailable");
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as { err: { message: string; code: string } };
    expect(line.err).toMatchObject({ message: "connect ECONNREFUSED 127.0.0.1:5432", code: "ECONNREFUSED" });
    expect(lines[0]).not.toContain("ann.secret@example.com");
    expect(lines[0]).not.toContain("select * from people");
  });

  it("other errors keep their message and stack", () => {
    const { log, lines } = capture();
    log.error({ err: new Error("boom") }, "unhandled error");
    const line = JSON.parse(lines[0]!) as { err: { message: string; stack: string; type: string } };
    expect(line.err).toMatchObject({ message: "boom", type: "Error" });
    expect(line.err.stack).toContain("logger.test.ts");
  });
});
