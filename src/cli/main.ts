/**
 * The `mmntp` process: prepares the engine, runs the command (commands.ts) and turns a failure
 * into its message and exit code (failure.ts).
 */
// First of all: the worker-pool shim and the wasm-heap probe must be in place before anything
// loads jax-js (several of the commands' modules do, at import time), or jax-js builds an
// unshared memory without a pool and every command runs on one thread.
import "../engine/node-preload.ts";
import { runCli } from "./commands.ts";
import { describeFailure } from "./failure.ts";

runCli(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: unknown) => {
    const { text, exitCode } = describeFailure(e);
    console.error(text);
    process.exit(exitCode);
  },
);
