/**
 * Pipeline stage: the unified model — one decoder-only transformer over the joint vocabulary of
 * the text tokenizer and the image tokenizer, trained by next-token prediction on text→image and
 * image→text documents (backbone/sequence/presets.ts) mixed in every batch, and used to caption
 * and to draw.
 */
import { KeyStream, hostRng } from "../engine/rng.ts";
import { randomCaption } from "../data/captions.ts";
import { batchSequences, type SequenceBatch } from "../backbone/batch.ts";
import { compileSequence } from "../backbone/sequence/compile.ts";
import { imageToTextDocument, textToImageDocument, type PairedLayout } from "../backbone/sequence/presets.ts";
import { JointVocab } from "../backbone/sequence/vocab.ts";
import { describeTransformer, initTransformer, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";
import type { Decoder } from "../generate/decode.ts";
import { blockCodes, fillHoles, textIds } from "../generate/layout.ts";
import type { SamplingOptions } from "../generate/sampling.ts";
import { Progress } from "../io/progress.ts";
import { nextTokenLoss } from "../train/losses.ts";
import { DEFAULT_ADAMW, warmupCosine } from "../train/optim.ts";
import { Trainer } from "../train/step.ts";
import type { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";

/** The specials of the paired layout; the image block sits between `<boi>` and `<eoi>`. */
export const PAIRED_SPECIALS = ["<bos>", "<boi>", "<eoi>", "<eos>"] as const;

/** Text ids, then `<bos> <boi> <eoi> <eos>`, then the image codes (the ids the demo has always used). */
export function pairedVocab(text: TextTokenizer, imageCodes: number): JointVocab {
  const pad = text.tokenToId("<pad>");
  if (pad === undefined) throw new Error("pairedVocab: the text tokenizer has no <pad> token");
  return pairedVocabOfSizes(text.vocabSize, imageCodes, pad);
}

/** `pairedVocab` from sizes alone (benchmarks, tests). */
export function pairedVocabOfSizes(textSize: number, imageCodes: number, pad = 0): JointVocab {
  return JointVocab.build({ text: { size: textSize, pad }, specials: PAIRED_SPECIALS, modalities: [{ name: "image", size: imageCodes, begin: "<boi>", end: "<eoi>" }] });
}

/**
 * Tokens each direction compiles to for images of `shape`: text→image with a full caption slot
 * (an empty caption without a slot), image→text with the longest caption to generate. The
 * vocabulary's sizes do not change them, so a layout can be checked against a model's context
 * before anything is trained or loaded.
 */
export function pairedSequenceLengths(layout: PairedLayout, shape: readonly number[], tokensPerImage: number): { textToImage: number; imageToText: number } {
  const vocab = pairedVocabOfSizes(2, 1); // text ids 0 (<pad>) and 1, a caption word
  const caption = new Array<number>(layout.captionSlot).fill(1);
  const codes = new Array<number>(tokensPerImage).fill(0);
  return {
    textToImage: compileSequence(vocab, textToImageDocument(caption, undefined, shape, { layout })).length,
    imageToText: compileSequence(vocab, imageToTextDocument(codes, undefined, shape, { layout })).length,
  };
}

/** Token ids of an image set: `ids` is [n · tokensPerImage], `shape` one image's grid. */
export type TokenizedSet = { readonly ids: Int32Array; readonly labels: Int32Array; readonly n: number; readonly shape: readonly number[] };

export type UnifiedTrainConfig = {
  readonly seed: number;
  readonly steps: number;
  readonly batchSize: number;
  /** Peak learning rate (warm-up 30 steps, then cosine). */
  readonly lr: number;
  readonly model: Omit<TransformerConfig, "vocabSize">;
  readonly layout: PairedLayout;
};

const codesOf = (data: TokenizedSet, j: number) => {
  const t = data.ids.length / data.n;
  return Array.from(data.ids.subarray(j * t, (j + 1) * t));
};

/**
 * One training batch of paired examples: even rows text→image, odd rows image→text, each
 * caption with the image of the same row (codes of `shape`), laid out for `model`.
 */
export function pairedBatch(
  vocab: JointVocab,
  captions: readonly (readonly number[])[],
  images: readonly (readonly number[])[],
  shape: readonly number[],
  model: Pick<TransformerConfig, "contextLength" | "positions">,
  layout: PairedLayout,
): SequenceBatch {
  const opts = { layout };
  const docs = captions.map((c, i) => (i % 2 === 0 ? textToImageDocument(c, images[i], shape, opts) : imageToTextDocument(images[i]!, c, shape, opts)));
  const seqs = docs.map((d) => compileSequence(vocab, d, { contextLength: model.contextLength + 1 }));
  return batchSequences(seqs, { length: model.contextLength, padId: vocab.padId, grid: model.positions === "rope2d" });
}

/**
 * Train on both directions, half of each batch each (even rows text→image, odd rows
 * image→text), with a random caption template per example.
 */
export async function trainUnified(data: TokenizedSet, text: TextTokenizer, vocab: JointVocab, cfg: UnifiedTrainConfig): Promise<{ params: TransformerParams; config: TransformerConfig }> {
  const config: TransformerConfig = { ...cfg.model, vocabSize: vocab.size };
  const keys = new KeyStream(cfg.seed + 7);
  const trainer = new Trainer<SequenceBatch>(initTransformer(keys, config), (p, b) => nextTokenLoss(p as TransformerParams, b, config), DEFAULT_ADAMW, {
    label: `the unified transformer (${describeTransformer(config)})`,
  });
  keys.dispose();
  const rng = hostRng(cfg.seed + 3);
  const progress = new Progress({ label: "unified transformer", total: cfg.steps });
  for (let step = 0; step < cfg.steps; step++) {
    const idx = Array.from({ length: cfg.batchSize }, () => Math.floor(rng() * data.n));
    const captions = idx.map((j) => text.encodeText(randomCaption(data.labels[j]!, rng)));
    const batch = pairedBatch(vocab, captions, idx.map((j) => codesOf(data, j)), data.shape, config, cfg.layout);
    const r = await trainer.step(batch, warmupCosine(step, { peak: cfg.lr, warmup: 30, total: cfg.steps }));
    progress.tick(1, { loss: r.loss });
  }
  progress.done();
  const params = trainer.params as TransformerParams;
  trainer.params = {};
  trainer.dispose();
  return { params, config };
}

/**
 * caption ids → image codes, one image per caption. `guidance` > 1: classifier-free guidance
 * against the caption-free prompt `<bos> <pad>… <boi>` (trained through the layout's
 * `unconditionalImage` weight); 1 = off.
 */
export async function generateImages(
  decoder: Decoder,
  vocab: JointVocab,
  captions: readonly (readonly number[])[],
  shape: readonly number[],
  opts: { sampling: SamplingOptions; seed: number; guidance: number; layout: PairedLayout },
): Promise<number[][]> {
  const layout = { layout: opts.layout };
  const docs = captions.map((c) => textToImageDocument(c, undefined, shape, layout));
  const guidance = opts.guidance === 1 ? undefined : { documents: captions.map(() => textToImageDocument([], undefined, shape, layout)), scale: opts.guidance };
  const filled = await fillHoles(decoder, vocab, docs, { sampling: opts.sampling, seed: opts.seed, ...(guidance ? { guidance } : {}) });
  return filled.map((f) => blockCodes(vocab, f, 2, "image"));
}

/** image codes → caption text ids (greedy or sampled, up to the layout's caption length). */
export async function captionImages(decoder: Decoder, vocab: JointVocab, images: readonly (readonly number[])[], shape: readonly number[], opts: { sampling: SamplingOptions; layout: PairedLayout }): Promise<number[][]> {
  const docs = images.map((img) => imageToTextDocument(img, undefined, shape, { layout: opts.layout }));
  const filled = await fillHoles(decoder, vocab, docs, { sampling: opts.sampling });
  return filled.map((f) => textIds(vocab, f, 3));
}
