import { np, type Array } from "../engine/index.ts";
import type { KeyStream } from "../engine/rng.ts";
import { fanIn, zeros } from "./init.ts";
import { fmt } from "./shapes.ts";

/**
 * 1-D convolutions for waveforms and frame sequences, channels last: x [B, T, C]. Audio runs
 * channels last so that every tap below is one matmul over the channel axis with no transposes
 * between layers; the weights keep PyTorch's layouts (Conv1d [Cout, Cin, k], ConvTranspose1d
 * [Cin, Cout, k]) so that checkpoints move to and from torch.nn unchanged.
 *
 * Both are sums of k matmuls, one per kernel tap, over views of the input (a pad, a reshape that
 * puts the stride phase on its own axis, contiguous slices): jax-js's own convolution is ~90×
 * slower than the same FLOPs as a matmul (nn/conv.ts), and no patch matrix is built.
 */
export type Conv1dParams = { w: Array; b: Array };
export type ConvTranspose1dParams = { w: Array; b: Array };
export type Conv1dOptions = { stride?: number; padding?: number; dilation?: number };
/** outputPadding: extra samples at the end, as torch's `output_padding` (< stride). */
export type ConvTranspose1dOptions = { stride?: number; padding?: number; outputPadding?: number };

export function initConv1d(keys: KeyStream, cin: number, cout: number, k: number, gain = Math.SQRT2): Conv1dParams {
  return { w: fanIn(keys, [cout, cin, k], cin * k, gain), b: zeros([cout]) };
}

export function initConvTranspose1d(keys: KeyStream, cin: number, cout: number, k: number, gain = Math.SQRT2): ConvTranspose1dParams {
  // fan-in of an output sample: each sees about k / stride taps of every input channel; the
  // caller's gain absorbs the stride (SoundStream and EnCodec use torch's default init).
  return { w: fanIn(keys, [cin, cout, k], cin * k, gain), b: zeros([cout]) };
}

function checkBTC(x: Array, c: number, what: string): void {
  if (x.ndim !== 3 || x.shape[2] !== c) throw new Error(`${what}: expected input [B, T, ${c}] (channels last), got ${fmt(x.shape)}`);
}

function checkPositive(n: number, what: string, min = 1): void {
  if (!Number.isInteger(n) || n < min) throw new Error(`${what} must be an integer ≥ ${min}, got ${n}`);
}

/** Output length of conv1d: ⌊(T + 2p − d(k − 1) − 1) / s⌋ + 1, as torch.nn.Conv1d. */
export const conv1dLength = (t: number, k: number, { stride = 1, padding = 0, dilation = 1 }: Conv1dOptions = {}) =>
  Math.floor((t + 2 * padding - dilation * (k - 1) - 1) / stride) + 1;

/**
 * x [B, T, Cin] → [B, To, Cout], To = conv1dLength(T): y[b, i] = Σ_j x_pad[b, s·i + d·j] · w[:, :, j]ᵀ + b,
 * torch.nn.Conv1d's arithmetic (zero padding `padding` on both sides). Consumes p and x.
 */
export function conv1d(p: Conv1dParams, x: Array, opts: Conv1dOptions = {}): Array {
  const { stride = 1, padding = 0, dilation = 1 } = opts;
  const [cout, cin, k] = p.w.shape as [number, number, number];
  checkBTC(x, cin, "conv1d");
  checkPositive(stride, "conv1d stride");
  checkPositive(dilation, "conv1d dilation");
  checkPositive(padding, "conv1d padding", 0);
  const [b, t] = x.shape as [number, number];
  const to = conv1dLength(t, k, opts);
  if (to < 1) {
    x.dispose();
    throw new Error(`conv1d: input of ${t} samples is too short for kernel ${k} (dilation ${dilation}, padding ${padding})`);
  }
  const reach = Math.floor((dilation * (k - 1)) / stride); // stride-blocks the kernel spans past its origin
  const tq = Math.max(Math.ceil((t + 2 * padding) / stride), reach + to);
  const padded = np.pad(x, [[0, 0], [padding, tq * stride - t - padding], [0, 0]]);
  const phases = padded.reshape([b, tq, stride, cin]);
  const view = (j: number) => {
    const at = dilation * j;
    const a = Math.floor(at / stride);
    return phases.ref.slice([], [a, a + to], at % stride, []); // [B, To, Cin]
  };
  // k matmuls over the taps, not one over an im2col of [B, To, k·Cin]: the concatenation cost as
  // much as it saved (measured on the codec's layers, Cin 1…128).
  const taps = p.w.transpose([2, 1, 0]); // [k, Cin, Cout]
  let y: Array | undefined;
  for (let j = 0; j < k; j++) {
    const term = np.matmul(view(j), taps.ref.slice(j)); // [B, To, Cout]
    y = y === undefined ? term : y.add(term);
  }
  taps.dispose();
  phases.dispose();
  return y!.add(p.b.reshape([1, 1, cout]));
}

/**
 * x [B, T, Cin] → [B, (T − 1)s − 2p + k + outputPadding, Cout], torch.nn.ConvTranspose1d: input
 * sample i adds x[i]·w[:, :, j] to output s·i + j − p. Tap j = s·a + r lands in stride phase r, a blocks on, so
 * each phase is a sum of shifted matmuls and the phases interleave by a reshape: no zeros are
 * inserted between samples (which would multiply the work by s). Consumes p and x.
 */
export function convTranspose1d(p: ConvTranspose1dParams, x: Array, { stride = 1, padding = 0, outputPadding = 0 }: ConvTranspose1dOptions = {}): Array {
  const [cin, cout, k] = p.w.shape as [number, number, number];
  checkBTC(x, cin, "convTranspose1d");
  checkPositive(stride, "convTranspose1d stride");
  checkPositive(padding, "convTranspose1d padding", 0);
  checkPositive(outputPadding, "convTranspose1d outputPadding", 0);
  if (outputPadding >= stride) throw new Error(`convTranspose1d: outputPadding must be smaller than the stride (${stride}), got ${outputPadding}`);
  const [b, t] = x.shape as [number, number];
  const full = (t - 1) * stride + k; // before the padding is cut off
  const end = full - padding + outputPadding;
  if (end <= padding) {
    x.dispose();
    throw new Error(`convTranspose1d: padding ${padding} leaves nothing of ${full} output samples`);
  }
  const blocks = Math.ceil(Math.max(full, end) / stride); // output blocks of `stride` samples
  const taps = p.w.transpose([2, 0, 1]); // [k, Cin, Cout]
  const phases: Array[] = [];
  for (let r = 0; r < stride; r++) {
    let phase: Array | undefined;
    for (let j = r; j < k; j += stride) {
      const a = (j - r) / stride;
      const term = np.pad(np.matmul(x.ref, taps.ref.slice(j)), [[0, 0], [a, blocks - t - a], [0, 0]]); // [B, blocks, Cout]
      phase = phase === undefined ? term : phase.add(term);
    }
    phases.push(phase ?? np.zeros([b, blocks, cout], { dtype: x.dtype }));
  }
  x.dispose();
  taps.dispose();
  const y = (stride === 1 ? phases[0]! : np.stack(phases, 2).reshape([b, blocks * stride, cout])).slice([], [padding, end], []);
  return y.add(p.b.reshape([1, 1, cout]));
}
