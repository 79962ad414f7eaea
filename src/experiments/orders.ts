/**
 * The decoding-orders experiment (issue #21): MNIST text→image in each generation order of the
 * survey at an equal training budget, every order decoded with and without guidance, scored by
 * the demo's judge (accuracy on "a handwritten d"), a Fréchet distance on the judge's hidden
 * features against held-out real digits, diversity (mean pairwise pixel distance of one prompt's
 * samples), and images/s at batch 1 and batched.
 *
 *   runs/NAME/<order>/          a run folder per order (run.json with `order`), which
 *                               `mmntp generate --run runs/NAME/<order> --order …` decodes
 *   runs/NAME/grids/<variant>.png   samples: one column per digit
 *   runs/NAME/results.{json,md}
 *
 * An order whose run folder holds a finished training with the same settings (train.json) is
 * loaded, not trained again, so a killed experiment resumes at the order it was training.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startEngine, tree } from "../engine/index.ts";
import { allCaptions, caption } from "../data/captions.ts";
import { loadMnist, MNIST_INFO } from "../data/mnist.ts";
import { splitTrainTest } from "../data/shuffle.ts";
import type { ImageSet } from "../data/types.ts";
import { writeAtomic } from "../io/checkpoint.ts";
import { writeGrayGrid } from "../io/png.ts";
import type { TrainedOrder, OrderName } from "../backbone/orders/training.ts";
import { Judge } from "../eval/judge.ts";
import { accuracy } from "../eval/metrics.ts";
import { frechetDistance, gaussianOf, type Gaussian } from "../eval/frechet.ts";
import { OrderDecoder, orderLength, type DecodeOrder, type OrderModel } from "../generate/order-decoder.ts";
import { AutoencoderTokenizer, type AutoencoderTokenizerConfig } from "../tokenizers/image/autoencoder.ts";
import { MNIST_VQVAE } from "../tokenizers/image/presets.ts";
import { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { trainTextTokenizer } from "../tokenizers/text/train.ts";
import { classGrid } from "../pipelines/evaluate.ts";
import { tokenizeSet, trainImageTokenizer } from "../pipelines/demo.ts";
import { trainJudge } from "../pipelines/judge.ts";
import { countLeaves } from "../train/step.ts";
import { disposeRun, loadRun, saveRun, type Run } from "../pipelines/run.ts";
import { generateWithOrder, imagePrompt, orderVocab, trainWithOrder } from "../pipelines/orders.ts";
import { checkOrdersExperimentConfig, type OrdersExperimentConfig } from "./orders-config.ts";

export type OrderVariantResult = {
  /** e.g. "maskgit-8, guidance 3" */
  readonly variant: string;
  readonly order: OrderName;
  readonly decode: DecodeOrder;
  readonly guidance: number;
  readonly samples: number;
  readonly accuracy: number;
  readonly accuracyByDigit: readonly number[];
  /** Fréchet distance of the samples' judge features to held-out real digits' */
  readonly frechet: number;
  /** mean pairwise L2 pixel distance between the samples of one prompt, averaged over digits */
  readonly diversity: number;
  /** model passes per image: one per step (raster and random order: per token, KV-cached) */
  readonly passes: number;
  readonly imagesPerSecondBatch1: number;
  readonly imagesPerSecondBatched: number;
  readonly grid: string;
};

export type OrdersExperimentResult = {
  readonly config: OrdersExperimentConfig;
  /** The same figures for real held-out digits (as many as the samples): the floor of the distance, the diversity of the data */
  readonly real: { readonly frechet: number; readonly diversity: number; readonly judgeAccuracy: number };
  readonly training: Readonly<Record<string, { readonly seconds: number; readonly parameters: number; readonly contextLength: number; readonly finalLoss?: number }>>;
  readonly variants: readonly OrderVariantResult[];
};

const digest = (x: unknown) => createHash("sha256").update(JSON.stringify(x)).digest("hex");
const log = (msg: string) => process.stderr.write(`[orders] ${msg}\n`);

