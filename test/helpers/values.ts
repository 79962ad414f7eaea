import { expect } from "vitest";
import { mulberry32 } from "../../src/data/shuffle.ts";

/** `size` deterministic values, uniform in [-1, 1), from `seed`. */
export function uniformValues(size: number, seed: number): Float32Array<ArrayBuffer> {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: size }, () => rng() * 2 - 1);
}

/** max |a − b| / max |b| over two arrays of equal length (checked). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return err / scale;
}
