import { readFileSync } from "node:fs";
import { expect } from "vitest";
import { fromHost, np, type Array as JaxArray } from "../../src/engine/index.ts";

/** A PyTorch reference fixture, test/fixtures/quantizers/<name>.json (written by reference/quantizers_*.py). */
export function loadFixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/quantizers/${name}.json`, import.meta.url), "utf8")) as T;
}

/** One case of reference/quantizers_implicit.py (binary, LFQ, FSQ: no learned codebook), computed in float64. */
export type ImplicitCase<Options> = {
  name: string;
  options: Options;
  /** Of x and codes: [..., D]. */
  shape: number[];
  x: number[];
  codes: number[];
  indices: number[];
  losses: Record<string, number>;
  stats: Record<string, number>;
  /** `grad` is the input gradient of Σ w·codes + Σ c_k·loss_k with these w and c_k. */
  weights: { codes: number[]; losses: Record<string, number> };
  grad: number[];
  /** indicesToCodes of every id (binary: id j in every group, [2^b, D]), where the codebook is small. */
  codebook?: number[];
};

/** Host numbers → a float32 array of `shape`. */
export const f32 = (v: ArrayLike<number>, shape: number[]): JaxArray => fromHost(Float32Array.from(v), shape);
/** Host numbers → a float64 array of `shape` (exact reference inputs and gradient weights). */
export const f64 = (v: ArrayLike<number>, shape: number[]): JaxArray => np.array(Float64Array.from(v), { dtype: np.float64 }).reshape(shape);
/** Host ids → an int32 array of `shape`. */
export const ints = (v: ArrayLike<number>, shape: number[]): JaxArray => fromHost(Int32Array.from(v), shape);
/** Device array → its values in row-major order (consumes `a`). */
export const flat = (a: JaxArray): number[] => Array.from(a.dataSync() as ArrayLike<number>);
/** Device scalar → number (consumes `a`). */
export const scalar = (a: JaxArray): number => a.js() as number;

/** Same length and |actual − expected| ≤ tol · max(1, |expected|) everywhere; fails naming the first bad element. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])))) {
      expect.fail(`element ${i}: got ${actual[i]}, expected ${expected[i]} (tol ${tol})`);
    }
  }
}
