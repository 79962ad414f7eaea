/**
 * A MAR-style text→image generator as pure functions of (params, inputs) (Li et al. 2024,
 * "Autoregressive Image Generation without Vector Quantization", §3; in its raster-order,
 * causal-attention variant, Table 1's "AR, raster, causal" row):
 *
 *   ids [B, L] = <bos> caption(padded to M) <boi> <img>×(N−1)     (the layout compiler's placeholder)
 *   slots ← W_in·x_k, the clean patches x_0 … x_{N−2} (teacher forcing)
 *   h = backbone(ids with those embeddings, causal mask)          [B, L, D]
 *   z_k = h at <boi> + k, k = 0 … N−1: the condition of token k   [B, N, D]
 *   loss = Σ_k E_{t, ε} ‖ε − ε_θ(x_k,t | t, z_k)‖²                 (train/diffusion-loss.ts)
 *
 * so the hidden state before token k (having read the caption and tokens < k) conditions the
 * per-token diffusion head that draws token k: no codebook, no quantization error, the loss a
 * denoising loss per token instead of a softmax. Tokens are raw p×p pixel patches scaled to
 * [−1, 1] (MAR uses a KL-VAE's latents; an MNIST digit needs none). Parameter paths are `input.*`,
 * `backbone.*` (a transformer without its LM head: nothing here is a discrete token to predict)
 * and `head.*`.
 */
import { np, type Array } from "../engine/index.ts";
import { KeyStream } from "../engine/rng.ts";
import { InputError } from "../io/errors.ts";
import { initLinear, linear, type LinearParams } from "../nn/linear.ts";
import { causalMask } from "../backbone/masks.ts";
import { compileSequence } from "../backbone/sequence/compile.ts";
import type { SequenceDocument } from "../backbone/sequence/document.ts";
import { JointVocab } from "../backbone/sequence/vocab.ts";
import { embedInputs, hidden, initTransformer, type TransformerConfig, type TransformerParams } from "../backbone/transformer.ts";
import { initDiffusionHead, type DiffusionHeadConfig, type DiffusionHeadParams } from "../backbone/heads/diffusion-head.ts";
import type { DiffusionSchedule } from "../backbone/heads/diffusion-schedule.ts";
import { diffusionLoss } from "../train/diffusion-loss.ts";
import { patchify, unpatchify } from "../tokenizers/continuous/patches.ts";
import type { TextTokenizer } from "../tokenizers/text/text-tokenizer.ts";
import { marShapes, type MarConfig } from "./mar-config.ts";

export const MAR_SPECIALS = ["<bos>", "<boi>", "<img>"] as const;
export const MAR_PLACEHOLDER = "<img>";

/** Text ids, then the three specials; no discrete image codes. */
export function marVocab(text: TextTokenizer): JointVocab {
  const pad = text.tokenToId("<pad>");
  if (pad === undefined) throw new Error("marVocab: the text tokenizer has no <pad> token");
  return JointVocab.build({ text: { size: text.vocabSize, pad }, specials: MAR_SPECIALS, modalities: [], placeholders: [MAR_PLACEHOLDER] });
}

export type MarParams = { input: LinearParams; backbone: Omit<TransformerParams, "head">; head: DiffusionHeadParams };

export const marBackboneConfig = (cfg: MarConfig, vocab: JointVocab): TransformerConfig => ({ ...cfg.backbone, vocabSize: vocab.size });
export const marHeadConfig = (cfg: MarConfig): DiffusionHeadConfig => ({ ...cfg.head, tokenDim: marShapes(cfg).patchDim, conditionDim: cfg.backbone.dim });

/** Fresh parameters from `cfg.seed`. */
export function initMarParams(cfg: MarConfig, vocab: JointVocab): MarParams {
  const { patchDim } = marShapes(cfg);
  const keys = new KeyStream(cfg.seed + 13);
  try {
    const input = initLinear(keys, patchDim, cfg.backbone.dim);
    const { head: lm, ...backbone } = initTransformer(keys, marBackboneConfig(cfg, vocab));
    lm.w.dispose();
    lm.b?.dispose();
    return { input, backbone, head: initDiffusionHead(keys, marHeadConfig(cfg)) };
  } finally {
    keys.dispose();
  }
}

/**
 * Where things sit in every sequence: M caption positions after `<bos>`, `<boi>` at 1 + M (its
 * hidden state conditions token 0), the N − 1 slots after it, L = M + N + 1 in all.
 */