export async function runOrdersExperiment(dir: string, cfg: OrdersExperimentConfig): Promise<OrdersExperimentResult> {
  checkOrdersExperimentConfig(cfg);
  await startEngine();
  mkdirSync(join(dir, "grids"), { recursive: true });
  const { train, test } = splitTrainTest(loadMnist(), { testSize: cfg.testSize, seed: cfg.seed });

  // Shared stages, trained only when some order must be trained (all are deterministic in the seed).
  let shared: { text: TextTokenizer; judge: Judge; tokenizers: Map<string, AutoencoderTokenizer> } | undefined;
  const sharedStages = async () => {
    if (shared) return shared;
    const text = TextTokenizer.fromJSON(await trainTextTokenizer(allCaptions()));
    const judge = await trainJudge(train, MNIST_INFO, cfg.judgeSteps, cfg.seed);
    shared = { text, judge, tokenizers: new Map() };
    return shared;
  };
  const tokenizerFor = async (order: OrderName): Promise<AutoencoderTokenizer> => {
    const s = await sharedStages();
    const config = tokenizerConfig(order, cfg);
    const key = JSON.stringify(config);
    let tok = s.tokenizers.get(key);
    if (!tok) {
      tok = await trainImageTokenizer(train, config, { steps: cfg.tokenizerSteps, lr: cfg.tokenizerLr, seed: cfg.seed });
      s.tokenizers.set(key, tok);
    }
    return tok;
  };

  const training: Record<string, { seconds: number; parameters: number; contextLength: number; finalLoss?: number }> = {};
  const runs = new Map<OrderName, Run>();
  for (const name of cfg.orders) {
    const runDir = join(dir, name);
    const settings = trainingSettings(name, cfg);
    const marker = join(runDir, "train.json");
    const done = existsSync(marker) ? (JSON.parse(readFileSync(marker, "utf8")) as { digest?: string; summary: (typeof training)[string] }) : undefined;
    if (done?.digest === digest(settings)) {
      log(`${name}: loading the trained run in ${runDir}`);
      runs.set(name, loadRun(runDir));
      training[name] = done.summary;
      continue;
    }
    const { text, judge } = await sharedStages();
    const image = await tokenizerFor(name);
    const vocab = orderVocab(text, image.codebookSize);
    const promptLength = imagePrompt(vocab, [], image.tokenShape, cfg.layout).length;
    const contextLength = orderLength(name, promptLength, image.tokensPerImage);
    const order: TrainedOrder = name === "next-scale" ? { name, scales: cfg.scales } : { name };
    const started = performance.now();
    const data = await tokenizeSet(image, train);
    const model = await trainWithOrder(data, text, vocab, { seed: cfg.seed, steps: cfg.steps, batchSize: cfg.batchSize, lr: cfg.lr, model: { ...cfg.model, contextLength }, layout: cfg.layout, order });
    const seconds = (performance.now() - started) / 1000;
    const parameters = countLeaves(model.params);
    const run: Run = { dataset: MNIST_INFO, text, image, vocab, layout: cfg.layout, model: { params: model.params, config: model.config }, judge, order };
    await saveRun(runDir, run);
    tree.dispose(model.params);
    const summary = { seconds, parameters, contextLength };
    writeAtomic(marker, `${JSON.stringify({ digest: digest(settings), settings, summary }, null, 2)}\n`);
    training[name] = summary;
    runs.set(name, loadRun(runDir));
  }
  if (shared) {
    shared.judge.dispose();
    for (const t of shared.tokenizers.values()) t.dispose();
  }

  // Real held-out digits: the reference features, and the floor the samples are measured against.
  const anyRun = runs.values().next().value as Run;
  const judge = anyRun.judge;
  const per = cfg.samplesPerClass;
  const classes = MNIST_INFO.classes.length;
  // The first 1,000 held-out digits are the reference; the rest give the real counterpart of the samples.
  const refCount = Math.min(1000, test.n - per * classes * 2);
  const refFeatures = await judge.features(test.images.subarray(0, refCount * 784), refCount);
  const realFeatures = gaussianOf(refFeatures, refCount, judge.featureDim);
  const realSample = byClass(test, per, classes, refCount);
  const real = {
    frechet: frechetDistance(gaussianOf(await judge.features(realSample, per * classes), per * classes, judge.featureDim), realFeatures),
    diversity: diversity(realSample, per, classes, 784),
    judgeAccuracy: accuracy(await judge.predict(test.images, test.n), test.labels),
  };
  log(`real digits: Fréchet ${real.frechet.toFixed(2)} at ${per * classes} samples, diversity ${real.diversity.toFixed(2)}`);

  const variants: OrderVariantResult[] = [];
  for (const name of cfg.orders) {
    const run = runs.get(name)!;
    const decoder = new OrderDecoder({ params: run.model.params, config: run.model.config, order: run.order! } as OrderModel, run.vocab);
    // The RAR model in a fresh random order per sample, and in raster order (RAR's own choice at inference, where its annealed training ends).
    const decodes: DecodeOrder[] = name === "maskgit" ? cfg.maskgitSteps.map((steps) => ({ name, steps })) : name === "random" ? [{ name, order: "random" }, { name, order: "raster" }] : [{ name }];
    for (const decode of decodes)
      for (const guidance of cfg.guidance) {
        const label = `${variantName(decode)}${guidance === 1 ? "" : `-g${guidance}`}`;
        const r = await scoreVariant(decoder, run, decode, guidance, cfg, realFeatures, join(dir, "grids", `${label}.png`));
        variants.push({ variant: `${label}`, order: name, decode, guidance, ...r, grid: `grids/${label}.png` });
        log(`${label}: accuracy ${(100 * r.accuracy).toFixed(1)}%, Fréchet ${r.frechet.toFixed(2)}, diversity ${r.diversity.toFixed(2)}, ${r.imagesPerSecondBatch1.toFixed(1)} img/s at batch 1, ${r.imagesPerSecondBatched.toFixed(1)} batched`);
      }
    decoder.dispose();
  }
  for (const run of runs.values()) disposeRun(run);
  const result: OrdersExperimentResult = { config: cfg, real, training, variants };
  writeAtomic(join(dir, "results.json"), `${JSON.stringify(result, null, 2)}\n`);
  writeAtomic(join(dir, "results.md"), ordersTable(result));
  return result;
}

