/**
 * Multi-scale residual quantization of VAR (Tian et al. 2024, "Visual Autoregressive Modeling:
 * Scalable Image Generation via Next-Scale Prediction", Alg. 1), after the forward of VAR's
 * reference `VectorQuantizer2` (models/quant.py).
 *
 * Feature maps are channels last, f: [B, H, W, D] (VAR's reference is channels first,
 * [B, C, H, W]). With one shared codebook and scales s_1 < … < s_S = H = W:
 *
 *   rest = sg(f), f̂ = 0
 *   for each scale s:  r_s = nearest(area(rest, s×s))     token map [B, s, s]
 *                      h_s = bicubic(codebook[r_s], H×W)
 *                      f̂ += h_s,  rest −= h_s
 *
 * The last scale (s = H) skips both resamplings, as in VAR. Resampling reproduces torch's
 * `F.interpolate` exactly: mode "area" (= adaptive average pooling) down, mode "bicubic"
 * (A = −0.75, align_corners=False, edge-clamped taps — VAR's choice) up. Both are separable
 * and linear, so each is one fixed [out·out, in·in] matrix built on the host and applied by
 * matmul: fast in jax-js and differentiable for free.
 *
 * Left out: VAR's φ refinement (a 3×3 conv blended into every h_s, `quant_resi`); here φ is the
 * identity, i.e. VAR with quant_resi = 0.
 */
import { lax, np, type Array } from "../../engine/index.ts";
import { fromHost } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { fmt } from "../../nn/shapes.ts";
import { checkDeviceIds, checkQuantizerInput } from "./checks.ts";
import type { QuantizeResult } from "./types.ts";
import { initVQ, l2normalize, straightThrough } from "./vq.ts";
import { oneHot } from "../../nn/embedding.ts";

export type MultiScaleOptions = {
  /** Number of codes K, shared by all scales. */
  readonly codebookSize: number;
  /** Feature and code dimension D. */
  readonly dim: number;
  /** β, the commitment-loss weight (VAR: 0.25). */
  readonly beta: number;
  /** "l2" nearest code, or "cosine" similarity (VAR's using_znorm). */
  readonly distance: "l2" | "cosine";
  /** Token-map sides, strictly increasing; the last equals the feature map's H = W. */
  readonly scales: readonly number[];
};

/** For the 7×7 grid of the MNIST VQ-VAE: every side from 1 to 7 (VAR uses 1,2,3,4,5,6,8,10,13,16 at 16×16). */
export const DEFAULT_MULTISCALE: Omit<MultiScaleOptions, "codebookSize" | "dim"> = {
  beta: 0.25,
  distance: "l2",
  scales: [1, 2, 3, 4, 5, 6, 7],
};

/** codebook: [K, D], shared by all scales. */
export type MultiScaleParams = { codebook: Array };

/** Codebook ~ N(0, 1/D), as vq.ts's initVQ. */
export function initMultiScale(keys: KeyStream, { codebookSize, dim }: Pick<MultiScaleOptions, "codebookSize" | "dim">): MultiScaleParams {
  return { codebook: initVQ(keys, { codebookSize, dim }).codebook };
}

// ---------------------------------------------------------------- resampling matrices (host)

/** torch F.interpolate(mode="area") along one axis = adaptive average pooling: [out, in]. */
export function areaWeights(inSize: number, outSize: number): Float64Array {
  const w = new Float64Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) {
    const start = Math.floor((o * inSize) / outSize);
    const end = Math.ceil(((o + 1) * inSize) / outSize);
    for (let i = start; i < end; i++) w[o * inSize + i] = 1 / (end - start);
  }
  return w;
}

/**
 * torch F.interpolate(mode="bicubic", align_corners=False) along one axis: [out, in].
 * Source coordinate x = (o + ½)·in/out − ½ (not clamped), taps ⌊x⌋−1 … ⌊x⌋+2 clamped to the
 * edge, Keys' cubic convolution with A = −0.75 (torch's upsample_bicubic2d).
 */
export function bicubicWeights(inSize: number, outSize: number): Float64Array {
  const A = -0.75;
  const near = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1; // |x| ≤ 1
  const far = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; // 1 < |x| < 2
  const w = new Float64Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) {
    const x = ((o + 0.5) * inSize) / outSize - 0.5;
    const x0 = Math.floor(x);
    const t = x - x0;
    const taps = [far(t + 1), near(t), near(1 - t), far(2 - t)];
    taps.forEach((c, j) => {
      const i = Math.min(inSize - 1, Math.max(0, x0 - 1 + j));
      w[o * inSize + i] += c;
    });
  }
  return w;
}

export type ResizeMode = "area" | "bicubic";

const kernels = new Map<string, Float32Array>();

