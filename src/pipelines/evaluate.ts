/**
 * Pipeline stage: the unified model scored on held-out data. Caption accuracy: greedy captions of
 * held-out images, scored by the class they name. Generation accuracy: samples for each class's
 * caption, scored by the judge. Also the samples as a picture grid.
 */
import { caption, parseDigitFromCaption } from "../data/captions.ts";
import type { DatasetInfo } from "../data/types.ts";
import type { JointVocab } from "../backbone/sequence/vocab.ts";
import type { PairedLayout } from "../backbone/sequence/presets.ts";
import type { Decoder } from "../generate/decode.ts";
import { GREEDY } from "../generate/sampling.ts";
import type { Judge } from "../eval/judge.ts";
import { accuracy } from "../eval/metrics.ts";
import type { AutoencoderTokenizer } from "../tokenizers/image/autoencoder.ts";
import type { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { captionImages, generateImages, type TokenizedSet } from "./unified.ts";

export type EvaluationConfig = {
  /** Held-out images captioned (at most the test set). */
  readonly captionImages: number;
  /** Samples drawn per class for the generation score. */
  readonly samplesPerClass: number;
  readonly temperature: number;
  /** Keep the k most likely tokens; 0 = all. */
  readonly topK: number;
  /** Classifier-free guidance scale for the samples (1 = off). */
  readonly guidance: number;
};

export type Evaluation = {
  captionAccuracy: number;
  generationAccuracy: number;
  /** Per class: the share of its samples the judge assigns to it. */
  generationByClass: number[];
  captionTexts: string[];
  /** The samples, [samplesPerClass rows × classes columns] of C·H·W images, row-major. */
  grid: Float32Array;
};

export async function evaluateUnified(
  decoder: Decoder,
  vocab: JointVocab,
  text: TextTokenizer,
  image: AutoencoderTokenizer,
  judge: Judge,
  info: DatasetInfo,
  test: TokenizedSet,
  cfg: EvaluationConfig & { readonly seed: number; readonly layout: PairedLayout },
): Promise<Evaluation> {
  const shape = image.tokenShape;
  const { captionAccuracy, captionTexts } = await captionHeldOut(decoder, vocab, text, test, cfg.captionImages, cfg.layout);

  const classes = info.classes.length;
  const per = cfg.samplesPerClass;
  const prompts = Array.from({ length: classes * per }, (_, i) => text.encodeText(caption(Math.floor(i / per), 0)));
  const wanted = Int32Array.from({ length: classes * per }, (_, i) => Math.floor(i / per));
  const sampled = await generateImages(decoder, vocab, prompts, shape, { sampling: { temperature: cfg.temperature, topK: cfg.topK }, seed: cfg.seed, guidance: cfg.guidance, layout: cfg.layout });
  const samples = await image.decodeImages(Int32Array.from(sampled.flat()), sampled.length);
  const judged = await judge.predict(samples, sampled.length);
  const generationByClass = Array.from({ length: classes }, (_, d) => accuracy(judged.subarray(d * per, (d + 1) * per), wanted.subarray(d * per, (d + 1) * per)));
  return { captionAccuracy, generationAccuracy: accuracy(judged, wanted), generationByClass, captionTexts, grid: classGrid(samples, classes, per, image.imageSize) };
}

/**
 * Greedy captions of the first `count` held-out items of `test` (100 per batch), and the share
 * that name their digit.
 */
export async function captionHeldOut(decoder: Decoder, vocab: JointVocab, text: TextTokenizer, test: TokenizedSet, count: number, layout: PairedLayout): Promise<{ captionAccuracy: number; captionTexts: string[] }> {
  const n = Math.min(test.n, count);
  const t = test.shape.reduce((a, b) => a * b, 1);
  const held = Array.from({ length: n }, (_, i) => Array.from(test.ids.subarray(i * t, (i + 1) * t)));
  const ids: number[][] = [];
  for (let i = 0; i < n; i += 100) ids.push(...(await captionImages(decoder, vocab, held.slice(i, i + 100), test.shape, { sampling: GREEDY, layout })));
  const captionTexts = ids.map((c) => text.decodeText(c));
  return { captionAccuracy: accuracy(captionTexts.map(parseDigitFromCaption), test.labels.subarray(0, n)), captionTexts };
}

/** Class-major samples ([classes × per] images of px values) → a grid with one column per class, one row per sample. */
export function classGrid(samples: Float32Array, classes: number, per: number, px: number): Float32Array {
  const grid = new Float32Array(classes * per * px);
  for (let d = 0; d < classes; d++) for (let s = 0; s < per; s++) grid.set(samples.subarray((d * per + s) * px, (d * per + s + 1) * px), (s * classes + d) * px);
  return grid;
}
