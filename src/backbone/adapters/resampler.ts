import { np, tree, type Array } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { crossAttention, initCrossAttention, type CrossAttentionParams } from "../../nn/cross-attention.ts";
import { normal } from "../../nn/init.ts";
import { initLinear, linear, type LinearParams } from "../../nn/linear.ts";
import { initMlp, mlp, type MlpParams } from "../../nn/mlp.ts";
import { initLayerNorm, layerNorm, type LayerNormParams } from "../../nn/norm.ts";
import { fmt } from "../../nn/shapes.ts";

/**
 * Perceiver Resampler (Flamingo, Alayrac et al. 2022, §2.1; the idea of the Perceiver, Jaegle
 * et al. 2021, and of BLIP-2's Q-Former, Li et al. 2023): Q learned queries cross-attend to an
 * encoder's N features, so any number of features becomes exactly Q embeddings, the slot count
 * of the placeholder they fill. Per layer, with pre-LN residuals:
 *
 *   x ← x + CrossAttn(q = LN_q(x), kv = [LN_f(f); LN_q(x)])   (keys over features and queries: Flamingo's choice)
 *   x ← x + FFW(LN(x))
 *
 * starting from x = the queries [Q, D] (the same for every image) and ending with a LayerNorm.
 * f: [B, N, Df] features, linearly mapped to D first when Df ≠ D. Flamingo's learned time
 * embeddings (for video frames) are left out: one image's features in, [B, Q, D] out.
 */
export type ResamplerConfig = {
  /** Q, the number of embeddings out */
  readonly queries: number;
  /** D, the width of the queries and of the output */
  readonly dim: number;
  /** Df, the width of the encoder's features (an input projection when ≠ D) */
  readonly featureDim: number;
  readonly layers: number;
  readonly heads: number;
  /** the feed-forward's hidden width is dim · mlpRatio */
  readonly mlpRatio: number;
};

export type ResamplerLayerParams = { lnFeatures: LayerNormParams; lnQueries: LayerNormParams; attn: CrossAttentionParams; ln2: LayerNormParams; mlp: MlpParams };
export type ResamplerParams = {
  /** [Df, D], only when Df ≠ D */
  input?: LinearParams;
  /** the learned queries (Flamingo's latents): [Q, D] */
  queries: Array;
  layers: ResamplerLayerParams[];
  lnf: LayerNormParams;
};

const LIMITS = { queries: 1 << 14, dim: 1 << 14, featureDim: 1 << 14, layers: 64, heads: 1024, mlpRatio: 64 } as const;

/**
 * Throws, naming the field, the value and what is allowed, unless `cfg` is a valid resampler
 * config: integers in range and dim divisible by heads.
 */
export function checkResamplerConfig(cfg: unknown, where = "resampler config"): asserts cfg is ResamplerConfig {
  const c = cfg as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null || globalThis.Array.isArray(c)) throw new Error(`${where}: expected an object, got ${JSON.stringify(cfg)}`);
  for (const [key, max] of Object.entries(LIMITS)) {
    const v = c[key];
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max) throw new Error(`${where}.${key}: expected an integer in [1, ${max}], got ${JSON.stringify(v)}`);
  }
  const r = c as ResamplerConfig;
  if (r.dim % r.heads !== 0) throw new Error(`${where}.dim: ${r.dim} is not divisible by heads (${r.heads})`);
}

/**
 * Throws unless the placeholder the resampler's output fills has exactly Q slots: one embedding
 * per slot (`embedInputs`). `placeholder` is a layout's placeholder segment or its compiled
 * placement (`CompiledSequence.placeholders`).
 */
export function checkResamplerSlots(cfg: ResamplerConfig, placeholder: { readonly name: string; readonly slots: number }): void {
  checkResamplerConfig(cfg);
  const { name, slots } = placeholder;
  if (slots !== cfg.queries) {
    throw new Error(`placeholder "${name}" has ${slots} slots, but the resampler makes ${cfg.queries} embeddings (queries = ${cfg.queries}): give the placeholder ${cfg.queries} slots or the resampler ${slots} queries`);
  }
}

export function initResampler(keys: KeyStream, cfg: ResamplerConfig): ResamplerParams {
  checkResamplerConfig(cfg);
  const d = cfg.dim;
  const residStd = 1 / Math.sqrt(2 * cfg.layers);
  return {
    ...(cfg.featureDim !== d ? { input: initLinear(keys, cfg.featureDim, d) } : {}),
    queries: normal(keys, [cfg.queries, d], 1), // Flamingo's latents, torch.randn; LN_q sees them first
    layers: globalThis.Array.from({ length: cfg.layers }, () => ({
      lnFeatures: initLayerNorm(d),
      lnQueries: initLayerNorm(d),
      attn: initCrossAttention(keys, d, d, residStd),
      ln2: initLayerNorm(d),
      mlp: initMlp(keys, d, d * cfg.mlpRatio, "gelu", residStd),
    })),
    lnf: initLayerNorm(d),
  };
}

/** features: [B, N, Df] → embeddings [B, Q, D] (see the file header). Consumes p and features. */
export function resample(p: ResamplerParams, features: Array, cfg: ResamplerConfig): Array {
  const [b, , df] = features.shape;
  if (features.ndim !== 3 || df !== cfg.featureDim || features.shape[1] < 1) {
    tree.dispose([p, features]);
    throw new Error(`resample: expected features [B, N, ${cfg.featureDim}], got ${fmt(features.shape)}`);
  }
  const f = p.input ? linear(p.input, features) : features; // [B, N, D]
  let x = np.broadcastTo(p.queries.reshape([1, cfg.queries, cfg.dim]), [b, cfg.queries, cfg.dim]); // [B, Q, D]
  const opts = { heads: cfg.heads };
  for (const l of p.layers) {
    const xn = layerNorm(l.lnQueries, x.ref);
    const kv = np.concatenate([layerNorm(l.lnFeatures, f.ref), xn.ref], 1); // [B, N + Q, D]
    x = x.add(crossAttention(l.attn, xn, kv, opts));
    x = x.ref.add(mlp(l.mlp, layerNorm(l.ln2, x)));
  }
  f.dispose();
  return layerNorm(p.lnf, x);
}