/** The 2-D separable resampling [oh·ow, ih·iw] = rows ⊗ cols, row-major maps; cached per size. */
function kernel2d(mode: ResizeMode, ih: number, iw: number, oh: number, ow: number): Float32Array {
  const key = `${mode} ${ih}x${iw}>${oh}x${ow}`;
  let k = kernels.get(key);
  if (k === undefined) {
    const weights = mode === "area" ? areaWeights : bicubicWeights;
    const [rows, cols] = [weights(ih, oh), weights(iw, ow)];
    k = new Float32Array(oh * ow * ih * iw);
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        for (let i = 0; i < ih; i++) {
          for (let j = 0; j < iw; j++) k[(y * ow + x) * ih * iw + i * iw + j] = rows[y * ih + i]! * cols[x * iw + j]!;
        }
      }
    }
    kernels.set(key, k);
  }
  return k;
}

/** x: [B, h·w, D] → [B, oh·ow, D]; a [1, M, N] kernel broadcasts right where a rank-2 one does not. */
function resample(x: Array, mode: ResizeMode, [ih, iw]: readonly number[], [oh, ow]: readonly number[]): Array {
  return np.matmul(fromHost(kernel2d(mode, ih!, iw!, oh!, ow!), [1, oh! * ow!, ih! * iw!]), x);
}

/** Resize maps like torch's F.interpolate(mode, size=[oh, ow]). x: [B, h, w, D] → [B, oh, ow, D]. Consumes x. */
export function resize(x: Array, [oh, ow]: readonly [number, number], mode: ResizeMode): Array {
  if (x.ndim !== 4) throw new Error(`multiscale.resize: expected a map [B, H, W, D], got ${fmt(x.shape)}`);
  const [b, h, w, d] = x.shape as [number, number, number, number];
  return resample(x.reshape([b, h * w, d]), mode, [h, w], [oh, ow]).reshape([b, oh, ow, d]);
}

// ---------------------------------------------------------------- token layout

/** Token offsets of every scale in the flat sequence: [0, s₁², s₁²+s₂², …], length S + 1. */
export function scaleOffsets(scales: readonly number[]): number[] {
  const out = [0];
  for (const s of scales) out.push(out[out.length - 1]! + s * s);
  return out;
}

/** indices: [B, Σ s²] (or a prefix of whole scales) → per-scale token maps [B, s, s]. Consumes indices. */
export function splitScales(indices: Array, scales: readonly number[]): Array[] {
  const n = prefixLength(indices, scales, "multiscale.splitScales");
  const offsets = scaleOffsets(scales);
  const b = indices.shape[0]!;
  const maps = scales.slice(0, n).map((s, i) => indices.ref.slice([], [offsets[i]!, offsets[i + 1]!]).reshape([b, s, s]));
  indices.dispose();
  return maps;
}

// ---------------------------------------------------------------- quantize / decode

/**
 * f: [B, H, W, D] → codes [B, H, W, D] (f̂ with straight-through gradients: sg(f̂) + f − sg(f)),
 * indices [B, Σ s²] int32 (the scales' token maps, each flattened row-major, concatenated from
 * the smallest scale up; `splitScales` undoes this).
 * Losses as VAR's reference, on the running reconstruction f̂_≤s after every scale, averaged:
 * codebook = mean_s ‖f̂_≤s − sg(f)‖², commitment = β·mean_s ‖sg(f̂_≤s) − f‖² (means over elements).
 * "cosine" picks codes by cosine similarity (VAR's using_znorm) but adds the raw codebook
 * vectors, as VAR does, so the residual stays in f's units. stats.residual = mean ‖f − f̂‖².
 * Consumes params and f.
 */
export function quantize(params: MultiScaleParams, f: Array, opts: MultiScaleOptions): QuantizeResult {
  const [k, d] = params.codebook.shape as [number, number];
  const [b, h, w] = checkMap(f, d, opts.scales, "multiscale.quantize");
  const n = h * w;
  const x = f.reshape([b, n, d]);
  const target = lax.stopGradient(x.ref);
  const frozen = lax.stopGradient(params.codebook.ref);
  let rest = target.ref; // [B, HW, D], no gradient: only picks codes
  let fhat = np.zeros([b, n, d], { dtype: x.dtype }); // f̂_≤s: [B, HW, D]
  let codebookLoss = np.zeros([], { dtype: x.dtype });
  let commitment = np.zeros([], { dtype: x.dtype });
  const ids: Array[] = [];
  for (const [si, s] of opts.scales.entries()) {
    const last = si === opts.scales.length - 1;
    const z = last ? rest : resample(rest.ref, "area", [h, w], [s, s]); // [B, s², D]
    const idx = nearest(z.reshape([-1, d]), frozen.ref, opts.distance); // [B·s²]
    const e = np.matmul(oneHot(idx.ref, k, x.dtype), params.codebook.ref).reshape([b, s * s, d]);
    const up = last ? e : resample(e, "bicubic", [s, s], [h, w]); // [B, HW, D]
    if (!last) rest = rest.sub(lax.stopGradient(up.ref));
    fhat = fhat.add(up);
    codebookLoss = codebookLoss.add(mse(fhat.ref, target.ref));
    commitment = commitment.add(mse(lax.stopGradient(fhat.ref), x.ref));
    ids.push(idx.reshape([b, s * s]));
  }
  frozen.dispose();
  params.codebook.dispose();
  const S = opts.scales.length;
  const residual = mse(lax.stopGradient(fhat.ref), target);
  const codes = straightThrough(x, fhat); // value f̂, d codes / d f = I
  return {
    codes: codes.reshape([b, h, w, d]),
    indices: ids.length === 1 ? ids[0]! : np.concatenate(ids, 1),
    losses: { codebook: codebookLoss.div(S), commitment: commitment.mul(opts.beta / S) },
    stats: { residual },
  };
}

