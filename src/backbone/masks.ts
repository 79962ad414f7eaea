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

/**
 * Block-causal mask as host bytes [T·T], T = Σ blocks (row = query, 1 = may attend): a position
 * in block b attends to every position of blocks 0..b, its own block included. All blocks of size
 * 1 give the causal mask; VAR's next-scale prediction (Tian et al. 2024, §3.2, Fig. 4) has one
 * block per scale, so each scale's tokens see each other and every coarser scale, never a finer one.
 */
export function blockCausalMaskHost(blocks: readonly number[]): Uint8Array {
  blocks.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 1) throw new Error(`blockCausalMask: block ${i} has size ${n}, expected a positive integer`);
  });
  const t = blocks.reduce((a, n) => a + n, 0);
  const m = new Uint8Array(t * t);
  let start = 0;
  for (const n of blocks) {
    for (let i = start; i < start + n; i++) m.fill(1, i * t, i * t + start + n);
    start += n;
  }
  return m;
}

/** `blockCausalMaskHost` as a device mask bool [T, T]. */
export function blockCausalMask(blocks: readonly number[]): Array {
  const m = blockCausalMaskHost(blocks);
  const t = Math.round(Math.sqrt(m.length));
  return np.array(Int32Array.from(m), { dtype: np.int32 }).reshape([t, t]).astype(np.bool);
}
