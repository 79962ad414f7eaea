/**
 * Activations whose backward pass keeps one array: the value is computed from a stop-gradient
 * copy of the input, and the gradient enters through an exactly-zero linear term,
 *   y = f(sg(x)) + J(sg(x)) · (x − sg(x)),
 * so the forward values equal f(x) (bit for bit, except that a −0 comes out +0: y + 0·d) while autodiff saves only what J needs (GELU's
 * derivative; softmax's probabilities) instead of every intermediate of f. jax-js has no custom
 * VJPs or rematerialisation, and its tanh-GELU and softmax otherwise keep ~7 and ~3 arrays of
 * their input's size per call for the backward pass (docs/performance.md, bench:memory).
 * `gelu` and `softmax` below pick between these and jax-js's by the engine's switch.
 */
import { lax, nn, np, type Array } from "../engine/index.ts";
import { leanActivations } from "../engine/lean.ts";

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/**
 * nn.gelu (the tanh approximation) with its derivative saved instead of its intermediates. The
 * value is jax-js's formula, (x·0.5)·(tanh((x·((x·x)·a + 1))·c) + 1), op for op, so it rounds the
 * same; its tanh is computed once and also gives the derivative (computing nn.gelu and the
 * derivative separately took two tanh passes: ~40% slower).
 */
export function leanGelu(x: Array): Array {
  const s = lax.stopGradient(x.ref);
  const x2 = s.ref.mul(s.ref);
  const t = np.tanh(s.ref.mul(x2.ref.mul(GELU_A).add(1)).mul(GELU_C));
  const y = s.ref.mul(0.5).mul(t.ref.add(1));
  // d/dx 0.5·x·(1 + tanh(u)), u = c·(x + a·x³): 0.5·(1 + t) + 0.5·x·(1 − t²)·c·(1 + 3a·x²)
  const d = t.ref.add(1).mul(0.5).add(s.ref.mul(0.5 * GELU_C).mul(np.square(t).neg().add(1)).mul(x2.mul(3 * GELU_A).add(1)));
  return y.add(x.sub(s).mul(d));
}

/** nn.softmax over `axis` with only its probabilities saved: the VJP p ⊙ (g − Σ p ⊙ g). */
export function leanSoftmax(x: Array, axis = -1): Array {
  const s = lax.stopGradient(x.ref);
  const p = nn.softmax(s.ref, axis);
  const pv = p.ref.mul(x.sub(s));
  return p.ref.add(pv.ref.sub(p.mul(pv.sum(axis, { keepdims: true }))));
}

/** The MLP's GELU: `leanGelu` when the engine's lean switch is on (engine/lean.ts), else nn.gelu. */
export const gelu = (x: Array): Array => (leanActivations() ? leanGelu(x) : nn.gelu(x));

/** Attention's softmax: `leanSoftmax` when the engine's lean switch is on, else nn.softmax. */
export const softmax = (x: Array, axis = -1): Array => (leanActivations() ? leanSoftmax(x, axis) : nn.softmax(x, axis));
