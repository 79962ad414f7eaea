import { defineConfig } from "vitest/config";

// Suites: `npm test` runs "unit" and "workers"; `npm run test:slow` runs "slow" (long trainings,
// *.slow.test.ts), kept out of the default suite's 8-minute budget.
const slow = process.env.MMNTP_SLOW === "1";
const WORKERS = "test/engine/workers.test.ts";

export default defineConfig({
  test: {
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // jax-js keeps one wasm engine per process; forks isolate files from each other.
    pool: "forks",
    fileParallelism: true,
    maxWorkers: 2,
    setupFiles: ["test/setup/node-engine.ts"],
    projects: slow
      ? [{ extends: true, test: { name: "slow", include: ["test/**/*.slow.test.ts"] } }]
      : [
          { extends: true, test: { name: "unit", include: ["test/**/*.test.ts"], exclude: ["test/**/*.slow.test.ts", WORKERS] } },
          // jax-js fixes its worker pool when it loads, i.e. in the setup file: these tests of
          // jax-js's own kernels on a 2-thread pool set the engine's environment up front.
          { extends: true, test: { name: "workers", include: [WORKERS], env: { MMNTP_THREADS: "2", MMNTP_NATIVE: "0" } } },
        ],
  },
});
