/**
 * Pipeline: a Transfusion-style model (transfusion-model.ts; Zhou et al. 2024) trained on MNIST
 * captions in both directions at once, caption → image (diffusion loss on the image block) and
 * image → caption (LM loss on the caption), and scored as the demo scores its model: 16 images
 * per digit from "a handwritten d", judged by a classifier trained on real digits, and greedy
 * captions of held-out digits, scored by the digit they name.
 *
 * Generation (Transfusion §3.2, "Inference"): the image block starts as x ~ N(0, I) and S DDIM
 * steps each run the whole backbone over `<bos> caption <boi> [x_t]`, ε̂ read at the image
 * positions; classifier-free guidance (Ho & Salimans 2022) batches the caption-dropped prompt
 * with the same x_t: ε̂ = ε_u + s·(ε_c − ε_u).
 */
import { fromHost, np, random, startEngine, tree, type Array, type JsTree } from "../engine/index.ts";
import { inferenceJit } from "../engine/lean.ts";
import { hostRng, KeyStream } from "../engine/rng.ts";
import { allCaptions, caption, parseDigitFromCaption } from "../data/captions.ts";
import { loadMnist, MNIST_INFO } from "../data/mnist.ts";
import { splitTrainTest, subset } from "../data/shuffle.ts";
import { imageSize, type ImageSet } from "../data/types.ts";
import { InputError } from "../io/errors.ts";
import { Progress } from "../io/progress.ts";
import { compileSequence } from "../backbone/sequence/compile.ts";
import type { JointVocab } from "../backbone/sequence/vocab.ts";
import { describeTransformer, lmHead, type TransformerConfig } from "../backbone/transformer.ts";
import { cosineSchedule, epsilonFromX0, type DiffusionSchedule } from "../backbone/heads/diffusion-schedule.ts";
import { ddimCoefficients, ddimScalars, ddimUpdate, samplingTimesteps } from "../backbone/heads/ddim.ts";
import { checkDiffusionSampling, type DiffusionSampling, type NoisePredictor } from "../generate/diffusion.ts";
import { accuracy } from "../eval/metrics.ts";
import { DEFAULT_ADAMW, warmupCosine, type Params } from "../train/optim.ts";
import { countLeaves, Trainer, type StepResult } from "../train/step.ts";
import { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { trainTextTokenizer } from "../tokenizers/text/train.ts";
import { imagesAt } from "./continuous-model.ts";
import { DEFAULT_TRANSFUSION, transfusionShapes, type TransfusionConfig } from "./transfusion-config.ts";
import {
  captioningDocument,
  denoiserParams,
  generationDocument,
  imagePatches,
  initTransfusionParams,
  patchImages,
  predictPatchNoise,
  transfusionBackboneConfig,
  transfusionBatch,
  transfusionHidden,
  transfusionLayout,
  transfusionLoss,
  transfusionVocab,
  type DenoiserParams,
  type TransfusionBatch,
  type TransfusionLayout,
  type TransfusionParams,
} from "./transfusion-model.ts";
import { classGrid } from "./evaluate.ts";
import { trainJudge } from "./judge.ts";
import { DEMO_SPLIT } from "./demo.ts";

/** A trained model: its parameters (owned; `disposeTransfusion` frees them) and what reads them. */
export type TransfusionModel = {
  readonly config: TransfusionConfig;
  readonly backbone: TransformerConfig;
  readonly vocab: JointVocab;
  readonly text: TextTokenizer;
  readonly layout: TransfusionLayout;
  readonly schedule: DiffusionSchedule;
  readonly params: TransfusionParams;
};

export type TransfusionTrainOptions = {
  readonly progress?: boolean;
  /** called after every step with its result (loss; metrics lm and diffusion) */
  readonly onStep?: (step: number, r: StepResult) => void;
};

/**
 * Trains on `train`: each step draws `batch − captionRows` caption → image rows (a random digit,
 * one of the first `templates` caption templates of its label, dropped with probability
 * `dropCaption`) and `captionRows` image → caption rows. AdamW, warm-up min(100, steps/10), then a cosine decay.
 */
export async function trainTransfusion(train: ImageSet, text: TextTokenizer, cfg: TransfusionConfig, opts: TransfusionTrainOptions = {}): Promise<TransfusionModel> {
  transfusionShapes(cfg);
  const { channels, height, width } = cfg.image;
  if ((train.channels ?? 1) !== channels || train.height !== height || train.width !== width) {
    throw new InputError(`trainTransfusion: the config's images are ${channels}×${height}×${width}, the training set's ${train.channels ?? 1}×${train.height}×${train.width}`);
  }
  if (train.n < 1) throw new InputError("trainTransfusion: the training set is empty");
  await startEngine();
  const vocab = transfusionVocab(text);
  const layout = transfusionLayout(vocab, cfg, Math.max(...allCaptions().map((c) => text.encodeText(c).length)));
  const backbone = transfusionBackboneConfig(cfg, vocab);
  const schedule = cosineSchedule(cfg.diffusionSteps);
  const loss = (p: Params, b: TransfusionBatch) => transfusionLoss(p as unknown as TransfusionParams, b, cfg, layout, backbone, schedule);
  const label = `the Transfusion model (${cfg.patch}×${cfg.patch} patches; ${describeTransformer(backbone)})`;
  const trainer = new Trainer<TransfusionBatch>(initTransfusionParams(cfg, vocab) as unknown as Params, loss, DEFAULT_ADAMW, { label });
  const rng = hostRng(cfg.seed + 7);
  const keys = new KeyStream(cfg.seed + 23);
  const bar = opts.progress === false ? undefined : new Progress({ label: "Transfusion", total: cfg.steps });
  const warmup = Math.min(100, Math.floor(cfg.steps / 10));
  const draw = () => {
    const index = Math.floor(rng() * train.n);
    return { index, caption: text.encodeText(caption(train.labels[index]!, Math.floor(rng() * cfg.templates))) };
  };
  try {
    for (let step = 0; step < cfg.steps; step++) {
      const gen = globalThis.Array.from({ length: cfg.batch - cfg.captionRows }, () => {
        const r = draw();
        return rng() < cfg.dropCaption ? { ...r, caption: null } : r;
      });
      const cap = globalThis.Array.from({ length: cfg.captionRows }, draw);
      const r = await trainer.step(transfusionBatch(vocab, layout, train, gen, cap, keys.next()), warmupCosine(step, { peak: cfg.lr, warmup, total: cfg.steps }));
      opts.onStep?.(step, r);
      bar?.tick(1, { loss: r.loss, lm: r.metrics.lm!, diff: r.metrics.diffusion! });
    }
  } catch (e) {
    trainer.dispose();
    throw e;
  } finally {
    keys.dispose();
  }
  bar?.done();
  const params = trainer.release() as unknown as TransfusionParams;
  return { config: cfg, backbone, vocab, text, layout, schedule, params };
}

/** Frees the model's parameters. */
export function disposeTransfusion(model: TransfusionModel): void {
  tree.dispose(model.params as never);
}

/** The generation prompts' ids [B·L] (`null` = the caption-dropped prompt), row-major. */
export function generationIds(model: TransfusionModel, captions: readonly (readonly number[] | null)[]): Int32Array {
  const { layout, vocab } = model;
  const l = layout.generation.length;
  const out = new Int32Array(captions.length * l);
  captions.forEach((c, i) => out.set(compileSequence(vocab, generationDocument(c, layout.captionLength, layout.tokens)).ids.subarray(0, l), i * l));
  return out;
}

/**
 * `ddimSample` (generate/diffusion.ts) step for step, the same draws in the same order (the start
 * x, then one key per step with σ_t > 0), but each step awaited before the next is dispatched.
 * jax-js runs lazily and allocates a call's buffers when it is dispatched, so S steps of
 * `ddimSample`'s loop, never read, hold S whole-backbone passes' activations at once: ~70 MB a
 * step for 40 rows of a 96-wide, 3-layer backbone, so 160 rows × 50 steps pass the 4 GiB heap.
 * Returns x̂_0 [N, Dx]. Borrows ctx.
 */
export async function ddimSampleAwaited<C extends JsTree<Array>>(predict: NoisePredictor<C>, ctx: C, shape: readonly [number, number], schedule: DiffusionSchedule, keys: KeyStream, opts: DiffusionSampling): Promise<Array> {
  checkDiffusionSampling(opts, schedule);
  const [n, dx] = shape;
  const timesteps = samplingTimesteps(schedule, opts.steps);
  const step = inferenceJit((ctx: C, x: Array, t: Array, k: Array, noise: Array): Array => {
    const { prev, x0 } = ddimUpdate(x.ref, predict(ctx, x, t), k, noise, opts.clip);
    x0.dispose();
    return prev;
  });
  let x = random.normal(keys.next(), [n, dx]);
  try {
    for (const [i, t] of timesteps.entries()) {
      const c = ddimCoefficients(schedule, t, timesteps[i + 1] ?? -1, opts.eta ?? 0);
      const noise = c.sigma > 0 ? random.normal(keys.next(), [n, dx]) : np.zeros([n, dx]);
      x = step(tree.ref(ctx) as never, x, np.array(t, { dtype: np.float32 }), ddimScalars(c, np.float32, opts.temperature ?? 1), noise);
      await x.blockUntilReady();
    }
  } finally {
    step.dispose();
  }
  return x;
}

export type TransfusionSampleOptions = {
  readonly seed?: number;
  /** default: the config's */
  readonly sampling?: DiffusionSampling;
  /** captions per DDIM run (its rows double under guidance); default 80 */
  readonly batch?: number;
};

/** Images [n·C·H·W] in [0, 1] for n captions (text ids); the seed fixes them. */
export async function sampleTransfusion(model: TransfusionModel, captions: readonly (readonly number[])[], opts: TransfusionSampleOptions = {}): Promise<Float32Array> {
  const { config: cfg, layout, schedule } = model;
  const sampling = opts.sampling ?? cfg.sampling;
  checkDiffusionSampling(sampling, schedule, "sampleTransfusion: sampling");
  const chunk = opts.batch ?? 80;
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`sampleTransfusion: batch must be a positive integer, got ${chunk}`);
  await startEngine();
  const s = sampling.guidance ?? 1;
  const guided = s !== 1;
  const { tokens: n, patchDim: dx } = layout;
  const denoiser = denoiserParams(model.params);
  const predict: NoisePredictor<{ p: DenoiserParams; ids: Array }> = ({ p, ids }, x, t) => {
    const rows = ids.shape[0]!;
    const b = guided ? rows / 2 : rows;
    const xr = x.ref.reshape([b, n, dx]);
    const { patchOut, ...rest } = p;
    const h = transfusionHidden(rest, ids, guided ? np.concatenate([xr.ref, xr], 0) : xr, np.broadcastTo(t.ref, [rows]), layout.generation, model.backbone);
    let out = predictPatchNoise(patchOut, h, layout.generation).reshape([rows, n * dx]); // ε̂ or x̂_0
    if (guided) {
      const u = out.ref.slice([b, rows]);
      out = u.ref.add(out.slice([0, b]).sub(u).mul(s)); // u + s·(c − u); ε̂ is affine in x̂_0, so guiding either is the same
    }
    return cfg.prediction === "x0" ? epsilonFromX0(schedule, x, out, t) : (x.dispose(), t.dispose(), out);
  };
  const keys = new KeyStream(opts.seed ?? 0);
  const px = imageSize({ ...cfg.image });
  const out = new Float32Array(captions.length * px);
  try {
    for (let start = 0; start < captions.length; start += chunk) {
      const part = captions.slice(start, start + chunk);
      const rows = guided ? [...part, ...part.map(() => null)] : part;
      const ids = fromHost(generationIds(model, rows), [rows.length, layout.generation.length]);
      const x = await ddimSampleAwaited(predict, { p: denoiser, ids }, [part.length, n * dx], schedule, keys, sampling);
      ids.dispose();
      out.set((await patchImages(x.reshape([part.length, n, dx]), cfg).data()) as Float32Array, start * px);
    }
  } finally {
    keys.dispose();
  }
  return out;
}

