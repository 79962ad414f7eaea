/**
 * The engine-wide switch for memory-lean activations (src/nn/lean.ts): GELU and softmax whose
 * backward pass keeps one array instead of all their intermediates. On by default: a training
 * step of the benchmark GPT then peaks at 510 MiB of live buffers instead of 955, at the same
 * speed (docs/performance.md). The forward values are jax-js's own (a −0 may come out +0), but the
 * gradients round differently, so switching it off trains a different model. Read when a function
 * is traced: set it before models are built and jitted. Node reads MMNTP_LEAN_ACTIVATIONS (0 turns
 * it off) in `startEngine`. Browser-safe.
 */
import { jit, type Array, type JsTree } from "./index.ts";

let lean = true;

export function setLeanActivations(on: boolean): void {
  lean = on;
}

export const leanActivations = (): boolean => lean;

/**
 * `f()` with lean activations off, for code that is traced but never differentiated (a forward
 * pass whose backward recomputes it, as CheckpointedTrainer's): there the lean forms only add
 * work (their derivative term is computed and multiplied by an exact zero), and jax-js's own are
 * the same values. Restores the switch afterwards, also when `f` throws.
 */
export function withoutLeanActivations<T>(f: () => T): T {
  const was = lean;
  lean = false;
  try {
    return f();
  } finally {
    lean = was;
  }
}

/**
 * `jit` for functions that are never differentiated (decoding, encoding, evaluation): traced
 * with lean activations off, so a forward pass runs jax-js's own GELU and softmax (the same
 * values) without the lean forms' derivative terms. In the demo-size model's bidirectional pass
 * those were 5 of the 6 elementwise kernels over each layer's scores and half of its GELU time.
 */
type Traced = (...args: any[]) => JsTree<Array>;
export const inferenceJit = ((f: Traced, opts?: Parameters<typeof jit>[1]) => jit((...args: Parameters<Traced>) => withoutLeanActivations(() => f(...args)), opts)) as typeof jit;
