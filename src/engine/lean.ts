/**
 * The engine-wide switch for memory-lean activations (src/nn/lean.ts): GELU and softmax whose
 * backward pass keeps one array instead of all their intermediates. Off by default: the forward
 * values are the same (a −0 may come out +0), but the gradients round differently, so a model trained with
 * it on is a different (equally good) model than the one the documented runs trained. Read when
 * a function is traced: set it before models are built and jitted. Node reads
 * MMNTP_LEAN_ACTIVATIONS=1 in `startEngine`. Browser-safe.
 */
let lean = false;

export function setLeanActivations(on: boolean): void {
  lean = on;
}

export const leanActivations = (): boolean => lean;
