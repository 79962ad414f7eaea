import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { mulberry32 as rng } from "../../src/data/shuffle.ts";
import { frechetDistance, frechetDistanceOf, gaussianOf, generatorScores, symmetricEigen, symmetricSqrt, type Gaussian } from "../../src/eval/frechet.ts";
import { inceptionScore } from "../../src/eval/metrics.ts";

/** reference/image_metrics.py: pytorch-fid's formula (np.cov with n − 1, scipy.linalg.sqrtm) in float64. */
type FeatureCase = { readonly name: string; readonly dim: number; readonly na: number; readonly nb: number; readonly a: readonly number[]; readonly b: readonly number[]; readonly distance: number };
const fx = JSON.parse(readFileSync(new URL("../fixtures/image-metrics.json", import.meta.url), "utf8")) as { readonly features: readonly FeatureCase[] };

const g = (mean: number[], cov: number[]): Gaussian => ({ mean: Float64Array.from(mean), cov: Float64Array.from(cov), dim: mean.length, n: 100 });

/** A random symmetric positive definite d×d matrix A·Aᵀ + εI. */
function spd(d: number, r: () => number): number[] {
  const a = Array.from({ length: d * d }, () => r() - 0.5);
  const out = new Array<number>(d * d).fill(0);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) out[i * d + j]! += a[i * d + k]! * a[j * d + k]!;
  for (let i = 0; i < d; i++) out[i * d + i]! += 0.01;
  return out;
}

describe("Fréchet distance", () => {
  it("is zero between a Gaussian and itself, and ‖Δμ‖² when only the means differ", () => {
    const c = spd(6, rng(1));
    expect(frechetDistance(g([0, 0, 0, 0, 0, 0], c), g([0, 0, 0, 0, 0, 0], c))).toBeCloseTo(0, 9);
    expect(frechetDistance(g([1, 2, 0, 0, 0, 0], c), g([0, 0, 0, 0, 0, 3], c))).toBeCloseTo(1 + 4 + 9, 9);
  });

  it("for diagonal covariances is ‖Δμ‖² + Σ (√a − √b)²", () => {
    const a = [4, 1, 9, 0.25];
    const b = [1, 1, 16, 1];
    const diag = (v: number[]) => v.flatMap((x, i) => v.map((_, j) => (i === j ? x : 0)));
    const want = 1 + a.reduce((s, x, i) => s + (Math.sqrt(x) - Math.sqrt(b[i]!)) ** 2, 0);
    expect(frechetDistance(g([1, 0, 0, 0], diag(a)), g([0, 0, 0, 0], diag(b)))).toBeCloseTo(want, 9);
  });

  it("for non-commuting 2×2 covariances matches the closed form Tr √M = √(tr M + 2√det M)", () => {
    const r = rng(7);
    for (let t = 0; t < 20; t++) {
      const s1 = spd(2, r);
      const s2 = spd(2, r);
      const m = [s1[0]! * s2[0]! + s1[1]! * s2[2]!, s1[0]! * s2[1]! + s1[1]! * s2[3]!, s1[2]! * s2[0]! + s1[3]! * s2[2]!, s1[2]! * s2[1]! + s1[3]! * s2[3]!];
      const trSqrt = Math.sqrt(m[0]! + m[3]! + 2 * Math.sqrt(m[0]! * m[3]! - m[1]! * m[2]!));
      const want = s1[0]! + s1[3]! + s2[0]! + s2[3]! - 2 * trSqrt;
      expect(frechetDistance(g([0, 0], s1), g([0, 0], s2))).toBeCloseTo(want, 9);
    }
  });

  it("Jacobi eigen-decomposition reconstructs the matrix, and the square root squares back", () => {
    const d = 12;
    const a = spd(d, rng(3));
    const { values, vectors } = symmetricEigen(a, d);
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += vectors[i * d + k]! * values[k]! * vectors[j * d + k]!;
        expect(s).toBeCloseTo(a[i * d + j]!, 10);
      }
    const root = symmetricSqrt(a, d);
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += root[i * d + k]! * root[k * d + j]!;
        expect(s).toBeCloseTo(a[i * d + j]!, 10);
      }
  });

  it("from features: mean and unbiased covariance; a shifted copy is ‖shift‖² away", () => {
    const x = [1, 2, 3, 6, 5, 10]; // rows (1,2), (3,6), (5,10)
    const p = gaussianOf(x, 3, 2);
    expect(Array.from(p.mean)).toEqual([3, 6]);
    expect(Array.from(p.cov)).toEqual([4, 8, 8, 16]);
    const r = rng(5);
    const feats = Array.from({ length: 200 * 5 }, () => r());
    const shifted = feats.map((v, i) => v + (i % 5 === 2 ? 0.5 : 0));
    expect(frechetDistanceOf(feats, 200, shifted, 200, 5)).toBeCloseTo(0.25, 8);
    expect(() => gaussianOf([1, 2, 3], 2, 2)).toThrow("gaussianOf: expected n ≥ 2 rows of dim ≥ 1 (n·dim values), got n 2, dim 2 and 3 values");
  });

  it.each(fx.features.map((c) => [c.name, c] as const))("matches pytorch-fid's formula with scipy's sqrtm: %s", (_, c) => {
    const got = frechetDistanceOf(Float32Array.from(c.a), c.na, Float32Array.from(c.b), c.nb, c.dim);
    expect(Math.abs(got - c.distance) / c.distance).toBeLessThan(1e-6);
  });
});

describe("generatorScores", () => {
  it("gFID is the Fréchet distance of the samples' features to the real ones; IS is of their class probabilities", async () => {
    // A stand-in feature network: features (x0, x1, x0·x1) and a 2-class softmax of x0 − x1.
    const net = {
      featureDim: 3,
      config: { classes: 2 },
      features: async (x: Float32Array, n: number) => Float32Array.from({ length: 3 * n }, (_, i) => [x[2 * Math.floor(i / 3)]!, x[2 * Math.floor(i / 3) + 1]!, x[2 * Math.floor(i / 3)]! * x[2 * Math.floor(i / 3) + 1]!][i % 3]!),
      probabilities: async (x: Float32Array, n: number) => Float32Array.from({ length: 2 * n }, (_, i) => {
        const d = x[2 * Math.floor(i / 2)]! - x[2 * Math.floor(i / 2) + 1]!;
        const p = 1 / (1 + Math.exp(-d));
        return i % 2 === 0 ? p : 1 - p;
      }),
    };
    const samples = Float32Array.from([0.1, 0.9, 0.8, 0.2, 0.5, 0.4, 0.3, 0.6, 0.7, 0.1]);
    const real = gaussianOf(Float32Array.from([0.2, 0.3, 0.06, 0.9, 0.1, 0.09, 0.4, 0.4, 0.16, 0.6, 0.5, 0.3]), 4, 3);
    const s = await generatorScores(net, samples, 5, real);
    expect(s.gfid).toBeCloseTo(frechetDistance(gaussianOf(await net.features(samples, 5), 5, 3), real), 12);
    expect(s.inceptionScore).toBeCloseTo(inceptionScore(await net.probabilities(samples, 5), 5, 2).mean, 12);
    expect(s.inceptionScore).toBeGreaterThan(1);
  });
});
