/**
 * `npm test` runs this first: it names what the suite needs and is missing on this machine (PostgreSQL, Redis,
 * Chromium) before anything runs, instead of a wall of failed tests. `bash .ci/run` installs and starts all three.
 */
import { existsSync } from "node:fs";
import net from "node:net";

const TIMEOUT_MS = 2_000;

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || defaultPort) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(TIMEOUT_MS, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

const dockerEngine = existsSync("/var/run/docker.sock") || Boolean(process.env.DOCKER_HOST);
const pgUrl = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const missing: string[] = [];
const usesContainers = dockerEngine && !(process.env.TEST_DATABASE_URL && process.env.TEST_REDIS_URL);
if (!usesContainers) {
  if (!(await reachable(pgUrl, 5432))) missing.push(`PostgreSQL 15+ at ${new URL(pgUrl).host} (set TEST_DATABASE_URL, or start it)`);
  if (!(await reachable(redisUrl, 6379))) missing.push(`Redis 7 at ${new URL(redisUrl).host} (set TEST_REDIS_URL, or start it)`);
}
if (!existsSync(chromium)) missing.push(`Chromium at ${chromium} for the browser tests (apt-get install chromium, or set CHROMIUM_PATH)`);

if (missing.length) {
  console.error(`npm test needs:\n${missing.map((m) => `  - ${m}`).join("\n")}`);
  console.error("`bash .ci/run` installs and starts all of them on Debian, then runs the suite.");
  console.error("`npm run test:unit` runs the unit tests, which need none of them.");
  process.exit(1);
}