/**
 * indices: [B, L] int32, the first n scales' tokens in `quantize`'s layout (L = Σ_{i≤n} s_i²,
 * n ≥ 1) → f̂_≤n: [B, H, W, D], the sum of those scales' up-sampled code maps (H = W = the last
 * of all `scales`). With every scale this is `quantize`'s codes; with a prefix, the partial
 * reconstruction next-scale prediction conditions on. Consumes params and indices (like vq.ts).
 */
export function indicesToCodes(params: MultiScaleParams, indices: Array, opts: Pick<MultiScaleOptions, "scales">): Array {
  const [k, d] = params.codebook.shape as [number, number];
  const { scales } = opts;
  checkScales(scales, scales[scales.length - 1]!, scales[scales.length - 1]!, "multiscale.indicesToCodes");
  const n = prefixLength(indices, scales, "multiscale.indicesToCodes");
  checkDeviceIds(indices, k, "multiscale.indicesToCodes");
  const size = scales[scales.length - 1]!;
  const b = indices.shape[0]!;
  const dtype = params.codebook.dtype;
  const e = np.matmul(oneHot(indices.reshape([-1]), k, dtype), params.codebook).reshape([b, -1, d]); // [B, L, D]
  const offsets = scaleOffsets(scales);
  let fhat = np.zeros([b, size * size, d], { dtype });
  for (let si = 0; si < n; si++) {
    const s = scales[si]!;
    const part = e.ref.slice([], [offsets[si]!, offsets[si + 1]!]); // [B, s², D]
    const up = s === size ? part : resample(part, "bicubic", [s, s], [size, size]);
    fhat = fhat.add(up);
  }
  e.dispose();
  return fhat.reshape([b, size, size, d]);
}

// ---------------------------------------------------------------- helpers

function mse(a: Array, b: Array): Array {
  return np.square(a.sub(b)).mean();
}

/** z: [N, D], codebook: [K, D] (no gradient) → ids [N]: least ‖z − c‖², or largest cosine. */
function nearest(z: Array, codebook: Array, distance: MultiScaleOptions["distance"]): Array {
  if (distance === "cosine") return np.argmax(np.matmul(l2normalize(z), l2normalize(codebook).transpose([1, 0])), -1);
  const zz = np.square(z.ref).sum(-1, { keepdims: true });
  const cc = np.square(codebook.ref).sum(-1).reshape([1, -1]);
  return np.argmin(zz.add(cc).sub(np.matmul(z, codebook.transpose([1, 0])).mul(2)), -1);
}

/** Check f: [B, H, W, D] (finite when concrete) against D and the scales; → [B, H, W]. */
function checkMap(f: Array, d: number, scales: readonly number[], what: string): [number, number, number] {
  checkQuantizerInput(f, d, what);
  if (f.ndim !== 4) throw new Error(`${what}: expected a feature map [B, H, W, ${d}] (channels last), got ${fmt(f.shape)}`);
  const [b, h, w] = f.shape as [number, number, number];
  checkScales(scales, h, w, what);
  return [b, h, w];
}

function checkScales(scales: readonly number[], h: number, w: number, what: string): void {
  if (scales.length === 0) throw new Error(`${what}: scales must list at least one side, got []`);
  scales.forEach((s, i) => {
    if (!Number.isInteger(s) || s < 1) throw new Error(`${what}: scales must be positive integers, got ${s} at position ${i} of ${fmt(scales)}`);
    if (i > 0 && s <= scales[i - 1]!) {
      throw new Error(`${what}: scales must be strictly increasing, got ${fmt(scales)} (${scales[i - 1]} then ${s} at position ${i})`);
    }
  });
  const last = scales[scales.length - 1];
  if (h !== w || last !== h) throw new Error(`${what}: the last scale must equal the feature map's side, got last scale ${last} for a ${h}×${w} map`);
}

/** indices: [B, L] with L covering whole scales → how many scales (≥ 1). */
function prefixLength(indices: Array, scales: readonly number[], what: string): number {
  const offsets = scaleOffsets(scales);
  const n = indices.ndim === 2 ? offsets.indexOf(indices.shape[1]!) : -1;
  if (n < 1) {
    throw new Error(`${what}: expected indices [B, L] with L the token count of the first n scales of ${fmt(scales)}, one of ${fmt(offsets.slice(1))}, got ${fmt(indices.shape)}`);
  }
  return n;
}
