import { fromHost, jit, lax, tree, type Array, type JsTree } from "../engine/index.ts";
import { during } from "../engine/out-of-memory.ts";
import { hostRng, KeyStream } from "../engine/rng.ts";
import { expectationsOf, paramsFromTensors, paramsToTensors } from "../engine/params.ts";
import type { TensorRecord } from "../io/safetensors.ts";
import { seededPermutation, subset } from "../data/shuffle.ts";
import type { ImageSet } from "../data/types.ts";
import { DEFAULT_ADAMW, warmupCosine } from "./optim.ts";
import { Trainer } from "./step.ts";
import { VqganTraining, vqganImageTerm, type VqganBatch, type VqganLosses } from "./vqgan.ts";
import type { JudgeParams } from "../eval/judge.ts";
import { CaptionWords, initObjective, maskPatches, objectiveTerm, type ObjectiveParams, type TokenizerObjective } from "./objectives.ts";
import { kmeans, restartDeadCodes } from "../tokenizers/quantizers/codebook-init.ts";
import { emaUpdate, initEmaState, type VQEmaState } from "../tokenizers/quantizers/vq.ts";
import type { CodebookAccess, QuantizerAdapter } from "../tokenizers/quantizers/adapter.ts";
import { makeQuantizer } from "../tokenizers/quantizers/registry.ts";
import {
  AutoencoderTokenizer,
  autoencoderLoss,
  decodeCodes,
  encodeLatents,
  initAutoencoder,
  type DecoderParams,
  latentGrid,
  type AutoencoderParams,
  type AutoencoderTokenizerConfig,
  type ConvAEConfig,
} from "../tokenizers/image/autoencoder.ts";

/**
 * Training of the conv auto-encoder tokenizer by auto-encoding, with any quantizer
 * (`trainAutoencoder` on an adapter, `trainAutoencoderTokenizer` on a saved-form config).
 * Codebook remedies against collapse, for quantizers with a learned codebook: k-means
 * initialization, dead-code restart, EMA codebook updates.
 */
export type AutoencoderTrainConfig = {
  readonly steps: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly seed: number;
  /** Re-seed codes unused over this many steps from current encoder outputs; 0 = never. */
  readonly restartEvery: number;
  /** Initialize the codebook by k-means on the first batch's latents. */
  readonly kmeansInit: boolean;
  /** How the tokenizer learns (train/objectives.ts); absent: auto-encoding. */
  readonly objective?: TokenizerObjective;
  /** VQGAN's perceptual and adversarial losses (train/vqgan.ts); absent: none. */
  readonly vqgan?: VqganLosses;
};

export const DEFAULT_AUTOENCODER_TRAIN: AutoencoderTrainConfig = { steps: 600, batchSize: 64, lr: 2e-3, seed: 0, restartEvery: 50, kmeansInit: true };

/** Called after every step with the loss, the metrics and codebook `usage` since the last restart, and the batch's ids [B·T]. */
export type TrainProgress = (step: number, fields: Record<string, number>, ids: Int32Array) => void;

/**
 * Everything a run needs to continue exactly where it stopped: after `step` steps, the device
 * state (params, AdamW moments, an EMA codebook and its running sums) as host tensors under
 * dotted names, the code counts since the last restart, and how many draws the host RNG (k-means,
 * restarts) has made. The batch order is a function of the step, so it is not stored.
 */
export type AutoencoderTrainState = {
  readonly step: number;
  readonly rngDraws: number;
  /** VQGAN's adaptive weight λ when it was last computed. */
  readonly ganWeight?: number;
  readonly counts: Int32Array;
  readonly tensors: Readonly<Record<string, TensorRecord>>;
};

/**
 * Resuming and checkpointing: `resume` continues a saved state; `onCheckpoint` receives one every
 * `every` steps. `captions` (one per image of the set) feed the contrastive objective; `classes`
 * the supervised one's head (default: the largest label + 1).
 */
export type AutoencoderCheckpointing = {
  readonly resume?: AutoencoderTrainState;
  readonly every?: number;
  readonly onCheckpoint?: (state: AutoencoderTrainState) => Promise<void> | void;
  readonly captions?: readonly string[];
  readonly classes?: number;
  /** The frozen feature network of VQGAN's perceptual loss (borrowed). */
  readonly perceptual?: JudgeParams;
};

