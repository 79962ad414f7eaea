/**
 * Next-scale prediction, VAR (Tian et al. 2024, "Visual Autoregressive Modeling: Scalable Image
 * Generation via Next-Scale Prediction", §3.2): the image is the multi-scale quantizer's token
 * maps r_1 … r_S (tokenizers/quantizers/multiscale.ts, ids [Σ s²], coarsest first), and one step
 * predicts a whole map. Sequence (P = prompt length, the prompt ending with the image's begin
 * marker, which plays VAR's start token and predicts the 1×1 map r_1):
 *
 *   index  0 … P−1          P−1 + offs[k] + j   (k = 1 … S−1, j < s_k²)
 *   input  prompt            up(r_{k−1})[j]: the coarser map, nearest-upsampled to s_k × s_k
 *   target (P−1: r_1)        r_k[j]
 *
 * with offs = scaleOffsets(scales). The mask is block-causal (masks.ts): the prompt causal, each
 * scale's block sees itself and everything before it, so a scale is predicted from the prompt and
 * every coarser map, never from its own tokens. T = P − 1 + Σ s².
 *
 * VAR feeds the coarser maps as continuous features (the VAE latent f̂ of the scales so far,
 * interpolated to the next size, through a linear layer); here they are the coarser token ids
 * themselves, so the same joint vocabulary and the unchanged backbone serve every order. The
 * model sees the same information: the tokens of every coarser scale.
 */
import { scaleOffsets } from "../../tokenizers/quantizers/multiscale.ts";
import { blockCausalMaskHost } from "../masks.ts";
import type { OrderInput, OrderRow } from "./rows.ts";

/**
 * Throws, naming the scales and what is allowed, unless they are strictly increasing positive
 * integers starting at 1 whose maps hold exactly `tokens` ids (an image's Σ s² multi-scale ids).
 */
export function checkScales(scales: readonly number[], tokens: number, where = "next-scale"): void {
  const list = `[${scales.join(", ")}]`;
  if (!Array.isArray(scales) || scales.length === 0 || !scales.every((s) => Number.isInteger(s) && s > 0)) throw new Error(`${where}: scales ${JSON.stringify(scales)} must be a non-empty list of positive integers`);
  if (scales[0] !== 1) throw new Error(`${where}: scales ${list} must start at 1 (the begin marker predicts the 1×1 map, as VAR's start token)`);
  for (let i = 1; i < scales.length; i++) if (scales[i]! <= scales[i - 1]!) throw new Error(`${where}: scales ${list} must be strictly increasing`);
  const total = scaleOffsets(scales).at(-1)!;
  if (total !== tokens) throw new Error(`${where}: scales ${list} hold ${total} tokens (Σ s²), but an image has ${tokens}: use the image tokenizer's multi-scale quantizer scales`);
}

/** Nearest-neighbour resampling of an s×s map to t×t (torch's mode "nearest": source ⌊i·s/t⌋). */
export function upsampleNearest(map: ArrayLike<number>, s: number, t: number): Int32Array {
  const out = new Int32Array(t * t);
  for (let i = 0; i < t; i++) {
    const si = Math.floor((i * s) / t);
    for (let j = 0; j < t; j++) out[i * t + j] = map[si * s + Math.floor((j * s) / t)]!;
  }
  return out;
}

/** The attention blocks of the first `upTo` scales' queries: the P prompt positions one each (the last is scale 1's), then s_k² per scale. */
export function nextScaleBlocks(promptLength: number, scales: readonly number[], upTo = scales.length): number[] {
  return [...new Array<number>(promptLength).fill(1), ...scales.slice(1, upTo).map((s) => s * s)];
}

/** Where scale k's s_k² predictions sit: sequence indices [start, start + count). */
export function scaleQuery(promptLength: number, scales: readonly number[], k: number): { start: number; count: number } {
  return { start: promptLength - 1 + scaleOffsets(scales)[k]!, count: scales[k]! ** 2 };
}

/**
 * prompt: joint ids [P]; image: joint ids [Σ s²] (−1 = not yet generated) → the input of the
 * first `upTo` scales' queries: T = P − 1 + Σ_{k<upTo} s_k² positions, which need maps
 * r_1 … r_{upTo−1} (error naming the scale otherwise).
 */
export function nextScaleInput(prompt: readonly number[], image: ArrayLike<number>, scales: readonly number[], upTo = scales.length): OrderInput {
  const p = prompt.length;
  const offs = scaleOffsets(scales);
  if (!Number.isInteger(upTo) || upTo < 1 || upTo > scales.length) throw new Error(`nextScaleInput: upTo ${upTo} must be in [1, ${scales.length}]`);
  const inputs = new Int32Array(p - 1 + offs[upTo]!);
  inputs.set(prompt);
  for (let k = 1; k < upTo; k++) {
    const coarse = Array.prototype.slice.call(image, offs[k - 1]!, offs[k]!) as number[];
    if (coarse.some((id) => id < 0)) throw new Error(`nextScaleInput: scale ${k} (${scales[k - 1]}×${scales[k - 1]}) has tokens not yet generated, but scale ${k + 1}'s input needs it`);
    inputs.set(upsampleNearest(coarse, scales[k - 1]!, scales[k]!), p - 1 + offs[k]!);
  }
  return { inputs, mask: blockCausalMaskHost(nextScaleBlocks(p, scales, upTo)) };
}

/** One VAR training sequence: every scale at once (teacher forcing), `loss` shared by the Σ s² image tokens. */
export function nextScaleRow(prompt: readonly number[], image: ArrayLike<number>, scales: readonly number[], loss = 1): OrderRow {
  checkScales(scales, image.length, "nextScaleRow");
  const input = nextScaleInput(prompt, image, scales);
  const p = prompt.length;
  const targets = Int32Array.from(input.inputs);
  const weights = new Float32Array(input.inputs.length);
  for (let j = 0; j < image.length; j++) {
    targets[p - 1 + j] = image[j]!;
    weights[p - 1 + j] = loss / image.length;
  }
  return { ...input, targets, weights };
}