/** Greedy captions (text ids, without `<eos>`) of clean images (t = 0), full forward passes as `captionIds` in continuous.ts. */
export async function captionTransfusion(model: TransfusionModel, images: ImageSet, { batch = 250 }: { batch?: number } = {}): Promise<number[][]> {
  await startEngine();
  const { vocab, layout, config: cfg } = model;
  const seq = layout.captioning;
  const prompt = compileSequence(vocab, captioningDocument(undefined, layout.captionLength, layout.tokens));
  const [p, m, l, v] = [seq.prompt, layout.captionLength + 1, seq.length, vocab.size];
  const eos = vocab.special("<eos>");
  const { backbone, patchIn, patchPos, time } = denoiserParams(model.params);
  const head = model.params.backbone.head;
  const t0 = (b: number) => np.zeros([b], { dtype: np.int32 });
  const logitsOf = inferenceJit((ids: Array, x0: Array) => lmHead(tree.ref(head), transfusionHidden(tree.ref({ backbone, patchIn, patchPos, time }), ids, x0, t0(x0.shape[0]!), seq, model.backbone)));
  const out: number[][] = [];
  try {
    for (let start = 0; start < images.n; start += batch) {
      const b = Math.min(batch, images.n - start);
      const x0 = imagePatches(imagesAt(images, globalThis.Array.from({ length: b }, (_, i) => start + i)), cfg.patch); // [b, N, Dx]
      const ids = new Int32Array(b * l).fill(vocab.padId);
      for (let i = 0; i < b; i++) ids.set(prompt.ids.subarray(0, p), i * l);
      const rows: number[][] = globalThis.Array.from({ length: b }, () => []);
      const done = new globalThis.Array<boolean>(b).fill(false);
      for (let k = 0; k < m && !done.every(Boolean); k++) {
        const logits = (await logitsOf(fromHost(ids, [b, l]), x0.ref).slice([], p + k - 1).data()) as Float32Array; // [b·V]: predicts token P + k
        const allowed = prompt.allowedAt(p + k);
        for (let i = 0; i < b; i++) {
          if (done[i]) continue;
          let best = -1;
          for (let j = 0, top = -Infinity; j < v; j++) {
            const score = logits[i * v + j]! + allowed[j]!;
            if (score > top) [top, best] = [score, j];
          }
          if (best === eos) done[i] = true;
          else rows[i]!.push(best);
          if (p + k < l) ids[i * l + p + k] = best;
        }
      }
      x0.dispose();
      out.push(...rows);
    }
  } finally {
    logitsOf.dispose();
  }
  return out;
}

