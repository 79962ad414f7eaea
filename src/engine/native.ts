/**
 * The native GEMM path: jax-js's matmul kernels run in the native/ addon (a packed,
 * register-blocked float32 GEMM compiled for this CPU) instead of its generated wasm.
 *
 * Why: matmul-like kernels are ~87% of a training step (docs/performance.md), and jax-js's
 * wasm matmul tops out near 4-wide SIMD without FMA (~30 GFLOP/s per core here), where an
 * AVX-512 GEMM reaches several times that. The wasm path stays the default everywhere the
 * addon cannot be built or loaded (browsers, no C compiler, `MMNTP_NATIVE=0`); results agree
 * to float32 rounding, not bit for bit (the summation order differs).
 *
 * How: the vendored jax-js patch 3 offers every plain float32 contraction kernel to a hook
 * (`setContractionHook`); `gemmFromPlan` turns the kernel's views into GEMM strides once per
 * compiled kernel, and the runner calls the addon on the wasm heap itself (no copies), in
 * dispatch order on the calling thread, with `MMNTP_THREADS` threads of its own.
 *
 * The addon is compiled on first use (a few seconds, `scripts/build-native.mjs`) into
 * `native/build/` (src/engine/native-build.ts).
 */
// First, so jax-js loads after the Worker shim and the memory probe even when this file is the
// first one imported.
import "./node-preload.ts";
import { createRequire } from "node:module";
import { setContractionHook, type ContractionPlan } from "@jax-js/jax";
import { gemmFromPlan, gemmParams, gemmWork, PARAM_A, PARAM_B, PARAM_C } from "./gemm.ts";
import { ensureNativeBinary } from "./native-build.ts";
import { threadsFromEnv } from "./workers.ts";

/**
 * The addon's functions (native/contract.c is the entry point of native/*.c): `contract` runs
 * the GEMM `params` describes on `mem`; `decodeStep` one KV-cached step of the backbone
 * (native/decode.c, src/generate/native-decoder.ts), absent from builds older than it.
 */
export interface NativeKernels {
  contract(mem: Float32Array, params: Int32Array): void;
  decodeStep?(w: Float32Array, spec: Int32Array, cache: Float32Array, scratch: Float32Array, tokens: Int32Array, positions: Int32Array, logits: Float32Array): void;
}

export interface NativeStats {
  /** Whether contractions currently go to the addon. */
  readonly enabled: boolean;
  /** Why not, when not enabled. */
  readonly reason?: string;
  /** Compiled contraction kernels handed to the addon / kept on wasm so far. */
  readonly kernels: number;
  readonly declined: number;
  /** Contractions the addon has run. */
  readonly calls: number;
}

/**
 * Below this many multiply-adds a GEMM stays on its wasm kernel: the addon call (~1 µs) and
 * its packing would not pay. Decode's matrix-vector products (~2^18) are well above it.
 */
export const MIN_NATIVE_WORK = 1 << 12;

let kernels: NativeKernels | undefined;
let reason: string | undefined;
let installed = false;
const counts = { kernels: 0, declined: 0, calls: 0 };

/** Load the addon, compiling it first if needed; undefined (and `reason`) when it cannot be had. */
export function loadNativeKernels(): NativeKernels | undefined {
  if (kernels || reason) return kernels;
  const setting = process.env.MMNTP_NATIVE;
  if (setting === "0") {
    reason = "MMNTP_NATIVE=0";
    return undefined;
  }
  if (setting !== undefined && setting !== "" && setting !== "1") throw new Error(`MMNTP_NATIVE must be 0 or 1, got "${setting}"`);
  const binary = ensureNativeBinary();
  if ("reason" in binary) {
    reason = binary.reason;
    return undefined;
  }
  try {
    kernels = createRequire(import.meta.url)(binary.path) as NativeKernels;
  } catch (error) {
    reason = `could not load ${binary.path}: ${(error as Error).message}`;
  }
  return kernels;
}

/** A Float32Array over the whole heap, remade only when the memory grows (its buffer changes). */
function heapView(): (memory: WebAssembly.Memory) => Float32Array {
  let buffer: ArrayBufferLike | undefined;
  let view = new Float32Array(0);
  return (memory) => {
    if (memory.buffer !== buffer) {
      buffer = memory.buffer;
      view = new Float32Array(buffer);
    }
    return view;
  };
}

function runnerFor(native: NativeKernels, threads: number, heap: (m: WebAssembly.Memory) => Float32Array) {
  return (plan: ContractionPlan) => {
    const gemm = gemmFromPlan(plan);
    if (!gemm || gemmWork(gemm) < MIN_NATIVE_WORK) {
      counts.declined++;
      return undefined;
    }
    counts.kernels++;
    const params = gemmParams(gemm, threads);
    return (memory: WebAssembly.Memory, ptrs: number[]) => {
      // ptrs: byte offsets of the kernel's inputs, then its one output.
      params[PARAM_A] = ptrs[gemm.aInput]! / 4 + gemm.aOffset;
      params[PARAM_B] = ptrs[gemm.bInput]! / 4 + gemm.bOffset;
      params[PARAM_C] = ptrs[ptrs.length - 1]! / 4;
      native.contract(heap(memory), params);
      counts.calls++;
    };
  };
}

/**
 * Route jax-js's contraction kernels to the native GEMM (idempotent). Kernels compiled
 * before this call are switched too. `threads` defaults to `MMNTP_THREADS` (else 1).
 * @returns whether the native path is on; `nativeStats().reason` says why not.
 */
export function installNativeContractions(options: { threads?: number } = {}): boolean {
  const native = loadNativeKernels();
  if (!native) return false;
  const threads = options.threads ?? threadsFromEnv();
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer, got ${threads}`);
  setContractionHook(runnerFor(native, threads, heapView()));
  installed = true;
  return true;
}

/** Put contractions back on jax-js's wasm kernels. */
export function uninstallNativeContractions(): void {
  setContractionHook(undefined);
  installed = false;
}

export function nativeStats(): NativeStats {
  return { enabled: installed, ...(reason === undefined ? {} : { reason }), ...counts };
}
