import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { RedisClient } from "../../src/queue/redis.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { buildApp } from "../../src/api/app.js";
import { loadEnv, type Env } from "../../src/config/env.js";
import { UnavailableError } from "../../src/domain/errors.js";
import { createLogger } from "../../src/lib/logger.js";
import { createRuntime, type Runtime } from "../../src/runtime.js";
import { useTestContext } from "../helpers/context.js";
import { closedPort, isListening, withPort } from "../helpers/processes.js";

const t = useTestContext();

/** Readiness and enqueue must give up on a dead dependency well before a load balancer's probe would. */
const FAIL_FAST_MS = 2_500;

interface NotReady {
  error: { code: string; message: string; details: { checks: Record<string, string> } };
  requestId: string;
}

/** An env like the test context's, with some variables replaced. */
function envWith(overrides: Partial<Record<keyof Env, string>>): Env {
  const e = t.ctx.env;
  return loadEnv({
    DATABASE_URL: e.DATABASE_URL,
    REDIS_URL: e.REDIS_URL,
    QUEUE_PREFIX: e.QUEUE_PREFIX,
    STORAGE_DIR: e.STORAGE_DIR,
    LOG_LEVEL: "silent",
    ...overrides,
  });
}

/** A runtime and app over `env` (nothing migrated); closed by the returned function. */
async function appWith(env: Env): Promise<{ rt: Runtime; app: FastifyInstance; close(): Promise<void> }> {
  const rt = await createRuntime(env, createLogger(env), { migrate: false });
  const app = await buildApp(rt);
  return {
    rt,
    app,
    async close() {
      await app.close();
      await rt.close();
    },
  };
}

