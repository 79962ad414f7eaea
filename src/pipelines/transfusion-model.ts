/**
 * A Transfusion-style model as pure functions of (params, inputs) (Zhou et al. 2024, §3): one
 * transformer over text tokens and continuous image patches, two sequence kinds
 *
 *   caption → image   <bos> caption(padded to M) <boi> [x_t: N patches] (<eoi>)
 *   image → caption   <bos> <boi> [x_t: N patches] <eoi> caption <eos>
 *
 * each image position's input is W_in·x_t,k + P_k + TimeMLP(sinusoid(t)) (§3.2: a linear patch
 * encoder, the timestep embedding added to every patch; P_k a learned patch position, so both
 * layouts see one image grid), with one t per image. Attention is causal, except that the N
 * image positions see each other (§3.2, Fig. 4: "bidirectional attention within an image").
 * Outputs: the LM head at every position (next-token cross-entropy on the text), and W_out at
 * the image positions, ε̂ for that patch (not shifted: the patch's own x_t is at its position),
 * or x̂_0 under the config's `prediction: "x0"`.
 *
 *   L = L_LM + λ·L_DDPM,  L_DDPM = E ‖ε − ε̂(x_t, t, context)‖² (mean over patches and values)
 *                         or E ‖x_0 − x̂_0(x_t, t, context)‖²
 *
 * Patches are raw p×p pixels scaled to [−1, 1] (the paper uses a VAE's latents; an MNIST digit
 * needs none). Parameter paths: `backbone.*` (with its LM head), `patchIn.*`, `patchPos.*`,
 * `time.*`, `patchOut.*`.
 */
