import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from "ioredis";
import type { Env } from "../config/env.js";

/** A single Redis or a Redis Cluster: BullMQ, the health probe, metrics and the rate limiter take either. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: REDIS_URL, or the seed nodes of a cluster (REDIS_CLUSTER_NODES) with REDIS_URL's credentials and TLS. */
export type RedisTarget = Pick<Env, "REDIS_URL" | "REDIS_CLUSTER_NODES">;

/** "host:port,host:port" → cluster seed nodes; ioredis discovers the rest of the cluster from any one of them. */
export function parseClusterNodes(list: string): ClusterNode[] {
  return list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((hostPort) => {
      const at = hostPort.lastIndexOf(":");
      const port = Number(hostPort.slice(at + 1));
      if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`REDIS_CLUSTER_NODES: '${hostPort}' is not host:port`);
      return { host: hostPort.slice(0, at), port };
    });
}

/** What every cluster node connection needs from REDIS_URL: user, password, TLS (rediss://). */
function credentialsOf(url: string): RedisOptions {
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
}

function connect(target: RedisTarget, node: RedisOptions, cluster: Omit<ClusterOptions, "redisOptions"> = {}): RedisClient {
  if (!target.REDIS_CLUSTER_NODES) return new Redis(target.REDIS_URL, node);
  const { retryStrategy, enableOfflineQueue, lazyConnect, enableReadyCheck, ...perNode } = node;
  return new Cluster(parseClusterNodes(target.REDIS_CLUSTER_NODES), {
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(lazyConnect === undefined ? {} : { lazyConnect }),
    ...(enableReadyCheck === undefined ? {} : { enableReadyCheck }),
    clusterRetryStrategy: retryStrategy ?? ((times) => Math.min(times * 500, 5_000)),
    ...cluster,
    // maxRetriesPerRequest and the timeouts apply per node: BullMQ reads a cluster's redisOptions for its checks.
    redisOptions: { ...credentialsOf(target.REDIS_URL), ...perNode },
  });
}

/** Producers fail fast: no offline queue, one try, 2 s to connect; the API answers 503 instead of hanging. */
export function createProducerConnection(target: RedisTarget): RedisClient {
  return connect(target, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
}

/** Workers wait out outages: unlimited retries per command and reconnection forever (BullMQ requires this). */
export function createWorkerConnection(target: RedisTarget, extra: RedisOptions = {}): RedisClient {
  return connect(target, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 500, 5_000),
    ...extra,
  });
}

/** Resolves once the connection is ready (a fresh producer connection is still connecting); rejects after `ms`. */
export async function whenReady(redis: RedisClient, ms: number): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off("ready", onReady);
      reject(new Error(`redis not ready after ${ms} ms (${redis.status})`));
    }, ms);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once("ready", onReady);
  });
}
