/**
 * The engine in Node: the core (`index.ts`) plus what only Node has — jax-js's worker pool on
 * `worker_threads` (workers.ts), the wasm-heap probe (memory.ts) and the native GEMM
 * (native.ts), installed when the engine starts. Node entry points (the CLI, `mmntp`'s Node
 * export, tests, benches) import this file before anything else that loads jax-js.
 */
import "./node-preload.ts";
import { onEngineStart } from "./index.ts";
import { setLeanActivations } from "./lean.ts";
import { installNativeContractions } from "./native.ts";

onEngineStart(() => {
  installNativeContractions();
  const lean = process.env.MMNTP_LEAN_ACTIVATIONS;
  if (lean !== undefined && lean !== "" && lean !== "0" && lean !== "1") throw new Error(`MMNTP_LEAN_ACTIVATIONS must be 0 or 1, got "${lean}"`);
  if (lean === "0" || lean === "1") setLeanActivations(lean === "1");
});

export * from "./index.ts";
export { engineMemoryBytes } from "./memory.ts";
export { nativeStats, type NativeStats } from "./native.ts";
export { engineWorkerStats, shutdownEngineWorkers, threadsFromEnv } from "./workers.ts";