/** The image tokenizer of an order: the demo's VQ-VAE, or its multi-scale twin for next-scale. */
export function tokenizerConfig(order: OrderName, cfg: OrdersExperimentConfig): AutoencoderTokenizerConfig {
  if (order !== "next-scale") return MNIST_VQVAE;
  const { codebookSize, dim } = MNIST_VQVAE.quantizer.options as { codebookSize: number; dim: number };
  return { ...MNIST_VQVAE, quantizer: { name: "multiscale", options: { codebookSize, dim, scales: cfg.scales } } };
}

/** What decides an order's trained model (a changed value retrains it). */
function trainingSettings(order: OrderName, cfg: OrdersExperimentConfig) {
  const { seed, testSize, tokenizerSteps, tokenizerLr, judgeSteps, steps, batchSize, lr, model, layout } = cfg;
  return { order, seed, testSize, tokenizerSteps, tokenizerLr, judgeSteps, steps, batchSize, lr, model, layout, tokenizer: tokenizerConfig(order, cfg) };
}

async function scoreVariant(decoder: OrderDecoder, run: Run, decode: DecodeOrder, guidance: number, cfg: OrdersExperimentConfig, realFeatures: Gaussian, gridFile: string) {
  const per = cfg.samplesPerClass;
  const classes = run.dataset.classes.length;
  const shape = run.image.tokenShape;
  const prompt = (d: number) => run.text.encodeText(caption(d, 0));
  const opts = { order: decode, sampling: { temperature: cfg.temperature, topK: 0 }, guidance, layout: run.layout };
  const captions = Array.from({ length: classes * per }, (_, i) => prompt(Math.floor(i / per)));
  const codes = await generateWithOrder(decoder, run.vocab, captions, shape, { ...opts, seed: cfg.seed });
  const samples = await run.image.decodeImages(Int32Array.from(codes.flat()), codes.length);
  const judged = await run.judge.predict(samples, codes.length);
  const wanted = Int32Array.from({ length: classes * per }, (_, i) => Math.floor(i / per));
  const accuracyByDigit = Array.from({ length: classes }, (_, d) => accuracy(judged.subarray(d * per, (d + 1) * per), wanted.subarray(d * per, (d + 1) * per)));
  const feats = await run.judge.features(samples, codes.length);
  const frechet = frechetDistance(gaussianOf(feats, codes.length, run.judge.featureDim), realFeatures);
  writeGrayGrid(gridFile, classGrid(samples, classes, per, run.image.imageSize), { height: run.dataset.height, width: run.dataset.width, count: classes * per, cols: classes });

  const speed = await imagesPerSecond(
    async (count, call) => {
      const drawn = await generateWithOrder(decoder, run.vocab, Array.from({ length: count }, (_, i) => prompt((call + i) % classes)), shape, { ...opts, seed: cfg.seed + 1 + call });
      await run.image.decodeImages(Int32Array.from(drawn.flat()), count);
    },
    cfg.speedReps,
    cfg.speedBatch,
  );
  return {
    samples: codes.length,
    accuracy: accuracy(judged, wanted),
    accuracyByDigit,
    frechet,
    diversity: diversity(samples, per, classes, run.image.imageSize),
    passes: passesOf(decode, run.image.tokensPerImage, run.order),
    imagesPerSecondBatch1: speed.batch1,
    imagesPerSecondBatched: speed.batched,
  };
}

