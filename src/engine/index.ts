/**
 * Engine entry: every module that touches arrays imports jax-js through here, so the
 * Node 20 polyfills and the one-time backend start happen exactly once.
 */
// jax-js uses iterator helpers (`iter.map(...)`) that Node 20 lacks; attention's grad needs them.
import "core-js/actual/iterator/index.js";
// Must precede the jax-js import: jax-js builds its wasm backend (shared memory, worker pool)
// when the module loads, so Node's Worker shim has to exist by then; MMNTP_THREADS=1 opts out.
import "./workers.ts";
// Also before jax-js: records the wasm memory jax-js creates, for memory reports and soak tests.
import "./memory.ts";
import { defaultDevice, init, numpy as np, type Array } from "@jax-js/jax";
import { installNativeContractions } from "./native.ts";

// jax-js tests `data instanceof Float16Array` when given a Float64Array; Node 20 has no
// Float16Array, so that test throws. An empty class makes the test answer false.
(globalThis as { Float16Array?: unknown }).Float16Array ??= class Float16ArrayUnavailable {};

export { blockUntilReady, copyRunsInPlace, grad, jit, lax, nn, numpy as np, random, tree, valueAndGrad, vjp } from "@jax-js/jax";
export { engineMemoryBytes } from "./memory.ts";
export { nativeStats } from "./native.ts";
/** The array class itself, for `x instanceof ConcreteArray` (true for concrete arrays, false for tracers inside `jit`). */
export { Array as ConcreteArray } from "@jax-js/jax";
export type { Array, DType, JsTree, OwnedFunction } from "@jax-js/jax";

let ready: Promise<void> | undefined;

/**
 * Start the wasm backend once; safe to await from anywhere. Its matmuls go to the native GEMM
 * when the addon can be built and loaded (src/engine/native.ts; `MMNTP_NATIVE=0` keeps them on
 * jax-js's wasm kernels).
 */
export function startEngine(): Promise<void> {
  ready ??= (async () => {
    const devices = await init("wasm");
    if (!devices.includes("wasm")) throw new Error(`jax-js could not start its wasm backend (got ${JSON.stringify(devices)})`);
    defaultDevice("wasm");
    installNativeContractions();
  })();
  return ready;
}

/** Host typed array → device array of `shape` (int32 stays int32, floats become float32). */
export function fromHost(data: Float32Array | Int32Array, shape: number[]): Array {
  const dtype = data instanceof Int32Array ? np.int32 : np.float32;
  return np.array(data as Float32Array<ArrayBuffer>, { dtype }).reshape(shape);
}
