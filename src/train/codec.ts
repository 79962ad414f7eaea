/**
 * Training of the neural audio codec (tokenizers/audio/codec.ts) as SoundStream and EnCodec train
 * theirs, less the adversarial terms: waveform L1 plus the multi-resolution STFT loss, the RVQ's
 * codebook and commitment losses, and quantizer dropout so that one model serves every bitrate.
 * Each step reads random windows of `segment` samples from the training clips (clips shorter than
 * a window are padded with silence). Codebooks start from k-means of the first batch's residuals,
 * level by level, and codes left unused are re-seeded from current residuals (dead-code restart).
 */
import { fromHost, lax, np, tree, type Array } from "../engine/index.ts";
import { inferenceJit } from "../engine/lean.ts";
import { during } from "../engine/out-of-memory.ts";
import { hostRng, KeyStream } from "../engine/rng.ts";
import type { Rng } from "../data/shuffle.ts";
import { DEFAULT_ADAMW, warmupCosine } from "./optim.ts";
import { Trainer } from "./step.ts";
import { kmeans, nearest, restartDeadCodes } from "../tokenizers/quantizers/codebook-init.ts";
import { sampleActiveLevels } from "../tokenizers/quantizers/rvq.ts";
import { DEFAULT_EMA } from "../tokenizers/quantizers/vq.ts";
import { encodeWave, hopOf, initCodec, reconstruct, rvqOptions, type CodecConfig, type CodecParams } from "../tokenizers/audio/codec.ts";
import { multiResolutionStftLoss } from "../tokenizers/audio/spectral-loss.ts";
import { DEFAULT_SEMANTIC, encodeUnits, fitSemanticUnits } from "../tokenizers/audio/semantic.ts";
import { initLinear, linear, type LinearParams } from "../nn/linear.ts";
import { weightedCrossEntropy } from "./losses.ts";

export type CodecTrainConfig = {
  readonly steps: number;
  readonly batchSize: number;
  /** Samples per training window; a multiple of the hop. */
  readonly segment: number;
  readonly lr: number;
  readonly seed: number;
  /** Weight of the multi-resolution STFT loss (the waveform L1 has weight 1). */
  readonly spectralWeight: number;
  /** STFT sizes of that loss (hop = nFft/4 each). */
  readonly resolutions: readonly number[];
  /** Re-seed codes unused over this many steps; 0 = never. */
  readonly restartEvery: number;
  /**
   * Semantic distillation (SpeechTokenizer, Zhang et al. 2024; Mimi, Défossez et al. 2024): the
   * weight of a cross-entropy that trains a linear head on RVQ level 0's codes to predict each
   * frame's semantic unit (MFCC k-means, tokenizers/audio/semantic.ts), so that level 0 carries
   * what is said and the later levels how. 0 = off.
   */
  readonly semanticWeight: number;
  /** k-means units the distillation predicts. */
  readonly semanticUnits: number;
};

/**
 * 2000 steps of 8 windows of 0.3 s: about 12 minutes on 2 cores. The spectral weight is small: the
 * STFT magnitudes ignore phase, and at weight 1 they pulled the waveform away from the clip
 * (held-out SI-SNR about 0 dB after 200 steps, against 4–7 dB with the waveform L1 leading;
 * docs/audio/codec.md).
 */
export const DEFAULT_CODEC_TRAIN: CodecTrainConfig = {
  steps: 2000,
  batchSize: 8,
  segment: 4800,
  lr: 3e-3,
  seed: 0,
  spectralWeight: 0.005,
  resolutions: [128, 256, 512, 1024],
  restartEvery: 50,
  semanticWeight: 0,
  semanticUnits: 64,
};

export type CodecProgress = (step: number, fields: Record<string, number>) => void;

/**
 * Windows of `segment` samples at random places in random clips: [B·segment]. Each row's clip and
 * the sample of that clip where the window starts (negative: the clip starts inside the window,
 * silence around it), both multiples of `align`.
 */
