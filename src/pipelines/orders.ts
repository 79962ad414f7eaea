/**
 * Pipeline stage: the demo's text→image model trained and sampled in any generation order of
 * the survey — raster, MaskGIT, random order (RAR), next scale (VAR) — on the same data, layout and
 * budget, so that the orders can be compared (issue #21). Captions are dropped from a share of the
 * training examples (MaskGIT, Muse and VAR drop 10%), which trains the unconditional model that
 * classifier-free guidance needs; the caption slot keeps the prompt the same length either way.
 * The next-scale order needs an image tokenizer with the multi-scale quantizer (`tokenShape` [Σ s²]).
 */
import { join } from "node:path";
import { KeyStream, hostRng } from "../engine/rng.ts";
import { fromHost, tree } from "../engine/index.ts";
import { randomCaption } from "../data/captions.ts";
import { writeAtomic } from "../io/checkpoint.ts";
import { writeGrayGrid } from "../io/png.ts";
import { Progress } from "../io/progress.ts";
import { initTargetPositions, type OrderParams } from "../backbone/orders/forward.ts";
import { MASK_TOKEN } from "../backbone/orders/masked.ts";
import { checkScales } from "../backbone/orders/next-scale.ts";
import { batchOrderRows, type OrderBatch } from "../backbone/orders/rows.ts";
import { trainingRow, type TrainedOrder } from "../backbone/orders/training.ts";
import { compileSequence } from "../backbone/sequence/compile.ts";
import { textToImageDocument, type PairedLayout } from "../backbone/sequence/presets.ts";
import { JointVocab } from "../backbone/sequence/vocab.ts";
import { describeTransformer, initTransformer, type TransformerConfig } from "../backbone/transformer.ts";
import { encodeGrayGif, tileGray } from "../generate/gif.ts";
import type { GuidanceSchedule } from "../generate/guidance.ts";
import { orderLength, type DecodeOrder, type OrderDecoder, type OrderModel } from "../generate/order-decoder.ts";
import type { SamplingOptions } from "../generate/sampling.ts";
import type { StepPreview } from "../generate/schedule.ts";
import { maskedTokenLoss } from "../train/masked.ts";
import { DEFAULT_ADAMW, warmupCosine } from "../train/optim.ts";
import { Trainer } from "../train/step.ts";
import { decodeIds, type AutoencoderTokenizer } from "../tokenizers/image/autoencoder.ts";
import type { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { PAIRED_SPECIALS, type TokenizedSet, type UnifiedTrainConfig } from "./unified.ts";

/** The paired layout's specials and `<mask>` (MaskGIT's input token; unused by the other orders). */
export const ORDER_SPECIALS = [...PAIRED_SPECIALS, MASK_TOKEN] as const;

/** Text ids, `<bos> <boi> <eoi> <eos> <mask>`, then the image codes: one vocabulary for every order. */
export function orderVocab(text: TextTokenizer, imageCodes: number): JointVocab {
  const pad = text.tokenToId("<pad>");
  if (pad === undefined) throw new Error("orderVocab: the text tokenizer has no <pad> token");
  return orderVocabOfSizes(text.vocabSize, imageCodes, pad);
}

/** `orderVocab` from sizes alone (benchmarks, tests). */
export function orderVocabOfSizes(textSize: number, imageCodes: number, pad = 0): JointVocab {
  return JointVocab.build({ text: { size: textSize, pad }, specials: ORDER_SPECIALS, modalities: [{ name: "image", size: imageCodes, begin: "<boi>", end: "<eoi>" }] });
}

/**
 * The demo model's training settings, plus the order. model.contextLength must hold the order's
 * sequence (`orderLength`; next-scale: P − 1 + Σ s²); layout.captionSlot fixes the prompt length.
 */
export type OrderTrainConfig = UnifiedTrainConfig & {
  readonly order: TrainedOrder;
  /** share of examples without their caption, in [0, 1) (default 0.1) */
  readonly captionDropout?: number;
};

/** `<bos> caption <pad>… <boi>`: the prompt of a caption (ids) under `layout`, image shape `shape`. */
export function imagePrompt(vocab: JointVocab, caption: readonly number[], shape: readonly number[], layout: PairedLayout): number[] {
  const c = compileSequence(vocab, textToImageDocument(caption, undefined, shape, { layout }));
  return Array.from(c.ids.subarray(0, c.promptLength));
}

/** Train a fresh model for `cfg.order` on text→image examples of `data`; every batch draws new masks / permutations. */
export async function trainWithOrder(data: TokenizedSet, text: TextTokenizer, vocab: JointVocab, cfg: OrderTrainConfig): Promise<OrderModel> {
  const n = data.ids.length / data.n;
  const order = cfg.order;
  if (order.name === "next-scale") checkScales(order.scales, n, "trainWithOrder: next-scale");
  if (!(cfg.layout.captionSlot > 0)) throw new Error(`trainWithOrder: layout.captionSlot must be > 0 (every prompt, captioned or not, the same length, as decoding and guidance need), got ${cfg.layout.captionSlot}`);
  const dropout = cfg.captionDropout ?? 0.1;
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`trainWithOrder: captionDropout ${dropout} must be in [0, 1)`);
  const config: TransformerConfig = { ...cfg.model, vocabSize: vocab.size };
  const promptLength = imagePrompt(vocab, [], data.shape, cfg.layout).length;
  const need = orderLength(order.name, promptLength, n);
  if (need > config.contextLength) throw new Error(`trainWithOrder: the ${order.name} order needs a context of ${need} (a prompt of ${promptLength} and ${n} image tokens), got model.contextLength ${config.contextLength}`);
  const keys = new KeyStream(cfg.seed + 7);
  const params: OrderParams = initTransformer(keys, config);
  if (order.name === "random") params.target = initTargetPositions(keys, n, config.dim);
  keys.dispose();
  const trainer = new Trainer<OrderBatch>(params, (p, b) => maskedTokenLoss(p as OrderParams, b, config), DEFAULT_ADAMW, {
    label: `the ${cfg.order} transformer (${describeTransformer(config)})`,
  });
  const rng = hostRng(cfg.seed + 3);
  const offset = vocab.range("image").start;
  const maskId = vocab.hasSpecial(MASK_TOKEN) ? vocab.special(MASK_TOKEN) : undefined;
  const progress = new Progress({ label: `${order.name} transformer`, total: cfg.steps });
  for (let step = 0; step < cfg.steps; step++) {
    const rows = Array.from({ length: cfg.batchSize }, () => {
      const j = Math.floor(rng() * data.n);
      const caption = rng() < dropout ? [] : text.encodeText(randomCaption(data.labels[j]!, rng));
      const image = Array.from(data.ids.subarray(j * n, (j + 1) * n), (c) => offset + c);
      return trainingRow(order, imagePrompt(vocab, caption, data.shape, cfg.layout), image, { rng, progress: step / cfg.steps, ...(maskId === undefined ? {} : { maskId }) });
    });
    const r = await trainer.step(batchOrderRows(rows, { length: config.contextLength, padId: vocab.padId }), warmupCosine(step, { peak: cfg.lr, warmup: 30, total: cfg.steps }));
    progress.tick(1, { loss: r.loss });
  }
  progress.done();
  const trained = trainer.params as OrderParams;
  trainer.params = {};
  trainer.dispose();
  return { params: trained, config, order };
}

