import type { JointVocab } from "./vocab.ts";

/**
 * Sequence layouts of the unified model (both directions in every batch):
 *   text→image:  <bos> caption <boi> image <eoi>           loss on image + <eoi>
 *   image→text:  <bos> <boi> image <eoi> caption <eos>     loss on caption + <eos>
 * Each returns input ids, next-token targets and per-target loss weights, padded to `length`.
 */
export type Example = { inputs: Int32Array; targets: Int32Array; weights: Float32Array };

function pack(seq: number[], targetFrom: number, length: number, padId: number): Example {
  if (seq.length > length + 1) throw new Error(`sequence of ${seq.length} tokens exceeds the context of ${length + 1}`);
  const inputs = new Int32Array(length).fill(padId);
  const targets = new Int32Array(length).fill(padId);
  const weights = new Float32Array(length);
  for (let i = 0; i + 1 < seq.length; i++) {
    inputs[i] = seq[i];
    targets[i] = seq[i + 1];
    weights[i] = i + 1 >= targetFrom ? 1 : 0; // position i predicts seq[i + 1]
  }
  return { inputs, targets, weights };
}

export function textToImage(vocab: JointVocab, caption: readonly number[], image: readonly number[], length: number): Example {
  const seq = [vocab.special("<bos>"), ...caption, vocab.special("<boi>"), ...image.map((c) => vocab.image(c)), vocab.special("<eoi>")];
  return pack(seq, caption.length + 2, length, vocab.padId);
}

export function imageToText(vocab: JointVocab, image: readonly number[], caption: readonly number[], length: number): Example {
  const seq = [vocab.special("<bos>"), vocab.special("<boi>"), ...image.map((c) => vocab.image(c)), vocab.special("<eoi>"), ...caption, vocab.special("<eos>")];
  return pack(seq, image.length + 3, length, vocab.padId);
}

/** Prompt prefixes for generation. */
export const promptForImage = (vocab: JointVocab, caption: readonly number[]) => [vocab.special("<bos>"), ...caption, vocab.special("<boi>")];
export const promptForCaption = (vocab: JointVocab, image: readonly number[]) => [
  vocab.special("<bos>"),
  vocab.special("<boi>"),
  ...image.map((c) => vocab.image(c)),
  vocab.special("<eoi>"),
];
