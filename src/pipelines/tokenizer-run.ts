/**
 * An image tokenizer as users train and measure it (`mmntp tokenizer …`): a run folder that a
 * killed training resumes bit-exactly, the trained tokenizer in the same form a model run keeps
 * it, the feature network that rFID compares on, the metrics, and pictures.
 *
 * The folder:
 *   run.json                           the config and data it trains on (written first)
 *   checkpoint/state.{safetensors,json} the whole training state every `checkpointEvery` steps
 *   image-tokenizer.{safetensors,json} the tokenizer (as in a model run's checkpoint)
 *   features.{safetensors,json}        the rFID feature network (a classifier of the training data)
 *   metrics.json, history.json         held-out metrics; loss, PSNR and usage per step
 *   reconstructions.png, codebook-usage.png, loss.{png,svg}, psnr.{png,svg}
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startEngine } from "../engine/index.ts";
import { checkScene } from "../data/shapes.ts";
import type { ImageSet } from "../data/types.ts";
import { frechetDistanceOf } from "../eval/frechet.ts";
import { checkJudgeConfig, Judge, type JudgeParams } from "../eval/judge.ts";
import { psnr } from "../eval/metrics.ts";
import { ssim } from "../eval/ssim.ts";
import { loadCheckpoint, replaceFolder, saveCheckpoint, writeAtomic } from "../io/checkpoint.ts";
import { InputError, parseJson } from "../io/errors.ts";
import { lineChart, writeChart } from "../io/plot.ts";
import { writeGrayGrid } from "../io/png.ts";
import { writeLineChartSvg } from "../io/svg.ts";
import { paramsOfInit, paramsToTensors } from "../engine/params.ts";
import { initJudge } from "../eval/judge.ts";
import { AutoencoderTokenizer } from "../tokenizers/image/autoencoder.ts";
import { codebookHealth } from "../tokenizers/quantizers/health.ts";
import { plotCodebookUsage } from "../tokenizers/quantizers/health-plot.ts";
import { trainAutoencoderTokenizer, type AutoencoderTrainState } from "../train/autoencoder.ts";
import { trainJudge } from "./judge.ts";
import { checkTokenizerRunConfig, tokenizerData, type TokenizerData, type TokenizerRunConfig } from "./tokenizer-config.ts";

export const TOKENIZER_RUN_FORMAT = "mmntp-tokenizer-run";
export const TOKENIZER_RUN_VERSION = 1;

/** run.json: what the run trains, and on what: the config's embedded set, or the user's `path` (and IDX `labels`). */
export type TokenizerRunFile = { format: string; version: number; config: TokenizerRunConfig; path?: string; labels?: string };

/** Per training step: the loss, the batch's reconstruction PSNR, and codebook usage since the last restart. */
export type TokenizerHistory = { loss: number[]; psnr: number[]; usage: number[] };

export type TokenizerMetrics = {
  readonly data: string;
  readonly images: number;
  readonly mse: number;
  readonly psnr: number;
  readonly ssim: number;
  /** Fréchet distance of the feature network's features, real vs reconstructed held-out images. */
  readonly rfid: number;
  readonly usage: number;
  readonly perplexity: number;
  readonly tokensPerImage: number;
  readonly bitsPerImage: number;
  /** Shapes data: the fraction of reconstructions the exact scene checker passes against the scene's caption. */
  readonly scenesPassed?: number;
};

const readRunFile = (dir: string): TokenizerRunFile => {
  const file = join(dir, "run.json");
  if (!existsSync(file)) throw new InputError(`${dir} is not a tokenizer run: ${file} is missing (make one with \`mmntp tokenizer train -o ${dir}\`)`, { file });
  const r = parseJson(readFileSync(file, "utf8"), file) as Partial<TokenizerRunFile> | null;
  if (typeof r !== "object" || r === null || r.format !== TOKENIZER_RUN_FORMAT) throw new InputError(`${file}: format is ${JSON.stringify(r?.format)}, expected "${TOKENIZER_RUN_FORMAT}"`, { file, field: "format" });
  if (r.version !== TOKENIZER_RUN_VERSION) throw new InputError(`${file}: version ${JSON.stringify(r.version)}, this mmntp reads version ${TOKENIZER_RUN_VERSION}`, { file, field: "version" });
  checkTokenizerRunConfig(r.config, `${file}: config`);
  for (const k of ["path", "labels"] as const) if (r[k] !== undefined && typeof r[k] !== "string") throw new InputError(`${file}: ${k} must be a string, got ${JSON.stringify(r[k])}`, { file, field: k });
  return r as TokenizerRunFile;
};

const STATE = "state";

