import { fromHost, np, tree, type Array } from "../engine/index.ts";
import { KeyStream } from "../engine/rng.ts";
import { attention, attentionCached, initAttention, type AttentionParams, type FreshKV, type KVCache } from "../nn/attention.ts";
import { embed, initEmbedding, type EmbeddingParams } from "../nn/embedding.ts";
import { initLinear, linear, type LinearParams } from "../nn/linear.ts";
import { initMlp, mlp, type MlpKind, type MlpParams } from "../nn/mlp.ts";
import { initLayerNorm, layerNorm, type LayerNormParams } from "../nn/norm.ts";
import { fmt } from "../nn/shapes.ts";
import { causalMask } from "./masks.ts";

/**
 * A decoder-only transformer (GPT-2 layout: pre-LN blocks), opened up as three stages so that
 * callers can feed continuous embeddings and pick the heads they need (nanoGPT's model.py, split):
 *
 *   embedInputs(ids [B, T] | embeddings [B, T, D] | both with slots)  → x [B, T, D]
 *   hidden(x, mask, positions)                                        → h [B, T, D] (final norm applied)
 *   lmHead(h)                                                         → logits [B, T, V]
 *
 * `forward` is the three in a row for token ids. Positions: "learned" (a table of
 * contextLength rows), "rope" (1-D rotary, Su et al. 2021) or "rope2d" (rotary over the row /
 * column ids of an image block, nn/rope.ts; text tokens carry (t, t)).
 */
export type PositionKind = "learned" | "rope" | "rope2d";
export const POSITION_KINDS: readonly PositionKind[] = ["learned", "rope", "rope2d"];
export const MLP_KINDS: readonly MlpKind[] = ["gelu", "swiglu"];

export type TransformerConfig = {
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly dim: number;
  readonly layers: number;
  readonly heads: number;
  readonly mlp: MlpKind;
  readonly mlpRatio: number;
  readonly positions: PositionKind;
};

/** Bounds a config must respect before any weight is allocated (checkTransformerConfig). */
const LIMITS = { vocabSize: 1 << 24, contextLength: 1 << 16, dim: 1 << 14, layers: 1024, heads: 1024, mlpRatio: 64 } as const;
/** More parameters than fit the wasm heap's 4 GiB in float32 (with optimizer state: far less). */
const MAX_PARAMS = 1e9;

/** Parameters of `cfg` (exact), computed without allocating any. */
export function countParameters(cfg: TransformerConfig): number {
  const { vocabSize: v, contextLength: s, dim: d, layers: l, mlpRatio: r } = cfg;
  const h = d * r;
  const ln = 2 * d;
  const attn = d * 3 * d + 3 * d + d * d + d;
  const mlp = cfg.mlp === "swiglu" ? 2 * (d * h + h) + h * d + d : d * h + h + h * d + d;
  return v * d + (cfg.positions === "learned" ? s * d : 0) + l * (2 * ln + attn + mlp) + ln + d * v;
}

/**
 * Throws, naming the field, the value and what is allowed, unless `cfg` (e.g. read from a JSON
 * file or changed by `--set`) is a valid config: integers in range, dim divisible by heads, a head
 * width rotary embeddings can use, known enums, and a size that can be allocated at all.
 */
/** A config in words, for logs and errors: "dim 128, 4 layers, 4 heads, context 192, vocab 1050". */
export const describeTransformer = (c: TransformerConfig): string => `dim ${c.dim}, ${c.layers} layers, ${c.heads} heads, context ${c.contextLength}, vocab ${c.vocabSize}`;

export function checkTransformerConfig(cfg: unknown, where = "model config"): asserts cfg is TransformerConfig {
  const c = cfg as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null || globalThis.Array.isArray(c)) throw new Error(`${where}: expected an object, got ${JSON.stringify(cfg)}`);
  for (const [key, max] of Object.entries(LIMITS)) {
    const v = c[key];
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max) throw new Error(`${where}.${key}: expected an integer in [1, ${max}], got ${JSON.stringify(v)}`);
  }
  const t = c as TransformerConfig;
  if (t.dim % t.heads !== 0) throw new Error(`${where}.dim: ${t.dim} is not divisible by heads (${t.heads})`);
  if (!MLP_KINDS.includes(t.mlp)) throw new Error(`${where}.mlp: expected one of ${MLP_KINDS.join(", ")}, got ${JSON.stringify(t.mlp)}`);
  if (!POSITION_KINDS.includes(t.positions)) throw new Error(`${where}.positions: expected one of ${POSITION_KINDS.join(", ")}, got ${JSON.stringify(t.positions)}`);
  const dh = t.dim / t.heads;
  const even = t.positions === "rope" ? 2 : t.positions === "rope2d" ? 4 : 1;
  if (dh % even !== 0) throw new Error(`${where}.heads: ${t.positions} needs a head width (dim / heads = ${dh}) divisible by ${even}`);
  const n = countParameters(t);
  if (n > MAX_PARAMS) throw new Error(`${where}: ${n.toExponential(2)} parameters, more than the ${MAX_PARAMS.toExponential(0)} the engine's 4 GiB wasm heap can hold`);
}

