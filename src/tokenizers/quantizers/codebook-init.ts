/**
 * Host-side codebook remedies against collapse, run between jitted steps on plain arrays:
 * k-means initialization from the first batch, and dead-code restart.
 * Vectors are row-major [N, D] Float32Arrays.
 */

/** The index of the code nearest (squared L2) to row i of `vectors`. */
export function nearest(vectors: Float32Array, i: number, codes: Float32Array, k: number, d: number): number {
  let best = 0;
  let bestDist = Infinity;
  for (let c = 0; c < k; c++) {
    let dist = 0;
    for (let j = 0; j < d; j++) {
      const diff = vectors[i * d + j] - codes[c * d + j];
      dist += diff * diff;
    }
    if (dist < bestDist) {
      bestDist = dist;
      best = c;
    }
  }
  return best;
}

/** Lloyd's k-means on [N, D] vectors, seeded with random distinct rows → codebook [K, D]. */
export function kmeans(vectors: Float32Array, d: number, k: number, { iters = 10, rng }: { iters?: number; rng: () => number }): Float32Array {
  const n = vectors.length / d;
  if (!Number.isInteger(n) || n < k) throw new Error(`kmeans: need at least ${k} vectors of dim ${d}, got ${vectors.length / d}`);
  const codes = new Float32Array(k * d);
  const picked = new Set<number>();
  for (let c = 0; c < k; c++) {
    let i = Math.floor(rng() * n);
    while (picked.has(i)) i = (i + 1) % n;
    picked.add(i);
    codes.set(vectors.subarray(i * d, (i + 1) * d), c * d);
  }
  const assign = new Int32Array(n);
  for (let it = 0; it < iters; it++) {
    for (let i = 0; i < n; i++) assign[i] = nearest(vectors, i, codes, k, d);
    const sums = new Float64Array(k * d);
    const counts = new Int32Array(k);
    for (let i = 0; i < n; i++) {
      counts[assign[i]]++;
      for (let j = 0; j < d; j++) sums[assign[i] * d + j] += vectors[i * d + j];
    }
    for (let c = 0; c < k; c++) {
      if (counts[c] === 0) continue; // an empty cluster keeps its seed
      for (let j = 0; j < d; j++) codes[c * d + j] = sums[c * d + j] / counts[c];
    }
  }
  return codes;
}

/**
 * Dead-code restart (as in Jukebox / SoundStream): every code whose usage count is zero is
 * re-seeded from a random current input vector. Returns the new codebook and how many restarted.
 */
export function restartDeadCodes(
  codebook: Float32Array,
  counts: ArrayLike<number>,
  inputs: Float32Array,
  d: number,
  rng: () => number,
): { codebook: Float32Array; restarted: number } {
  const out = Float32Array.from(codebook);
  const n = inputs.length / d;
  let restarted = 0;
  for (let c = 0; c < counts.length; c++) {
    if (counts[c] > 0) continue;
    const i = Math.floor(rng() * n);
    out.set(inputs.subarray(i * d, (i + 1) * d), c * d);
    restarted++;
  }
  return { codebook: out, restarted };
}