/** The checkpoint's state and the history up to it, or undefined when the run has none. */
function readState(dir: string): { state: AutoencoderTrainState; history: TokenizerHistory } | undefined {
  const ck = join(dir, "checkpoint");
  if (!existsSync(join(ck, `${STATE}.json`))) return undefined;
  const { tensors, config } = loadCheckpoint(ck, STATE);
  // Everything of the state but its tensors and counts, as `onCheckpoint` wrote it (step, RNG draws, VQGAN's λ).
  const { history, ...meta } = config as Omit<AutoencoderTrainState, "counts" | "tensors"> & { history: TokenizerHistory };
  const { counts, ...rest } = tensors;
  if (!counts || counts.dtype !== "I32") throw new InputError(`${join(ck, `${STATE}.safetensors`)}: no I32 tensor "counts"`, { file: ck });
  return { state: { ...meta, counts: counts.data as Int32Array, tensors: rest }, history };
}

export type TrainTokenizerOptions = {
  /** The user's images (a PNG/JPEG folder or an IDX file) instead of the config's embedded set. */
  readonly data?: string;
  /** An IDX label file for an IDX `data` file. */
  readonly labels?: string;
  /** Continue the unfinished run in `dir` (its run.json's config and data; `cfg` is ignored). */
  readonly resume?: boolean;
  /**
   * A feature network for rFID trained already on the same training images (borrowed, saved into
   * the run): an experiment comparing settings on one data set trains it once and shares it.
   */
  readonly features?: Judge;
  readonly onStep?: (step: number, total: number, fields: Record<string, number>) => void;
  readonly log?: (line: string) => void;
};

/**
 * Train a tokenizer run into `dir` (or continue one), then train the feature network, measure
 * the tokenizer on the held-out images and draw the pictures. Returns the metrics.
 */
export async function trainTokenizerRun(dir: string, cfg: TokenizerRunConfig | undefined, opts: TrainTokenizerOptions = {}): Promise<{ metrics: TokenizerMetrics; resumedAt?: number }> {
  const runFile = join(dir, "run.json");
  let run: TokenizerRunFile;
  let saved: ReturnType<typeof readState>;
  if (opts.resume) {
    run = readRunFile(dir);
    if (existsSync(join(dir, "metrics.json")) && !existsSync(join(dir, "checkpoint"))) throw new InputError(`${dir} holds a finished run: nothing to resume (\`mmntp tokenizer eval --run ${dir}\` measures it)`, { file: dir });
    saved = readState(dir);
  } else {
    if (!cfg) throw new Error("trainTokenizerRun: a config is needed unless resuming");
    checkTokenizerRunConfig(cfg);
    if (existsSync(runFile)) throw new InputError(`${dir} already holds a tokenizer run; --resume continues it, or remove the folder (or pick another with -o)`, { file: runFile });
    run = { format: TOKENIZER_RUN_FORMAT, version: TOKENIZER_RUN_VERSION, config: cfg, ...(opts.data !== undefined && { path: opts.data }), ...(opts.labels !== undefined && { labels: opts.labels }) };
  }
  const config = run.config;
  // Read and check every image before anything is written.
  const data = await tokenizerData(config, run.path, run.labels);
  await startEngine();
  if (!opts.resume) {
    mkdirSync(dir, { recursive: true });
    writeAtomic(runFile, `${JSON.stringify(run, null, 2)}\n`);
  }
  const history: TokenizerHistory = saved?.history ?? { loss: [], psnr: [], usage: [] };
  const total = config.train.steps;
  // VQGAN's perceptual network: a classifier of the same images from another seed than rFID's, so
  // the metric is not the loss; trained again on resume (deterministic), not stored.
  const needsPerceptual = (config.train.vqgan?.perceptualWeight ?? 0) > 0;
  if (needsPerceptual) opts.log?.(`training the perceptual loss's feature network (${config.featureSteps} steps)`);
  const perceptual = needsPerceptual ? await trainJudge(data.train, data.info, config.featureSteps, config.train.seed + 1) : undefined;
  const tok = await trainAutoencoderTokenizer(
    data.train,
    config.tokenizer,
    config.train,
    (step, f) => {
      history.loss.push(f.loss!);
      history.psnr.push(10 * Math.log10(1 / f.recon!));
      history.usage.push(f.usage ?? Number.NaN);
      opts.onStep?.(step, total, f);
    },
    {
      ...(saved && { resume: saved.state }),
      ...(data.trainCaptions && { captions: data.trainCaptions }),
      ...(perceptual && { perceptual: perceptual.params }),
      classes: data.info.classes.length,
      every: config.checkpointEvery,
      onCheckpoint: async (state: AutoencoderTrainState) => {
        const { counts, tensors, ...meta } = state;
        const json = { ...meta, history: { loss: history.loss.slice(0, state.step), psnr: history.psnr.slice(0, state.step), usage: history.usage.slice(0, state.step) } };
        await replaceFolder(join(dir, "checkpoint"), async (tmp) => saveCheckpoint(tmp, STATE, { tensors: { ...tensors, counts: { dtype: "I32", shape: [counts.length], data: counts } }, config: json }));
      },
    },
  );
  perceptual?.dispose();
  try {
    const s = await tok.save();
    saveCheckpoint(dir, "image-tokenizer", { tensors: s.tensors, config: tok.config });
    writeAtomic(join(dir, "history.json"), `${JSON.stringify(history)}\n`);
    if (!opts.features) opts.log?.(`training the feature network for rFID (${config.featureSteps} steps)`);
    const features = opts.features ?? (await trainJudge(data.train, data.info, config.featureSteps, config.train.seed));
    try {
      saveCheckpoint(dir, "features", { tensors: await paramsToTensors(features.params as never), config: features.config });
      const held = await reconstructHeldOut(tok, data.test);
      const metrics = await measureTokenizer(tok, features, data, held);
      writeAtomic(join(dir, "metrics.json"), `${JSON.stringify(metrics, null, 2)}\n`);
      drawTokenizerRun(dir, tok, data.test, history, held);
      rmSync(join(dir, "checkpoint"), { recursive: true, force: true });
      return { metrics, ...(saved && { resumedAt: saved.state.step }) };
    } finally {
      if (!opts.features) features.dispose();
    }
  } finally {
    tok.dispose();
  }
}

