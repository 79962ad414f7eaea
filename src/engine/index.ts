/**
 * Engine core: every module that touches arrays imports jax-js through here, so the polyfills
 * and the one-time backend start happen exactly once. Browser-safe: nothing here imports a
 * `node:` module. Node's extras (the worker-pool shim, the wasm-heap probe, the native GEMM)
 * live in `node.ts`, which Node entry points import first.
 */
// jax-js uses iterator helpers (`iter.map(...)`) that Node 20 lacks; attention's grad needs them.
import "core-js/actual/iterator/index.js";
import { defaultDevice, init, numpy as np, type Array } from "@jax-js/jax";

// jax-js tests `data instanceof Float16Array` when given a Float64Array; Node 20 has no
// Float16Array, so that test throws. An empty class makes the test answer false.
(globalThis as { Float16Array?: unknown }).Float16Array ??= class Float16ArrayUnavailable {};
// Tells Node's worker shim (workers.ts) that jax-js has loaded: installed now, it would break
// every kernel, so it declines instead.
(globalThis as Record<symbol, unknown>)[Symbol.for("mmntp.engineLoaded")] = true;

export { blockUntilReady, copyRunsInPlace, grad, jit, lax, makeJaxpr, nn, numpy as np, random, tree, valueAndGrad, vjp } from "@jax-js/jax";
/** The array class itself, for `x instanceof ConcreteArray` (true for concrete arrays, false for tracers inside `jit`). */
export { Array as ConcreteArray } from "@jax-js/jax";
export type { Array, DType, JsTree, OwnedFunction } from "@jax-js/jax";

let ready: Promise<void> | undefined;
const startHooks: (() => void)[] = [];

/**
 * Run `hook` once the backend has started (at once if it already has). `node.ts` uses it to hand
 * matmuls to the native GEMM; the core itself knows nothing of Node.
 */
export function onEngineStart(hook: () => void): void {
  startHooks.push(hook);
  if (started) hook();
}
let started = false;

/**
 * Start the wasm backend once; safe to await from anywhere. In Node, with `node.ts` loaded, its
 * matmuls then go to the native GEMM when the addon can be built and loaded (`MMNTP_NATIVE=0`
 * keeps them on jax-js's wasm kernels, as in a browser).
 */
export function startEngine(): Promise<void> {
  ready ??= (async () => {
    const devices = await init("wasm");
    if (!devices.includes("wasm")) throw new Error(`jax-js could not start its wasm backend (got ${JSON.stringify(devices)})`);
    defaultDevice("wasm");
    started = true;
    for (const hook of startHooks) hook();
  })();
  return ready;
}

/** Host typed array → device array of `shape` (int32 stays int32, floats become float32). */
export function fromHost(data: Float32Array | Int32Array, shape: number[]): Array {
  const dtype = data instanceof Int32Array ? np.int32 : np.float32;
  return np.array(data as Float32Array<ArrayBuffer>, { dtype }).reshape(shape);
}
