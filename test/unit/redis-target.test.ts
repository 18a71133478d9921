import { Cluster, Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { createProducerConnection, createWorkerConnection, parseClusterNodes } from "../../src/queue/redis.js";

describe("Redis connections from the settings", () => {
  it("parses REDIS_CLUSTER_NODES into seed nodes and rejects an entry without a port", () => {
    expect(parseClusterNodes("10.0.0.1:7000, redis-b:7001,")).toEqual([
      { host: "10.0.0.1", port: 7000 },
      { host: "redis-b", port: 7001 },
    ]);
    expect(() => parseClusterNodes("10.0.0.1")).toThrow(/host:port/);
  });

  it("builds a Cluster with BullMQ's per-node options and REDIS_URL's credentials when cluster nodes are set", () => {
    const target = { REDIS_URL: "rediss://roster:s3cret@ignored:6379", REDIS_CLUSTER_NODES: "127.0.0.1:1" };
    const worker = createWorkerConnection(target, { lazyConnect: true });
    const producer = createProducerConnection({ ...target, REDIS_URL: "redis://:pw@ignored:6379" });
    try {
      expect(worker).toBeInstanceOf(Cluster);
      const w = worker as Cluster;
      expect(w.options.redisOptions).toMatchObject({ maxRetriesPerRequest: null, username: "roster", password: "s3cret", tls: {} });
      expect(w.options.lazyConnect).toBe(true);
      const p = producer as Cluster;
      expect(p.options.enableOfflineQueue).toBe(false);
      expect(p.options.redisOptions).toMatchObject({ maxRetriesPerRequest: 1, password: "pw" });
    } finally {
      worker.disconnect();
      producer.disconnect();
    }
  });

  it("builds a single connection from REDIS_URL otherwise", () => {
    const c = createWorkerConnection({ REDIS_URL: "redis://127.0.0.1:1" }, { lazyConnect: true });
    expect(c).toBeInstanceOf(Redis);
    c.disconnect();
  });
});