export type TransfusionReport = {
  /** share of samples the judge reads as the digit asked for (`samplesPerClass` per digit) */
  readonly generation_accuracy: number;
  readonly generation_accuracy_by_digit: readonly number[];
  /** greedy captions of held-out digits that name the digit (`parseDigitFromCaption`) */
  readonly caption_accuracy: number;
  readonly caption_images: number;
  /** the judge on the held-out digits */
  readonly judge_accuracy: number;
  readonly parameters: number;
  readonly steps: number;
  readonly train_seconds: number;
  readonly steps_per_second: number;
  readonly sample_seconds: number;
  readonly seconds: number;
  /** the last 100 steps' mean LM and diffusion losses */
  readonly final_lm_loss: number;
  readonly final_diffusion_loss: number;
  readonly config: TransfusionConfig;
};

export type TransfusionRunOptions = { readonly samplesPerClass?: number; readonly captionImages?: number; readonly judgeSteps?: number };

/**
 * Trains `cfg` on the embedded MNIST digits outside the demo's held-out split, samples
 * `samplesPerClass` digits per caption "a handwritten d" (judged by a classifier trained on the
 * training digits) and captions the first `captionImages` held-out digits. Returns the report and
 * the samples as a grid (one column per digit, one row per sample).
 */
export async function runTransfusion(cfg: TransfusionConfig = DEFAULT_TRANSFUSION, opts: TransfusionRunOptions = {}): Promise<{ report: TransfusionReport; grid: Float32Array }> {
  const { model, ...out } = await trainAndScoreTransfusion(cfg, opts);
  disposeTransfusion(model);
  return out;
}

