/**
 * The continuous-input captioner as pure functions of (params, inputs), LLaVA's architecture
 * (Liu et al. 2023, §4.1, Fig. 1) at toy scale:
 *
 *   images [B, C, H, W] → encoder → features [B, N, Din]        (CNN, ViT, or raw patches: Fuyu)
 *                       → projector → embeddings [B, S, D]      (linear, MLP: S = N; resampler: S = Q)
 *   ids [B, L] = <bos> <img>×S <boc>? caption <eos>             (the layout compiler's placeholder)
 *                       → embedInputs (embeddings at the S slots) → hidden → lmHead → logits [B, L, V]
 *
 * The loss is next-token cross-entropy on the caption and its `<eos>` only (LLaVA eq. 3: the
 * answer's tokens; the image slots hold no token to predict). Parameter paths are
 * `encoder.*`, `projector.*` and `backbone.*`, the names the stages' freeze patterns use.
 */
import { fromHost, type Array } from "../engine/index.ts";
import { KeyStream } from "../engine/rng.ts";
import { imageSize, type ImageSet } from "../data/types.ts";
import { InputError } from "../io/errors.ts";
import { initProjector, projectFeatures, type ProjectorParams } from "../backbone/adapters/projector.ts";
import { initResampler, resample, type ResamplerConfig, type ResamplerParams } from "../backbone/adapters/resampler.ts";
import { batchSequences } from "../backbone/batch.ts";
import { causalMask } from "../backbone/masks.ts";
import { compileSequence, type CompiledSequence } from "../backbone/sequence/compile.ts";
import type { SequenceDocument, TextSegment } from "../backbone/sequence/document.ts";
import { JointVocab } from "../backbone/sequence/vocab.ts";
import { embedInputs, hidden, initTransformer, lmHead, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";
import { weightedCrossEntropy } from "../train/losses.ts";
import { cnnEncode, initCNNEncoder, type CNNEncoderConfig, type CNNEncoderParams } from "../tokenizers/continuous/cnn.ts";
import { patchify } from "../tokenizers/continuous/patches.ts";
import { initViT, vitEncode, type ViTConfig, type ViTParams } from "../tokenizers/continuous/vit.ts";
import type { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { continuousShapes, type ContinuousCaptionConfig } from "./continuous-config.ts";

/** `<img>` is the placeholder token its S slots repeat (LLaVA's `<image>`). */
export const CONTINUOUS_SPECIALS = ["<bos>", "<boc>", "<eos>", "<img>"] as const;
export const IMAGE_PLACEHOLDER = "<img>";

/** Text ids, then the four specials; no discrete image codes. */
export function continuousVocab(text: TextTokenizer): JointVocab {
  const pad = text.tokenToId("<pad>");
  if (pad === undefined) throw new Error("continuousVocab: the text tokenizer has no <pad> token");
  return JointVocab.build({ text: { size: text.vocabSize, pad }, specials: CONTINUOUS_SPECIALS, modalities: [], placeholders: [IMAGE_PLACEHOLDER] });
}

/** The encoder-free route has no parameters: `{}`. */
export type ContinuousEncoderParams = CNNEncoderParams | ViTParams | Record<string, never>;
export type ContinuousParams = { encoder: ContinuousEncoderParams; projector: ProjectorParams | ResamplerParams; backbone: TransformerParams };

const cnnConfig = (cfg: ContinuousCaptionConfig): CNNEncoderConfig => ({ ...cfg.cnn, ...cfg.image });
const vitConfig = (cfg: ContinuousCaptionConfig): ViTConfig => ({ ...cfg.vit, ...cfg.image });
const resamplerConfig = (cfg: ContinuousCaptionConfig): ResamplerConfig => ({ ...cfg.resampler, dim: cfg.backbone.dim, featureDim: continuousShapes(cfg).featureDim });

export const backboneConfig = (cfg: ContinuousCaptionConfig, vocab: JointVocab): TransformerConfig => ({ ...cfg.backbone, vocabSize: vocab.size });

/** Fresh parameters of every part, from `cfg.seed`. */
export function initContinuousParams(cfg: ContinuousCaptionConfig, vocab: JointVocab): ContinuousParams {
  const { featureDim } = continuousShapes(cfg);
  const keys = new KeyStream(cfg.seed + 11);
  try {
    const encoder: ContinuousEncoderParams = cfg.encoder === "cnn" ? initCNNEncoder(keys, cnnConfig(cfg)) : cfg.encoder === "vit" ? initViT(keys, vitConfig(cfg)) : {};
    const projector = cfg.projector === "resampler" ? initResampler(keys, resamplerConfig(cfg)) : initProjector(keys, { kind: cfg.projector, inputDim: featureDim, dim: cfg.backbone.dim });
    return { encoder, projector, backbone: initTransformer(keys, backboneConfig(cfg, vocab)) };
  } finally {
    keys.dispose();
  }
}

/** images: [B, C, H, W] → embeddings [B, S, D] for the placeholder's slots. Consumes p and images. */
export function embedImages(p: Pick<ContinuousParams, "encoder" | "projector">, images: Array, cfg: ContinuousCaptionConfig): Array {
  const features =
    cfg.encoder === "cnn" ? cnnEncode(p.encoder as CNNEncoderParams, images, cnnConfig(cfg)) : cfg.encoder === "vit" ? vitEncode(p.encoder as ViTParams, images, vitConfig(cfg)) : patchify(images, cfg.patch); // [B, N, Din]
  return cfg.projector === "resampler" ? resample(p.projector as ResamplerParams, features, resamplerConfig(cfg)) : projectFeatures(p.projector as ProjectorParams, features);
}

/**
 * Image embeddings [B, S, D] placed at `slots` of ids [B, L] → logits [B, L, V], causal
 * attention (the caption reads every slot; the slots read each other left to right, as LLaVA's
 * decoder does). Consumes backbone, embeddings and ids.
 */
export function captionLogits(backbone: TransformerParams, embeddings: Array, ids: Array, slots: readonly number[], cfg: TransformerConfig): Array {
  const { tok, head, ...body } = backbone;
  const x = embedInputs(tok, { ids, embeddings, slots });
  return lmHead(head, hidden(body, x, causalMask(ids.shape[1]), cfg));
}

/** images [B, C, H, W]; inputs, targets, weights [B, L] (backbone/batch.ts, the loss on the caption and `<eos>`). */
export type ContinuousBatch = { images: Array; inputs: Array; targets: Array; weights: Array };

/** Weighted next-token cross-entropy of the captions. Consumes p and batch. */
export function continuousCaptionLoss(p: ContinuousParams, b: ContinuousBatch, cfg: ContinuousCaptionConfig, layout: CaptionLayout, bcfg: TransformerConfig): [Array, Record<string, Array>] {
  const logits = captionLogits(p.backbone, embedImages(p, b.images, cfg), b.inputs, layout.slots, bcfg);
  return [weightedCrossEntropy(logits, b.targets, b.weights), {}];
}

/**
 * Where things sit in every sequence of a config: the slots' indices, the prompt length P
 * (`<bos> <img>×S <boc>?`), the most caption tokens M (the longest caption + `<eos>`) and the
 * training / decoding length L = P + M − 1 (the last token is only ever a target).
 */
export type CaptionLayout = { readonly slots: readonly number[]; readonly prompt: number; readonly maxTokens: number; readonly length: number; readonly boc: boolean };

/**
 * `<bos> <img>×S <boc>? caption <eos>`, LLaVA's layout (backbone/sequence/presets.ts,
 * `llavaDocument`) with an optional begin-of-caption special; loss 1 on the caption and `<eos>`.
 * `caption` absent: the captioning prompt with M positions to generate.
 */
export function captionDocument(caption: readonly number[] | undefined, slots: number, boc: boolean, maxTokens: number): SequenceDocument {
  const reply: TextSegment = caption === undefined ? { kind: "text", maxLength: maxTokens, end: "<eos>" } : { kind: "text", ids: caption, end: "<eos>", loss: 1 };
  return {
    segments: [{ kind: "special", name: "<bos>" }, { kind: "placeholder", name: "image", slots, token: IMAGE_PLACEHOLDER }, ...(boc ? [{ kind: "special" as const, name: "<boc>" }] : []), reply],
  };
}

/** The layout of `cfg` for captions of up to `longestCaption` tokens; throws if L exceeds the backbone's context. */
export function captionLayout(vocab: JointVocab, cfg: ContinuousCaptionConfig, longestCaption: number): CaptionLayout {
  const { slots } = continuousShapes(cfg);
  const maxTokens = longestCaption + 1;
  const prompt = compileSequence(vocab, captionDocument(undefined, slots, cfg.boc, maxTokens));
  const ph = prompt.placeholders[0]!;
  const length = prompt.promptLength + maxTokens - 1;
  if (length > cfg.backbone.contextLength) {
    throw new InputError(`continuous config: backbone.contextLength ${cfg.backbone.contextLength} is too short for sequences of ${length} inputs (<bos>, ${slots} image slots${cfg.boc ? ", <boc>" : ""} and up to ${maxTokens} caption tokens); give at least ${length}`);
  }
  return { slots: globalThis.Array.from({ length: ph.slots }, (_, k) => ph.start + k), prompt: prompt.promptLength, maxTokens, length, boc: cfg.boc };
}

/** Rows `indices` of `set` as device images [K, C, H, W]. */
export function imagesAt(set: ImageSet, indices: ArrayLike<number>): Array {
  const px = imageSize(set);
  const out = new Float32Array(indices.length * px);
  for (let r = 0; r < indices.length; r++) out.set(set.images.subarray(indices[r]! * px, (indices[r]! + 1) * px), r * px);
  return fromHost(out, [indices.length, set.channels ?? 1, set.height, set.width]);
}

/** A training batch: the images at `indices` with their captions' text ids. */
export function continuousBatch(vocab: JointVocab, layout: CaptionLayout, set: ImageSet, indices: readonly number[], captions: readonly (readonly number[])[]): ContinuousBatch {
  const seqs: CompiledSequence[] = captions.map((c) => compileSequence(vocab, captionDocument(c, layout.slots.length, layout.boc, layout.maxTokens)));
  const { inputs, targets, weights } = batchSequences(seqs, { length: layout.length, padId: vocab.padId });
  return { images: imagesAt(set, indices), inputs, targets, weights };
}