/**
 * Images/s of `draw(count, call)`, which generates and decodes `count` images (`call` numbers the
 * calls, for their seeds): at batch 1 the median of `reps` calls after an untimed one; batched, one
 * call of `batch` after an untimed one (the first call of a shape compiles it).
 */
export async function imagesPerSecond(draw: (count: number, call: number) => Promise<void>, reps: number, batch: number): Promise<{ batch1: number; batched: number }> {
  const times: number[] = [];
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    await draw(1, r);
    if (r > 0) times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  await draw(batch, reps + 1);
  const t0 = performance.now();
  await draw(batch, reps + 2);
  return { batch1: 1 / times[Math.floor(times.length / 2)]!, batched: batch / ((performance.now() - t0) / 1000) };
}

/** "raster", "maskgit-8", "random", "random-raster" (the RAR model decoded in raster order), "next-scale". */
export function variantName(decode: DecodeOrder): string {
  if (decode.name === "maskgit") return `maskgit-${decode.steps}`;
  if (decode.name === "random" && decode.order === "raster") return "random-raster";
  return decode.name;
}

/** Model passes to draw one image in `decode` (raster adds the prompt's prefill pass). */
export function passesOf(decode: DecodeOrder, tokens: number, order?: TrainedOrder): number {
  switch (decode.name) {
    case "raster":
      return tokens;
    case "maskgit":
      return decode.steps;
    case "random":
      return tokens;
    case "next-scale":
      return (decode.scales ?? (order as { scales: readonly number[] }).scales).length;
  }
}

/** `per` real test images of each class, class-major, from index `from` on. */
export function byClass(test: ImageSet, per: number, classes: number, from: number): Float32Array {
  const px = 784;
  const out = new Float32Array(per * classes * px);
  const filled = new Array<number>(classes).fill(0);
  for (let i = from; i < test.n; i++) {
    const d = test.labels[i]!;
    if (filled[d]! >= per) continue;
    out.set(test.images.subarray(i * px, (i + 1) * px), (d * per + filled[d]!) * px);
    filled[d]!++;
  }
  if (filled.some((f) => f < per)) throw new Error(`orders experiment: the held-out digits after the first ${from} do not hold ${per} of each class; raise testSize`);
  return out;
}

/** Mean pairwise L2 distance between the `per` images of each class (class-major), averaged over classes. */
export function diversity(images: Float32Array, per: number, classes: number, px: number): number {
  let total = 0;
  for (let d = 0; d < classes; d++) {
    let sum = 0;
    for (let a = 0; a < per; a++)
      for (let b = a + 1; b < per; b++) {
        let s = 0;
        const ia = (d * per + a) * px;
        const ib = (d * per + b) * px;
        for (let k = 0; k < px; k++) s += (images[ia + k]! - images[ib + k]!) ** 2;
        sum += Math.sqrt(s);
      }
    total += sum / ((per * (per - 1)) / 2);
  }
  return total / classes;
}

/** The results as a markdown table. */
export function ordersTable(r: OrdersExperimentResult): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const rows = r.variants.map((v) => `| ${v.variant} | ${v.guidance} | ${v.passes} | ${pct(v.accuracy)} | ${v.frechet.toFixed(2)} | ${v.diversity.toFixed(2)} | ${v.imagesPerSecondBatch1.toFixed(1)} | ${v.imagesPerSecondBatched.toFixed(1)} |`);
  return [
    `| variant | guidance | passes / image | judged accuracy | Fréchet (judge features) | diversity | images/s, batch 1 | images/s, batch ${r.config.speedBatch} |`,
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows,
    `| real held-out digits | | | ${pct(r.real.judgeAccuracy)} | ${r.real.frechet.toFixed(2)} | ${r.real.diversity.toFixed(2)} | | |`,
    "",
  ].join("\n");
}