export type BlockParams = { ln1: LayerNormParams; attn: AttentionParams; ln2: LayerNormParams; mlp: MlpParams };
export type TransformerParams = {
  tok: EmbeddingParams;
  pos?: EmbeddingParams;
  blocks: BlockParams[];
  lnf: LayerNormParams;
  head: LinearParams;
};

export function initTransformer(keys: KeyStream, cfg: TransformerConfig): TransformerParams {
  checkTransformerConfig(cfg);
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
 * `initTransformer` with a fixed key: what `paramsOfInit` / `expectationsOfInit` trace for the
 * names and shapes of a saved model's tensors (the values are never used).
 */
export function initTransformerForShapes(cfg: TransformerConfig): TransformerParams {
  const keys = new KeyStream(0);
  try {
    return initTransformer(keys, cfg);
  } finally {
    keys.dispose();
  }
}

/** What enters the backbone: token ids, continuous embeddings, or ids with embeddings placed at some of their positions. */
export type BackboneInput =
  | { readonly ids: Array }
  | { readonly embeddings: Array }
  /** ids [B, T]; embeddings [B, N, D] go to positions `slots` (N distinct indices in [0, T), host ints, the same for every row) instead of those ids' embeddings. */
  | { readonly ids: Array; readonly embeddings: Array; readonly slots: readonly number[] };

/** The transformer without its token embedding and LM head: what `hidden` runs. */
export type BodyParams = Omit<TransformerParams, "tok" | "head">;

/**
 * Inputs → x: [B, T, D] (no positions yet). Token ids go through `embed`'s one-hot matmul
 * (differentiable under `jit`). Placed embeddings (a LLaVA-style placeholder expanded to N slots,
 * backbone/sequence/compile.ts) replace the rows at `slots`: x = keep ⊙ embed(ids) + P·E, with
 * P [T, N] the one-hot placement and keep [T, 1] zero at the slots, so both parts get gradients.
 * Consumes tok (when ids are given; else it is not touched) and the arrays in `input`.
 */
export function embedInputs(tok: EmbeddingParams, input: BackboneInput): Array {
  if (!("ids" in input)) return input.embeddings;
  if (!("embeddings" in input)) return embed(tok, input.ids);
  const [b, t] = input.ids.shape;
  const d = tok.table.shape[1];
  const e = input.embeddings;
  const n = input.slots.length;
  const place = new Float32Array(t * n);
  const keep = new Float32Array(t).fill(1);
  const problem =
    e.ndim !== 3 || e.shape[0] !== b || e.shape[1] !== n || e.shape[2] !== d
      ? `embedInputs: ${n} slots need embeddings [${b}, ${n}, ${d}], got ${fmt(e.shape)}`
      : input.slots.map((slot, j) => {
          if (!Number.isInteger(slot) || slot < 0 || slot >= t || keep[slot] === 0) return `embedInputs: slot ${slot} (#${j}) must be a distinct integer in [0, ${t - 1}]`;
          place[slot * n + j] = 1;
          keep[slot] = 0;
          return "";
        }).find(Boolean);
  if (problem) {
    tree.dispose([tok.table, input.ids, e]);
    throw new Error(problem);
  }
  const placed = np.matmul(fromHost(place, [1, t, n]), e); // [B, T, D]
  return embed(tok, input.ids).mul(fromHost(keep, [1, t, 1])).add(placed);
}

/** The attention options of `cfg`'s position kind. */
const attentionOptions = (cfg: TransformerConfig) => ({ heads: cfg.heads, rope: cfg.positions === "rope" ? ("1d" as const) : cfg.positions === "rope2d" ? ("2d" as const) : false });

/** Default positions 0..T−1: [T], or the grid [T, 2] of (t, t) for rope2d. */
function defaultPositions(t: number, cfg: TransformerConfig): Array {
  const line = np.arange(t).astype(np.int32);
  return cfg.positions === "rope2d" ? np.stack([line.ref, line], -1) : line;
}

/**
 * x: [B, T, D] → h: [B, T, D], the blocks then the final LayerNorm. mask: bool [T, T] or
 * [B, 1, T, T] (true = may attend; causal, prefix or block masks). positions: [T] or [B, T]
 * (learned, rope), [T, 2] or [B, T, 2] (rope2d: row and column ids); default 0..T−1. Learned
 * positions 0..T−1 are the table's first T rows, sliced rather than looked up by a one-hot matmul
 * (the same values; the slice's gradient is a pad, not a [S, D] matmul). Consumes p, x, mask and positions.
 */
export function hidden(p: BodyParams, x: Array, mask: Array, cfg: TransformerConfig, positions?: Array): Array {
  const start = blocksInput(p.pos, x, cfg, positions);
  x = start.x;
  for (const blk of p.blocks) x = transformerBlock(blk, x, mask, start.positions, cfg);
  mask.dispose();
  start.positions.dispose();
  return layerNorm(p.lnf, x);
}

/**
 * What the first block sees: x [B, T, D] with the learned positions added (when the model has
 * them), and the positions the blocks' rotary embeddings use (`positions`, default 0..T−1).
 * Consumes pos, x and positions.
 */
export function blocksInput(pos: EmbeddingParams | undefined, x: Array, cfg: TransformerConfig, positions?: Array): { x: Array; positions: Array } {
  const [, t, d] = x.shape;
  if (x.ndim !== 3 || d !== cfg.dim || t > cfg.contextLength) throw new Error(`transformer: expected inputs [B, T ≤ ${cfg.contextLength}, ${cfg.dim}], got ${fmt(x.shape)}`);
  if (pos) x = positions === undefined ? x.add(pos.table.slice([0, t])) : x.add(embed(pos, positions.ref));
  return { x, positions: positions ?? defaultPositions(t, cfg) };
}

/**
 * One pre-LN block: x + attention(ln1(x)), then + mlp(ln2(x)). x [B, T, D] → [B, T, D]; mask
 * and positions as `hidden` takes them. Consumes blk and x; borrows mask and positions.
 */
export function transformerBlock(blk: BlockParams, x: Array, mask: Array, positions: Array, cfg: TransformerConfig): Array {
  x = x.ref.add(attention(blk.attn, layerNorm(blk.ln1, x), mask.ref, positions.ref, attentionOptions(cfg)));
  return x.ref.add(mlp(blk.mlp, layerNorm(blk.ln2, x)));
}

/** h: [B, T, D] → logits [B, T, V]. Consumes head and h. */
export function lmHead(head: LinearParams, h: Array): Array {
  return linear(head, h);
}

/**
 * Full-sequence forward (training, scoring) of token ids: tokens [B, T] int32, mask as in
 * `hidden` → logits [B, T, V]. Consumes p, tokens, mask and positions.
 */
export function forward(p: TransformerParams, tokens: Array, mask: Array, cfg: TransformerConfig, positions?: Array): Array {
  if (tokens.ndim !== 2 || tokens.shape[1] > cfg.contextLength) {
    throw new Error(`transformer: expected tokens [B, T ≤ ${cfg.contextLength}], got ${fmt(tokens.shape)}`);
  }
  const { tok, head, ...body } = p;
  return lmHead(head, hidden(body, embedInputs(tok, { ids: tokens }), mask, cfg, positions));
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
  grid?: Array,
): { logits: Array; fresh: FreshKV[] } {
  const t = tokens.shape[1];
  const positions = np.arange(t).astype(np.int32).add(start.ref); // [T]
  // rope2d: the new tokens' (row, column) ids [T, 2] from the layout (default (t, t)).
  const ropePositions = cfg.positions !== "rope2d" ? positions.ref : (grid ?? np.stack([positions.ref, positions.ref], -1));
  const x = embedStep(p, tokens, positions);
  return cachedBlocks(p, x, caches, start, ropePositions, cfg);
}

/**
 * The blocks and head of a KV-cached step (forwardCached, and the random order's in
 * orders/cached.ts): embeddings x [B, T, D] of T new tokens in cache slots start..start+T−1,
 * attending to the slots before them and causally among themselves, with `ropePositions` for
 * rotary positions → logits of the last new token [B, V] and each layer's new keys and values.
 * Consumes x, start and ropePositions; reads the caches.
 */
export function cachedBlocks(p: TransformerParams, x: Array, caches: readonly KVCache[], start: Array, ropePositions: Array, cfg: TransformerConfig): { logits: Array; fresh: FreshKV[] } {
  const t = x.shape[1];
  const s = cfg.contextLength;
  const cacheVisible = np.arange(s).astype(np.int32).reshape([1, s]).less(start); // [1, S]: the slots already written
  const newVisible = causalMask(t); // [T, T] among the new tokens
  const opts = attentionOptions(cfg);
  const fresh: FreshKV[] = [];
  p.blocks.forEach((b, i) => {
    const out = attentionCached(b.attn, layerNorm(b.ln1, x.ref), caches[i]!, cacheVisible.ref, newVisible.ref, ropePositions.ref, opts);
    fresh.push(out.fresh);
    x = x.add(out.y);
    x = x.ref.add(mlp(b.mlp, layerNorm(b.ln2, x)));
  });
  cacheVisible.dispose();
  newVisible.dispose();
  ropePositions.dispose();
  const last = x.slice([], t - 1); // [B, D]
  return { logits: linear(p.head, layerNorm(p.lnf, last)), fresh };
}