import { fromHost, nn, np, random, tree, type Array } from "../engine/index.ts";
import { KeyStream } from "../engine/rng.ts";
import type { ImageSet } from "../data/types.ts";
import { InputError } from "../io/errors.ts";
import type { EmbeddingParams } from "../nn/embedding.ts";
import { initLinear, linear, type LinearParams } from "../nn/linear.ts";
import { batchSequences } from "../backbone/batch.ts";
import { blockCausalMaskHost } from "../backbone/masks.ts";
import { compileSequence } from "../backbone/sequence/compile.ts";
import type { SequenceDocument, TextSegment } from "../backbone/sequence/document.ts";
import { JointVocab } from "../backbone/sequence/vocab.ts";
import { embedInputs, hidden, initTransformer, lmHead, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";
import { timestepEmbedding } from "../backbone/heads/diffusion-head.ts";
import { qSample, type DiffusionSchedule } from "../backbone/heads/diffusion-schedule.ts";
import { diffusionDraws } from "../train/diffusion-loss.ts";
import { tokenLogProbs } from "../train/losses.ts";
import { patchify, unpatchify } from "../tokenizers/continuous/patches.ts";
import type { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { imagesAt } from "./continuous-model.ts";
import { transfusionShapes, type TransfusionConfig } from "./transfusion-config.ts";

export const TRANSFUSION_SPECIALS = ["<bos>", "<boi>", "<eoi>", "<eos>", "<img>"] as const;
export const TRANSFUSION_PLACEHOLDER = "<img>";

/** Text ids, then the five specials; no discrete image codes. */
export function transfusionVocab(text: TextTokenizer): JointVocab {
  const pad = text.tokenToId("<pad>");
  if (pad === undefined) throw new Error("transfusionVocab: the text tokenizer has no <pad> token");
  return JointVocab.build({ text: { size: text.vocabSize, pad }, specials: TRANSFUSION_SPECIALS, modalities: [], placeholders: [TRANSFUSION_PLACEHOLDER] });
}

export type TransfusionParams = {
  backbone: TransformerParams;
  /** x_t patch [Dx] → D */
  patchIn: LinearParams;
  /** [N, D], one row per patch of the grid (initially `sincos2d`) */
  patchPos: EmbeddingParams;
  /** sinusoid(t) [F] → D → D (SiLU between) */
  time: { fc1: LinearParams; fc2: LinearParams };
  /** h [D] → ε̂ [Dx] */
  patchOut: LinearParams;
};

/** What the denoiser reads: everything but the LM head. */
export type DenoiserParams = Omit<TransfusionParams, "backbone"> & { backbone: Omit<TransformerParams, "head"> };

/** The denoiser's view of `p` (the same arrays, not copies): everything but the LM head. */
export function denoiserParams(p: TransfusionParams): DenoiserParams {
  const { tok, pos, blocks, lnf } = p.backbone;
  return { backbone: { tok, ...(pos && { pos }), blocks, lnf }, patchIn: p.patchIn, patchPos: p.patchPos, time: p.time, patchOut: p.patchOut };
}

export const transfusionBackboneConfig = (cfg: TransfusionConfig, vocab: JointVocab): TransformerConfig => ({ ...cfg.backbone, vocabSize: vocab.size });

/**
 * 2-D sinusoidal positions of a rows × cols grid, [rows·cols, D]: the sinusoid of the row in the
 * first D/2 channels, of the column in the last D/2 (DiT's and MAE's `get_2d_sincos_pos_embed`,
 * Peebles & Xie 2023). Values in [−1, 1].
 */
export function sincos2d(rows: number, cols: number, dim: number): Array {
  const n = rows * cols;
  const r = fromHost(Int32Array.from({ length: n }, (_, k) => Math.floor(k / cols)), [n]);
  const c = fromHost(Int32Array.from({ length: n }, (_, k) => k % cols), [n]);
  return np.concatenate([timestepEmbedding(r, dim / 2), timestepEmbedding(c, dim / 2)], -1);
}

/**
 * Fresh parameters from `cfg.seed`. The patch positions start as 2-D sin-cos positions (learned
 * from there): W_in·x_t is of order 1, so positions at the token table's scale (N(0, 0.02²))
 * would leave the patches hardly told apart, and the model arranges them at random. The time
 * MLP has fan-in weights, for the same reason. ε̂ starts at 0 (a zero W_out, as DiT's final layer).
 */
export function initTransfusionParams(cfg: TransfusionConfig, vocab: JointVocab): TransfusionParams {
  const { rows, cols, patchDim } = transfusionShapes(cfg);
  const d = cfg.backbone.dim;
  const keys = new KeyStream(cfg.seed + 19);
  try {
    return {
      backbone: initTransformer(keys, transfusionBackboneConfig(cfg, vocab)),
      patchIn: initLinear(keys, patchDim, d),
      patchPos: { table: sincos2d(rows, cols, d) },
      time: { fc1: initLinear(keys, cfg.timeDim, d), fc2: initLinear(keys, d, d) },
      patchOut: { w: np.zeros([d, patchDim]), b: np.zeros([patchDim]) },
    };
  } finally {
    keys.dispose();
  }
}

/** One sequence kind: L inputs, the image block at [start, start + N), the attention mask [L·L] (row = query). */
export type SequenceLayout = { readonly length: number; readonly start: number; readonly slots: readonly number[]; readonly mask: Uint8Array };

/** Where things sit: M caption positions, N patches of Dx values, both sequence kinds; `prompt` is the captioning prompt's length. */
export type TransfusionLayout = {
  readonly captionLength: number;
  readonly tokens: number;
  readonly patchDim: number;
  readonly generation: SequenceLayout;
  readonly captioning: SequenceLayout & { readonly prompt: number };
};

/** `<bos> caption(padTo M) <boi> <img>×N <eoi>`, LM loss on the caption; `null` = the dropped (unconditional) caption. */
export function generationDocument(caption: readonly number[] | null, captionLength: number, slots: number): SequenceDocument {
  return {
    segments: [
      { kind: "special", name: "<bos>" },
      { kind: "text", ids: caption ?? [], padTo: captionLength, loss: caption === null ? 0 : 1 },
      { kind: "special", name: "<boi>" },
      { kind: "placeholder", name: "image", slots, token: TRANSFUSION_PLACEHOLDER },
      { kind: "special", name: "<eoi>" },
    ],
  };
}

/** `<bos> <boi> <img>×N <eoi> caption <eos>`, LM loss on the caption and `<eos>`; `caption` absent: the prompt, M + 1 positions to generate. */
export function captioningDocument(caption: readonly number[] | undefined, captionLength: number, slots: number): SequenceDocument {
  const reply: TextSegment = caption === undefined ? { kind: "text", maxLength: captionLength + 1, end: "<eos>" } : { kind: "text", ids: caption, end: "<eos>", loss: 1 };
  return {
    segments: [{ kind: "special", name: "<bos>" }, { kind: "special", name: "<boi>" }, { kind: "placeholder", name: "image", slots, token: TRANSFUSION_PLACEHOLDER }, { kind: "special", name: "<eoi>" }, reply],
  };
}

/** Causal except within [start, start + n) (Transfusion's mask): host bytes [L·L]. */
export function imageBlockMask(length: number, start: number, n: number): Uint8Array {
  return blockCausalMaskHost([...new globalThis.Array<number>(start).fill(1), n, ...new globalThis.Array<number>(length - start - n).fill(1)]);
}

function sequenceLayout(length: number, start: number, n: number): SequenceLayout {
  return { length, start, slots: globalThis.Array.from({ length: n }, (_, k) => start + k), mask: imageBlockMask(length, start, n) };
}

/**
 * The layout for captions of up to `longestCaption` tokens. Each kind's last token is only ever a
 * target (`<eoi>`, `<eos>`), so L is one less than the document. Throws (InputError) if L exceeds the context.
 */
export function transfusionLayout(vocab: JointVocab, cfg: TransfusionConfig, longestCaption: number): TransfusionLayout {
  const { count, patchDim } = transfusionShapes(cfg);
  const gen = compileSequence(vocab, generationDocument(null, longestCaption, count));
  const cap = compileSequence(vocab, captioningDocument(undefined, longestCaption, count));
  const length = Math.max(gen.length, cap.length) - 1;
  if (length > cfg.backbone.contextLength) {
    throw new InputError(`transfusion config: backbone.contextLength ${cfg.backbone.contextLength} is too short for sequences of ${length} inputs (<bos>, <boi>, <eoi>, ${count} image positions and up to ${longestCaption + 1} caption tokens); give at least ${length}`);
  }
  return {
    captionLength: longestCaption,
    tokens: count,
    patchDim,
    generation: sequenceLayout(gen.length - 1, gen.placeholders[0]!.start, count),
    captioning: { ...sequenceLayout(cap.length - 1, cap.placeholders[0]!.start, count), prompt: cap.promptLength },
  };
}

/** A layout's mask as a device bool [L, L]. */
export const layoutMask = (seq: SequenceLayout): Array => fromHost(Int32Array.from(seq.mask), [seq.length, seq.length]).astype(np.bool);

/** images [B, C, H, W] in [0, 1] → patches [B, N, C·p²] in [−1, 1]. Consumes images. */
export const imagePatches = (images: Array, patch: number): Array => patchify(images.mul(2).sub(1), patch);

/** patches [B, N, C·p²] → images [B, C, H, W] in [0, 1] (clipped). Consumes patches. */
export const patchImages = (patches: Array, cfg: TransfusionConfig): Array => np.clip(unpatchify(patches, cfg.patch, cfg.image).add(1).mul(0.5), 0, 1);

/**
 * ids [B, L] with the image block's inputs from x_t [B, N, Dx] at timesteps t [B] (float or int,
 * the raw index as the sinusoid takes it) → h [B, L, D] under `seq`'s mask. Consumes p, ids, xt, t.
 */
export function transfusionHidden(p: Omit<DenoiserParams, "patchOut">, ids: Array, xt: Array, t: Array, seq: SequenceLayout, bcfg: TransformerConfig): Array {
  const { tok, ...body } = p.backbone;
  const [b] = xt.shape;
  const freq = p.time.fc1.w.shape[0]!;
  const temb = linear(p.time.fc2, nn.silu(linear(p.time.fc1, timestepEmbedding(t, freq)))); // [B, D]
  const patches = linear(p.patchIn, xt).add(p.patchPos.table).add(temb.reshape([b, 1, bcfg.dim])); // [B, N, D]
  const x = embedInputs(tok, { ids, embeddings: patches, slots: seq.slots });
  return hidden(body, x, layoutMask(seq), bcfg);
}

/** h [B, L, D] → ε̂ (or x̂_0, by the config's `prediction`) [B, N, Dx] at the image block of `seq`. Consumes patchOut and h. */
export const predictPatchNoise = (patchOut: LinearParams, h: Array, seq: SequenceLayout): Array => linear(patchOut, h.slice([], [seq.start, seq.start + seq.slots.length]));

/** One sequence kind of a batch: inputs, targets, weights [B, L] (backbone/batch.ts), images [B, C, H, W] in [0, 1]. */
export type KindBatch = { ids: Array; targets: Array; weights: Array; images: Array };

/** Caption → image rows, image → caption rows (absent when `captionRows` is 0), a PRNG key for t and ε. */
export type TransfusionBatch = { gen: KindBatch; cap?: KindBatch; key: Array };

/** Σ w·log p, Σ w, Σ over images of the mean squared error of ε̂ (or x̂_0), and the image count, of one kind. */
type KindTerms = { logp: Array; w: Array; sqerr: Array; images: number };

/** min(SNR_t, γ)/SNR_t for every t [T] (Min-SNR-γ for ε-prediction). */
const minSnrWeights = (schedule: DiffusionSchedule, gamma: number): Array =>
  fromHost(Float32Array.from(schedule.alphasCumprod, (a) => Math.min(a / (1 - a), gamma) / (a / (1 - a))), [schedule.steps]);

function kindTerms(p: TransfusionParams, b: KindBatch, seq: SequenceLayout, maxT: number, key: Array, cfg: TransfusionConfig, bcfg: TransformerConfig, schedule: DiffusionSchedule): KindTerms {
  const x0 = imagePatches(b.images, cfg.patch); // [B, N, Dx]
  const [rows, n, dx] = x0.shape;
  const { head, ...backbone } = p.backbone;
  let xt: Array, t: Array, target: Array | undefined; // target: what the image positions regress onto
  if (maxT === 0) {
    [xt, t] = [x0, np.zeros([rows], { dtype: np.int32 })];
    key.dispose();
  } else {
    const draws = diffusionDraws(key, rows, n * dx, maxT); // t [B], ε [B, N·Dx]
    const flat = x0.reshape([rows, n * dx]);
    t = draws.t;
    xt = qSample(schedule, flat.ref, draws.eps.ref, t.ref).reshape([rows, n, dx]);
    if (cfg.prediction === "x0") {
      target = flat;
      draws.eps.dispose();
    } else {
      target = draws.eps;
      flat.dispose();
    }
  }
  const h = transfusionHidden({ ...p, backbone }, b.ids, xt, t.ref, seq, bcfg); // [B, L, D]
  const picked = tokenLogProbs(lmHead(head, h.ref), b.targets); // [B, L]
  const logp = picked.mul(b.weights.ref).sum();
  const predicted = predictPatchNoise(p.patchOut, h, seq).reshape([rows, n * dx]); // ε̂ or x̂_0
  let sqerr: Array;
  if (target === undefined) sqerr = (predicted.dispose(), t.dispose(), np.zeros([]));
  else {
    const perImage = np.square(predicted.sub(target)).mean(-1); // [B]
    sqerr = cfg.minSnr ? perImage.mul(np.take(minSnrWeights(schedule, cfg.minSnr), t.astype(np.int32), 0)).sum() : (t.dispose(), perImage.sum());
  }
  return { logp, w: b.weights.sum(), sqerr, images: target === undefined ? 0 : rows };
}

/**
 * L = L_LM + λ·L_DDPM over both kinds (Transfusion eq. 4): L_LM the weighted mean of the captions'
 * next-token cross-entropy (each sequence's caption weighing 1), L_DDPM the mean over images of
 * mean_{N, Dx} (ε̂ − ε)² (or (x̂_0 − x_0)² under prediction "x0"), t ~ U{0, …, T − 1} for generated images and U{0, …, captionNoise − 1} for
 * images before a caption. Metrics: lm, diffusion. Consumes p and b.
 */
export function transfusionLoss(p: TransfusionParams, b: TransfusionBatch, cfg: TransfusionConfig, layout: TransfusionLayout, bcfg: TransformerConfig, schedule: DiffusionSchedule): [Array, Record<string, Array>] {
  const keys = random.split(b.key, 2); // [2, 2]
  const parts = [kindTerms(b.cap ? tree.ref(p) : p, b.gen, layout.generation, cfg.diffusionSteps, keys.ref.slice(0), cfg, bcfg, schedule)];
  if (b.cap) parts.push(kindTerms(p, b.cap, layout.captioning, cfg.captionNoise, keys.ref.slice(1), cfg, bcfg, schedule));
  keys.dispose();
  const sum = (f: (k: KindTerms) => Array) => parts.map(f).reduce((a, c) => a.add(c));
  const lm = sum((k) => k.logp).mul(-1).div(sum((k) => k.w).add(1e-9));
  const diffusion = sum((k) => k.sqerr).div(Math.max(1, parts.reduce((a, k) => a + k.images, 0)));
  return [lm.ref.add(diffusion.ref.mul(cfg.lambda)), { lm, diffusion }];
}

/** One kind's rows: the compiled documents batched to `seq.length`, the images at `indices` of `set`. */
export function kindBatch(vocab: JointVocab, seq: SequenceLayout, docs: readonly SequenceDocument[], set: ImageSet, indices: readonly number[]): KindBatch {
  const { inputs, targets, weights } = batchSequences(docs.map((d) => compileSequence(vocab, d)), { length: seq.length, padId: vocab.padId });
  return { ids: inputs, targets, weights, images: imagesAt(set, indices) };
}

/**
 * A training batch: caption → image rows for `gen` (caption ids, `null` = dropped) and image →
 * caption rows for `cap` (may be empty), each with the index of its image in `set`.
 */
export function transfusionBatch(
  vocab: JointVocab,
  layout: TransfusionLayout,
  set: ImageSet,
  gen: readonly { index: number; caption: readonly number[] | null }[],
  cap: readonly { index: number; caption: readonly number[] }[],
  key: Array,
): TransfusionBatch {
  const { captionLength: m, tokens: n } = layout;
  const genRows = kindBatch(vocab, layout.generation, gen.map((r) => generationDocument(r.caption, m, n)), set, gen.map((r) => r.index));
  if (cap.length === 0) return { gen: genRows, key };
  return { gen: genRows, cap: kindBatch(vocab, layout.captioning, cap.map((r) => captioningDocument(r.caption, m, n)), set, cap.map((r) => r.index)), key };
}
