import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.js";
import { ApiKeyCache } from "../../src/domain/workspaces/api-key-cache.js";
import { authenticateApiKey } from "../../src/domain/workspaces/workspaces.js";
import { hashApiKey } from "../../src/lib/keys.js";
import { useTestContext } from "../helpers/context.js";

/**
 * The API-key cache (ApiKeyCache): a valid key is answered from memory, and a revocation still takes effect at once
 * in every API process, however it is made. Two apps with a cache each stand for two API processes.
 */

const t = useTestContext();
const caches: ApiKeyCache[] = [];
const apps: FastifyInstance[] = [];

function newCache(name: string, ttlMs = 60_000): ApiKeyCache {
  const cache = new ApiKeyCache(t.ctx.env.DATABASE_URL, { ttlMs, applicationName: `roster-api-keys-${name}` });
  caches.push(cache);
  return cache;
}

/** An API process of its own: its own cache (and LISTEN connection), the test's database. */
async function apiProcess(name: string): Promise<{ app: FastifyInstance; cache: ApiKeyCache }> {
  const cache = newCache(name);
  const app = await buildApp({ ...t.ctx, apiKeys: cache });
  apps.push(app);
  await cache.ready();
  return { app, cache };
}

async function newWorkspace(app: FastifyInstance): Promise<{ id: string; apiKey: string; keyId: string }> {
  const res = await app.inject({ method: "POST", url: "/v1/admin/workspaces", headers: { authorization: `Bearer ${t.ctx.env.ADMIN_TOKEN}` }, payload: { name: "Keys" } });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

const me = (app: FastifyInstance, key: string) => app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${key}` } });
const hex = (key: string) => hashApiKey(key).toString("hex");

/** Polls until `app` refuses `key` (401) and returns how long it took; fails after `ms`. */
async function refusedWithin(app: FastifyInstance, key: string, ms: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    const res = await me(app, key);
    if (res.statusCode === 401) return Date.now() - start;
    expect(res.statusCode, res.body).toBe(200);
    if (Date.now() - start > ms) throw new Error(`the revoked key still worked after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let a: { app: FastifyInstance; cache: ApiKeyCache };
let b: { app: FastifyInstance; cache: ApiKeyCache };

beforeAll(async () => {
  a = await apiProcess("a");
  b = await apiProcess("b");
});

afterAll(async () => {
  for (const app of apps) await app.close();
  for (const cache of caches) await cache.close();
});

describe("API key cache", () => {
  it("answers a valid key from memory once it was looked up, and never keeps an unknown one", async () => {
    const ws = await newWorkspace(a.app);
    expect(a.cache.get(hex(ws.apiKey))).toBeUndefined();
    expect((await me(a.app, ws.apiKey)).json()).toEqual({ workspaceId: ws.id });
    expect(a.cache.get(hex(ws.apiKey))).toEqual({ workspaceId: ws.id, keyId: ws.keyId });
    const unknown = `rst_${"A".repeat(43)}`;
    expect((await me(a.app, unknown)).statusCode).toBe(401);
    expect(a.cache.get(hex(unknown))).toBeUndefined();
  });

  it("a key revoked through one process stops working in another at once (NOTIFY from the api_keys trigger)", async () => {
    const ws = await newWorkspace(a.app);
    for (const p of [a, b]) expect((await me(p.app, ws.apiKey)).statusCode).toBe(200);
    expect(b.cache.get(hex(ws.apiKey))).toBeDefined();
    const del = await a.app.inject({ method: "DELETE", url: `/v1/admin/workspaces/${ws.id}/keys/${ws.keyId}`, headers: { authorization: `Bearer ${t.ctx.env.ADMIN_TOKEN}` } });
    expect(del.statusCode, del.body).toBe(204);
    // The process that revoked it forgets it before answering; the other within the notification's delivery.
    expect((await me(a.app, ws.apiKey)).statusCode).toBe(401);
    expect(await refusedWithin(b.app, ws.apiKey, 2_000)).toBeLessThan(1_000);
    expect(b.cache.get(hex(ws.apiKey))).toBeUndefined();
  });

  it("a key revoked by hand in SQL stops working too", async () => {
    const ws = await newWorkspace(a.app);
    expect((await me(b.app, ws.apiKey)).statusCode).toBe(200);
    expect(b.cache.get(hex(ws.apiKey))).toBeDefined();
    await t.ctx.db.$client`update api_keys set revoked_at = now() where id = ${ws.keyId}`;
    expect(await refusedWithin(b.app, ws.apiKey, 2_000)).toBeLessThan(1_000);
    // A key deleted outright, and a truncate, are announced as well.
    const other = await newWorkspace(a.app);
    expect((await me(b.app, other.apiKey)).statusCode).toBe(200);
    await t.ctx.db.$client`delete from api_keys where id = ${other.keyId}`;
    expect(await refusedWithin(b.app, other.apiKey, 2_000)).toBeLessThan(1_000);
  });

  it("a lookup that raced a change is not kept", async () => {
    const ws = await newWorkspace(a.app);
    const token = b.cache.token();
    // Any notification while the lookup ran (here: another key's revocation) makes its result unsafe to keep.
    const other = await newWorkspace(a.app);
    await t.ctx.db.$client`update api_keys set revoked_at = now() where id = ${other.keyId}`;
    for (const end = Date.now() + 2_000; b.cache.token() === token; ) {
      if (Date.now() > end) throw new Error("no notification arrived");
      await new Promise((r) => setTimeout(r, 5));
    }
    b.cache.set(hex(ws.apiKey), { workspaceId: ws.id, keyId: ws.keyId }, token);
    expect(b.cache.get(hex(ws.apiKey))).toBeUndefined();
  });

  it("when the listening connection drops, everything is forgotten and keys are looked up until LISTEN is back", async () => {
    const ws = await newWorkspace(a.app);
    expect((await me(b.app, ws.apiKey)).statusCode).toBe(200);
    expect(b.cache.get(hex(ws.apiKey))).toBeDefined();
    await t.ctx.db.$client`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'roster-api-keys-b'`;
    for (const end = Date.now() + 2_000; b.cache.isListening; ) {
      if (Date.now() > end) throw new Error("the cache did not notice its connection dropped");
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(b.cache.get(hex(ws.apiKey))).toBeUndefined();
    // A revocation while nobody listens: the next request reads the database.
    await t.ctx.db.$client`update api_keys set revoked_at = now() where id = ${ws.keyId}`;
    expect((await me(b.app, ws.apiKey)).statusCode).toBe(401);
    // LISTEN comes back by itself, and the cache with it.
    await b.cache.ready();
    const fresh = await newWorkspace(a.app);
    expect((await me(b.app, fresh.apiKey)).statusCode).toBe(200);
    expect(b.cache.get(hex(fresh.apiKey))).toBeDefined();
  });

  it("an entry is trusted for ttlMs at most; 0 turns the cache off", async () => {
    const ws = await newWorkspace(a.app);
    const short = newCache("short", 50);
    await short.ready();
    expect(await authenticateApiKey(t.ctx.db, ws.apiKey, short)).toEqual({ workspaceId: ws.id, keyId: ws.keyId });
    expect(short.get(hex(ws.apiKey))).toBeDefined();
    await new Promise((r) => setTimeout(r, 80));
    expect(short.get(hex(ws.apiKey))).toBeUndefined();

    const off = newCache("off", 0);
    expect(await authenticateApiKey(t.ctx.db, ws.apiKey, off)).toEqual({ workspaceId: ws.id, keyId: ws.keyId });
    expect(off.get(hex(ws.apiKey))).toBeUndefined();
    const [listeners] = await t.ctx.db.$client`select count(*)::int as n from pg_stat_activity where application_name = 'roster-api-keys-off'`;
    expect(listeners?.n).toBe(0);
  });
});