/**
 * `restored` with the key order and empty branches of `like` (dotted names drop a branch with no
 * leaves, such as an EMA run's trainable quantizer `{}`), so its tree structure is `like`'s.
 */
function conform(like: unknown, restored: unknown): unknown {
  if (typeof like !== "object" || like === null || !Object.getPrototypeOf(like) || Object.getPrototypeOf(like) !== Object.prototype) return restored;
  const r = (restored ?? {}) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(like).map(([k, v]) => [k, conform(v, r[k])]));
}

/**
 * For VQGAN's adaptive weight: the batch's codes (fixed) and a decoder of them as a function of
 * the decoder's last weight. Consumes params and images.
 */
function reconstructAt<P extends JsTree<Array>>(p: AutoencoderParams<P>, images: Array, q: QuantizerAdapter<P>, cfg: ConvAEConfig): { decode: (w: Array) => Array; w: Array; done: () => void } {
  const r = q.quantize(p.quantizer, encodeLatents(p.enc, images, cfg));
  tree.dispose([r.losses, r.stats, r.indices] as never);
  const codes = lax.stopGradient(r.codes);
  const { t2, ...rest } = p.dec;
  return {
    decode: (w) => decodeCodes({ ...tree.ref(rest), t2: { w, b: t2.b.ref } } as DecoderParams, codes.ref, cfg),
    w: t2.w,
    done: () => tree.dispose([rest, t2.b, codes] as never),
  };
}

function checkCaptions(captions: readonly string[] | undefined, n: number): readonly string[] {
  if (!captions || captions.length !== n) throw new Error(`trainAutoencoder: the contrastive objective needs one caption per image (${n}), got ${captions?.length ?? "none"}`);
  return captions;
}

/** mulberry32(seed) that counts its draws, fast-forwarded past `skip` of them (to resume a run's stream). */
function countedRng(seed: number, skip: number): { next: () => number; readonly draws: number } {
  const rng = hostRng(seed);
  let draws = 0;
  for (; draws < skip; draws++) rng();
  return {
    next: () => (draws++, rng()),
    get draws() {
      return draws;
    },
  };
}

/** The images of `order[start .. start + size)`, as one [size·H·W] array. */
const batchOf = (set: ImageSet, order: Int32Array, start: number, size: number) => subset(set, order.subarray(start, start + size)).images;

/** Lookup-space vectors of a batch's latents, as host rows [N·h·w, C] (for k-means and restarts). Borrows params. */
async function lookupRows<P extends JsTree<Array>>(params: AutoencoderParams<P>, book: CodebookAccess<P>, images: Float32Array, cfg: ConvAEConfig): Promise<Float32Array> {
  const c = cfg.imageChannels ?? 1;
  const x = fromHost(images, [images.length / (c * cfg.height * cfg.width), c, cfg.height, cfg.width]);
  return (await book.toLookupSpace(tree.ref(params.quantizer), encodeLatents(tree.ref(params.enc), x, cfg)).data()) as Float32Array;
}

function codebookOf<P extends JsTree<Array>>(q: QuantizerAdapter<P>, train: AutoencoderTrainConfig): CodebookAccess<P> | undefined {
  if ((train.kmeansInit || train.restartEvery > 0) && !q.codebook) {
    throw new Error(`trainAutoencoder: quantizer "${q.name}" has no learned codebook; kmeansInit and restartEvery need one (set them to false / 0)`);
  }
  return q.codebook;
}

/**
 * Train the auto-encoder on `set` with quantizer `q`; returns the trained params (caller owns them).
 * With an EMA codebook (`q.codebook.ema`) the codebook is kept out of the optimizer: it rides in
 * each batch, and after every step `emaUpdate` moves it to the means of the latents assigned to it.
 */
