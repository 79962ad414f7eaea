#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx's loader: no build step between clone and demo.
import { availableParallelism } from "node:os";
import { register } from "tsx/esm/api";

// The CLI trains on every core by default (jax-js's wasm worker pool, see src/engine/workers.ts);
// MMNTP_THREADS=1 keeps all work on the main thread. Set before the engine is first imported.
process.env.MMNTP_THREADS ||= String(availableParallelism());
register();
await import("../src/cli/main.ts");
