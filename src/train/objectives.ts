/**
 * The four ways a tokenizer learns (survey §2.1), as terms of the auto-encoder's training loss:
 * - "autoencode": reconstruct the image from its codes (the VQ-VAE; no extra term);
 * - "masked": reconstruct the whole image from an input with square patches blanked out
 *   (denoising / masked modelling, as MAE or BEiT's tokenizer objectives);
 * - "supervised": also predict the label from the pooled token features (a linear head);
 * - "contrastive": also align the pooled token features with the caption's (CLIP-style InfoNCE
 *   in both directions, a bag-of-words caption encoder trained alongside).
 * The extra parameters (`aux`) train with the tokenizer and are dropped from it afterwards.
 */
import { nn, np, type Array } from "../engine/index.ts";
import type { KeyStream } from "../engine/rng.ts";
import { mulberry32 } from "../data/shuffle.ts";
import { embed, initEmbedding, oneHot, type EmbeddingParams } from "../nn/embedding.ts";
import { initLinear, linear, type LinearParams } from "../nn/linear.ts";
import { InputError } from "../io/errors.ts";

export type TokenizerObjective =
  | { readonly kind: "autoencode" }
  /** Blank `ratio` of the image's `patch`×`patch`-pixel squares (to 0) in the input; the target stays whole. */
  | { readonly kind: "masked"; readonly ratio: number; readonly patch: number }
  /** + weight × cross-entropy of a linear head on the mean of the codes over the grid. */
  | { readonly kind: "supervised"; readonly weight: number }
  /** + weight × InfoNCE between projected pooled codes and caption features, at `temperature`. */
  | { readonly kind: "contrastive"; readonly weight: number; readonly temperature: number; readonly dim: number };

export const OBJECTIVES = ["autoencode", "masked", "supervised", "contrastive"] as const;
export const DEFAULT_OBJECTIVES: Readonly<Record<(typeof OBJECTIVES)[number], TokenizerObjective>> = {
  autoencode: { kind: "autoencode" },
  masked: { kind: "masked", ratio: 0.5, patch: 4 },
  supervised: { kind: "supervised", weight: 0.1 },
  contrastive: { kind: "contrastive", weight: 0.1, temperature: 0.1, dim: 32 },
};

export function checkObjective(o: unknown, where = "objective"): asserts o is TokenizerObjective {
  const x = o as Record<string, unknown> | null;
  if (typeof x !== "object" || x === null || !OBJECTIVES.includes(x.kind as never)) throw new InputError(`${where}.kind: expected one of ${OBJECTIVES.join(", ")}, got ${JSON.stringify(x?.kind)}`, { field: "kind" });
  const num = (k: string, lo: number, hi: number, int = false) => {
    const v = x[k];
    if (typeof v !== "number" || !(v > lo && v < hi) || (int && !Number.isInteger(v))) throw new InputError(`${where}.${k}: expected ${int ? "an integer" : "a number"} in (${lo}, ${hi}), got ${JSON.stringify(v)}`, { field: k, value: v });
  };
  if (x.kind === "masked") (num("ratio", 0, 1), num("patch", 0, 4097, true));
  if (x.kind === "supervised") num("weight", 0, 1000);
  if (x.kind === "contrastive") (num("weight", 0, 1000), num("temperature", 0, 100), num("dim", 0, 4097, true));
}

export type ObjectiveParams = { head?: LinearParams; words?: EmbeddingParams; text?: LinearParams; image?: LinearParams };

/** What the objective reads besides the images: labels (supervised) or captions (contrastive). */
export type ObjectiveData = { readonly classes: number; readonly labels: Int32Array; readonly captions?: readonly string[] };

/** Word ids of captions: index 0 pads; words in sorted order from 1. */
export class CaptionWords {
  readonly words: readonly string[];
  readonly length: number;
  constructor(captions: readonly string[]) {
    this.words = [...new Set(captions.flatMap((c) => c.split(/\s+/).filter(Boolean)))].sort();
    this.length = Math.max(1, ...captions.map((c) => c.split(/\s+/).filter(Boolean).length));
  }
  get vocabSize(): number {
    return this.words.length + 1;
  }
  /** captions → ids [N·L] (0-padded). */
  ids(captions: readonly string[]): Int32Array {
    const index = new Map(this.words.map((w, i) => [w, i + 1]));
    const out = new Int32Array(captions.length * this.length);
    captions.forEach((c, n) => c.split(/\s+/).filter(Boolean).forEach((w, j) => (out[n * this.length + j] = index.get(w) ?? 0)));
    return out;
  }
}

