import { lax, np, type Array } from "../engine/index.ts";
import type { KeyStream } from "../engine/rng.ts";
import { attention, attentionCached, initAttention, type AttentionParams, type FreshKV, type KVCache } from "../nn/attention.ts";
import { embed, initEmbedding, type EmbeddingParams } from "../nn/embedding.ts";
import { initLinear, linear, type LinearParams } from "../nn/linear.ts";
import { initMlp, mlp, type MlpKind, type MlpParams } from "../nn/mlp.ts";
import { initLayerNorm, layerNorm, type LayerNormParams } from "../nn/norm.ts";
import { fmt } from "../nn/shapes.ts";
import { causalMask } from "./masks.ts";

/** A decoder-only transformer (GPT-2 layout: pre-LN blocks, learned or rotary positions). */
export type TransformerConfig = {
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly dim: number;
  readonly layers: number;
  readonly heads: number;
  readonly mlp: MlpKind;
  readonly mlpRatio: number;
  readonly positions: "learned" | "rope";
};

export type BlockParams = { ln1: LayerNormParams; attn: AttentionParams; ln2: LayerNormParams; mlp: MlpParams };
export type TransformerParams = {
  tok: EmbeddingParams;
  pos?: EmbeddingParams;
  blocks: BlockParams[];
  lnf: LayerNormParams;
  head: LinearParams;
};

export function initTransformer(keys: KeyStream, cfg: TransformerConfig): TransformerParams {
  if (cfg.dim % cfg.heads !== 0) throw new Error(`dim ${cfg.dim} must be divisible by heads ${cfg.heads}`);
  const residStd = 1 / Math.sqrt(2 * cfg.layers); // GPT-2: scale residual projections by 1/sqrt(2L)
  const blocks = globalThis.Array.from({ length: cfg.layers }, () => ({
    ln1: initLayerNorm(cfg.dim),
    attn: initAttention(keys, cfg.dim, residStd),
    ln2: initLayerNorm(cfg.dim),
    mlp: initMlp(keys, cfg.dim, cfg.dim * cfg.mlpRatio, cfg.mlp, residStd),
  }));
  return {
    tok: initEmbedding(keys, cfg.vocabSize, cfg.dim),
    ...(cfg.positions === "learned" ? { pos: initEmbedding(keys, cfg.contextLength, cfg.dim) } : {}),
    blocks,
    lnf: initLayerNorm(cfg.dim),
    head: initLinear(keys, cfg.dim, cfg.vocabSize, { bias: false, std: 0.02 }),
  };
}

/**
 * Training / scoring inputs: tokens: [B, T] int32 → x: [B, T, D] for positions 0..T−1.
 * Token ids go through `embed`'s one-hot matmul (differentiable under `jit`); learned positions
 * 0..T−1 are the table's first T rows, so they are sliced, not looked up by one-hot matmul
 * (the same values, and the slice's gradient is a pad instead of a [S, D] matmul).
 */
function embedSequence(p: TransformerParams, tokens: Array): Array {
  const x = embed(p.tok, tokens);
  return p.pos ? x.add(p.pos.table.slice([0, tokens.shape[1]])) : x;
}

/**
 * Decoding inputs: tokens: [B, T] int32, positions: [T] int32 → x: [B, T, D]. The cached
 * forward is never differentiated, so rows are gathered (`np.take`) rather than picked by a
 * one-hot matmul over the whole table: the same rows for in-range ids (`Decoder` checks them).
 */
function embedStep(p: TransformerParams, tokens: Array, positions: Array): Array {
  const x = np.take(p.tok.table, tokens, 0);
  if (p.pos) return x.add(np.take(p.pos.table, positions, 0));
  positions.dispose();
  return x;
}

/**
 * Full-sequence forward (training, scoring). tokens: [B, T] int32, mask: bool [T, T] or
 * [B, 1, T, T] (true = may attend; causal, prefix or block masks from `masks.ts`) → logits [B, T, V].
 */
