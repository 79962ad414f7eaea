import { np, type Array } from "../engine/index.ts";

/** Causal mask [T, T]: position i attends to j ≤ i. */
export function causalMask(t: number): Array {
  return np.tril(np.ones([t, t])).astype(np.bool);
}

/**
 * Prefix-LM mask [T, T] (Raffel et al. 2020): the first `prefix` positions attend to each other
 * bidirectionally; later positions are causal.
 */
export function prefixMask(t: number, prefix: number): Array {
  if (prefix < 0 || prefix > t) throw new Error(`prefix length ${prefix} must be in [0, ${t}]`);
  const m = new Uint8Array(t * t);
  for (let i = 0; i < t; i++) for (let j = 0; j < t; j++) m[i * t + j] = j <= i || (i < prefix && j < prefix) ? 1 : 0;
  return np.array(Int32Array.from(m), { dtype: np.int32 }).reshape([t, t]).astype(np.bool);
}
