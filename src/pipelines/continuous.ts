/**
 * Pipeline: the continuous-input captioner (LLaVA, Liu et al. 2023): an image encoder's features,
 * projected into the backbone's width, fill the placeholder slots of `<bos> <img>×S <boc>?
 * caption <eos>` (continuous-model.ts), and the backbone learns to caption by next-token
 * prediction on the caption alone. Training runs in stages (continuous-config.ts): "alignment"
 * trains the projector only, encoder and backbone frozen (LLaVA §4.2, stage 1), "joint" trains
 * everything not frozen by its patterns (stage 2). Captions are decoded greedily and scored, as
 * the demo scores its captions, by the digit they name.
 */
import { fromHost, startEngine, tree, type Array } from "../engine/index.ts";
import { inferenceJit } from "../engine/lean.ts";
import { hostRng } from "../engine/rng.ts";
import { allCaptions, caption, parseDigitFromCaption } from "../data/captions.ts";
import { loadMnist } from "../data/mnist.ts";
import { splitTrainTest, subset } from "../data/shuffle.ts";
import type { ImageSet } from "../data/types.ts";
import { flattenTree } from "../io/tree.ts";
import { InputError } from "../io/errors.ts";
import { Progress } from "../io/progress.ts";
import { compileSequence } from "../backbone/sequence/compile.ts";
import type { JointVocab } from "../backbone/sequence/vocab.ts";
import { describeTransformer, type TransformerConfig } from "../backbone/transformer.ts";
import { accuracy } from "../eval/metrics.ts";
import { FrozenTrainer, matchesPattern } from "../train/freeze.ts";
import { DEFAULT_ADAMW, warmupCosine, type Params } from "../train/optim.ts";
import { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { trainTextTokenizer } from "../tokenizers/text/train.ts";
import { continuousShapes, stagesOf, DEFAULT_CONTINUOUS, type ContinuousCaptionConfig, type ContinuousStage, type ContinuousStageKind } from "./continuous-config.ts";
import {
  backboneConfig,
  captionDocument,
  captionLayout,
  captionLogits,
  continuousBatch,
  continuousCaptionLoss,
  continuousVocab,
  embedImages,
  imagesAt,
  initContinuousParams,
  type CaptionLayout,
  type ContinuousBatch,
  type ContinuousParams,
} from "./continuous-model.ts";
import { DEMO_SPLIT } from "./demo.ts";

/** A trained captioner: its parameters (owned; `disposeContinuousCaptioner` frees them) and what reads them. */
export type ContinuousCaptioner = {
  readonly config: ContinuousCaptionConfig;
  readonly backbone: TransformerConfig;
  readonly vocab: JointVocab;
  readonly text: TextTokenizer;
  readonly layout: CaptionLayout;
  readonly params: ContinuousParams;
};

export type ContinuousTrainOptions = {
  /** Train this one stage for `cfg.steps` at `cfg.lr`, instead of `cfg.stages`. */
  readonly stage?: ContinuousStageKind;
  /** Start from this captioner's parameters (moved into the result: do not dispose it), e.g. after an alignment run. */
  readonly from?: ContinuousCaptioner;
  /** Show a progress line per stage (default true). */
  readonly progress?: boolean;
};

/** The settings that shape a captioner's parameters and sequences, in words (training settings left out). */
function architecture(c: ContinuousCaptionConfig): string {
  const encoder = c.encoder === "cnn" ? { cnn: c.cnn } : c.encoder === "vit" ? { vit: c.vit } : { patch: c.patch };
  const projector = c.projector === "resampler" ? { resampler: c.resampler } : {};
  return JSON.stringify({ image: c.image, encoder: c.encoder, ...encoder, projector: c.projector, ...projector, slots: continuousShapes(c).slots, boc: c.boc });
}

/** The patterns a stage trains or freezes, as `FrozenTrainer` takes them. */
function stagePatterns(s: ContinuousStage): { patterns: readonly string[]; select: "frozen" | "trainable" } {
  return s.stage === "alignment" ? { patterns: ["projector.**"], select: "trainable" } : { patterns: s.freeze ?? [], select: "frozen" };
}

/**
 * Throws (InputError) before any step if a stage's freeze pattern names no parameter, or a stage
 * would train nothing: a typo would otherwise train what was meant to stay frozen, or fail mid-run.
 */
function checkStagePatterns(stages: readonly ContinuousStage[], params: ContinuousParams): void {
  const paths = Object.keys(flattenTree<Array>(params as never));
  stages.forEach((s, i) => {
    for (const p of s.freeze ?? []) {
      let hit: boolean;
      try {
        hit = paths.some((path) => matchesPattern(p, path));
      } catch (e) {
        throw new InputError(`continuous config: stages[${i}].freeze: ${(e as Error).message}`);
      }
      if (!hit) throw new InputError(`continuous config: stages[${i}].freeze pattern "${p}" matches no parameter (top-level paths: ${Object.keys(params).join(", ")}; e.g. ${paths.slice(0, 3).join(", ")})`);
    }
    const { patterns, select } = stagePatterns(s);
    if (select === "frozen" && patterns.length > 0 && paths.every((path) => patterns.some((p) => matchesPattern(p, path)))) {
      throw new InputError(`continuous config: stages[${i}].freeze ${JSON.stringify(patterns)} freezes all ${paths.length} tensors, leaving nothing to train`);
    }
  });
}

/**
 * Trains a captioner on `train` (captions: one of the first `cfg.templates` templates of each
 * digit's label, drawn per example, as the demo draws them), stage by stage. Batches draw
 * `cfg.batch` random images per step; each stage's learning rate warms up over min(30, steps/10)
 * steps, then decays by a cosine. The batch order comes from `cfg.seed`, also when continuing `from`.
 */
export async function trainContinuousCaptioner(train: ImageSet, text: TextTokenizer, cfg: ContinuousCaptionConfig, opts: ContinuousTrainOptions = {}): Promise<ContinuousCaptioner> {
  continuousShapes(cfg);
  const stages = stagesOf(cfg, opts.stage);
  const { channels, height, width } = cfg.image;
  if ((train.channels ?? 1) !== channels || train.height !== height || train.width !== width) {
    throw new InputError(`trainContinuousCaptioner: the config's images are ${channels}×${height}×${width}, the training set's ${train.channels ?? 1}×${train.height}×${train.width}`);
  }
  if (train.n < 1) throw new InputError("trainContinuousCaptioner: the training set is empty");
  await startEngine();
  const vocab = continuousVocab(text);
  const longest = Math.max(...allCaptions().map((c) => text.encodeText(c).length));
  const layout = captionLayout(vocab, cfg, longest);
  const backbone = backboneConfig(cfg, vocab);
  if (opts.from && JSON.stringify(opts.from.backbone) !== JSON.stringify(backbone)) {
    throw new InputError(`trainContinuousCaptioner: "from" has a backbone of ${describeTransformer(opts.from.backbone)}, the config ${describeTransformer(backbone)}`);
  }
  if (opts.from && architecture(opts.from.config) !== architecture(cfg)) {
    throw new InputError(`trainContinuousCaptioner: "from" was built as ${architecture(opts.from.config)}, the config asks for ${architecture(cfg)}`);
  }
  let params: ContinuousParams = opts.from?.params ?? initContinuousParams(cfg, vocab);
  try {
    checkStagePatterns(stages, params);
  } catch (e) {
    if (!opts.from) tree.dispose(params as never);
    throw e;
  }
  const rng = hostRng(cfg.seed + 3);
  const loss = (p: Params, b: ContinuousBatch) => continuousCaptionLoss(p as unknown as ContinuousParams, b, cfg, layout, backbone);
  for (const [i, s] of stages.entries()) {
    const { patterns, select } = stagePatterns(s);
    const label = `the ${cfg.encoder} + ${cfg.projector} captioner, stage ${i + 1} (${s.stage}; ${describeTransformer(backbone)})`;
    const trainer = new FrozenTrainer<ContinuousBatch>(params as unknown as Params, patterns, loss, DEFAULT_ADAMW, { select, label });
    const progress = opts.progress === false ? undefined : new Progress({ label: `captioner ${s.stage}`, total: s.steps });
    const lr = s.lr ?? cfg.lr;
    const warmup = Math.min(30, Math.floor(s.steps / 10));
    try {
      for (let step = 0; step < s.steps; step++) {
        const idx = globalThis.Array.from({ length: cfg.batch }, () => Math.floor(rng() * train.n));
        const captions = idx.map((j) => text.encodeText(caption(train.labels[j]!, Math.floor(rng() * cfg.templates))));
        const r = await trainer.step(continuousBatch(vocab, layout, train, idx, captions), warmupCosine(step, { peak: lr, warmup, total: s.steps }));
        progress?.tick(1, { loss: r.loss });
      }
    } catch (e) {
      trainer.dispose();
      throw e;
    }
    progress?.done();
    params = trainer.release() as unknown as ContinuousParams;
  }
  return { config: cfg, backbone, vocab, text, layout, params };
}

/** Frees the captioner's parameters. */
export function disposeContinuousCaptioner(model: ContinuousCaptioner): void {
  tree.dispose(model.params as never);
}

/**
 * Greedy captions (text ids, without `<eos>`) of `images`, `batch` at a time. Decoding runs full
 * forward passes over the whole sequence, prefix embeddings included, once per caption token,
 * rather than the KV-cached `Decoder`: its prefill embeds token ids only, and captions are at
 * most M ≈ 7 tokens, so M passes over L ≈ 57 positions cost little. The passes all have one shape
 * (the ids buffer is always L long: positions past the current one are padding the causal mask
 * keeps unseen), so one `jit` compilation serves every step.
 */
export async function captionIds(model: ContinuousCaptioner, images: ImageSet, { batch = 250 }: { batch?: number } = {}): Promise<number[][]> {
  await startEngine();
  const { vocab, layout, config: cfg } = model;
  const prompt = compileSequence(vocab, captionDocument(undefined, layout.slots.length, layout.boc, layout.maxTokens));
  const [p, m, l, v] = [layout.prompt, layout.maxTokens, layout.length, vocab.size];
  const eos = vocab.special("<eos>");
  const { encoder, projector, backbone } = model.params;
  const embed = inferenceJit((x: Array) => embedImages(tree.ref({ encoder, projector }), x, cfg));
  const logitsOf = inferenceJit((e: Array, ids: Array) => captionLogits(tree.ref(backbone), e, ids, layout.slots, model.backbone));
  const out: number[][] = [];
  try {
    for (let start = 0; start < images.n; start += batch) {
      const b = Math.min(batch, images.n - start);
      const emb = embed(imagesAt(images, globalThis.Array.from({ length: b }, (_, i) => start + i))); // [b, S, D]
      const ids = new Int32Array(b * l).fill(vocab.padId);
      for (let i = 0; i < b; i++) ids.set(prompt.ids.subarray(0, p), i * l);
      const rows: number[][] = globalThis.Array.from({ length: b }, () => []);
      const done = new globalThis.Array<boolean>(b).fill(false);
      for (let k = 0; k < m && !done.every(Boolean); k++) {
        // the logits at position P + k − 1 predict token P + k
        const logits = (await logitsOf(emb.ref, fromHost(ids, [b, l])).slice([], p + k - 1).data()) as Float32Array; // [b·V]
        const allowed = prompt.allowedAt(p + k); // text (no pad) or <eos>
        for (let i = 0; i < b; i++) {
          if (done[i]) continue;
          let best = -1;
          for (let j = 0, top = -Infinity; j < v; j++) {
            const s = logits[i * v + j]! + allowed[j]!;
            if (s > top) [top, best] = [s, j];
          }
          if (best === eos) done[i] = true;
          else rows[i]!.push(best);
          if (p + k < l) ids[i * l + p + k] = best;
        }
      }
      emb.dispose();
      out.push(...rows);
    }
  } finally {
    embed.dispose();
    logitsOf.dispose();
  }
  return out;
}

/** Greedy captions of `images` as text. */
export async function captionImages(model: ContinuousCaptioner, images: ImageSet, opts: { batch?: number } = {}): Promise<string[]> {
  return (await captionIds(model, images, opts)).map((ids) => model.text.decodeText(ids));
}

export type ContinuousEvaluation = {
  /** Greedy captions that name the image's digit (`parseDigitFromCaption`), as the demo scores them. */
  readonly captionAccuracy: number;
  readonly captions: readonly string[];
};

/** Caption accuracy on the first `count` images of `test` (default all). */
export async function evaluateContinuousCaptioner(model: ContinuousCaptioner, test: ImageSet, { count = test.n }: { count?: number } = {}): Promise<ContinuousEvaluation> {
  const set = count < test.n ? subset(test, globalThis.Array.from({ length: count }, (_, i) => i)) : test;
  const captions = await captionImages(model, set);
  return { captionAccuracy: accuracy(captions.map(parseDigitFromCaption), set.labels), captions };
}

export type ContinuousCaptionReport = {
  /** on the demo's held-out digits (`DEMO_SPLIT`) */
  readonly caption_accuracy: number;
  readonly steps: number;
  readonly seconds: number;
  readonly captions_sample: readonly string[];
  readonly config: ContinuousCaptionConfig;
};

/**
 * `runContinuousCaptioning` keeping the captioner (the caller disposes it): trains `cfg` on the
 * embedded MNIST digits outside the demo's held-out split, with the demo's caption tokenizer
 * (trained on every caption template), and scores the first `captionImages` held-out digits (default all).
 */
export async function trainAndScoreContinuous(cfg: ContinuousCaptionConfig, { captionImages: count }: { captionImages?: number } = {}): Promise<{ model: ContinuousCaptioner; report: ContinuousCaptionReport }> {
  continuousShapes(cfg);
  await startEngine();
  const started = performance.now();
  const { train, test } = splitTrainTest(loadMnist(), DEMO_SPLIT);
  const text = TextTokenizer.fromJSON(await trainTextTokenizer(allCaptions()));
  const model = await trainContinuousCaptioner(train, text, cfg);
  try {
    const { captionAccuracy, captions } = await evaluateContinuousCaptioner(model, test, count === undefined ? {} : { count });
    const report = { caption_accuracy: captionAccuracy, steps: stagesOf(cfg).reduce((n, s) => n + s.steps, 0), seconds: (performance.now() - started) / 1000, captions_sample: captions.slice(0, 10), config: cfg };
    return { model, report };
  } catch (e) {
    disposeContinuousCaptioner(model);
    throw e;
  }
}

/**
 * Trains `cfg` on the embedded MNIST digits outside the demo's held-out split, with the demo's
 * caption tokenizer (trained on every caption template), and scores the held-out digits.
 */
export async function runContinuousCaptioning(cfg: ContinuousCaptionConfig = DEFAULT_CONTINUOUS): Promise<ContinuousCaptionReport> {
  const { model, report } = await trainAndScoreContinuous(cfg);
  disposeContinuousCaptioner(model);
  return report;
}
