/**
 * Fréchet distance between two sets of feature vectors, each summarised by a Gaussian (the FID
 * of Heusel et al. 2017 when the features are Inception's; here any in-project network's, e.g.
 * the judge's hidden layer):
 *
 *   d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½)
 *
 * Tr((Σ₁Σ₂)^½) is computed as Σ √λᵢ of the symmetric PSD matrix Σ₁^½ Σ₂ Σ₁^½ (same eigenvalues
 * as Σ₁Σ₂), with symmetric square roots from a cyclic Jacobi eigen-decomposition in float64 on
 * the host: the feature dimensions are small (tens), so this is exact to rounding and needs no
 * linear-algebra library. Covariances use the unbiased 1/(n − 1), as the reference FID does.
 * With fewer samples than dimensions the estimate is biased upward: compare distances only at
 * equal sample counts.
 */
import { inceptionScore } from "./metrics.ts";

export type Gaussian = { readonly mean: Float64Array; readonly cov: Float64Array; readonly dim: number; readonly n: number };

/** features: [n·dim] row-major → mean [dim] and covariance [dim·dim]. */
export function gaussianOf(features: ArrayLike<number>, n: number, dim: number): Gaussian {
  if (!Number.isInteger(n) || n < 2 || !Number.isInteger(dim) || dim < 1 || features.length !== n * dim) throw new Error(`gaussianOf: expected n ≥ 2 rows of dim ≥ 1 (n·dim values), got n ${n}, dim ${dim} and ${features.length} values`);
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j]! += features[i * dim + j]! / n;
  const cov = new Float64Array(dim * dim);
  const row = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) row[j] = features[i * dim + j]! - mean[j]!;
    for (let a = 0; a < dim; a++) for (let b = a; b < dim; b++) cov[a * dim + b]! += row[a]! * row[b]!;
  }
  for (let a = 0; a < dim; a++)
    for (let b = a; b < dim; b++) {
      const v = cov[a * dim + b]! / (n - 1);
      cov[a * dim + b] = v;
      cov[b * dim + a] = v;
    }
  return { mean, cov, dim, n };
}

/** d² between two Gaussians of the same dimension. */
export function frechetDistance(p: Gaussian, q: Gaussian): number {
  if (p.dim !== q.dim) throw new Error(`frechetDistance: dimensions differ (${p.dim} vs ${q.dim})`);
  const d = p.dim;
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (p.mean[j]! - q.mean[j]!) ** 2;
  const root = symmetricSqrt(p.cov, d);
  const m = matmul(matmul(root, q.cov, d), root, d);
  symmetrize(m, d);
  const cross = symmetricEigenvalues(m, d).reduce((s, l) => s + Math.sqrt(Math.max(0, l)), 0);
  let trace = 0;
  for (let j = 0; j < d; j++) trace += p.cov[j * d + j]! + q.cov[j * d + j]!;
  return meanTerm + trace - 2 * cross;
}

/** Fréchet distance between the Gaussians of two feature sets ([n·dim] each). */
export function frechetDistanceOf(a: ArrayLike<number>, na: number, b: ArrayLike<number>, nb: number, dim: number): number {
  return frechetDistance(gaussianOf(a, na, dim), gaussianOf(b, nb, dim));
}

function matmul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let k = 0; k < d; k++) {
      const x = a[i * d + k]!;
      if (x !== 0) for (let j = 0; j < d; j++) out[i * d + j]! += x * b[k * d + j]!;
    }
  return out;
}

function symmetrize(m: Float64Array, d: number): void {
  for (let i = 0; i < d; i++)
    for (let j = i + 1; j < d; j++) {
      const v = (m[i * d + j]! + m[j * d + i]!) / 2;
      m[i * d + j] = v;
      m[j * d + i] = v;
    }
}

/** Eigenvalues and eigenvectors (columns of `vectors`) of a symmetric matrix, by cyclic Jacobi rotations. */
export function symmetricEigen(matrix: ArrayLike<number>, d: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  let scale = 0;
  for (let i = 0; i < d * d; i++) scale += a[i]! ** 2;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) off += a[i * d + j]! ** 2;
    if (off <= 1e-30 * scale || off === 0) break;
    for (let p = 0; p < d; p++)
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q]!;
        if (apq === 0) continue;
        const theta = (a[q * d + q]! - a[p * d + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p]!;
          const akq = a[k * d + q]!;
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k]!;
          const aqk = a[q * d + k]!;
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p]!;
          const vkq = v[k * d + q]!;
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
  }
  return { values: Float64Array.from({ length: d }, (_, i) => a[i * d + i]!), vectors: v };
}

const symmetricEigenvalues = (m: Float64Array, d: number) => Array.from(symmetricEigen(m, d).values);

/** The symmetric PSD square root V·diag(√λ)·Vᵀ (negative rounding-level eigenvalues clipped to 0). */
export function symmetricSqrt(m: ArrayLike<number>, d: number): Float64Array {
  const { values, vectors } = symmetricEigen(m, d);
  const out = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const r = Math.sqrt(Math.max(0, values[k]!));
    if (r === 0) continue;
    for (let i = 0; i < d; i++) {
      const x = vectors[i * d + k]! * r;
      for (let j = 0; j < d; j++) out[i * d + j]! += x * vectors[j * d + k]!;
    }
  }
  return out;
}

/**
 * A generator's scores on a feature network (the judge, in Inception's role): gFID, the Fréchet
 * distance of the samples' features to the real images' `real`, and the Inception Score of its
 * class probabilities. samples: [N·C·H·W] in [0, 1].
 */
export async function generatorScores(
  features: { features(x: Float32Array, n: number): Promise<Float32Array>; probabilities(x: Float32Array, n: number): Promise<Float32Array>; readonly featureDim: number; readonly config: { readonly classes: number } },
  samples: Float32Array,
  n: number,
  real: Gaussian,
  { splits = 1 }: { readonly splits?: number } = {},
): Promise<{ gfid: number; inceptionScore: number; inceptionScoreStd: number }> {
  const gfid = frechetDistance(gaussianOf(await features.features(samples, n), n, features.featureDim), real);
  const is = inceptionScore(await features.probabilities(samples, n), n, features.config.classes, { splits });
  return { gfid, inceptionScore: is.mean, inceptionScoreStd: is.std };
}
