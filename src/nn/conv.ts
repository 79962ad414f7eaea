import { np, type Array } from "../engine/index.ts";
import type { KeyStream } from "../engine/rng.ts";
import { fanIn, zeros } from "./init.ts";
import { fmt } from "./shapes.ts";

/** Conv2d: w: [Cout, Cin, k, k] (PyTorch layout), b: [Cout]. */
export type Conv2dParams = { w: Array; b: Array };
/** ConvTranspose2d: w: [Cin, Cout, k, k] (PyTorch layout), b: [Cout]. */
export type ConvTranspose2dParams = { w: Array; b: Array };
export type ConvOptions = { stride?: number; padding?: number };

export function initConv2d(keys: KeyStream, cin: number, cout: number, k: number): Conv2dParams {
  return { w: fanIn(keys, [cout, cin, k, k], cin * k * k, Math.SQRT2), b: zeros([cout]) };
}

export function initConvTranspose2d(keys: KeyStream, cin: number, cout: number, k: number): ConvTranspose2dParams {
  return { w: fanIn(keys, [cin, cout, k, k], cin * k * k, Math.SQRT2), b: zeros([cout]) };
}

function checkNCHW(x: Array, cin: number, what: string): void {
  if (x.ndim !== 4 || x.shape[1] !== cin) throw new Error(`${what}: expected input [N, ${cin}, H, W], got ${fmt(x.shape)}`);
}

/**
 * Convolution as a sum of k·k matmuls, one per kernel offset (ki, kj):
 *   y[n, o, i, j] = Σ_{ki, kj} x_pad[n, :, s·i + ki, s·j + kj] · w[o, :, ki, kj].
 * Each offset's input is a view of the padded input (a pad, a reshape that puts the stride
 * phase on its own axis, and contiguous slices — jax-js has no strided slice), so no patch
 * matrix is built. jax-js 0.1.25's own wasm convolution ran ~90× slower than the same FLOPs
 * as a matmul (64×32×14×14 → 64 channels, 4×4 stride 2: 966 ms vs 11 ms), and an im2col
 * built with `stack` fused badly into the matmul.
 * x: [N, Cin, H, W], w: [Cout, Cin, k, k] → [N, Cout, Ho, Wo].
 */
function convByOffsets(x: Array, w: Array, stride: number, padding: number): Array {
  const [n, c, h, wd] = x.shape;
  const k = w.shape[2];
  const ho = Math.floor((h + 2 * padding - k) / stride) + 1;
  const wo = Math.floor((wd + 2 * padding - k) / stride) + 1;
  if (ho < 1 || wo < 1) throw new Error(`conv2d: input ${h}×${wd} is too small for kernel ${k} with padding ${padding}`);
  const reach = Math.floor((k - 1) / stride); // stride-blocks a kernel spans past its origin
  const hq = Math.max(Math.ceil((h + 2 * padding) / stride), reach + ho);
  const wq = Math.max(Math.ceil((wd + 2 * padding) / stride), reach + wo);
  const nhwc = x.transpose([0, 2, 3, 1]);
  const padded = np.pad(nhwc, [[0, 0], [padding, hq * stride - h - padding], [padding, wq * stride - wd - padding], [0, 0]]);
  const phases = padded.reshape([n, hq, stride, wq, stride, c]);
  const taps = w.transpose([2, 3, 1, 0]); // [k, k, Cin, Cout]
  let y: Array | undefined;
  for (let ki = 0; ki < k; ki++) {
    for (let kj = 0; kj < k; kj++) {
      const a = Math.floor(ki / stride);
      const b = Math.floor(kj / stride);
      const view = phases.ref.slice([], [a, a + ho], ki % stride, [b, b + wo], kj % stride, []); // [N, Ho, Wo, Cin]
      const term = np.matmul(view, taps.ref.slice(ki, kj)); // [N, Ho, Wo, Cout]
      y = y === undefined ? term : y.add(term);
    }
  }
  phases.dispose();
  taps.dispose();
  return y!.transpose([0, 3, 1, 2]);
}

