import { mulberry32 } from "../../src/data/shuffle.ts";

/** `size` deterministic values, uniform in [-1, 1), from `seed`. */
export function uniformValues(size: number, seed: number): Float32Array<ArrayBuffer> {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: size }, () => rng() * 2 - 1);
}
