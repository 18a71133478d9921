import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { closedPort, isListening } from "./processes.js";

const run = promisify(execFile);

/** A real Redis Cluster of three masters on free local ports, in a temporary directory; started and stopped by the test. */
export interface LocalRedisCluster {
  ports: number[];
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3", as REDIS_CLUSTER_NODES takes it. */
  nodes: string;
  stop(): Promise<void>;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  for (const end = Date.now() + timeoutMs; ; ) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`${what} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Redis listens for its cluster bus on the client port plus this. */
const CLUSTER_BUS_OFFSET = 10_000;

export async function startRedisCluster(masters = 3): Promise<LocalRedisCluster> {
  const dir = await mkdtemp(path.join(tmpdir(), "roster-cluster-"));
  // Each node also listens on its cluster bus port, its own port + 10000: that one must be free too, and no node's
  // port may be another's bus port (35547 and 45547 once made the cluster fail to form).
  const ports: number[] = [];
  const taken = new Set<number>();
  while (ports.length < masters) {
    const p = await closedPort();
    const bus = p + CLUSTER_BUS_OFFSET;
    if (bus > 65535 || taken.has(p) || taken.has(bus) || (await isListening(bus))) continue;
    ports.push(p);
    taken.add(p).add(bus);
  }
  const children: ChildProcess[] = ports.map((p) =>
    spawn(
      "redis-server",
      ["--port", String(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${p}.conf`, "--dir", dir, "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"],
      { stdio: "ignore" },
    ),
  );
  const stop = async () => {
    await Promise.all(
      children.map((c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = new Promise((r) => c.once("exit", r));
        c.kill("SIGKILL");
        return exited;
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const p of ports) await until(`cluster node ${p} not listening`, 10_000, () => isListening(p));
    const addrs = ports.map((p) => `127.0.0.1:${p}`);
    await run("redis-cli", ["--cluster", "create", ...addrs, "--cluster-replicas", "0", "--cluster-yes"], { timeout: 30_000 });
    // Every node must agree before a client's slot map is complete.
    for (const p of ports) {
      await until(`cluster node ${p} not ok`, 20_000, async () => (await run("redis-cli", ["-p", String(p), "cluster", "info"])).stdout.includes("cluster_state:ok"));
    }
    return { ports, nodes: addrs.join(","), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
