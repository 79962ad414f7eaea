#!/usr/bin/env node
// In a clone (src/ beside bin/) this runs the TypeScript CLI through tsx's loader, so there is no
// build step between clone and demo. An installed package ships dist/ (npm run build), not src/
// or tsx: it runs the compiled CLI.
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";

// The CLI trains on every core by default (jax-js's wasm worker pool, see src/engine/workers.ts);
// MMNTP_THREADS=1 keeps all work on the main thread. Set before the engine is first imported.
process.env.MMNTP_THREADS ||= String(availableParallelism());

const source = new URL("../src/cli/main.ts", import.meta.url);
if (existsSync(source)) {
  // tsx is a devDependency: a clone installed with --omit=dev lacks it.
  const tsx = await import("tsx/esm/api").catch((e) => {
    throw new Error(`mmntp: running from a clone needs tsx (npm install, with dev dependencies): ${e.message}`);
  });
  tsx.register();
  await import(source.href);
} else {
  await import("../dist/cli/main.js");
}