export function initObjective(keys: KeyStream, o: TokenizerObjective, latentDim: number, data: ObjectiveData, words?: CaptionWords): ObjectiveParams {
  if (o.kind === "supervised") return { head: initLinear(keys, latentDim, data.classes) };
  if (o.kind === "contrastive") {
    if (!words) throw new Error("initObjective: the contrastive objective needs the captions' words");
    return { words: initEmbedding(keys, words.vocabSize, o.dim, 0.1), text: initLinear(keys, o.dim, o.dim), image: initLinear(keys, latentDim, o.dim) };
  }
  return {};
}

/**
 * The masked objective's input: `images` [B, C, H, W] (host, flat) with `ratio` of the patch
 * squares set to 0, drawn from (seed, step) so that a resumed run draws the same masks.
 */
export function maskPatches(images: Float32Array, shape: readonly [number, number, number, number], o: Extract<TokenizerObjective, { kind: "masked" }>, seed: number, step: number): Float32Array {
  const [b, c, h, w] = shape;
  const rng = mulberry32((seed * 1_000_003 + step) >>> 0);
  const out = images.slice();
  const [ph, pw] = [Math.ceil(h / o.patch), Math.ceil(w / o.patch)];
  for (let n = 0; n < b; n++) {
    for (let py = 0; py < ph; py++) {
      for (let px = 0; px < pw; px++) {
        if (rng() >= o.ratio) continue;
        for (let ch = 0; ch < c; ch++) {
          for (let y = py * o.patch; y < Math.min(h, (py + 1) * o.patch); y++) out.fill(0, ((n * c + ch) * h + y) * w + px * o.patch, ((n * c + ch) * h + y) * w + Math.min(w, (px + 1) * o.patch));
        }
      }
    }
  }
  return out;
}

const normalize = (x: Array) => x.ref.div(np.sqrt(np.square(x).sum(-1, { keepdims: true }).add(1e-12)));

/** Cross-entropy of logits [B, K] against integer targets [B]. */
const crossEntropy = (logits: Array, targets: Array, k: number) => nn.logSoftmax(logits, -1).mul(oneHot(targets, k, np.float32)).sum(-1).mean().mul(-1);

/**
 * The objective's extra loss term on the codes [B, h, w, D] (consumed) with the batch's labels
 * [B] or caption ids [B, L]; returns [term, metrics]. Consumes aux.
 */
export function objectiveTerm(o: TokenizerObjective, aux: ObjectiveParams, codes: Array, batch: { labels?: Array; caption?: Array }): [Array, Record<string, Array>] {
  const pooled = codes.mean([1, 2]); // [B, D]
  if (o.kind === "supervised") {
    const logits = linear(aux.head!, pooled);
    const k = logits.shape[1]!;
    const ce = crossEntropy(logits.ref, batch.labels!.ref, k);
    const acc = np.argmax(logits, -1).equal(batch.labels!).astype(np.float32).mean();
    return [ce.ref.mul(o.weight), { supervised: ce, train_accuracy: acc }];
  }
  if (o.kind === "contrastive") {
    const ids = batch.caption!;
    const mask = ids.ref.greater(0).astype(np.float32); // [B, L]
    const words = embed(aux.words!, ids).mul(mask.ref.reshape([...mask.shape, 1])).sum(1).div(mask.sum(1, { keepdims: true }).add(1e-6)); // [B, E]
    const text = normalize(linear(aux.text!, words));
    const image = normalize(linear(aux.image!, pooled));
    const logits = np.matmul(image, text.transpose()).div(o.temperature); // [B, B]
    const b = logits.shape[0]!;
    const targets = np.arange(b).astype(np.int32);
    const nce = crossEntropy(logits.ref, targets.ref, b).add(crossEntropy(logits.transpose(), targets, b)).mul(0.5);
    return [nce.ref.mul(o.weight), { contrastive: nce }];
  }
  pooled.dispose();
  return [np.zeros([]), {}];
}