/** `runTransfusion` keeping the model (the caller disposes it). */
export async function trainAndScoreTransfusion(cfg: TransfusionConfig, { samplesPerClass = 16, captionImages = 500, judgeSteps = 500 }: TransfusionRunOptions = {}): Promise<{ model: TransfusionModel; report: TransfusionReport; grid: Float32Array }> {
  transfusionShapes(cfg);
  await startEngine();
  const started = performance.now();
  const { train, test } = splitTrainTest(loadMnist(), DEMO_SPLIT);
  const text = TextTokenizer.fromJSON(await trainTextTokenizer(allCaptions()));
  const tail: { lm: number; diffusion: number }[] = [];
  const t0 = performance.now();
  const model = await trainTransfusion(train, text, cfg, { onStep: (_, r) => void (tail.push({ lm: r.metrics.lm!, diffusion: r.metrics.diffusion! }), tail.length > 100 && tail.shift()) });
  try {
    const trained = performance.now();
    const classes = MNIST_INFO.classes.length;
    const prompts = globalThis.Array.from({ length: classes * samplesPerClass }, (_, i) => text.encodeText(caption(Math.floor(i / samplesPerClass), 0)));
    const samples = await sampleTransfusion(model, prompts, { seed: cfg.seed });
    const sampled = performance.now();
    const held = subset(test, globalThis.Array.from({ length: Math.min(captionImages, test.n) }, (_, i) => i));
    const captions = (await captionTransfusion(model, held)).map((ids) => text.decodeText(ids));
    const judge = await trainJudge(train, MNIST_INFO, judgeSteps, cfg.seed);
    const judgeAccuracy = accuracy(await judge.predict(test.images, test.n), test.labels);
    const judged = await judge.predict(samples, prompts.length);
    judge.dispose();
    const wanted = Int32Array.from(prompts, (_, i) => Math.floor(i / samplesPerClass));
    const per = (d: number) => accuracy(judged.subarray(d * samplesPerClass, (d + 1) * samplesPerClass), wanted.subarray(d * samplesPerClass, (d + 1) * samplesPerClass));
    const mean = (f: (x: { lm: number; diffusion: number }) => number) => tail.reduce((a, x) => a + f(x), 0) / Math.max(1, tail.length);
    const report: TransfusionReport = {
      generation_accuracy: accuracy(judged, wanted),
      generation_accuracy_by_digit: globalThis.Array.from({ length: classes }, (_, d) => per(d)),
      caption_accuracy: accuracy(captions.map(parseDigitFromCaption), held.labels),
      caption_images: held.n,
      judge_accuracy: judgeAccuracy,
      parameters: countLeaves(model.params as never),
      steps: cfg.steps,
      train_seconds: (trained - t0) / 1000,
      steps_per_second: cfg.steps / ((trained - t0) / 1000),
      sample_seconds: (sampled - trained) / 1000,
      seconds: (performance.now() - started) / 1000,
      final_lm_loss: mean((x) => x.lm),
      final_diffusion_loss: mean((x) => x.diffusion),
      config: cfg,
    };
    return { model, report, grid: classGrid(samples, classes, samplesPerClass, imageSize(test)) };
  } catch (e) {
    disposeTransfusion(model);
    throw e;
  }
}