export type MarLayout = { readonly captionLength: number; readonly boi: number; readonly slots: readonly number[]; readonly tokens: number; readonly length: number };

/** `<bos> caption(padTo M) <boi> <img>×(N−1)`; an empty caption is the unconditional prompt. */
export function marDocument(caption: readonly number[], captionLength: number, slots: number): SequenceDocument {
  return {
    segments: [
      { kind: "special", name: "<bos>" },
      { kind: "text", ids: caption, padTo: captionLength },
      { kind: "special", name: "<boi>" },
      { kind: "placeholder", name: "image", slots, token: MAR_PLACEHOLDER },
    ],
  };
}

/** The layout for captions of up to `longestCaption` tokens; throws (InputError) if L exceeds the backbone's context. */
export function marLayout(vocab: JointVocab, cfg: MarConfig, longestCaption: number): MarLayout {
  const { count } = marShapes(cfg);
  const seq = compileSequence(vocab, marDocument([], longestCaption, count - 1));
  if (seq.length > cfg.backbone.contextLength) {
    throw new InputError(`mar config: backbone.contextLength ${cfg.backbone.contextLength} is too short for sequences of ${seq.length} inputs (<bos>, ${longestCaption} caption positions, <boi> and ${count - 1} image slots); give at least ${seq.length}`);
  }
  const ph = seq.placeholders[0]!;
  return { captionLength: longestCaption, boi: ph.start - 1, slots: globalThis.Array.from({ length: ph.slots }, (_, k) => ph.start + k), tokens: count, length: seq.length };
}

/** The ids [B·L] of prompts (`null` = the unconditional, caption-dropped prompt), row-major. */
export function marIds(vocab: JointVocab, layout: MarLayout, captions: readonly (readonly number[] | null)[]): Int32Array {
  const out = new Int32Array(captions.length * layout.length);
  captions.forEach((c, i) => {
    const seq = compileSequence(vocab, marDocument(c ?? [], layout.captionLength, layout.tokens - 1));
    out.set(seq.ids, i * layout.length);
  });
  return out;
}

/** images [B, C, H, W] in [0, 1] → tokens [B, N, C·p²] in [−1, 1]. Consumes images. */
export const imageTokens = (images: Array, patch: number): Array => patchify(images.mul(2).sub(1), patch);

/** tokens [B, N, C·p²] → images [B, C, H, W] in [0, 1] (clipped). Consumes tokens. */
export const tokenImages = (tokens: Array, cfg: MarConfig): Array => np.clip(unpatchify(tokens, cfg.patch, cfg.image).add(1).mul(0.5), 0, 1);

/**
 * The conditions z [B, N, D] of every token, from ids [B, L] and the tokens [B, N, Dx] (token N − 1
 * is never read: it is only a target). Consumes p's input and backbone, ids and tokens.
 */
export function marConditions(p: Pick<MarParams, "input" | "backbone">, ids: Array, tokens: Array, layout: MarLayout, bcfg: TransformerConfig): Array {
  const { tok, ...body } = p.backbone;
  const n = layout.tokens;
  const placed = linear(p.input, tokens.slice([], [0, n - 1])); // [B, N−1, D]
  const x = embedInputs(tok, { ids, embeddings: placed, slots: layout.slots });
  return hidden(body, x, causalMask(layout.length), bcfg).slice([], [layout.boi, layout.boi + n]);
}

/** ids [B, L] int32; images [B, C, H, W] in [0, 1]; key: a PRNG key for the diffusion draws. */
export type MarBatch = { ids: Array; images: Array; key: Array };

/** The per-token diffusion loss, averaged over every token of the batch. Consumes p and batch. */
export function marLoss(p: MarParams, b: MarBatch, cfg: MarConfig, layout: MarLayout, bcfg: TransformerConfig, schedule: DiffusionSchedule): [Array, Record<string, Array>] {
  const x = imageTokens(b.images, cfg.patch); // [B, N, Dx]
  const [batch, n, dx] = x.shape;
  const z = marConditions(p, b.ids, x.ref, layout, bcfg); // [B, N, D]
  return diffusionLoss(p.head, { x: x.reshape([batch * n, dx]), z: z.reshape([batch * n, cfg.backbone.dim]), key: b.key }, schedule, { multiplier: cfg.multiplier });
}