/** x: [N, Cin, H, W] → [N, Cout, (H + 2p - k) / s + 1, …]. Matches torch.nn.Conv2d. */
export function conv2d(p: Conv2dParams, x: Array, { stride = 1, padding = 0 }: ConvOptions = {}): Array {
  checkNCHW(x, p.w.shape[1], "conv2d");
  return convByOffsets(x, p.w, stride, padding).add(p.b.reshape([1, -1, 1, 1]));
}

/**
 * x: [N, Cin, H, W] → [N, Cout, (H - 1) s - 2p + k, …]. Matches torch.nn.ConvTranspose2d.
 * Stride 1 is a convolution padded by k − 1 − p with the kernel flipped and its channel axes
 * swapped. Stride s > 1 goes through `subPixel`.
 */
export function convTranspose2d(p: ConvTranspose2dParams, x: Array, { stride = 1, padding = 0 }: ConvOptions = {}): Array {
  checkNCHW(x, p.w.shape[0], "convTranspose2d");
  const k = p.w.shape[2];
  if (padding > k - 1) throw new Error(`convTranspose2d: padding ${padding} must be ≤ kernel − 1 = ${k - 1}`);
  if (stride > 1) return subPixel(p, x, stride, padding);
  const kernel = np.flip(p.w, [2, 3]).transpose([1, 0, 2, 3]); // [Cout, Cin, k, k]
  return convByOffsets(x, kernel, 1, k - 1 - padding).add(p.b.reshape([1, -1, 1, 1]));
}

/**
 * A stride-s transposed convolution as one stride-1 convolution with s²·Cout outputs, one group
 * per output phase, interleaved afterwards (the sub-pixel form, Shi et al. 2016). Output pixel
 * Y has U = Y + p = s·q + φ and receives x[q − t]·w[φ + s·t] for t = 0 .. T − 1, T = ⌈k/s⌉ (the
 * kernel zero-padded to T·s taps), so each phase is a T×T correlation of x with its sub-kernel
 * flipped. Inserting s − 1 zeros between input pixels and convolving with the whole kernel, as
 * before, did s² times the multiplies on mostly zeros: the MNIST tokenizer's decoder (64→32→1
 * channels, 4×4 stride 2, batch 64) took 866 ms per forward+backward that way, 130 ms this way.
 */
function subPixel(p: ConvTranspose2dParams, x: Array, s: number, pad: number): Array {
  const [n, cin, h, w] = x.shape;
  const [, cout, k] = p.w.shape;
  const t = Math.ceil(k / s);
  const ho = (h - 1) * s - 2 * pad + k;
  const wo = (w - 1) * s - 2 * pad + k;
  // q runs over [0, Q) so that s·Q covers U ∈ [p, p + Ho).
  const qh = Math.ceil((ho + pad) / s);
  const qw = Math.ceil((wo + pad) / s);
  // [Cin, Cout, T·s, T·s] → [Cin, Cout, T, s, T, s]; tap φ + s·t with t flipped → [s, s, Cout, Cin, T, T].
  const taps = np.pad(p.w, [[0, 0], [0, 0], [0, t * s - k], [0, t * s - k]]).reshape([cin, cout, t, s, t, s]);
  const kernel = np.flip(taps, [2, 4]).transpose([3, 5, 1, 0, 2, 4]).reshape([s * s * cout, cin, t, t]);
  // T − 1 zeros before x[0], so that output q reads x[q − T + 1 .. q]; enough after for q < Q.
  const padded = np.pad(x, [[0, 0], [0, 0], [t - 1, Math.max(0, qh - h)], [t - 1, Math.max(0, qw - w)]]);
  const phases = convByOffsets(padded, kernel, 1, 0).slice([], [], [0, qh], [0, qw]); // [N, s·s·Cout, Q, Q]
  const y = phases.reshape([n, s, s, cout, qh, qw]).transpose([0, 3, 4, 1, 5, 2]).reshape([n, cout, qh * s, qw * s]);
  return y.slice([], [], [pad, pad + ho], [pad, pad + wo]).add(p.b.reshape([1, -1, 1, 1]));
}