export function forward(p: TransformerParams, tokens: Array, mask: Array, cfg: TransformerConfig): Array {
  if (tokens.ndim !== 2 || tokens.shape[1] > cfg.contextLength) {
    throw new Error(`transformer: expected tokens [B, T ≤ ${cfg.contextLength}], got ${fmt(tokens.shape)}`);
  }
  const t = tokens.shape[1];
  const positions = np.arange(t).astype(np.int32);
  let x = embedSequence(p, tokens);
  const opts = { heads: cfg.heads, rope: cfg.positions === "rope" };
  for (const b of p.blocks) {
    x = x.ref.add(attention(b.attn, layerNorm(b.ln1, x), mask.ref, positions.ref, opts));
    x = x.ref.add(mlp(b.mlp, layerNorm(b.ln2, x)));
  }
  mask.dispose();
  positions.dispose();
  return linear(p.head, layerNorm(p.lnf, x));
}

/** Empty per-layer caches (`KVCache`: [B, S, H, Dh]) for `batch` sequences of up to `contextLength` tokens. */
export function initCaches(cfg: TransformerConfig, batch: number): KVCache[] {
  const dh = cfg.dim / cfg.heads;
  return globalThis.Array.from({ length: cfg.layers }, () => ({
    k: np.zeros([batch, cfg.contextLength, cfg.heads, dh]),
    v: np.zeros([batch, cfg.contextLength, cfg.heads, dh]),
  }));
}

/**
 * KV-cached forward of T new tokens at positions start..start+T−1 (prefill when T > 1, one
 * decode step when T = 1), attending to the caches' slots 0..start−1 and causally among the new
 * tokens. `start` is a scalar int32 array, so every decode step has the same shapes and one `jit`
 * compilation serves them all. tokens: [B, T] → logits of the last new position [B, V], and per
 * layer the new keys and values, which `writeFresh` then puts into the caches (read, not consumed).
 */
export function forwardCached(
  p: TransformerParams,
  tokens: Array,
  caches: readonly KVCache[],
  start: Array,
  cfg: TransformerConfig,
): { logits: Array; fresh: FreshKV[] } {
  const t = tokens.shape[1];
  const s = cfg.contextLength;
  const positions = np.arange(t).astype(np.int32).add(start.ref); // [T]
  const cacheVisible = np.arange(s).astype(np.int32).reshape([1, s]).less(start); // [1, S]: the slots already written
  const newVisible = causalMask(t); // [T, T] among the new tokens
  let x = embedStep(p, tokens, positions.ref);
  const opts = { heads: cfg.heads, rope: cfg.positions === "rope" };
  const fresh: FreshKV[] = [];
  p.blocks.forEach((b, i) => {
    const out = attentionCached(b.attn, layerNorm(b.ln1, x.ref), caches[i], cacheVisible.ref, newVisible.ref, positions.ref, opts);
    fresh.push(out.fresh);
    x = x.add(out.y);
    x = x.ref.add(mlp(b.mlp, layerNorm(b.ln2, x)));
  });
  cacheVisible.dispose();
  newVisible.dispose();
  positions.dispose();
  const last = x.slice([], t - 1); // [B, D]
  return { logits: linear(p.head, layerNorm(p.lnf, last)), fresh };
}

/**
 * Mean cross-entropy of next-token prediction, weighted per target (0 = no loss; used to
 * train only on the target part of a sequence). logits: [B, T, V], targets, weights: [B, T].
 *
 * log p(target) = (x_target − m) − log Σ exp(x − m), m = max x (stop-gradient), as
 * `nn.logSoftmax` computes it, but the shifted logit is picked before the log-sum-exp is
 * subtracted, so no [B, T, V] log-probabilities are formed; the one-hot is a compare against
 * an iota (fused into the pick), not a gather from an identity matrix. Same values and
 * gradients bit for bit (the pick adds exact zeros); about 40% less time (docs/performance.md).
 */
export function weightedCrossEntropy(logits: Array, targets: Array, weights: Array): Array {
  const v = logits.shape[2];
  const shifted = logits.ref.sub(lax.stopGradient(logits.max(-1, { keepdims: true }))); // [B, T, V]
  const lse = np.log(np.exp(shifted.ref).sum(-1)); // [B, T]
  const oneHot = np.arange(v).astype(np.int32).equal(targets.astype(np.int32).reshape([...targets.shape, 1])); // [B, T, V]
  const picked = shifted.mul(oneHot.astype(shifted.dtype)).sum(-1).sub(lse); // [B, T]
  return picked.mul(weights.ref).sum().mul(-1).div(weights.sum().add(1e-9));
}
