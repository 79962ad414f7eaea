import { beforeAll, describe, expect, it } from "vitest";
import { grad, np, startEngine, type Array as JaxArray } from "../../../src/engine/index.ts";
import { clampedLog, entropy } from "../../../src/tokenizers/quantizers/entropy.ts";
import { expectClose, f32, f64, flat, scalar } from "../../helpers/fixtures.ts";

beforeAll(startEngine);

/** Probabilities from 1e-7 to 1, dense just below 1 and just below ½ (where jax-js's log is worst). */
const ps = [
  ...Array.from({ length: 60 }, (_, i) => 1e-7 * 1e7 ** (i / 59)),
  ...Array.from({ length: 40 }, (_, i) => 1 - 10 ** (-1 - (5 * i) / 39)),
  ...Array.from({ length: 20 }, (_, i) => 0.5 - 10 ** (-1 - (4 * i) / 19)),
  0.5,
  0.75,
];
const reference = (p: number) => Math.log(Math.max(p, 1e-5));

describe.each([
  { dtype: "float32", make: f32, round: Math.fround, rel: 3e-7 },
  { dtype: "float64", make: f64, round: (v: number) => v, rel: 1e-14 },
] as const)("clampedLog ($dtype) against Math.log", ({ make, round, rel }) => {
  it("p ≥ ½: relative error at the dtype's roundoff (the engine's log is off by 1.2e-5 near 1)", () => {
    const high = ps.map(round).filter((p) => p >= 0.5 && p < 1);
    const got = flat(clampedLog(make(high, [high.length])));
    high.forEach((p, i) => {
      if (!(Math.abs(got[i]! - Math.log(p)) <= rel * Math.abs(Math.log(p)))) expect.fail(`p = ${p}: got ${got[i]}, expected ${Math.log(p)}`);
    });
    expect(flat(clampedLog(make([1], [1])))).toEqual([0]);
  });

  it("p < ½: the engine's log of max(p, 1e-5), within its 1.3e-5", () => {
    const low = ps.map(round).filter((p) => p < 0.5);
    expectClose(flat(clampedLog(make(low, [low.length]))), low.map(reference), 1.3e-5);
  });

  it("gradient 1/p above the clamp, 0 below it, finite at p = 0 and p = 1", () => {
    const at = [0, 1e-6, 2e-5, 0.3, 0.4999, 0.5, 0.7, 0.999, 1].map(round);
    const g = flat(grad((p: JaxArray) => clampedLog(p).sum())(make(at, [at.length])));
    expectClose(g, at.map((p) => (p < 1e-5 ? 0 : 1 / p)), 1e-5);
  });
});

/** |got − want| ≤ rel·|want|, naming the element. */
function expectRelative(got: number[], want: number[], rel: number): void {
  want.forEach((w, i) => {
    if (!(Math.abs(got[i]! - w) <= rel * Math.abs(w))) expect.fail(`element ${i}: got ${got[i]}, expected ${w} (relative tol ${rel})`);
  });
}

const hostEntropy = (row: number[]) => -row.reduce((s, p) => s + p * reference(p), 0);

describe("entropy", () => {
  // Uniform (the engine's log, below 2e-5 of the entropy), one-hot, and a confident distribution
  // whose entropy, 3.75e-5, the engine's log alone puts at 4.99e-5 (float32 and float64).
  const rows = [[0.25, 0.25, 0.25, 0.25], [0, 1, 0, 0], [1 - 3e-6, 1e-6, 1e-6, 1e-6]];

  it("−Σ p·log max(p, 1e-5) over the last axis, float64", () => {
    const got = flat(entropy(f64(rows.flat(), [3, 4])));
    expectRelative(got, rows.map(hostEntropy), 2e-5);
    expect(got[1]).toBe(0);
  });

  it.each([
    { dtype: "float32", make: f32, round: Math.fround },
    { dtype: "float64", make: f64, round: (v: number) => v },
  ] as const)("$dtype: the confident distribution to 1e-6 of its entropy", ({ make, round }) => {
    const row = rows[2]!.map(round);
    expectRelative([scalar(entropy(make(row, [4])))], [hostEntropy(row)], 1e-6);
  });

  it("keeps the dtype", () => {
    expect(entropy(f64([0.5, 0.5], [2])).dtype).toBe(np.float64);
    expect(entropy(f32([0.5, 0.5], [2])).dtype).toBe(np.float32);
  });
});
