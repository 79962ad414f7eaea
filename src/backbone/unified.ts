import { fromHost, tree, type Array } from "../engine/index.ts";
import { causalMask } from "./masks.ts";
import { forward, weightedCrossEntropy, type TransformerConfig, type TransformerParams } from "./transformer.ts";
import { DEFAULT_LAYOUT, imageToText, promptForAnyImage, promptForCaption, promptForImage, textToImage, type Example, type LayoutOptions } from "./layout.ts";
import type { JointVocab } from "./vocab.ts";
import type { Decoder } from "../generate/decode.ts";
import type { SamplingOptions } from "../generate/sampling.ts";

/**
 * The unified model: one decoder-only transformer over the joint vocabulary, trained by
 * next-token prediction on text→image and image→text sequences mixed in every batch.
 */
export type UnifiedBatch = { inputs: Array; targets: Array; weights: Array };

/** Half of each batch is text→image, half image→text. captions/images: per example ids. */
export function makeBatch(
  vocab: JointVocab,
  captions: readonly (readonly number[])[],
  images: readonly (readonly number[])[],
  length: number,
  layout: LayoutOptions = DEFAULT_LAYOUT,
): UnifiedBatch {
  const examples: Example[] = captions.map((c, i) =>
    i % 2 === 0 ? textToImage(vocab, c, images[i], length, layout) : imageToText(vocab, images[i], c, length, layout),
  );
  const cat = <T extends Int32Array | Float32Array>(pick: (e: Example) => T, make: (n: number) => T) => {
    const out = make(examples.length * length);
    examples.forEach((e, i) => out.set(pick(e), i * length));
    return out;
  };
  const b = examples.length;
  return {
    inputs: fromHost(cat((e) => e.inputs, (n) => new Int32Array(n)), [b, length]),
    targets: fromHost(cat((e) => e.targets, (n) => new Int32Array(n)), [b, length]),
    weights: fromHost(cat((e) => e.weights, (n) => new Float32Array(n)), [b, length]),
  };
}

/** Next-token loss on the target part only. Consumes params and batch. */
export function unifiedLoss(p: TransformerParams, batch: UnifiedBatch, cfg: TransformerConfig): [Array, Record<string, Array>] {
  const t = batch.inputs.shape[1];
  const logits = forward(p, batch.inputs, causalMask(t), cfg);
  const loss = weightedCrossEntropy(logits, batch.targets, batch.weights);
  return [loss, {}];
}

/**
 * caption ids → image code ids (exactly `tokensPerImage`), only image tokens allowed inside
 * <boi>…<eoi>. `guidance` > 1 applies classifier-free guidance against the caption-free prompt
 * `<bos> <pad>… <boi>` (trained through the layout's `unconditionalImage` weight); 1 = off.
 */
export async function generateImageTokens(
  decoder: Decoder,
  vocab: JointVocab,
  captions: readonly (readonly number[])[],
  tokensPerImage: number,
  sampling: SamplingOptions,
  seed = 0,
  guidance = 1,
  layout: LayoutOptions = DEFAULT_LAYOUT,
): Promise<number[][]> {
  const imageOnly = vocab.allowed("image");
  const out = await decoder.generate(
    captions.map((c) => promptForImage(vocab, c, layout)),
    tokensPerImage,
    {
      constraint: () => imageOnly,
      sampling,
      seed,
      guidance: guidance === 1 ? undefined : { prompts: captions.map(() => promptForAnyImage(vocab, layout)), scale: guidance },
    },
  );
  return out.map((ids) => ids.map((id) => vocab.imageCode(id)));
}

/** image code ids → caption ids (text tokens until <eos>); `maxLength` counts the <eos>. */
export async function generateCaptions(
  decoder: Decoder,
  vocab: JointVocab,
  images: readonly (readonly number[])[],
  maxLength: number,
  sampling: SamplingOptions,
  layout: LayoutOptions = DEFAULT_LAYOUT,
): Promise<number[][]> {
  const eos = vocab.special("<eos>");
  const textOrEnd = vocab.allowed("text", ["<eos>"]);
  const out = await decoder.generate(
    images.map((img) => promptForCaption(vocab, img, layout)),
    maxLength,
    { constraint: () => textOrEnd, stop: (g) => g[g.length - 1] === eos, sampling },
  );
  return out.map((ids) => (ids[ids.length - 1] === eos ? ids.slice(0, -1) : ids));
}
