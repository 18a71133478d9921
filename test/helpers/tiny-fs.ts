import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * A real, tiny filesystem (tmpfs of `bytes`) so a write meets a genuine ENOSPC. Needs root, as CI runs (`.ci/run`);
 * without it the test fails saying why rather than skipping the check.
 */
export async function mountTinyFs(bytes: number): Promise<{ dir: string; unmount(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "roster-tinyfs-"));
  try {
    await run("mount", ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", dir]);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`mounting a ${bytes}-byte tmpfs (to provoke ENOSPC) needs root: ${(err as Error).message}`);
  }
  return {
    dir,
    async unmount() {
      // Lazy: a handle the code under test leaked must not leave the mount behind.
      await run("umount", ["--lazy", dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Open file descriptors of this process: a leaked handle shows here. */
export async function openFds(): Promise<number> {
  return (await readdir("/proc/self/fd")).length;
}