function drawBatch(clips: readonly Float32Array[], batch: number, segment: number, rng: Rng, align = 1): { wave: Float32Array; clip: Int32Array; at: Int32Array } {
  const out = new Float32Array(batch * segment);
  const clip = new Int32Array(batch);
  const at = new Int32Array(batch);
  const place = (room: number) => align * Math.floor(rng() * (Math.floor(room / align) + 1));
  for (let b = 0; b < batch; b++) {
    clip[b] = Math.floor(rng() * clips.length);
    const x = clips[clip[b]!]!;
    if (x.length <= segment) {
      const p = place(segment - x.length);
      out.set(x, b * segment + p);
      at[b] = -p;
    } else {
      at[b] = place(x.length - segment);
      out.set(x.subarray(at[b]!, at[b]! + segment), b * segment);
    }
  }
  return { wave: out, clip, at };
}

/** Each window frame's unit (0 where the frame is outside its clip, with weight 0): targets and weights [B·F]. */
function unitTargets(units: readonly Int32Array[], drawn: { clip: Int32Array; at: Int32Array }, frames: number, hop: number): { targets: Int32Array; weights: Float32Array } {
  const n = drawn.clip.length;
  const targets = new Int32Array(n * frames);
  const weights = new Float32Array(n * frames);
  for (let b = 0; b < n; b++) {
    const u = units[drawn.clip[b]!]!;
    for (let f = 0; f < frames; f++) {
      const t = drawn.at[b]! / hop + f;
      if (t < 0 || t >= u.length) continue;
      targets[b * frames + f] = u[t]!;
      weights[b * frames + f] = 1;
    }
  }
  return { targets, weights };
}