export function trainAutoencoder<P extends JsTree<Array>>(
  set: ImageSet,
  cfg: ConvAEConfig,
  q: QuantizerAdapter<P>,
  train: AutoencoderTrainConfig,
  onProgress?: TrainProgress,
  checkpointing: AutoencoderCheckpointing = {},
): Promise<AutoencoderParams<P>> {
  return during(`training ${autoencoderLabel(cfg, q)}`, () => autoencoderTraining(set, cfg, q, train, onProgress, checkpointing));
}

const autoencoderLabel = <P extends JsTree<Array>>(cfg: ConvAEConfig, q: QuantizerAdapter<P>): string =>
  `the image auto-encoder (${cfg.height}×${cfg.width}, channels ${cfg.channels.join("/")}, ${q.name} quantizer of ${q.codebookSize} codes)`;

async function autoencoderTraining<P extends JsTree<Array>>(
  set: ImageSet,
  cfg: ConvAEConfig,
  q: QuantizerAdapter<P>,
  train: AutoencoderTrainConfig,
  onProgress: TrainProgress | undefined,
  { resume, every = 0, onCheckpoint, captions, classes, perceptual }: AutoencoderCheckpointing,
): Promise<AutoencoderParams<P>> {
  const book = codebookOf(q, train);
  if (resume && !(Number.isInteger(resume.step) && resume.step >= 0 && resume.step <= train.steps)) {
    throw new Error(`trainAutoencoder: the saved state is at step ${resume.step}, outside this run's 0..${train.steps}`);
  }
  const counted = countedRng(train.seed, resume?.rngDraws ?? 0);
  const rng = counted.next;
  const keys = new KeyStream(train.seed);
  let params = initAutoencoder(keys, cfg, q);
  keys.dispose();
  let epoch = 0;
  let order = seededPermutation(set.n, train.seed);
  const size = (a: Array) => a.shape as [number, number];
  const setCodebook = (p: AutoencoderParams<P>, codebook: Array): AutoencoderParams<P> => {
    book!.get(p.quantizer).dispose();
    return { ...p, quantizer: book!.with(p.quantizer, codebook) };
  };

  if (train.kmeansInit && !resume) {
    const [k, c] = size(book!.get(params.quantizer));
    const first = batchOf(set, order, 0, Math.max(train.batchSize, Math.ceil((4 * k) / q.tokensPerImage)));
    const rows = await lookupRows(params, book!, first, cfg);
    params = setCodebook(params, fromHost(kmeans(rows, c, k, { iters: 8, rng }), [k, c]));
  }

  // EMA: the optimizer trains everything but the codebook, which enters each step with the batch.
  const ema = book?.ema;
  let emaState: VQEmaState | undefined;
  const label = autoencoderLabel(cfg, q);
  let codebook: Array | undefined;
  type Batch = { images: Array; codebook?: Array; target?: Array; labels?: Array; caption?: Array; vq?: VqganBatch };
  const emaStep = ema && jit((s: VQEmaState, z: Array, ids: Array) => emaUpdate(s, z, ids, ema));
  if (ema) {
    codebook = book!.get(params.quantizer);
    emaState = initEmaState(codebook.ref);
  }
  // The objective's own parameters train beside the tokenizer's, drawn from another seed so the tokenizer's draws stay the same.
  const objective = train.objective ?? { kind: "autoencode" as const };
  const words = objective.kind === "contrastive" ? new CaptionWords(checkCaptions(captions, set.n)) : undefined;
  const captionIds = words && captions ? words.ids(captions) : undefined;
  const auxKeys = new KeyStream(train.seed + 7919);
  const aux = initObjective(auxKeys, objective, q.latentDim, { classes: classes ?? set.labels.reduce((a, b) => Math.max(a, b), 0) + 1, labels: set.labels }, words);
  auxKeys.dispose();
  const trainable = { ...(ema ? { ...params, quantizer: book!.without(params.quantizer) } : params), ...(Object.keys(aux).length > 0 && { aux }) };
  const loss = (p: typeof trainable, b: Batch) => {
    const { aux: a, ...rest } = p as typeof trainable & { aux?: ObjectiveParams };
    const ae = (ema ? { ...rest, quantizer: book!.with(rest.quantizer as P, b.codebook!) } : rest) as AutoencoderParams<P>;
    const extra = ema ? (qp: P, z: Array) => ({ lookup: book!.toLookupSpace(qp, z) }) : undefined;
    const term = a ? (codes: Array) => objectiveTerm(objective, a, codes, b) : undefined;
    const imageTerm = b.vq ? vqganImageTerm(train.vqgan!, b.vq) : undefined;
    return autoencoderLoss(ae, b.images, q, cfg, extra, { ...(b.target && { target: b.target }), ...(term && { term }), ...(imageTerm && { imageTerm }) });
  };
  const trainer: Trainer<Batch> = new Trainer(trainable, (p, b) => loss(p as typeof trainable, b as Batch), { ...DEFAULT_ADAMW, weightDecay: 0 }, { label });
  const current = () => {
    const { aux: _, ...p } = trainer.params as AutoencoderParams<P> & { aux?: ObjectiveParams };
    return (ema ? { ...p, quantizer: book!.with(p.quantizer, codebook!) } : p) as AutoencoderParams<P>;
  };
  const batchExtras = (start: number, images: Float32Array, step: number): Omit<Batch, "codebook"> => {
    const shape = [train.batchSize, cfg.imageChannels ?? 1, cfg.height, cfg.width] as const;
    const idx = order.subarray(start, start + train.batchSize);
    if (objective.kind === "masked") return { images: fromHost(maskPatches(images, shape, objective, train.seed, step), [...shape]), target: fromHost(images, [...shape]) };
    const x = fromHost(images, [...shape]);
    if (objective.kind === "supervised") return { images: x, labels: fromHost(Int32Array.from(idx, (i) => set.labels[i]!), [idx.length]) };
    if (objective.kind === "contrastive") {
      const l = words!.length;
      const ids = new Int32Array(idx.length * l);
      idx.forEach((i, r) => ids.set(captionIds!.subarray(i * l, (i + 1) * l), r * l));
      return { images: x, caption: fromHost(ids, [idx.length, l]) };
    }
    return { images: x };
  };

  const k = book ? size(book.get(current().quantizer))[0] : q.codebookSize;
  let counts = new Int32Array(k);
  const channels = cfg.imageChannels ?? 1;
  // Both weights 0: VQGAN's losses are off (presets carry them so that `--set` can turn them on).
  const vqOn = train.vqgan !== undefined && (train.vqgan.perceptualWeight > 0 || train.vqgan.discWeight > 0);
  const vq = vqOn ? new VqganTraining(train.vqgan!, channels, train.seed, perceptual, (p, images) => reconstructAt(p as AutoencoderParams<P>, images, q, cfg)) : undefined;
  // The device state as one tree, saved and restored under dotted names.
  const live = () => ({ params: trainer.params, opt: trainer.opt, ...(ema && { ema: { codebook: codebook!, state: emaState! } }), ...(vq && { vqgan: vq.live() }) });
  if (resume) {
    const like = live();
    const restored = conform(like, paramsFromTensors(resume.tensors, expectationsOf(like as never), "the saved training state", { zerosAllowed: true })) as ReturnType<typeof live>;
    tree.dispose(like as never);
    [trainer.params, trainer.opt] = [restored.params, restored.opt];
    if (restored.ema) [codebook, emaState] = [restored.ema.codebook, restored.ema.state];
    if (restored.vqgan) vq!.restore(restored.vqgan as never, resume.ganWeight ?? 0);
    if (resume.counts.length !== k) throw new Error(`trainAutoencoder: the saved state counts ${resume.counts.length} codes, this quantizer has ${k}`);
    counts = resume.counts.slice();
  }
  const snapshot = async (step: number): Promise<AutoencoderTrainState> => ({ step, rngDraws: counted.draws, ...(vq && { ganWeight: vq.lambda }), counts: counts.slice(), tensors: await paramsToTensors(live() as never) });

  // Epoch e visits seededPermutation(n, seed + e) in batches; a partial last batch is skipped.
  const perEpoch = Math.floor(set.n / train.batchSize);
  if (perEpoch < 1) throw new Error(`trainAutoencoder: ${set.n} images are fewer than one batch of ${train.batchSize}`);
  const first = resume?.step ?? 0;
  epoch = Math.floor(first / perEpoch);
  if (epoch > 0) order = seededPermutation(set.n, train.seed + epoch);
  let cursor = (first % perEpoch) * train.batchSize;
  for (let step = first; step < train.steps; step++) {
    if (cursor + train.batchSize > set.n) {
      order = seededPermutation(set.n, train.seed + ++epoch);
      cursor = 0;
    }
    const images = batchOf(set, order, cursor, train.batchSize);
    const batch = batchExtras(cursor, images, step);
    cursor += train.batchSize;
    const lr = warmupCosine(step, { peak: train.lr, warmup: 20, total: train.steps });
    // The clean images (masked modelling's target) are what the discriminator sees as real.
    const real = vq && (batch.target ?? batch.images).ref;
    if (vq) await vq.beforeStep(step, current() as never, batch.images.ref, real!.ref);
    const r = await trainer.step({ ...batch, ...(ema && { codebook: codebook!.ref }), ...(vq && { vq: vq.batch(step) }) }, lr);
    const discFields = vq ? await vq.afterStep(step, train.vqgan!.discLr, real!, fromHost(r.outputs.fake as Float32Array, real!.shape)) : {};
    const ids = r.outputs.indices as Int32Array;

    if (ema) {
      const c = codebook!.shape[1];
      const lookup = fromHost(r.outputs.lookup as Float32Array, [-1, c]);
      const next = emaStep!(emaState!, lookup, fromHost(ids, [ids.length]));
      codebook!.dispose();
      [codebook, emaState] = [next.codebook, next.state];
    }
    if (book) for (const id of ids) counts[id]++;
    // Usage over the steps since the last restart, read before a restart empties the counts.
    const fields: Record<string, number> = { loss: r.loss, ...r.metrics, ...discFields };
    if (book) fields.usage = counts.reduce((a, n) => a + (n > 0 ? 1 : 0), 0) / k;
    if (book && train.restartEvery > 0 && (step + 1) % train.restartEvery === 0 && step + 1 < train.steps * 0.8) {
      const rows = await lookupRows(current(), book, images, cfg);
      const old = book.get(current().quantizer);
      const c = size(old)[1];
      const restarted = fromHost(restartDeadCodes((await old.ref.data()) as Float32Array, counts, rows, c, rng).codebook, [k, c]);
      if (ema) {
        tree.dispose([codebook!, emaState!]);
        codebook = restarted;
        emaState = initEmaState(codebook.ref); // restarted codes start their running means afresh
      } else {
        trainer.params = setCodebook(trainer.params as AutoencoderParams<P>, restarted);
      }
      counts = new Int32Array(k);
    }
    onProgress?.(step, fields, ids);
    if (onCheckpoint && every > 0 && (step + 1) % every === 0 && step + 1 < train.steps) await onCheckpoint(await snapshot(step + 1));
  }
  const out = current();
  const { aux: trainedAux } = trainer.params as { aux?: ObjectiveParams };
  if (trainedAux) tree.dispose(trainedAux as never);
  trainer.params = {};
  trainer.dispose();
  if (emaState) tree.dispose(emaState);
  if (emaStep) emaStep.dispose();
  vq?.dispose();
  return out;
}

/** Train the tokenizer of `config` on `set` by auto-encoding; returns it (the caller owns it). */
export async function trainAutoencoderTokenizer(
  set: ImageSet,
  config: AutoencoderTokenizerConfig,
  train: AutoencoderTrainConfig = DEFAULT_AUTOENCODER_TRAIN,
  onProgress?: TrainProgress,
  checkpointing: AutoencoderCheckpointing = {},
): Promise<AutoencoderTokenizer> {
  const channels = config.imageChannels ?? 1;
  if (set.height !== config.height || set.width !== config.width || (set.channels ?? 1) !== channels) {
    throw new Error(`trainAutoencoderTokenizer: the data set's images are ${set.channels ?? 1}×${set.height}×${set.width}, the tokenizer expects ${channels}×${config.height}×${config.width}`);
  }
  const params = await trainAutoencoder(set, config, makeQuantizer(config.quantizer, latentGrid(config)), train, onProgress, checkpointing);
  return new AutoencoderTokenizer(params, config);
}
