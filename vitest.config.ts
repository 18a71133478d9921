import { defineConfig } from "vitest/config";

// Two tiers, as immich has them: `unit` needs nothing but Node (no PostgreSQL, Redis or browser);
// `integration` runs against real services prepared once by the global setup.
export default defineConfig({
  test: {
    // Two cores: two files at a time, each with its own database and queue prefix.
    pool: "forks",
    maxWorkers: 2,
    fileParallelism: true,
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["./test/helpers/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
