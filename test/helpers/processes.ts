import { spawn, type ChildProcess } from "node:child_process";
import { createServer, connect } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Resolves true when something accepts TCP connections on 127.0.0.1:port. */
export function isListening(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (listening: boolean) => {
      socket.destroy();
      resolve(listening);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.setTimeout(1_000, () => done(false));
  });
}

/** A port on 127.0.0.1 where nothing listens (checked), for "dependency is down" tests. */
export async function closedPort(): Promise<number> {
  const port = await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === "object" ? resolve(addr.port) : reject(new Error("no address"))));
    });
  });
  if (await isListening(port)) throw new Error(`port ${port} was expected to be closed`);
  return port;
}

/** Replaces the port of a URL (postgres://, redis://). */
export function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString();
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Spawned {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in stdout+stderr; rejects after timeoutMs or if the process exits first. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Resolves when the process exits; rejects after timeoutMs. */
  exited(timeoutMs: number): Promise<Exit>;
  /** SIGKILLs the process if it is still running (test cleanup). */
  kill(): Promise<void>;
}

/**
 * Runs a TypeScript entry point of the repo as its own node process (`node --import tsx <script>`), so signals
 * reach the process under test directly. The environment is minimal (PATH, HOME, TMPDIR) plus `env`: nothing
 * leaks in from the test runner's own environment.
 */
export function spawnTs(script: string, env: Record<string, string | undefined>, args: string[] = []): Spawned {
  const base: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "TMPDIR", "LANG"]) {
    const v = process.env[k];
    if (v !== undefined) base[k] = v;
  }
  const clean = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: REPO_ROOT,
    env: { ...base, ...clean },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
  let exit: Exit | undefined;
  const exitPromise = new Promise<Exit>((resolve) => {
    child.once("exit", (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });

  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = (out + err).match(pattern);
          if (m) {
            finish();
            resolve(m);
          } else if (exit) {
            finish();
            reject(new Error(`process exited (${JSON.stringify(exit)}) before printing ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`no ${pattern} within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          child.stdout?.off("data", check);
          child.stderr?.off("data", check);
          child.off("exit", onExit);
        };
        const onExit = () => setImmediate(check);
        child.stdout?.on("data", check);
        child.stderr?.on("data", check);
        child.on("exit", onExit);
        check();
      });
    },
    exited(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        exitPromise.finally(() => clearTimeout(timer)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`process did not exit within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`)),
            timeoutMs,
          );
        }),
      ]);
    },
    async kill() {
      if (!exit) {
        child.kill("SIGKILL");
        await exitPromise;
      }
    },
  };
}
