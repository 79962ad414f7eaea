import { np, type Array } from "../../engine/index.ts";

/**
 * Entropy of code distributions with vector-quantize-pytorch's clamped log, log(max(p, 1e-5)),
 * for the quantizers' entropy losses and statistics (LFQ's per-sample and codebook entropy).
 *
 * The log is not the engine's alone. jax-js's wasm `log` sums four terms of the atanh series of
 * the mantissa m ∈ [1, 2), which is off by up to 1.2e-5 as m nears 2, i.e. for p just below 1
 * (and below every power of two). A confident code has p ≈ 1 − 1e-6 and an entropy of ~1e-5, so
 * that error alone doubles it. For p ≥ ½ the series is summed here to the dtype's precision:
 *   ln p = 2·atanh(u) = 2(u + u³/3 + u⁵/5 + …),  u = (p − 1)/(p + 1) ∈ [−⅓, 0],
 * where p − 1 is exact (Sterbenz). Below ½ the engine's log stays: its error of at most 1.2e-5
 * times p is below 2e-5 of that p's share of the entropy, −p·ln p ≥ p·ln 2.
 */

/** Smallest probability the log sees (vector-quantize-pytorch's `log(t, eps = 1e-5)`). */
const CLAMP = 1e-5;

/**
 * Series terms for |u| ≤ ⅓: the remainder relative to ln p is about 9^−n / (2n + 1), below the
 * unit roundoff with n = 7 in float32 (3e-8) and n = 16 in float64 (2e-17).
 */
const TERMS = { float32: 7, float64: 16 } as const;

/** log(max(p, 1e-5)) for probabilities p ∈ [0, 1], accurate near 1; p: any shape → same shape. Consumes p. */
export function clampedLog(p: Array): Array {
  const high = np.greaterEqual(p.ref, 0.5);
  // `where` passes a zero cotangent to the branch it drops, and 0·∞ is NaN; so each branch stays
  // finite everywhere: the series sees m = 1 (u = 0) where p < ½, the log never sees p < 1e-5.
  const m = np.where(high.ref, p.ref, 1);
  const u = m.ref.sub(1).div(m.add(1));
  const u2 = np.square(u.ref);
  const n = p.dtype === np.float64 ? TERMS.float64 : TERMS.float32;
  let s = u2.ref.mul(2 / (2 * n - 1)).add(2 / (2 * n - 3)); // Horner in u², from the last term
  for (let k = n - 3; k >= 0; k--) s = s.mul(u2.ref).add(2 / (2 * k + 1));
  u2.dispose();
  return np.where(high, s.mul(u), np.log(np.maximum(p, CLAMP)));
}

/** H(p) = −Σ p·log(max(p, 1e-5)) over the last axis. p: [..., K] → [...]. Consumes p. */
export function entropy(p: Array): Array {
  return p.ref.mul(clampedLog(p)).sum(-1).neg();
}
