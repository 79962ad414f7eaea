/**
 * Short-time Fourier transform and its inverse on the engine, differentiable (the codec's
 * multi-resolution STFT loss trains through it), matching torch.stft / torch.istft with
 * `center=True, pad_mode="reflect"`, a periodic Hann window of `nFft` samples, onesided output,
 * no normalization (reference/audio_features.py is the oracle).
 *
 *   stft:  x [B, N] → X [B, F, K]: F = 1 + ⌊N / hop⌋ frames, K = nFft/2 + 1 bins
 *          (torch returns [B, K, F]: frames here come first, as a sequence of tokens would)
 *   istft: X [B, F, K] → x [B, length], by weighted overlap-add: Σ_f w·frame_f / Σ_f w²
 *
 * Frames are cut without a gather (which jax-js cannot differentiate under jit): with nFft = k·hop,
 * the padded signal is a [M, hop] grid of blocks, M = F − 1 + k, and frame f is blocks f .. f+k−1
 * side by side, so the frames are k shifted slices of the grid concatenated. The inverse
 * overlap-adds the same way. So hop must divide nFft (hop = nFft/4, the usual choice, does).
 */
import { fromHost, np, type Array } from "../../engine/index.ts";
import { fmt } from "../../nn/shapes.ts";

export type StftOptions = { readonly nFft: number; readonly hop: number };
export type Complex = { real: Array; imag: Array };

/** The periodic Hann window w[n] = ½ − ½·cos(2πn/N) (torch.hann_window's default), in float64 then float32. */
export function hannWindow(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
}

function checkOptions({ nFft, hop }: StftOptions, what: string): void {
  if (!Number.isInteger(nFft) || nFft < 2 || nFft % 2 !== 0) throw new Error(`${what}: nFft must be an even integer ≥ 2, got ${nFft}`);
  if (!Number.isInteger(hop) || hop < 1 || nFft % hop !== 0) throw new Error(`${what}: hop must be a positive divisor of nFft (${nFft}), got ${hop}`);
}

/** Frames of a signal of N samples: 1 + ⌊N / hop⌋. */
export const stftFrames = (n: number, hop: number): number => 1 + Math.floor(n / hop);

/** x [B, N] → X [B, F, K] (see the file comment). Consumes x. */
export function stft(x: Array, opts: StftOptions): Complex {
  checkOptions(opts, "stft");
  const { nFft, hop } = opts;
  const p = nFft / 2;
  if (x.ndim !== 2 || x.shape[1]! <= p) {
    const shape = x.shape;
    x.dispose();
    throw new Error(`stft: expected x [B, N] with N > nFft/2 = ${p} (reflect padding), got ${fmt(shape)}`);
  }
  const [b, n] = x.shape as [number, number];
  // reflect padding: x[p] … x[1] | x | x[N−2] … x[N−1−p]
  const left = np.flip(x.ref.slice([], [1, p + 1]), [1]);
  const right = np.flip(x.ref.slice([], [n - p - 1, n - 1]), [1]);
  const padded = np.concatenate([left, x, right], 1); // [B, N + nFft]
  const f = stftFrames(n, hop);
  const k = nFft / hop;
  const m = f - 1 + k;
  const blocks = padded.slice([], [0, m * hop]).reshape([b, m, hop]);
  const frames = np.concatenate(globalThis.Array.from({ length: k }, (_, j) => blocks.ref.slice([], [j, j + f])), -1); // [B, F, nFft]
  blocks.dispose();
  const [cos, sin] = windowedDft(nFft);
  const k2 = nFft / 2 + 1;
  return { real: np.matmul(frames.ref, fromHost(cos, [nFft, k2]).astype(frames.dtype)), imag: np.matmul(frames, fromHost(sin, [nFft, k2]).astype(frames.dtype)) };
}

const dftCache = new Map<number, [Float32Array, Float32Array]>();

/**
 * The onesided DFT of a Hann-windowed frame as two matrices [nFft, nFft/2 + 1]:
 * real = Σ_n w[n]·x[n]·cos(2πnk/N), imag = −Σ_n w[n]·x[n]·sin(2πnk/N), built in float64.
 * The STFT multiplies by them rather than calling jax-js's `np.fft.rfft`: a codec's loss takes
 * STFTs of every batch at four sizes, and there the matmul (on the native GEMM) ran forward and
 * backward 2.8 s → 0.5 s (16 × 4800 samples, nFft 128…1024), for N·K multiply-adds per frame
 * instead of N·log N.
 */
function windowedDft(nFft: number): [Float32Array, Float32Array] {
  let m = dftCache.get(nFft);
  if (!m) {
    const k2 = nFft / 2 + 1;
    const w = hannWindow(nFft);
    const cos = new Float32Array(nFft * k2);
    const sin = new Float32Array(nFft * k2);
    for (let n = 0; n < nFft; n++) {
      for (let k = 0; k < k2; k++) {
        const a = (2 * Math.PI * ((n * k) % nFft)) / nFft; // reduced mod N: exact angles for large n·k
        cos[n * k2 + k] = w[n]! * Math.cos(a);
        sin[n * k2 + k] = -w[n]! * Math.sin(a);
      }
    }
    m = [cos, sin];
    dftCache.set(nFft, m);
  }
  return m;
}

/** X [B, F, K] → x [B, length] (torch.istft with `length`). Consumes X. */
export function istft(spec: Complex, opts: StftOptions & { readonly length: number }): Array {
  checkOptions(opts, "istft");
  const { nFft, hop, length } = opts;
  const [b, f, bins] = spec.real.shape as [number, number, number];
  if (spec.real.ndim !== 3 || bins !== nFft / 2 + 1) throw new Error(`istft: expected X [B, F, nFft/2 + 1 = ${nFft / 2 + 1}], got ${fmt(spec.real.shape)}`);
  if (!Number.isInteger(length) || length < 1) throw new Error(`istft: length must be a positive integer, got ${length}`);
  const window = hannWindow(nFft);
  const raw = np.fft.irfft(spec, -1);
  const dtype = raw.dtype;
  const frames = raw.mul(fromHost(window, [nFft]).astype(dtype)); // [B, F, nFft]
  const k = nFft / hop;
  const m = f - 1 + k;
  const parts = frames.reshape([b, f, k, hop]);
  let sum: Array | undefined;
  for (let j = 0; j < k; j++) {
    const part = np.pad(parts.ref.slice([], [], j), [[0, 0], [j, m - f - j], [0, 0]]); // frame f's j-th block lands on block f + j
    sum = sum ? sum.add(part) : part;
  }
  parts.dispose();
  // Σ_f w²[t − f·hop], on the host: the same for every row; positions it does not reach stay 0.
  const weight = new Float64Array(m * hop);
  for (let fi = 0; fi < f; fi++) for (let t = 0; t < nFft; t++) weight[fi * hop + t]! += window[t]! * window[t]!;
  const inverse = Float32Array.from(weight, (w) => (w > 1e-11 ? 1 / w : 0));
  const y = sum!.reshape([b, m * hop]).mul(fromHost(inverse, [m * hop]).astype(dtype));
  const p = nFft / 2;
  const have = m * hop - p;
  const trimmed = y.slice([], [p, p + Math.min(length, have)]);
  return have >= length ? trimmed : np.pad(trimmed, [[0, 0], [0, length - have]]);
}