/**
 * The metrics of the run in `dir`: read back when it finished, else trained with `cfg` (or
 * resumed from its checkpoint when it started). For experiments made of many runs; `features`
 * gives their shared rFID network when one is needed.
 */
export async function finishTokenizerRun(
  dir: string,
  cfg: TokenizerRunConfig,
  opts: Omit<TrainTokenizerOptions, "resume" | "features"> & { readonly features?: () => Promise<Judge> } = {},
): Promise<TokenizerMetrics> {
  const done = join(dir, "metrics.json");
  if (existsSync(done)) return parseJson(readFileSync(done, "utf8"), done) as TokenizerMetrics;
  const resume = existsSync(join(dir, "run.json"));
  const { features, ...rest } = opts;
  rest.log?.(`${dir}: ${resume ? "resuming" : "training"} (${cfg.train.steps} steps)`);
  return (await trainTokenizerRun(dir, resume ? undefined : cfg, { ...rest, resume, ...(features && { features: await features() }) })).metrics;
}

/** The trained tokenizer and feature network of a finished run folder; the caller owns them. */
export async function loadTokenizerRun(dir: string): Promise<{ run: TokenizerRunFile; tokenizer: AutoencoderTokenizer; features?: Judge }> {
  const run = readRunFile(dir);
  await startEngine();
  const tokenizer = loadImageTokenizer(dir);
  if (!existsSync(join(dir, "features.json"))) return { run, tokenizer };
  const { config, tensors } = loadCheckpoint(dir, "features");
  checkJudgeConfig(config, join(dir, "features.json"));
  const params = paramsOfInit<JudgeParams>(tensors, () => initJudge(0, config), join(dir, "features.safetensors"));
  return { run, tokenizer, features: new Judge(params, config) };
}

/** The tokenizer of a folder holding image-tokenizer.{json,safetensors}: a tokenizer run, or a model run's checkpoint. */
export function loadImageTokenizer(dir: string): AutoencoderTokenizer {
  const file = join(dir, "image-tokenizer.json");
  if (!existsSync(dir)) throw new InputError(`no tokenizer run at ${dir} (make one with \`mmntp tokenizer train -o ${dir}\`)`, { file: dir });
  if (!existsSync(file)) throw new InputError(`${dir} holds no trained tokenizer: ${file} is missing (an unfinished run? \`mmntp tokenizer train --resume -o ${dir}\`)`, { file });
  // fromSaved checks the config and every tensor against it (traced expectations).
  const { config, tensors } = loadCheckpoint(dir, "image-tokenizer");
  return AutoencoderTokenizer.fromSaved({ kind: "autoencoder", config: config as Record<string, unknown>, tensors }, join(dir, "image-tokenizer"));
}

/** The held-out images' ids [N·T] and their reconstructions [N·C·H·W]. */
export type HeldOut = { readonly ids: Int32Array; readonly recon: Float32Array };

export async function reconstructHeldOut(tok: AutoencoderTokenizer, test: ImageSet): Promise<HeldOut> {
  const ids = await tok.encodeImages(test.images, test.n);
  return { ids, recon: await tok.decodeImages(ids, test.n) };
}

