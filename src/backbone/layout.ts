import type { JointVocab } from "./vocab.ts";

/**
 * Sequence layouts of the unified model (both directions in every batch):
 *   text→image:  <bos> caption <pad>… <boi> image <eoi>               loss on image + <eoi>
 *   image→text:  <bos> <pad>… <boi> image <eoi> caption <eos>         loss on caption + <eos>
 *                                                                     (and, weighted, on image + <eoi>)
 * Each returns input ids, next-token targets and per-target loss weights, padded to `length`.
 *
 * Weights: each direction's target part carries a total weight of 1 per sequence (a per-sequence
 * mean), so the ~6 caption tokens count as much as the 50 image tokens; a per-token mean would
 * give captioning ~10% of the gradient. The image→text layout starts with `<bos> <pad>… <boi> image`,
 * i.e. an image with no caption: a weight `unconditionalImage` on those tokens trains p(image),
 * the unconditional model that classifier-free guidance needs, at no extra cost.
 */
export type Example = { inputs: Int32Array; targets: Int32Array; weights: Float32Array };

export type LayoutOptions = {
  /** Total loss weight of the image tokens in an image→text sequence (0 = captioning only). */
  readonly unconditionalImage: number;
  /**
   * Captions are padded to this many tokens (0 = no padding), so `<boi>` and every image token
   * sit at the same absolute position in both layouts and for every caption template: the
   * learned position embedding of image token i then means the same grid cell everywhere, and
   * the caption-free prefix `<bos> <pad>… <boi>` is the caption-dropped text→image prompt.
   */
  readonly captionSlot: number;
  /**
   * Total loss weight of the caption + <eos> in an image→text sequence (the image in text→image
   * has 1). 2 and 3 measured worse in the demo (captions 87% / 86% against 90%).
   */
  readonly captionWeight: number;
};

export const DEFAULT_LAYOUT: LayoutOptions = { unconditionalImage: 0.25, captionSlot: 6, captionWeight: 1 };

/** A loss span: targets seq[from .. to) share `total` weight equally. */
type Span = { from: number; to: number; total: number };

function pack(seq: number[], spans: readonly Span[], length: number, padId: number): Example {
  if (seq.length > length + 1) throw new Error(`sequence of ${seq.length} tokens exceeds the context of ${length + 1}`);
  const inputs = new Int32Array(length).fill(padId);
  const targets = new Int32Array(length).fill(padId);
  const weights = new Float32Array(length);
  for (let i = 0; i + 1 < seq.length; i++) {
    inputs[i] = seq[i];
    targets[i] = seq[i + 1];
  }
  for (const { from, to, total } of spans) for (let t = from; t < to; t++) weights[t - 1] = total / (to - from); // position t−1 predicts seq[t]
  return { inputs, targets, weights };
}

/** `<bos> caption <pad>… <boi>`, the caption padded to the layout's slot. */
function captionPrefix(vocab: JointVocab, caption: readonly number[], { captionSlot }: LayoutOptions): number[] {
  if (captionSlot > 0 && caption.length > captionSlot) throw new Error(`caption of ${caption.length} tokens exceeds the layout's caption slot of ${captionSlot}`);
  const pads = new Array<number>(Math.max(0, captionSlot - caption.length)).fill(vocab.padId);
  return [vocab.special("<bos>"), ...caption, ...pads, vocab.special("<boi>")];
}

export function textToImage(
  vocab: JointVocab,
  caption: readonly number[],
  image: readonly number[],
  length: number,
  layout: LayoutOptions = DEFAULT_LAYOUT,
): Example {
  const prefix = captionPrefix(vocab, caption, layout);
  const seq = [...prefix, ...image.map((c) => vocab.image(c)), vocab.special("<eoi>")];
  return pack(seq, [{ from: prefix.length, to: seq.length, total: 1 }], length, vocab.padId);
}

export function imageToText(
  vocab: JointVocab,
  image: readonly number[],
  caption: readonly number[],
  length: number,
  layout: LayoutOptions = DEFAULT_LAYOUT,
): Example {
  const prefix = captionPrefix(vocab, [], layout);
  const seq = [...prefix, ...image.map((c) => vocab.image(c)), vocab.special("<eoi>"), ...caption, vocab.special("<eos>")];
  const captionFrom = prefix.length + image.length + 1;
  const spans = [{ from: captionFrom, to: seq.length, total: layout.captionWeight }];
  if (layout.unconditionalImage > 0) spans.push({ from: prefix.length, to: captionFrom, total: layout.unconditionalImage });
  return pack(seq, spans, length, vocab.padId);
}

/** Longest caption to generate, counting its <eos>: the slot (+1), or 8 without a slot. */
export const maxCaptionTokens = (layout: LayoutOptions) => (layout.captionSlot > 0 ? layout.captionSlot + 1 : 8);

/** Prompt prefixes for generation; the unconditional image prompt is the image→text prefix. */
export const promptForImage = (vocab: JointVocab, caption: readonly number[], layout = DEFAULT_LAYOUT) => captionPrefix(vocab, caption, layout);
export const promptForAnyImage = (vocab: JointVocab, layout = DEFAULT_LAYOUT) => captionPrefix(vocab, [], layout);
export const promptForCaption = (vocab: JointVocab, image: readonly number[], layout = DEFAULT_LAYOUT) => [
  ...captionPrefix(vocab, [], layout),
  ...image.map((c) => vocab.image(c)),
  vocab.special("<eoi>"),
];
