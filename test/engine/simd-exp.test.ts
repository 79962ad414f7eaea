/**
 * jax-js's wasm backend computes exp and 1/x in SIMD kernels (vendored patch 9), four lanes at a
 * time, with the scalar builtin's f32 operations in the same order: every value must equal the
 * scalar path's bit for bit (a kernel of fewer than 4 elements is never vectorized), including
 * the overflow to Infinity, the underflow to 0, NaN and ±Infinity.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { jit, np, startEngine, type Array } from "../../src/engine/node.ts";
import { uniformValues } from "../helpers/values.ts";

beforeAll(startEngine);

const EDGES = [-200, -103.5, -87.5, -87.3, -10, -1, -0.5, -0, 0, 1e-8, 0.3466, 0.5, 1, 10, 80, 88, 88.72, 88.8, 89, 100, NaN, Infinity, -Infinity, 3];

describe("SIMD exp and reciprocal (patch 9)", () => {
  for (const [name, f] of [
    ["exp", (a: Array) => np.exp(a)],
    ["reciprocal", (a: Array) => np.reciprocal(a)],
    ["softmax-like exp(x − 1) / (1 + x²)", (a: Array) => np.exp(a.ref.sub(1)).mul(np.reciprocal(np.square(a).add(1)))],
  ] as const) {
    it(`${name}: vectorized kernels equal the scalar path bit for bit`, async () => {
      const xs = Float32Array.from([...EDGES, ...uniformValues(1000, 7).map((v) => v * 90)]);
      const g = jit(f);
      const wide = await g(np.array(xs)).data();
      const scalar = new Float32Array(xs.length);
      for (let i = 0; i < xs.length; i += 3) {
        const part = xs.subarray(i, Math.min(i + 3, xs.length)); // < 4 elements: the scalar kernel
        scalar.set(await g(np.array(part)).data(), i);
      }
      g.dispose();
      const differ = [...wide].flatMap((v, i) => (Object.is(v, scalar[i]) ? [] : [`x=${xs[i]}: ${v} vs ${scalar[i]}`]));
      expect(differ).toEqual([]);
      if (name === "exp") {
        expect(wide[EDGES.indexOf(100)]).toBe(Infinity);
        expect(wide[EDGES.indexOf(-200)]).toBe(0);
        expect(Number.isNaN(wide[EDGES.findIndex(Number.isNaN)]!)).toBe(true);
        const i = EDGES.indexOf(1);
        expect(Math.abs(wide[i]! - Math.E) / Math.E).toBeLessThan(1e-6);
      }
    });
  }
});
