/**
 * Structural similarity (SSIM, Wang, Bovik, Sheikh & Simoncelli 2004, eq. 13) on host images,
 * computed as scikit-image's `structural_similarity(im1, im2, data_range=R, gaussian_weights=True,
 * sigma=1.5, use_sample_covariance=False, channel_axis=…)` does, the settings that match the paper:
 *
 *   SSIM(x, y) = (2 μx μy + C₁)(2 σxy + C₂) / ((μx² + μy² + C₁)(σx² + σy² + C₂)),
 *   C₁ = (K₁ R)², C₂ = (K₂ R)², K₁ = 0.01, K₂ = 0.03, R = the data range (1 for images in [0, 1]),
 *
 * with the local μ, σ² and σxy weighted by a Gaussian window of σ = 1.5 truncated at 3.5 σ
 * (radius int(3.5 σ + 0.5) = 5, an 11×11 window) and the population (1/N) moments. The pitfall is
 * the border: skimage filters the whole image (scipy.ndimage.gaussian_filter, mode "reflect"),
 * then averages the SSIM map only after cropping (win − 1) / 2 pixels from each side. Every window
 * centred in the crop lies inside the image, so the boundary mode never reaches the mean: only the
 * cropped values are computed here, with no padding, and images must be at least win × win (as
 * skimage requires: 11×11 for σ 1.5). A colour image's SSIM is the mean over its channels.
 *
 * Computed in float64 (skimage computes in its input's float type); an image compared with itself
 * gives exactly 1. Oracle: test/fixtures/image-metrics.json from reference/image_metrics.py.
 */

import type { ImageSet } from "../data/types.ts";

export type SsimOptions = {
  /** R: max − min of the value scale (1 for [0, 1], 255 for 8-bit). Default 1. */
  readonly dataRange?: number;
  /** σ of the Gaussian window, in pixels. Default 1.5 (the paper's 11×11 window). */
  readonly sigma?: number;
};

/** The image layout of `ImageSet`: images [N, C, H, W] flat, C absent = 1. */
export type ImageShape = Pick<ImageSet, "n" | "height" | "width" | "channels">;

const K1 = 0.01;
const K2 = 0.03;
const TRUNCATE = 3.5;

/** SSIM of each image pair. a, b: [N, C, H, W] → [N], each the mean over its C channels. */
export function ssimPerImage(a: ArrayLike<number>, b: ArrayLike<number>, shape: ImageShape, options: SsimOptions = {}): Float64Array {
  const { n, height: h, width: w } = shape;
  const c = shape.channels ?? 1;
  const dims = `[N, C, H, W] = [${n}, ${c}, ${h}, ${w}]`;
  if (![n, c, h, w].every((d) => Number.isInteger(d) && d >= 1)) throw new Error(`ssim: expected a shape [N, C, H, W] of positive integers, got ${dims}`);
  if (a.length !== n * c * h * w || b.length !== n * c * h * w) throw new Error(`ssim: expected two sets of images of shape ${dims} (${n * c * h * w} values each), got ${a.length} and ${b.length} values`);
  const dataRange = options.dataRange ?? 1;
  const sigma = options.sigma ?? 1.5;
  if (!(dataRange > 0 && Number.isFinite(dataRange))) throw new Error(`ssim: dataRange must be a positive number, got ${dataRange}`);
  if (!(sigma > 0 && Number.isFinite(sigma))) throw new Error(`ssim: sigma must be a positive number, got ${sigma}`);
  const weights = gaussianWindow(sigma);
  const win = weights.length;
  if (h < win || w < win) throw new Error(`ssim: images of shape ${dims} are ${h}×${w}, smaller than the ${win}×${win} Gaussian window of σ ${sigma}; SSIM needs at least ${win}×${win}`);

  const c1 = (K1 * dataRange) ** 2;
  const c2 = (K2 * dataRange) ** 2;
  const plane = h * w;
  const x = new Float64Array(plane);
  const y = new Float64Array(plane);
  const xx = new Float64Array(plane);
  const yy = new Float64Array(plane);
  const xy = new Float64Array(plane);
  const scratch = new Float64Array((h - win + 1) * w);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let ch = 0; ch < c; ch++) {
      const offset = (i * c + ch) * plane;
      for (let p = 0; p < plane; p++) {
        const u = a[offset + p]!;
        const v = b[offset + p]!;
        x[p] = u;
        y[p] = v;
        xx[p] = u * u;
        yy[p] = v * v;
        xy[p] = u * v;
      }
      const ux = blurCropped(x, weights, h, w, scratch);
      const uy = blurCropped(y, weights, h, w, scratch);
      const uxx = blurCropped(xx, weights, h, w, scratch);
      const uyy = blurCropped(yy, weights, h, w, scratch);
      const uxy = blurCropped(xy, weights, h, w, scratch);
      let map = 0;
      for (let p = 0; p < ux.length; p++) {
        const mx = ux[p]!;
        const my = uy[p]!;
        const vx = uxx[p]! - mx * mx;
        const vy = uyy[p]! - my * my;
        const vxy = uxy[p]! - mx * my;
        map += ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      }
      sum += map / ux.length;
    }
    out[i] = sum / c;
  }
  return out;
}

/** Mean SSIM over the N image pairs of a, b: [N, C, H, W]. */
export function ssim(a: ArrayLike<number>, b: ArrayLike<number>, shape: ImageShape, options: SsimOptions = {}): number {
  const each = ssimPerImage(a, b, shape, options);
  return each.reduce((s, v) => s + v, 0) / each.length;
}

/** scipy.ndimage's 1-D Gaussian: exp(−x² / 2σ²) for x in [−r, r], r = int(3.5 σ + 0.5), normalised to sum 1. */
function gaussianWindow(sigma: number): Float64Array {
  const r = Math.floor(TRUNCATE * sigma + 0.5);
  const taps = Float64Array.from({ length: 2 * r + 1 }, (_, k) => Math.exp((-0.5 / (sigma * sigma)) * (k - r) ** 2));
  const total = taps.reduce((s, v) => s + v, 0);
  return taps.map((v) => v / total);
}

/**
 * The separable Gaussian blur of one plane [H, W] (along H, then along W, as gaussian_filter does)
 * at the centres of the crop, whose windows all lie inside the plane. → [(H − 2r)·(W − 2r)].
 * scratch: [(H − 2r)·W].
 */
function blurCropped(plane: Float64Array, weights: Float64Array, h: number, w: number, scratch: Float64Array): Float64Array {
  const taps = weights.length;
  const keptH = h - taps + 1;
  const keptW = w - taps + 1;
  for (let o = 0; o < keptH; o++)
    for (let j = 0; j < w; j++) {
      let s = 0;
      for (let k = 0; k < taps; k++) s += weights[k]! * plane[(o + k) * w + j]!;
      scratch[o * w + j] = s;
    }
  const out = new Float64Array(keptH * keptW);
  for (let o = 0; o < keptH; o++)
    for (let q = 0; q < keptW; q++) {
      let s = 0;
      for (let k = 0; k < taps; k++) s += weights[k]! * scratch[o * w + q + k]!;
      out[o * keptW + q] = s;
    }
  return out;
}
