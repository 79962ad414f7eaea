import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // jax-js keeps one wasm engine per process; forks isolate files from each other.
    pool: "forks",
    fileParallelism: true,
    maxWorkers: 2,
  },
});