export type OrderSamplingOptions = {
  readonly order: DecodeOrder;
  readonly sampling: SamplingOptions;
  readonly seed: number;
  /** classifier-free guidance scale against the caption-free prompt; 1 = off */
  readonly guidance: number;
  readonly guidanceSchedule?: GuidanceSchedule;
  readonly layout: PairedLayout;
  readonly onStep?: (preview: StepPreview) => void | Promise<void>;
};

/**
 * At most this many captions decode together. A jitted pass keeps every intermediate until it
 * ends (about 7 MB per row for next-scale's 95-token passes of the demo-size model), so 512 rows
 * (256 guided samples) would pass the 4 GiB wasm heap.
 */
export const MAX_GENERATE_BATCH = 32;

/**
 * caption ids → image codes, one image per caption, decoded in `opts.order`, in chunks of
 * MAX_GENERATE_BATCH captions (chunk c draws with seed `opts.seed + c`). `onStep` sees every
 * step's images of all captions, after the last chunk.
 */
export async function generateWithOrder(decoder: OrderDecoder, vocab: JointVocab, captions: readonly (readonly number[])[], shape: readonly number[], opts: OrderSamplingOptions): Promise<number[][]> {
  const free = imagePrompt(vocab, [], shape, opts.layout);
  const out: number[][] = [];
  const steps: StepPreview[][] = [];
  for (let c = 0; c * MAX_GENERATE_BATCH < captions.length; c++) {
    const prompts = captions.slice(c * MAX_GENERATE_BATCH, (c + 1) * MAX_GENERATE_BATCH).map((x) => imagePrompt(vocab, x, shape, opts.layout));
    const images = await decoder.generate(prompts, {
      order: opts.order,
      image: { modality: "image", shape },
      sampling: opts.sampling,
      seed: opts.seed + c,
      ...(opts.guidance === 1 ? {} : { guidance: { prompts: prompts.map(() => free), scale: opts.guidance, ...(opts.guidanceSchedule ? { schedule: opts.guidanceSchedule } : {}) } }),
      ...(opts.onStep ? { onStep: (p: StepPreview) => void (steps[p.step] ??= []).push(p) } : {}),
    });
    out.push(...images.map((im) => Array.from(im)));
  }
  if (opts.onStep) for (const parts of steps) await opts.onStep({ ...parts[0]!, images: parts.flatMap((p) => p.images) });
  return out;
}

