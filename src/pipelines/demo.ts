/**
 * The demo pipeline on the embedded MNIST digits: a text tokenizer, an image tokenizer, a judge
 * classifier and the unified model, then held-out evaluation, pictures and a saved run. Each
 * stage is a library function of its own (pipelines/*.ts); the CLI only parses and calls
 * `runDemo`.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startEngine, tree } from "../engine/index.ts";
import { allCaptions } from "../data/captions.ts";
import { loadMnist, MNIST_INFO } from "../data/mnist.ts";
import { splitTrainTest } from "../data/shuffle.ts";
import { imageSize, type DatasetInfo, type ImageSet } from "../data/types.ts";
import { writeAtomic } from "../io/checkpoint.ts";
import { asInputError, InputError } from "../io/errors.ts";
import { writeGrayGrid } from "../io/png.ts";
import { Progress } from "../io/progress.ts";
import { checkPairedLayout, DEFAULT_PAIRED, type PairedLayout } from "../backbone/sequence/presets.ts";
import { checkTransformerConfig, type TransformerConfig } from "../backbone/transformer.ts";
import { Decoder } from "../generate/decode.ts";
import { accuracy, psnr } from "../eval/metrics.ts";
import { ssim } from "../eval/ssim.ts";
import { autoencoderExpectations, checkAutoencoderConfig, latentGrid, type AutoencoderTokenizer, type AutoencoderTokenizerConfig } from "../tokenizers/image/autoencoder.ts";
import { makeQuantizer } from "../tokenizers/quantizers/registry.ts";
import { MNIST_VQVAE } from "../tokenizers/image/presets.ts";
import { codebookHealth } from "../tokenizers/quantizers/health.ts";
import { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { trainTextTokenizer } from "../tokenizers/text/train.ts";
import { trainAutoencoderTokenizer } from "../train/autoencoder.ts";
import { evaluateUnified, type EvaluationConfig } from "./evaluate.ts";
import { trainJudge } from "./judge.ts";
import { saveRun } from "./run.ts";
import { pairedSequenceLengths, pairedVocab, trainUnified, type TokenizedSet } from "./unified.ts";

/** Everything the demo trains, sized to finish in ≤ 8 minutes on 2 CPU cores. */
export type DemoConfig = {
  readonly seed: number;
  /** Held-out digits (the first of one seeded shuffle), never trained on. */
  readonly testSize: number;
  readonly tokenizer: AutoencoderTokenizerConfig;
  readonly tokenizerSteps: number;
  /** Peak learning rate of the image tokenizer. */
  readonly tokenizerLr: number;
  readonly judgeSteps: number;
  readonly modelSteps: number;
  readonly batchSize: number;
  /** Peak learning rate of the unified model (warm-up + cosine). */
  readonly lr: number;
  readonly model: Omit<TransformerConfig, "vocabSize">;
  readonly layout: PairedLayout;
} & EvaluationConfig;

export const DEFAULT_DEMO: DemoConfig = {
  seed: 0,
  testSize: 1500,
  tokenizer: MNIST_VQVAE,
  tokenizerSteps: 200,
  tokenizerLr: 4e-3,
  judgeSteps: 500,
  // Fewer steps leave the generated digits at the mercy of the training trajectory: a change in
  // float rounding alone once moved them by 19 points at 2,000 steps (docs/experiments/sampling.md).
  modelSteps: 3000,
  batchSize: 32,
  lr: 3e-3,
  model: { contextLength: 64, dim: 96, layers: 3, heads: 4, mlp: "gelu", mlpRatio: 4, positions: "learned" },
  layout: DEFAULT_PAIRED,
  captionImages: 500,
  // 16 per digit: one sample moves the score by 0.6%, not 1.25%.
  samplesPerClass: 16,
  // Stronger guidance over-saturates this model's samples: the judged accuracy falls from scale 3
  // on (docs/experiments/sampling.md, measured on seeds the demo does not draw).
  temperature: 0.6,
  topK: 0,
  guidance: 3,
};

/** The demo's held-out split (the first `testSize` digits of one seeded shuffle): what `evaluate` scores and exported training data never draws from. */
export const DEMO_SPLIT = { testSize: DEFAULT_DEMO.testSize, seed: DEFAULT_DEMO.seed } as const;