/** Waits until the producer connection has connected (it refuses commands meanwhile: no offline queue). */
async function redisReady(redis: RedisClient, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (redis.status !== "ready") {
    if (Date.now() > deadline) throw new Error(`redis still ${redis.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

describe("with every dependency up", () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp(t.ctx);
    await redisReady(t.ctx.redis);
  });
  afterAll(async () => {
    await app?.close();
  });

  it("GET /healthz answers 200", async () => {
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ status: "ok" });
  });

  it("GET /readyz answers 200 with every check up", async () => {
    const res = await app.inject({ method: "GET", url: "/readyz" });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { status: string; checks: Record<string, string> };
    expect(body.status).toBe("ready");
    expect(body.checks).toMatchObject({ postgres: "up", redis: "up" });
    expect(Object.values(body.checks).every((s) => s === "up")).toBe(true);
  });

  it("GET /readyz right after start waits for the Redis connection instead of reporting it down", async () => {
    const fresh = await appWith(envWith({}));
    try {
      const res = await fresh.app.inject({ method: "GET", url: "/readyz" });
      expect(res.statusCode, res.body).toBe(200);
    } finally {
      await fresh.close();
    }
  });
});

describe("with Redis down", () => {
  let deadRedis: string;
  let h: Awaited<ReturnType<typeof appWith>>;
  beforeAll(async () => {
    const port = await closedPort();
    deadRedis = withPort(t.ctx.env.REDIS_URL, port);
    h = await appWith(envWith({ REDIS_URL: deadRedis }));
  });
  afterAll(async () => {
    await h?.close();
  });

  it("nothing listens where the runtime's Redis points", async () => {
    expect(await isListening(Number(new URL(deadRedis).port))).toBe(false);
  });

  it("GET /readyz answers 503 not_ready naming redis, within 2.5 s", async () => {
    const { value: res, ms } = await timed(() => h.app.inject({ method: "GET", url: "/readyz" }));
    expect(ms).toBeLessThan(FAIL_FAST_MS);
    expect(res.statusCode, res.body).toBe(503);
    const body = res.json() as NotReady;
    expect(body.error.code).toBe("not_ready");
    expect(body.error.message).toMatch(/redis/i);
    expect(body.error.message).not.toMatch(/postgres/i);
    expect(body.error.details.checks.redis).toBe("down");
    expect(body.error.details.checks.postgres).toBe("up");
    expect(body.requestId).toEqual(expect.any(String));
  });

  it("GET /healthz still answers 200 (the process is up)", async () => {
    const res = await h.app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
  });

  it("producer.enqueue rejects with UnavailableError queue_unavailable within 2.5 s", async () => {
    const started = performance.now();
    const err = await h.rt.producer.enqueue("import.run", { workspaceId: randomUUID(), importId: randomUUID() }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(performance.now() - started).toBeLessThan(FAIL_FAST_MS);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).code).toBe("queue_unavailable");
  });

  it("an invalid payload is refused before Redis is touched (not reported as the queue being down)", async () => {
    const err = await h.rt.producer
      // deliberately not a uuid
      .enqueue("import.run", { workspaceId: "nope", importId: randomUUID() })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).not.toBeNull();
    expect(err).not.toBeInstanceOf(UnavailableError);
  });

  it("the producer's connection errors go to the logger, not to console.error", async () => {
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const other = await appWith(envWith({ REDIS_URL: deadRedis }));
      await new Promise((r) => setTimeout(r, 1_000)); // a few reconnection attempts
      await other.close();
      expect(consoleError.mock.calls.map((c) => String(c[0]).split("\n")[0])).toEqual([]);
    } finally {
      consoleError.mockRestore();
    }
  });

  it("closing the runtime does not hang", async () => {
    const other = await appWith(envWith({ REDIS_URL: deadRedis }));
    await other.rt.producer.enqueue("import.run", { workspaceId: randomUUID(), importId: randomUUID() }).catch(() => {});
    const { ms } = await timed(() => other.close());
    expect(ms).toBeLessThan(FAIL_FAST_MS);
  });
});

describe("with PostgreSQL down", () => {
  let h: Awaited<ReturnType<typeof appWith>>;
  beforeAll(async () => {
    const port = await closedPort();
    h = await appWith(envWith({ DATABASE_URL: withPort(t.ctx.env.DATABASE_URL, port) }));
    await redisReady(h.rt.redis);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("GET /readyz answers 503 not_ready naming postgres, within 2.5 s", async () => {
    const { value: res, ms } = await timed(() => h.app.inject({ method: "GET", url: "/readyz" }));
    expect(ms).toBeLessThan(FAIL_FAST_MS);
    expect(res.statusCode, res.body).toBe(503);
    const body = res.json() as NotReady;
    expect(body.error.code).toBe("not_ready");
    expect(body.error.message).toMatch(/postgres/i);
    expect(body.error.message).not.toMatch(/redis/i);
    expect(body.error.details.checks.postgres).toBe("down");
    expect(body.error.details.checks.redis).toBe("up");
  });

  it("an authenticated route answers 503 in the error shape rather than 500 or hanging", async () => {
    const { value: res, ms } = await timed(() =>
      h.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer rst_${"A".repeat(43)}` } }),
    );
    expect(ms).toBeLessThan(FAIL_FAST_MS * 4);
    expect(res.statusCode, res.body).toBe(503);
    const body = res.json() as { error: { code: string }; requestId: string };
    expect(body.error.code).toEqual(expect.any(String));
    expect(body.requestId).toEqual(expect.any(String));
  });
});

describe("with PostgreSQL and Redis down", () => {
  it("GET /readyz names both", async () => {
    const [pgPort, redisPort] = [await closedPort(), await closedPort()];
    const h = await appWith(
      envWith({ DATABASE_URL: withPort(t.ctx.env.DATABASE_URL, pgPort), REDIS_URL: withPort(t.ctx.env.REDIS_URL, redisPort) }),
    );
    try {
      const { value: res, ms } = await timed(() => h.app.inject({ method: "GET", url: "/readyz" }));
      expect(ms).toBeLessThan(FAIL_FAST_MS);
      expect(res.statusCode).toBe(503);
      const body = res.json() as NotReady;
      expect(body.error.message).toMatch(/postgres/);
      expect(body.error.message).toMatch(/redis/);
      expect(body.error.details.checks).toMatchObject({ postgres: "down", redis: "down" });
    } finally {
      await h.close();
    }
  });
});
