import { np, random, type Array } from "../engine/index.ts";
import type { KeyStream } from "../engine/rng.ts";

/** N(0, std²) weights; GPT-2 and most VQ-VAEs start from a small normal. */
export function normal(keys: KeyStream, shape: number[], std: number): Array {
  return random.normal(keys.next(), shape).mul(std);
}

/** He/Kaiming-uniform-like fan-in scaling: std = gain / sqrt(fanIn). */
export function fanIn(keys: KeyStream, shape: number[], fanInSize: number, gain = 1): Array {
  return normal(keys, shape, gain / Math.sqrt(fanInSize));
}

export const zeros = (shape: number[]): Array => np.zeros(shape);
export const ones = (shape: number[]): Array => np.ones(shape);