/** The encoder's latents of `wave` ([rows·segment]), on the host: [rows·F, D], encoded `chunk` rows at a time. Borrows params. */
async function latentRows(params: CodecParams, wave: Float32Array, rows: number, cfg: CodecConfig, chunk = 16): Promise<Float32Array> {
  const segment = wave.length / rows;
  const encode = inferenceJit((p: CodecParams["enc"], x: Array) => encodeWave(p, x, cfg));
  const parts: Float32Array[] = [];
  try {
    for (let r = 0; r < rows; r += chunk) {
      const n = Math.min(chunk, rows - r);
      parts.push((await encode(tree.ref(params.enc), fromHost(wave.subarray(r * segment, (r + n) * segment), [n, segment])).data()) as Float32Array);
    }
  } finally {
    encode.dispose();
  }
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

/** What level i leaves of its input: each row minus its nearest code. */
function subtractNearest(residual: Float32Array, book: Float32Array, d: number): Float32Array {
  const k = book.length / d;
  const next = new Float32Array(residual.length);
  for (let i = 0; i < residual.length / d; i++) {
    const best = nearest(residual, i, book, k, d);
    for (let j = 0; j < d; j++) next[i * d + j] = residual[i * d + j]! - book[best * d + j]!;
  }
  return next;
}

/** EMA state of one level's codebook: running counts [K] and sums [K·D] of the residuals assigned to each code. */
type EmaLevel = { count: Float64Array; sum: Float64Array };

/** A level's state for `book` as if each code had been seen once, at itself. */
function emaOf(book: Float32Array, k: number): EmaLevel {
  return { count: new Float64Array(k).fill(1), sum: Float64Array.from(book) };
}

/**
 * One EMA step (VQ-VAE appendix; SoundStream and EnCodec train their codebooks so): the running
 * counts and sums move toward this batch's, and each code becomes its Laplace-smoothed mean.
 * Rows [N, D] of this level's input, ids [N]. Updates `ema` and `book` in place.
 */
function emaStep(ema: EmaLevel, book: Float32Array, rows: Float32Array, ids: Int32Array, d: number, { decay, eps }: { decay: number; eps: number }): void {
  const k = ema.count.length;
  const n = new Float64Array(k);
  const sums = new Float64Array(k * d);
  ids.forEach((id, i) => {
    n[id]++;
    for (let j = 0; j < d; j++) sums[id * d + j] += rows[i * d + j]!;
  });
  let total = 0;
  for (let c = 0; c < k; c++) total += (ema.count[c] = decay * ema.count[c]! + (1 - decay) * n[c]!);
  for (let c = 0; c < k; c++) {
    const smoothed = ((ema.count[c]! + eps) / (total + k * eps)) * total;
    for (let j = 0; j < d; j++) {
      const v = (ema.sum[c * d + j] = decay * ema.sum[c * d + j]! + (1 - decay) * sums[c * d + j]!);
      book[c * d + j] = v / smoothed;
    }
  }
}

/** Level i's input residuals: z minus the codes levels 0..i−1 picked. z [N, D], ids [N, L] (level fastest). */
function residualsFromIds(z: Float32Array, ids: Int32Array, books: readonly Float32Array[], d: number, active: number): Float32Array[] {
  const levels = books.length;
  const out: Float32Array[] = [];
  let r = z;
  for (let i = 0; i < active; i++) {
    out.push(r);
    const next = new Float32Array(r.length);
    for (let row = 0; row < r.length / d; row++) {
      const id = ids[row * levels + i]!;
      for (let j = 0; j < d; j++) next[row * d + j] = r[row * d + j]! - books[i]![id * d + j]!;
    }
    r = next;
  }
  return out;
}

/** Semantic units of each clip, one per codec frame, from k-means fit on these clips. */
async function clipUnits(clips: readonly Float32Array[], cfg: CodecConfig, units: number): Promise<Int32Array[]> {
  const hop = hopOf(cfg);
  const semantic = { ...DEFAULT_SEMANTIC, sampleRate: cfg.sampleRate, hop, nFft: 3 * hop, units };
  return encodeUnits(await fitSemanticUnits(clips, semantic), clips);
}

/** Train a codec of `cfg` on `clips` (mono, at cfg.sampleRate); returns its params (the caller owns them). */
export function trainCodec(clips: readonly Float32Array[], cfg: CodecConfig, train: CodecTrainConfig = DEFAULT_CODEC_TRAIN, onProgress?: CodecProgress): Promise<CodecParams> {
  return during(`training the audio codec (${cfg.rvq.levels} RVQ levels of ${cfg.rvq.codebookSize} codes, batch ${train.batchSize} × ${train.segment} samples)`, () => codecTraining(clips, cfg, train, onProgress));
}

async function codecTraining(clips: readonly Float32Array[], cfg: CodecConfig, train: CodecTrainConfig, onProgress?: CodecProgress): Promise<CodecParams> {
  const hop = hopOf(cfg);
  if (!Number.isInteger(train.segment) || train.segment < hop || train.segment % hop !== 0) {
    throw new Error(`trainCodec: segment must be a positive multiple of the hop (${hop} samples), got ${train.segment}`);
  }
  if (clips.length === 0) throw new Error("trainCodec: no training clips");
  const rng = hostRng(train.seed);
  const keys = new KeyStream(train.seed);
  let params = initCodec(keys, cfg);
  keys.dispose();
  const { levels, codebookSize: k } = cfg.rvq;
  const d = cfg.latentDim;

  // k-means, level by level: each level's codebook from the residuals the levels before it leave
  const books: Float32Array[] = [];
  {
    const rows = Math.max(train.batchSize, Math.ceil((2 * k * hop) / train.segment));
    let residual = await latentRows(params, drawBatch(clips, rows, train.segment, rng).wave, rows, cfg);
    for (let i = 0; i < levels; i++) {
      books.push(kmeans(residual, d, k, { iters: 8, rng }));
      if (i + 1 < levels) residual = subtractNearest(residual, books[i]!, d);
    }
  }
  const emas = books.map((b) => emaOf(b, k));
  tree.dispose(params.rvq);

  // semantic distillation's targets: every training clip's units, the head on level 0's codes
  const distill = train.semanticWeight > 0;
  const units = distill ? await clipUnits(clips, cfg, train.semanticUnits) : [];
  const frames = train.segment / hop;

  // The codebooks follow EMA updates on the host, so the optimizer trains encoder and decoder
  // (and the distillation head) only; the codebooks ride in each batch.
  const opts = rvqOptions(cfg);
  type Batch = { wave: Array; mask: Array; books: Array[]; units?: Array; unitWeights?: Array };
  type Trainable = Omit<CodecParams, "rvq"> & { head?: LinearParams };
  const loss = (p: Trainable, b: Batch): [Array, Record<string, Array>] => {
    const { head, ...codec } = p;
    const r = reconstruct({ ...codec, rvq: { levels: b.books.map((codebook) => ({ codebook })) } }, b.wave.ref, cfg, b.mask, { withFirstLevel: head !== undefined });
    const l1 = np.abs(r.recon.ref.sub(b.wave.ref)).mean();
    const spectral = multiResolutionStftLoss(b.wave, r.recon, train.resolutions);
    r.losses.codebook!.dispose(); // the EMA moves the codebooks
    let total = l1.ref.add(spectral.ref.mul(train.spectralWeight)).add(r.losses.commitment!.ref);
    const extra: Record<string, Array> = {};
    if (head && r.firstLevel && b.units && b.unitWeights) {
      const logits = linear(head, r.firstLevel); // [B, F, U]
      const hit = np.argmax(lax.stopGradient(logits.ref), -1).equal(b.units.ref).astype(np.float32);
      extra.unitAccuracy = hit.mul(b.unitWeights.ref).sum().div(b.unitWeights.ref.sum().add(1e-9));
      extra.semantic = weightedCrossEntropy(logits, b.units, b.unitWeights);
      total = total.add(extra.semantic.ref.mul(train.semanticWeight));
    }
    return [total, { l1, spectral, commitment: r.losses.commitment!, ...r.stats, ...extra, indices: r.indices, latents: r.latents }];
  };
  const init = { enc: params.enc, dec: params.dec, ...(distill ? { head: initLinear(new KeyStream(train.seed + 1), d, train.semanticUnits) } : {}) };
  const trainer = new Trainer<Batch>(init as never, (p, b) => loss(p as unknown as Trainable, b), { ...DEFAULT_ADAMW, weightDecay: 0 }, {
    label: `the audio codec (${levels} RVQ levels of ${k} codes)`,
  });
  let counts = globalThis.Array.from({ length: levels }, () => new Int32Array(k));
  for (let step = 0; step < train.steps; step++) {
    const drawn = drawBatch(clips, train.batchSize, train.segment, rng, distill ? hop : 1);
    const active = sampleActiveLevels(opts, rng);
    const mask = Float32Array.from({ length: levels }, (_, i) => (i < active ? 1 : 0));
    const lr = warmupCosine(step, { peak: train.lr, warmup: Math.min(50, Math.ceil(train.steps / 10)), total: train.steps });
    const deviceBooks = books.map((b) => fromHost(b, [k, d]));
    const batch: Batch = { wave: fromHost(drawn.wave, [train.batchSize, train.segment]), mask: fromHost(mask, [levels]), books: deviceBooks };
    if (distill) {
      const t = unitTargets(units, drawn, frames, hop);
      batch.units = fromHost(t.targets, [train.batchSize, frames]);
      batch.unitWeights = fromHost(t.weights, [train.batchSize, frames]);
    }
    const r = await trainer.step(batch, lr);
    const ids = r.outputs.indices as Int32Array; // [N·L], level fastest
    const residuals = residualsFromIds(r.outputs.latents as Float32Array, ids, books, d, active);
    for (let i = 0; i < active; i++) {
      const levelIds = Int32Array.from({ length: ids.length / levels }, (_, row) => ids[row * levels + i]!);
      for (const id of levelIds) counts[i]![id]++;
      emaStep(emas[i]!, books[i]!, residuals[i]!, levelIds, d, DEFAULT_EMA);
    }
    if (train.restartEvery > 0 && (step + 1) % train.restartEvery === 0 && step + 1 < train.steps * 0.8) {
      for (let i = 0; i < active; i++) {
        const { codebook } = restartDeadCodes(books[i]!, counts[i]!, residuals[i]!, d, rng);
        for (let c = 0; c < k; c++) {
          if (counts[i]![c]! > 0) continue;
          emas[i]!.count[c] = 1; // a restarted code starts its running mean afresh, at its new seed
          for (let j = 0; j < d; j++) emas[i]!.sum[c * d + j] = codebook[c * d + j]!;
        }
        books[i] = codebook;
      }
      counts = counts.map(() => new Int32Array(k));
    }
    const usage = counts.reduce((a, c) => a + c.reduce((u, n) => u + (n > 0 ? 1 : 0), 0), 0) / (levels * k);
    const z = r.outputs.latents as Float32Array;
    const power = z.reduce((a, v) => a + v * v, 0) / z.length;
    onProgress?.(step, { loss: r.loss, ...r.metrics, levels: active, usage, relResidual: (r.metrics.residual ?? 0) / power });
  }
  const { head, ...trained } = trainer.params as unknown as Trainable;
  if (head) tree.dispose(head);
  trainer.params = {};
  trainer.dispose();
  return { ...trained, rvq: { levels: books.map((b) => ({ codebook: fromHost(b, [k, d]) })) } };
}


export { drawBatch as drawCodecBatch, unitTargets as codecUnitTargets };