/** A few steps of everything: checks the pipeline end to end in about a minute. */
export const QUICK_DEMO: DemoConfig = { ...DEFAULT_DEMO, tokenizerSteps: 20, judgeSteps: 20, modelSteps: 20 };

/** Throws, naming the setting, the value and what is allowed, before any work starts. */
export function checkDemoConfig(cfg: DemoConfig): void {
  const int = (key: keyof DemoConfig, lo: number, hi: number) => {
    const v = cfg[key];
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new InputError(`demo config: ${key} must be an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
  };
  int("seed", 0, 2 ** 31 - 1);
  int("testSize", 10, 5000);
  int("tokenizerSteps", 1, 1e6);
  int("judgeSteps", 1, 1e6);
  int("modelSteps", 1, 1e7);
  int("batchSize", 2, 4096);
  int("captionImages", 1, 100_000);
  int("samplesPerClass", 1, 256);
  int("topK", 0, 1 << 24);
  if (cfg.batchSize % 2 !== 0) throw new InputError(`demo config: batchSize must be even (half text→image, half image→text), got ${cfg.batchSize}`);
  for (const key of ["tokenizerLr", "lr"] as const) if (!(cfg[key] > 0 && cfg[key] < 1)) throw new InputError(`demo config: ${key} must be in (0, 1), got ${JSON.stringify(cfg[key])}`);
  if (!(cfg.temperature >= 0 && cfg.temperature <= 10)) throw new InputError(`demo config: temperature must be in [0, 10] (0 = greedy), got ${JSON.stringify(cfg.temperature)}`);
  if (!(cfg.guidance >= 1 && cfg.guidance <= 100)) throw new InputError(`demo config: guidance must be in [1, 100] (1 = off), got ${JSON.stringify(cfg.guidance)}`);
  checkAutoencoderConfig(cfg.tokenizer, "demo config: tokenizer");
  asInputError(() => checkTransformerConfig({ ...cfg.model, vocabSize: 1 }, "demo config: model"));
  asInputError(() => checkPairedLayout(cfg.layout, "demo config: layout"));
}

export type DemoMetrics = {
  /** Image tokenizer reconstruction PSNR on the held-out digits, dB. */
  readonly tokenizer_psnr_db: number;
  /** Its SSIM (Wang et al. 2004, scikit-image's Gaussian-window settings) on the same digits. */
  readonly tokenizer_ssim: number;
  /** Share of the codebook the held-out digits use, and its perplexity. */
  readonly codebook_usage: number;
  readonly codebook_perplexity: number;
  /** Judge classifier accuracy on held-out real digits. */
  readonly judge_accuracy: number;
  /** Greedy captions of held-out digits that name the right digit. */
  readonly caption_accuracy: number;
  /** Generated digits ("a handwritten d") the judge reads as d. */
  readonly generation_accuracy: number;
  readonly generation_accuracy_by_digit: readonly number[];
  readonly seconds: number;
};

/** Tokens of every image of `set` (500 at a time). */
export async function tokenizeSet(tok: AutoencoderTokenizer, set: ImageSet): Promise<TokenizedSet> {
  return { ids: await tok.encodeImages(set.images, set.n), labels: set.labels, n: set.n, shape: tok.tokenShape };
}

/**
 * The demo's image-tokenizer stage: batches of 64; a VQ codebook starts from k-means and restarts
 * dead codes every 50 steps (the other quantizers expose no single codebook to remedy).
 */
export async function trainImageTokenizer(train: ImageSet, config: AutoencoderTokenizerConfig, opts: { steps: number; lr: number; seed: number }): Promise<AutoencoderTokenizer> {
  const progress = new Progress({ label: "image tokenizer", total: opts.steps });
  const vq = config.quantizer.name === "vq";
  const image = await trainAutoencoderTokenizer(train, config, { ...opts, batchSize: 64, restartEvery: vq ? 50 : 0, kmeansInit: vq }, (_, f) => progress.tick(1, { recon: f.recon!, ...(f.usage === undefined ? {} : { usage: f.usage }) }));
  progress.done();
  return image;
}

/** Train every stage on embedded MNIST; write pictures, metrics.json and the run to `dir`. */
export async function runDemo(dir: string, cfg: DemoConfig = DEFAULT_DEMO): Promise<DemoMetrics> {
  checkDemoConfig(cfg);
  await startEngine();
  // The quantizer checks its options' values when its parameters are built: trace that now
  // (nothing allocated), so a bad option fails here and not after the text tokenizer.
  autoencoderExpectations(cfg.tokenizer, "demo config: tokenizer");
  const q = makeQuantizer(cfg.tokenizer.quantizer, latentGrid(cfg.tokenizer));
  const lengths = pairedSequenceLengths(cfg.layout, q.tokenShape, q.tokensPerImage);
  const longest = Math.max(lengths.textToImage, lengths.imageToText);
  if (longest > cfg.model.contextLength + 1) throw new InputError(`demo config: model.contextLength ${cfg.model.contextLength} is too short for the layout's sequences of ${longest} tokens (captionSlot ${cfg.layout.captionSlot}, ${q.tokensPerImage} image tokens); give at least ${longest - 1}`);
  const started = performance.now();
  mkdirSync(dir, { recursive: true });
  const info: DatasetInfo = MNIST_INFO;
  const { train, test } = splitTrainTest(loadMnist(), { testSize: cfg.testSize, seed: cfg.seed });

  // 1. Text tokenizer (HF tokenizer.json) over every caption template.
  const text = TextTokenizer.fromJSON(await trainTextTokenizer(allCaptions()));
  const longestCaption = Math.max(...allCaptions().map((c) => text.encodeText(c).length));
  if (cfg.layout.captionSlot > 0 && cfg.layout.captionSlot < longestCaption) throw new InputError(`demo config: layout.captionSlot ${cfg.layout.captionSlot} is shorter than the longest caption (${longestCaption} tokens); give at least ${longestCaption}, or 0 for no padding`);

  // 2. Image tokenizer (the VQ-VAE by default): 28×28 → 7×7 codes.
  const image = await trainImageTokenizer(train, cfg.tokenizer, { steps: cfg.tokenizerSteps, lr: cfg.tokenizerLr, seed: cfg.seed });
  const testIds = await tokenizeSet(image, test);
  const recon = await image.decodeImages(testIds.ids, test.n);
  const health = codebookHealth(testIds.ids, image.codebookSize);
  const { height, width } = info;
  const shown = 16 * imageSize(test);
  writeGrayGrid(join(dir, "recon.png"), concat(test.images.subarray(0, shown), recon.subarray(0, shown)), { height, width, count: 32, cols: 16 });

  // 3. Judge classifier on real digits.
  const judge = await trainJudge(train, info, cfg.judgeSteps, cfg.seed);
  const judgeAccuracy = accuracy(await judge.predict(test.images, test.n), test.labels);

  // 4. Unified model: both directions in every batch.
  const vocab = pairedVocab(text, image.codebookSize);
  const model = await trainUnified(await tokenizeSet(image, train), text, vocab, { seed: cfg.seed, steps: cfg.modelSteps, batchSize: cfg.batchSize, lr: cfg.lr, model: cfg.model, layout: cfg.layout });
  const decoder = new Decoder(model.params, model.config);

  // 5. Read (caption held-out digits) and write (samples per digit), scored on held-out data.
  const evaluation = await evaluateUnified(decoder, vocab, text, image, judge, info, testIds, { ...cfg, layout: cfg.layout });
  decoder.dispose();

  const metrics: DemoMetrics = {
    tokenizer_psnr_db: psnr(test.images, recon),
    tokenizer_ssim: ssim(test.images, recon, test),
    codebook_usage: health.usage,
    codebook_perplexity: health.perplexity,
    judge_accuracy: judgeAccuracy,
    caption_accuracy: evaluation.captionAccuracy,
    generation_accuracy: evaluation.generationAccuracy,
    generation_accuracy_by_digit: evaluation.generationByClass,
    seconds: (performance.now() - started) / 1000,
  };
  await saveRun(dir, { dataset: info, text, image, vocab, layout: cfg.layout, model, judge });
  writeGrayGrid(join(dir, "samples.png"), evaluation.grid, { height, width, count: info.classes.length * cfg.samplesPerClass, cols: info.classes.length });
  writeAtomic(join(dir, "metrics.json"), `${JSON.stringify({ ...metrics, captions_sample: evaluation.captionTexts.slice(0, 10), config: cfg }, null, 2)}\n`);
  image.dispose();
  judge.dispose();
  tree.dispose(model.params);
  return metrics;
}

/** `a` then `b`, one array. */
function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
