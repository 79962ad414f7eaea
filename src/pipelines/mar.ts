/**
 * Pipeline: a MAR-style text→image generator (mar-model.ts) trained on MNIST captions and scored
 * as the demo scores its samples: 16 samples per digit from the caption "a handwritten d", judged
 * by a classifier trained on real digits. Sampling is raster order, one continuous token per
 * step: the backbone reads the caption and the tokens drawn so far, and the diffusion head draws
 * the next token from its hidden state (S DDIM/DDPM steps, classifier-free guidance on ε).
 */
import { fromHost, startEngine, tree, type Array } from "../engine/index.ts";
import { inferenceJit } from "../engine/lean.ts";
import { hostRng, KeyStream } from "../engine/rng.ts";
import { allCaptions, caption } from "../data/captions.ts";
import { loadMnist, MNIST_INFO } from "../data/mnist.ts";
import { splitTrainTest } from "../data/shuffle.ts";
import { imageSize, type ImageSet } from "../data/types.ts";
import { InputError } from "../io/errors.ts";
import { Progress } from "../io/progress.ts";
import type { JointVocab } from "../backbone/sequence/vocab.ts";
import type { TransformerConfig } from "../backbone/transformer.ts";
import { cosineSchedule, type DiffusionSchedule } from "../backbone/heads/diffusion-schedule.ts";
import { checkDiffusionSampling, sampleDiffusion, type DiffusionSampling } from "../generate/diffusion.ts";
import { accuracy } from "../eval/metrics.ts";
import { DEFAULT_ADAMW, warmupCosine, type Params } from "../train/optim.ts";
import { countLeaves, Trainer, type StepResult } from "../train/step.ts";
import { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { trainTextTokenizer } from "../tokenizers/text/train.ts";
import { DEFAULT_MAR, marShapes, type MarConfig } from "./mar-config.ts";
import { imagesAt } from "./continuous-model.ts";
import { initMarParams, marBackboneConfig, marConditions, marIds, marLayout, marLoss, marVocab, tokenImages, type MarBatch, type MarLayout, type MarParams } from "./mar-model.ts";
import { classGrid } from "./evaluate.ts";
import { trainJudge } from "./judge.ts";
import { DEMO_SPLIT } from "./demo.ts";

/** A trained generator: its parameters (owned; `disposeMar` frees them) and what reads them. */
export type MarGenerator = {
  readonly config: MarConfig;
  readonly backbone: TransformerConfig;
  readonly vocab: JointVocab;
  readonly text: TextTokenizer;
  readonly layout: MarLayout;
  readonly schedule: DiffusionSchedule;
  readonly params: MarParams;
};

export type MarTrainOptions = {
  readonly progress?: boolean;
  /** called after every step with its loss (tests and scripts follow training through it) */
  readonly onStep?: (step: number, r: StepResult) => void;
};

/**
 * Trains on `train`: each step draws `cfg.batch` random digits, each with one of the first
 * `cfg.templates` caption templates of its label, dropped (the unconditional prompt) with
 * probability `cfg.dropCaption`. Warm-up min(100, steps/10), then a cosine decay.
 */
export async function trainMar(train: ImageSet, text: TextTokenizer, cfg: MarConfig, { progress = true, onStep }: MarTrainOptions = {}): Promise<MarGenerator> {
  marShapes(cfg);
  const { channels, height, width } = cfg.image;
  if ((train.channels ?? 1) !== channels || train.height !== height || train.width !== width) {
    throw new InputError(`trainMar: the config's images are ${channels}×${height}×${width}, the training set's ${train.channels ?? 1}×${train.height}×${train.width}`);
  }
  if (train.n < 1) throw new InputError("trainMar: the training set is empty");
  await startEngine();
  const vocab = marVocab(text);
  const layout = marLayout(vocab, cfg, Math.max(...allCaptions().map((c) => text.encodeText(c).length)));
  const backbone = marBackboneConfig(cfg, vocab);
  const schedule = cosineSchedule(cfg.head.steps);
  const loss = (p: Params, b: MarBatch) => marLoss(p as unknown as MarParams, b, cfg, layout, backbone, schedule);
  const label = `the MAR generator (${cfg.patch}×${cfg.patch} patches; backbone dim ${cfg.backbone.dim}, ${cfg.backbone.layers} layers; head ${cfg.head.width}×${cfg.head.depth})`;
  const trainer = new Trainer<MarBatch>(initMarParams(cfg, vocab) as unknown as Params, loss, DEFAULT_ADAMW, { label });
  const rng = hostRng(cfg.seed + 5);
  const keys = new KeyStream(cfg.seed + 17);
  const bar = progress ? new Progress({ label: "MAR generator", total: cfg.steps }) : undefined;
  const warmup = Math.min(100, Math.floor(cfg.steps / 10));
  try {
    for (let step = 0; step < cfg.steps; step++) {
      const idx = globalThis.Array.from({ length: cfg.batch }, () => Math.floor(rng() * train.n));
      const captions = idx.map((j) => {
        const template = Math.floor(rng() * cfg.templates);
        return rng() < cfg.dropCaption ? null : text.encodeText(caption(train.labels[j]!, template));
      });
      const batch: MarBatch = { ids: fromHost(marIds(vocab, layout, captions), [cfg.batch, layout.length]), images: imagesAt(train, idx), key: keys.next() };
      const r = await trainer.step(batch, warmupCosine(step, { peak: cfg.lr, warmup, total: cfg.steps }));
      bar?.tick(1, { loss: r.loss });
      onStep?.(step, r);
    }
  } catch (e) {
    trainer.dispose();
    throw e;
  } finally {
    keys.dispose();
  }
  bar?.done();
  const params = trainer.release() as unknown as MarParams;
  return { config: cfg, backbone, vocab, text, layout, schedule, params };
}

/** Frees the generator's parameters. */
export function disposeMar(model: MarGenerator): void {
  tree.dispose(model.params as never);
}

export type MarSampleOptions = { readonly seed?: number; readonly sampling?: DiffusionSampling; readonly progress?: boolean };

/**
 * Images [n·C·H·W] in [0, 1] for n captions (text ids), drawn token by token in raster order.
 * With guidance s ≠ 1 every row has an unconditional twin (the caption-dropped prompt, the same
 * tokens so far): one backbone pass of 2n rows per token gives both conditions. The seed fixes
 * the samples.
 */
export async function sampleMar(model: MarGenerator, captions: readonly (readonly number[])[], opts: MarSampleOptions = {}): Promise<Float32Array> {
  const { config: cfg, layout, vocab, schedule } = model;
  const sampling = opts.sampling ?? cfg.sampling;
  checkDiffusionSampling(sampling, schedule, "sampleMar: sampling");
  await startEngine();
  const n = captions.length;
  const guided = (sampling.guidance ?? 1) !== 1;
  const rows = guided ? 2 * n : n;
  const { count, patchDim: dx } = marShapes(cfg);
  const ids = fromHost(marIds(vocab, layout, guided ? [...captions, ...captions.map(() => null)] : captions), [rows, layout.length]);
  const tokens = new Float32Array(rows * count * dx);
  const { input, backbone, head } = model.params;
  const conditions = inferenceJit((ids: Array, x: Array) => marConditions(tree.ref({ input, backbone }), ids, x, layout, model.backbone));
  const keys = new KeyStream(opts.seed ?? 0);
  const bar = opts.progress ? new Progress({ label: "MAR sampling", total: count }) : undefined;
  try {
    for (let k = 0; k < count; k++) {
      const z = conditions(ids.ref, fromHost(tokens, [rows, count, dx])).slice([], k); // [rows, D]
      const zc = z.ref.slice([0, n]);
      const zu = guided ? z.slice([n, rows]) : (z.dispose(), undefined);
      const { x } = sampleDiffusion(tree.ref(head), zc, schedule, keys, sampling, zu);
      const drawn = (await x.data()) as Float32Array; // [n, Dx]
      for (let r = 0; r < rows; r++) tokens.set(drawn.subarray((r % n) * dx, ((r % n) + 1) * dx), (r * count + k) * dx);
      bar?.tick(1);
    }
  } finally {
    ids.dispose();
    conditions.dispose();
    keys.dispose();
  }
  bar?.done();
  return (await tokenImages(fromHost(tokens.subarray(0, n * count * dx), [n, count, dx]), cfg).data()) as Float32Array;
}

export type MarReport = {
  /** share of samples the judge reads as the digit asked for (`samplesPerClass` per digit) */
  readonly generation_accuracy: number;
  readonly generation_accuracy_by_digit: readonly number[];
  readonly judge_accuracy: number;
  readonly parameters: number;
  readonly steps: number;
  readonly train_seconds: number;
  readonly sample_seconds: number;
  readonly seconds: number;
  readonly config: MarConfig;
};

export type MarRunOptions = { readonly samplesPerClass?: number; readonly judgeSteps?: number };

/**
 * Trains `cfg` on the embedded MNIST digits outside the demo's held-out split, samples
 * `samplesPerClass` digits for each caption "a handwritten d", and scores them with a judge
 * trained on the same training digits (accuracy reported on the held-out ones). Returns the
 * report and the samples as a grid (one column per digit).
 */
export async function runMarGeneration(cfg: MarConfig = DEFAULT_MAR, opts: MarRunOptions = {}): Promise<{ report: MarReport; grid: Float32Array }> {
  const { model, ...out } = await trainAndScoreMar(cfg, opts);
  disposeMar(model);
  return out;
}

/** `runMarGeneration` keeping the generator (the caller disposes it). */
export async function trainAndScoreMar(cfg: MarConfig, { samplesPerClass = 16, judgeSteps = 500 }: MarRunOptions = {}): Promise<{ model: MarGenerator; report: MarReport; grid: Float32Array }> {
  marShapes(cfg);
  await startEngine();
  const started = performance.now();
  const { train, test } = splitTrainTest(loadMnist(), DEMO_SPLIT);
  const text = TextTokenizer.fromJSON(await trainTextTokenizer(allCaptions()));
  const model = await trainMar(train, text, cfg);
  try {
    const trained = performance.now();
    const classes = MNIST_INFO.classes.length;
    const prompts = globalThis.Array.from({ length: classes * samplesPerClass }, (_, i) => text.encodeText(caption(Math.floor(i / samplesPerClass), 0)));
    const samples = await sampleMar(model, prompts, { seed: cfg.seed, progress: true });
    const sampled = performance.now();
    const judge = await trainJudge(train, MNIST_INFO, judgeSteps, cfg.seed);
    const judgeAccuracy = accuracy(await judge.predict(test.images, test.n), test.labels);
    const judged = await judge.predict(samples, prompts.length);
    judge.dispose();
    const wanted = Int32Array.from(prompts, (_, i) => Math.floor(i / samplesPerClass));
    const byDigit = globalThis.Array.from({ length: classes }, (_, d) => accuracy(judged.subarray(d * samplesPerClass, (d + 1) * samplesPerClass), wanted.subarray(d * samplesPerClass, (d + 1) * samplesPerClass)));
    const report: MarReport = {
      generation_accuracy: accuracy(judged, wanted),
      generation_accuracy_by_digit: byDigit,
      judge_accuracy: judgeAccuracy,
      parameters: countLeaves(model.params as never),
      steps: cfg.steps,
      train_seconds: (trained - started) / 1000,
      sample_seconds: (sampled - trained) / 1000,
      seconds: (performance.now() - started) / 1000,
      config: cfg,
    };
    return { model, report, grid: classGrid(samples, classes, samplesPerClass, imageSize(test)) };
  } catch (e) {
    disposeMar(model);
    throw e;
  }
}
