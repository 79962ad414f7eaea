/**
 * Random-order autoregression, RAR (Yu et al. 2024, "Randomized Autoregressive Visual
 * Generation"): the image tokens follow the prompt in a permuted order π, trained by next-token
 * prediction with a causal mask. Each token keeps the position id of its raster cell (P + π_i)
 * and carries the target-aware position of the token it predicts (§3.2: 1 + π_{i+1}; the
 * prompt's last token, the begin marker, carries π_0), see forward.ts. Training permutes with a
 * probability annealed from 1 to 0 (§3.3), so the model ends up decoding in raster order while
 * having learned every context; any order can be asked for at inference.
 */
import type { Rng } from "../../data/shuffle.ts";
import { blockCausalMaskHost } from "../masks.ts";
import type { OrderInput, OrderRow } from "./rows.ts";

/**
 * prompt: joint ids [P]; image: joint ids [N] in raster order (−1 = not yet generated: ids after
 * the positions a query reads, which the causal mask hides; written as 0); order: π [N] →
 * inputs [P + N − 1] (the last image token is only a target), causal.
 */
export function randomOrderInput(prompt: readonly number[], image: ArrayLike<number>, order: ArrayLike<number>): OrderInput {
  const p = prompt.length;
  const n = image.length;
  checkOrder(order, n, "randomOrderInput");
  const t = p + n - 1;
  const inputs = new Int32Array(t);
  const positions = new Int32Array(t);
  const target = new Int32Array(t);
  inputs.set(prompt);
  for (let i = 0; i < p; i++) positions[i] = i;
  for (let i = 0; i + 1 < n; i++) {
    inputs[p + i] = Math.max(0, image[order[i]!]!);
    positions[p + i] = p + order[i]!;
  }
  for (let i = 0; i < n; i++) target[p - 1 + i] = 1 + order[i]!;
  return { inputs, positions, target, mask: blockCausalMaskHost(new Array<number>(t).fill(1)) };
}

/** One RAR training sequence: input t predicts image token order[t − P + 1]; `loss` shared by the N image tokens. */
export function randomOrderRow(prompt: readonly number[], image: ArrayLike<number>, order: ArrayLike<number>, loss = 1): OrderRow {
  const input = randomOrderInput(prompt, image, order);
  const p = prompt.length;
  const n = image.length;
  const targets = new Int32Array(input.inputs.length);
  const weights = new Float32Array(input.inputs.length);
  for (let i = 0; i < n; i++) {
    targets[p - 1 + i] = image[order[i]!]!;
    weights[p - 1 + i] = loss / n;
  }
  return { ...input, targets, weights };
}

/** The raster order 0..N−1. */
export const rasterOrder = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

/** A uniformly random permutation of 0..N−1 (Fisher–Yates). */
export function randomPermutation(n: number, rng: Rng): Int32Array {
  const perm = rasterOrder(n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  return perm;
}

/**
 * RAR's annealing (§3.3): the probability of a random permutation (else raster) at training
 * progress `progress` ∈ [0, 1] — 1 until `start`, linear to 0 at `end`, 0 after (RAR: epochs
 * 200 and 300 of 400, i.e. 0.5 and 0.75).
 */
export function permutationProbability(progress: number, start = 0.5, end = 0.75): number {
  if (progress <= start) return 1;
  if (progress >= end) return 0;
  return 1 - (progress - start) / (end - start);
}

/** Throws unless `order` is a permutation of 0..n−1. */
export function checkOrder(order: ArrayLike<number>, n: number, where: string): void {
  const seen = new Uint8Array(n);
  if (order.length !== n) throw new Error(`${where}: the order has ${order.length} positions, expected a permutation of the ${n} image positions`);
  for (let i = 0; i < n; i++) {
    const k = order[i]!;
    if (!Number.isInteger(k) || k < 0 || k >= n || seen[k]) throw new Error(`${where}: order[${i}] = ${k} — the order must be a permutation of 0..${n - 1}`);
    seen[k] = 1;
  }
}
