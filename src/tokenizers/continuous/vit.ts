import { np, tree, type Array } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { attention, initAttention, type AttentionParams } from "../../nn/attention.ts";
import { normal } from "../../nn/init.ts";
import { initLinear, linear, type LinearParams } from "../../nn/linear.ts";
import { initMlp, mlp, type MlpParams } from "../../nn/mlp.ts";
import { initLayerNorm, layerNorm, type LayerNormParams } from "../../nn/norm.ts";
import { fmt } from "../../nn/shapes.ts";
import { patchGrid, patchify } from "./patches.ts";

/**
 * A small Vision Transformer encoder (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"):
 * the continuous image features of LLaVA-style inputs (Liu et al. 2023 use CLIP's ViT-L/14).
 *
 *   patchify(images)           [B, C, H, W] → [B, N, C·p²]   (N = HW / p², eq. 1's x_p)
 *   · E + E_pos                             → [B, N, D]      (linear patch embedding, learned positions)
 *   L pre-LN blocks, bidirectional          → [B, N, D]      (eqs. 2–3: MSA and MLP, residual)
 *   LayerNorm                               → [B, N, D]      (eq. 4's LN, on every token)
 *
 * There is no [CLS] token: the features are all N patch tokens, what a projector or resampler
 * consumes (LLaVA takes the patch features, not [CLS]); `meanPool` gives one vector per image
 * (the [CLS]-free pooling of Zhai et al. 2022) for a classifier.
 */
export type ViTConfig = {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  /** p: the side of a square patch; must divide height and width */
  readonly patch: number;
  /** D: the width of the features */
  readonly dim: number;
  readonly layers: number;
  readonly heads: number;
  /** the feed-forward's hidden width is dim · mlpRatio */
  readonly mlpRatio: number;
};

export type ViTBlockParams = { ln1: LayerNormParams; attn: AttentionParams; ln2: LayerNormParams; mlp: MlpParams };
export type ViTParams = {
  /** patch embedding: [C·p², D] */
  embed: LinearParams;
  /** learned position embeddings: [N, D] */
  pos: Array;
  blocks: ViTBlockParams[];
  lnf: LayerNormParams;
};

const LIMITS = { height: 1 << 14, width: 1 << 14, channels: 64, patch: 1 << 10, dim: 1 << 14, layers: 256, heads: 1024, mlpRatio: 64 } as const;

/**
 * Throws, naming the field, the value and what is allowed, unless `cfg` is a valid ViT config:
 * positive integers in range, a patch size that divides the image, dim divisible by heads.
 */
export function checkViTConfig(cfg: unknown, where = "vit config"): asserts cfg is ViTConfig {
  const c = cfg as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null || globalThis.Array.isArray(c)) throw new Error(`${where}: expected an object, got ${JSON.stringify(cfg)}`);
  for (const [key, max] of Object.entries(LIMITS)) {
    const v = c[key];
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max) throw new Error(`${where}.${key}: expected an integer in [1, ${max}], got ${JSON.stringify(v)}`);
  }
  const v = c as ViTConfig;
  patchGrid(v.channels, v.height, v.width, v.patch, `${where}.patch`);
  if (v.dim % v.heads !== 0) throw new Error(`${where}.dim: ${v.dim} is not divisible by heads (${v.heads})`);
}

/** N, the number of feature vectors (patch tokens) per image. */
export function vitTokens(cfg: ViTConfig): number {
  checkViTConfig(cfg);
  return patchGrid(cfg.channels, cfg.height, cfg.width, cfg.patch).count;
}

export function initViT(keys: KeyStream, cfg: ViTConfig): ViTParams {
  checkViTConfig(cfg);
  const g = patchGrid(cfg.channels, cfg.height, cfg.width, cfg.patch);
  const residStd = 1 / Math.sqrt(2 * cfg.layers); // GPT-2's residual scaling, as the backbone's blocks
  return {
    embed: initLinear(keys, g.patchDim, cfg.dim),
    pos: normal(keys, [g.count, cfg.dim], 0.02),
    blocks: globalThis.Array.from({ length: cfg.layers }, () => ({
      ln1: initLayerNorm(cfg.dim),
      attn: initAttention(keys, cfg.dim, residStd),
      ln2: initLayerNorm(cfg.dim),
      mlp: initMlp(keys, cfg.dim, cfg.dim * cfg.mlpRatio, "gelu", residStd),
    })),
    lnf: initLayerNorm(cfg.dim),
  };
}

/**
 * images: [B, C, H, W] → features [B, N, D], N = (H/p)(W/p) in row-major patch order. Every
 * patch attends to every other (an all-true mask, no rotary positions: the positions are the
 * learned E_pos). Consumes p and images.
 */
export function vitEncode(p: ViTParams, images: Array, cfg: ViTConfig): Array {
  const [, c, h, w] = images.shape;
  if (images.ndim !== 4 || c !== cfg.channels || h !== cfg.height || w !== cfg.width) {
    tree.dispose([p, images]);
    throw new Error(`vitEncode: expected images [B, ${cfg.channels}, ${cfg.height}, ${cfg.width}], got ${fmt(images.shape)}`);
  }
  const n = patchGrid(c, h, w, cfg.patch).count;
  if (p.pos.shape[0] !== n || p.pos.shape[1] !== cfg.dim) {
    tree.dispose([p, images]);
    throw new Error(`vitEncode: params have position embeddings ${fmt(p.pos.shape)}, the config needs [${n}, ${cfg.dim}]`);
  }
  let x = linear(p.embed, patchify(images, cfg.patch)).add(p.pos); // [B, N, D]
  const all = np.ones([n, n], { dtype: np.bool });
  const opts = { heads: cfg.heads };
  for (const blk of p.blocks) {
    x = x.ref.add(attention(blk.attn, layerNorm(blk.ln1, x), all.ref, np.arange(n), opts));
    x = x.ref.add(mlp(blk.mlp, layerNorm(blk.ln2, x)));
  }
  all.dispose();
  return layerNorm(p.lnf, x);
}

/** features: [B, N, D] → [B, D], the mean over the N tokens. Consumes `features`. */
export function meanPool(features: Array): Array {
  if (features.ndim !== 3) {
    features.dispose();
    throw new Error(`meanPool: expected features [B, N, D], got ${fmt(features.shape)}`);
  }
  return features.mean(1);
}
