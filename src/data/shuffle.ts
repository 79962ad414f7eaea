/**
 * Seeded, reproducible orderings of an ImageSet: permutations, train/test splits and
 * shuffled batches. Host-side only (no engine), so data code never waits on jax-js.
 */
import { imageSize, type ImageSet } from "./types.ts";

/** A source of uniform floats in [0, 1). */
export type Rng = () => number;

/** One element of `xs`, drawn uniformly with `rng`. */
export const pick = <T>(xs: readonly T[], rng: Rng): T => xs[Math.floor(rng() * xs.length)]!;

/** mulberry32 (Tommy Ettinger, 2017): 32-bit state, good enough for shuffles and template choice. */
export function mulberry32(seed: number): Rng {
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A permutation of 0..n-1: [n], Fisher–Yates driven by mulberry32(seed). */
export function seededPermutation(n: number, seed: number): Int32Array {
  if (!Number.isInteger(n) || n < 0) throw new Error(`seededPermutation: n must be a non-negative integer, got ${n}`);
  const rng = mulberry32(seed);
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}

/** The rows of `set` at `indices` (in that order), copied: images [K, C·H·W], labels [K]. */
export function subset(set: ImageSet, indices: ArrayLike<number>): ImageSet {
  const px = imageSize(set);
  const k = indices.length;
  const images = new Float32Array(k * px);
  const labels = new Int32Array(k);
  for (let r = 0; r < k; r++) {
    const i = indices[r]!;
    if (!Number.isInteger(i) || i < 0 || i >= set.n) throw new Error(`subset: index ${i} at position ${r} is out of range, expected an integer in [0, ${set.n})`);
    images.set(set.images.subarray(i * px, (i + 1) * px), r * px);
    labels[r] = set.labels[i]!;
  }
  return { images, labels, n: k, height: set.height, width: set.width, ...(set.channels === undefined ? {} : { channels: set.channels }) };
}

/**
 * Split by one fixed seeded shuffle: the first `testSize` shuffled rows are the test set,
 * the rest the training set. Same (set, seed) → same split; the two never share a row.
 */
export function splitTrainTest(set: ImageSet, { testSize = 1500, seed = 0 }: { testSize?: number; seed?: number } = {}): { train: ImageSet; test: ImageSet } {
  if (!Number.isInteger(testSize) || testSize < 0 || testSize > set.n) {
    throw new Error(`splitTrainTest: testSize must be an integer in [0, ${set.n}] (the set's size), got ${testSize}`);
  }
  const perm = seededPermutation(set.n, seed);
  return { test: subset(set, perm.subarray(0, testSize)), train: subset(set, perm.subarray(testSize)) };
}

/**
 * One shuffled epoch in batches: images [B, H*W], labels [B]. Every row appears exactly
 * once; the last batch is smaller when batchSize does not divide N, unless `dropLast`
 * (fixed shapes avoid a jit retrace for the ragged tail).
 */
export function* batches(set: ImageSet, batchSize: number, seed: number, { dropLast = false }: { dropLast?: boolean } = {}): Generator<ImageSet> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batches: batchSize must be a positive integer, got ${batchSize}`);
  const perm = seededPermutation(set.n, seed);
  for (let start = 0; start < set.n; start += batchSize) {
    const end = Math.min(start + batchSize, set.n);
    if (dropLast && end - start < batchSize) return;
    yield subset(set, perm.subarray(start, end));
  }
}
