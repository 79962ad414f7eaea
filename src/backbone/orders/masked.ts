/**
 * MaskGIT's input (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer", §3.1):
 * the prompt (ending with the image's begin marker), then the N image tokens with the masked ones
 * replaced by a `<mask>` token of the joint vocabulary. The prompt is causal; the image block is
 * bidirectional (every image position sees the whole prompt and every image position), so one
 * pass predicts every masked token from all the revealed ones. Targets sit at the same index as
 * their inputs (no shift): position P + j predicts image token j.
 */
import type { Rng } from "../../data/shuffle.ts";
import { blockCausalMaskHost } from "../masks.ts";
import type { OrderInput, OrderRow } from "./rows.ts";

/** The `<mask>` special that stands for an image token still to be generated. */
export const MASK_TOKEN = "<mask>";

/**
 * prompt: joint ids [P]; image: joint ids [N], −1 = masked → inputs [P + N], the mask causal over
 * the prompt and bidirectional over the image (one block of N, `blockCausalMaskHost`).
 */
export function maskedInput(prompt: readonly number[], image: ArrayLike<number>, maskId: number): OrderInput {
  const p = prompt.length;
  const n = image.length;
  const inputs = new Int32Array(p + n);
  inputs.set(prompt);
  for (let j = 0; j < n; j++) inputs[p + j] = image[j]! < 0 ? maskId : image[j]!;
  return { inputs, mask: blockCausalMaskHost([...new Array<number>(p).fill(1), n]) };
}

/**
 * MaskGIT's training mask (§3.2): r ~ U(0, 1), ⌈γ(r)·N⌉ positions chosen uniformly at random
 * (γ = cos(π r / 2), the cosine schedule of §3.3, so the ratios training sees are those
 * decoding passes through), at least one. Returns a 0/1 flag per image position.
 */
export function drawMaskedPositions(n: number, rng: Rng): Uint8Array {
  const count = Math.max(1, Math.ceil(Math.cos((Math.PI / 2) * rng()) * n));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const masked = new Uint8Array(n);
  for (let k = 0; k < Math.min(count, n); k++) masked[order[k]!] = 1;
  return masked;
}

/**
 * One MaskGIT training sequence: image (joint ids [N]) with `masked` positions (0/1 [N]) hidden;
 * cross-entropy on the masked positions only, `loss` shared equally among them (a per-sequence
 * mean, as the layout compiler weights a block).
 */
export function maskedRow(prompt: readonly number[], image: ArrayLike<number>, masked: ArrayLike<number>, maskId: number, loss = 1): OrderRow {
  const n = image.length;
  if (masked.length !== n) throw new Error(`maskedRow: ${masked.length} mask flags for ${n} image tokens`);
  const hidden = Array.from({ length: n }, (_, j) => (masked[j] ? -1 : image[j]!));
  const input = maskedInput(prompt, hidden, maskId);
  const p = prompt.length;
  const targets = Int32Array.from(input.inputs);
  const weights = new Float32Array(p + n);
  let count = 0;
  for (let j = 0; j < n; j++) if (masked[j]) count++;
  for (let j = 0; j < n; j++) {
    targets[p + j] = image[j]!;
    if (masked[j]) weights[p + j] = loss / count;
  }
  return { ...input, targets, weights };
}