/** Held-out metrics of `tok` (from `held` when the reconstructions are made already): MSE, PSNR, SSIM, rFID on `features`, codebook usage and perplexity, tokens and bits per image. */
export async function measureTokenizer(
  tok: AutoencoderTokenizer,
  features: Judge,
  data: Pick<TokenizerData, "name" | "test" | "testCaptions">,
  held?: HeldOut,
): Promise<TokenizerMetrics> {
  const test = data.test;
  const { ids, recon } = held ?? (await reconstructHeldOut(tok, test));
  let se = 0;
  for (let i = 0; i < recon.length; i++) se += (recon[i]! - test.images[i]!) ** 2;
  const health = codebookHealth(ids, tok.codebookSize);
  const dim = features.featureDim;
  const rfid = frechetDistanceOf(await features.features(test.images, test.n), test.n, await features.features(recon, test.n), test.n, dim);
  return {
    data: data.name,
    images: test.n,
    mse: se / recon.length,
    psnr: psnr(recon, test.images),
    ssim: ssim(recon, test.images, test),
    rfid,
    usage: health.usage,
    perplexity: health.perplexity,
    tokensPerImage: tok.tokensPerImage,
    bitsPerImage: tok.tokensPerImage * Math.log2(tok.codebookSize),
    ...(data.testCaptions && { scenesPassed: scenesPassed(recon, data.testCaptions) }),
  };
}

/** The fraction of `images` ([N, 3, 32, 32]) that the exact scene checker passes against their captions. */
export function scenesPassed(images: Float32Array, captions: readonly string[]): number {
  const px = images.length / captions.length;
  return captions.filter((c, i) => checkScene(images.subarray(i * px, (i + 1) * px), c).ok).length / captions.length;
}

/** reconstructions.png (pairs of rows: held-out images, their reconstructions), codebook usage, and the training curves as PNG and SVG. */
export function drawTokenizerRun(dir: string, tok: AutoencoderTokenizer, test: ImageSet, history: TokenizerHistory, { ids, recon }: HeldOut): void {
  const channels = (test.channels ?? 1) as 1 | 3;
  const cols = 8;
  const rows = Math.min(4, Math.floor(test.n / cols));
  const px = channels * test.height * test.width;
  if (rows > 0) {
    const originals = test.images.subarray(0, rows * cols * px);
    const grid = new Float32Array(2 * rows * cols * px);
    for (let r = 0; r < rows; r++) {
      grid.set(originals.subarray(r * cols * px, (r + 1) * cols * px), 2 * r * cols * px);
      grid.set(recon.subarray(r * cols * px, (r + 1) * cols * px), (2 * r + 1) * cols * px);
    }
    writeGrayGrid(join(dir, "reconstructions.png"), grid, { height: test.height, width: test.width, channels, cols, scale: 3 });
  }
  plotCodebookUsage(join(dir, "codebook-usage.png"), codebookHealth(ids, tok.codebookSize));
  const smooth = (v: readonly number[], w = 25) => v.map((_, i) => {
    const s = v.slice(Math.max(0, i - w + 1), i + 1).filter(Number.isFinite);
    return s.reduce((a, b) => a + b, 0) / s.length;
  });
  const xLabel = "training step";
  const loss = [{ name: "loss (batch)", values: history.loss }, { name: `mean of ${25}`, values: smooth(history.loss) }];
  const lossOpts = { title: "Training loss (reconstruction + quantizer losses)", xLabel, yLabel: "loss", yScale: "log" as const };
  writeChart(join(dir, "loss.png"), lineChart(loss, lossOpts));
  writeLineChartSvg(join(dir, "loss.svg"), loss, lossOpts);
  const p = [{ name: "PSNR (batch)", values: history.psnr }, { name: `mean of ${25}`, values: smooth(history.psnr) }];
  const pOpts = { title: "Reconstruction PSNR of the training batches", xLabel, yLabel: "dB" };
  writeChart(join(dir, "psnr.png"), lineChart(p, pOpts));
  writeLineChartSvg(join(dir, "psnr.svg"), p, pOpts);
}

/** `mmntp tokenizer eval`: the metrics of a finished run on its own held-out images (or on `data`). */
export async function evaluateTokenizerRun(dir: string, opts: { data?: string; labels?: string } = {}): Promise<TokenizerMetrics> {
  const { run, tokenizer, features } = await loadTokenizerRun(dir);
  try {
    if (!features) throw new InputError(`${dir} has no feature network (features.json) to measure rFID with`, { file: dir });
    const data = opts.data === undefined ? await tokenizerData(run.config, run.path, run.labels) : await tokenizerData(run.config, opts.data, opts.labels);
    return await measureTokenizer(tokenizer, features, data);
  } finally {
    tokenizer.dispose();
    features?.dispose();
  }
}