/**
 * Decodes every step's partial images to pixels: `onStep` goes to `generateWithOrder`, `frames`
 * then holds one [count·C·H·W] array per step. Positions not yet generated show the codes of a
 * black image (the tokenizer's own encoding of one); a multi-scale tokenizer's partial images are
 * the scales so far, summed and decoded (VAR's coarse-to-fine preview).
 */
export async function previewRecorder(tokenizer: AutoencoderTokenizer): Promise<{ onStep: (p: StepPreview) => Promise<void>; frames: Float32Array[] }> {
  const blank = await tokenizer.encodeImages(new Float32Array(tokenizer.imageSize), 1);
  const frames: Float32Array[] = [];
  const multiscale = tokenizer.quantizer.name === "multiscale";
  const onStep = async (p: StepPreview) => {
    const b = p.images.length;
    const known = p.images[0]!.findIndex((x) => x < 0);
    if (multiscale && known > 0 && p.images.every((im) => im.findIndex((x) => x < 0) === known)) {
      const prefix = new Int32Array(b * known);
      p.images.forEach((im, i) => prefix.set(im.subarray(0, known), i * known));
      const out = decodeIds(tree.ref(tokenizer.params), fromHost(prefix, [b, known]), tokenizer.quantizer, tokenizer.config);
      frames.push((await out.data()) as Float32Array);
      return;
    }
    const ids = new Int32Array(b * blank.length);
    p.images.forEach((im, i) => ids.set(im.map((x, j) => (x < 0 ? blank[j]! : x)), i * blank.length));
    frames.push(await tokenizer.decodeImages(ids, b));
  };
  return { onStep, frames };
}

/** Writes `step-01.png`, … (one grid per step) and `steps.gif` (the animation) into `dir` (which must exist). */
export function writePreviews(dir: string, frames: readonly Float32Array[], grid: { readonly height: number; readonly width: number; readonly count: number; readonly cols?: number }): string[] {
  const { height, width, count, cols = Math.ceil(Math.sqrt(count)) } = grid;
  const digits = String(frames.length).length;
  const written = frames.map((f, k) => {
    const path = join(dir, `step-${String(k + 1).padStart(digits, "0")}.png`);
    writeGrayGrid(path, f, { height, width, count, cols });
    return path;
  });
  const tiles = frames.map((f) => tileGray(f.subarray(0, count * height * width), count, { height, width, cols }));
  const gif = join(dir, "steps.gif");
  writeAtomic(gif, encodeGrayGif(tiles.map((t) => t.pixels), tiles[0]!.height, tiles[0]!.width));
  return [...written, gif];
}
