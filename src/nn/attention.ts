import { nn, np, type Array } from "../engine/index.ts";
import type { KeyStream } from "../engine/rng.ts";
import { initLinear, linear, type LinearParams } from "./linear.ts";
import { rope } from "./rope.ts";
import { expectLastDim, fmt } from "./shapes.ts";

export type AttentionParams = { qkv: LinearParams; out: LinearParams };
export type AttentionOptions = { heads: number; rope?: boolean };
/** Per-layer KV cache, preallocated to the full context: k, v: [B, H, S, Dh]. */
export type KVCache = { k: Array; v: Array };

export function initAttention(keys: KeyStream, dim: number, residStd?: number): AttentionParams {
  return {
    qkv: initLinear(keys, dim, 3 * dim),
    out: initLinear(keys, dim, dim, residStd === undefined ? {} : { std: residStd / Math.sqrt(dim) }),
  };
}

/** mask (true = may attend) → additive bias of 0 / -1e9, broadcastable to [B, H, T, S]. */
function maskBias(mask: Array): Array {
  return np.where(mask, 0, -1e9);
}

/** q: [B, H, T, Dh], k, v: [B, H, S, Dh], bias: → [B, H, T, Dh]. Scaled dot-product (Vaswani et al. 2017). */
function attend(q: Array, k: Array, v: Array, bias: Array): Array {
  const scale = 1 / Math.sqrt(q.shape[3]);
  const scores = np.matmul(q, k.transpose([0, 1, 3, 2])).mul(scale).add(bias); // [B, H, T, S]
  return np.matmul(nn.softmax(scores, -1), v);
}

/** x: [B, T, D] → q, k, v each [B, T, H, Dh] (rope applied to q and k when asked). */
function project(p: AttentionParams, x: Array, positions: Array, opts: AttentionOptions): [Array, Array, Array] {
  const [b, t, d] = x.shape;
  const dh = d / opts.heads;
  // Sliced on the last axis of [B, T, 3D]: a [B, T, 3, H, Dh] reshape, or one view shared by q
  // and k, is a view that feeds several kernels, which jax-js materializes (a copy per layer).
  const qkv = linear(p.qkv, x);
  const heads = (from: number, to: number) => qkv.ref.slice([], [], [from * d, to * d]).reshape([b, t, ...(to - from > 1 ? [to - from] : []), opts.heads, dh]);
  const v = heads(2, 3);
  if (!opts.rope) {
    positions.dispose();
    const qk: [Array, Array] = [heads(0, 1), heads(1, 2)];
    qkv.dispose();
    return [...qk, v];
  }
  const qk = rope(heads(0, 2), positions); // [B, T, 2, H, Dh]: q and k in one kernel, one set of angles
  qkv.dispose();
  return [qk.ref.slice([], [], 0), qk.slice([], [], 1), v];
}

function checkInput(x: Array, opts: AttentionOptions, dim: number): void {
  expectLastDim(x, dim, "attention", 3);
  if (x.ndim !== 3) throw new Error(`attention: expected x [B, T, D], got ${fmt(x.shape)}`);
  if (dim % opts.heads !== 0) throw new Error(`attention: width ${dim} is not divisible by heads ${opts.heads}`);
}

/**
 * Multi-head self-attention over a whole sequence with an explicit mask.
 * x: [B, T, D], mask: bool broadcastable to [B, H, T, T] (true = attend), positions: [T].
 * Consumes all arguments.
 */
export function attention(p: AttentionParams, x: Array, mask: Array, positions: Array, opts: AttentionOptions): Array {
  const d = p.qkv.w.shape[0];
  checkInput(x, opts, d);
  const [b, t] = x.shape;
  const [q, k, v] = project(p, x, positions, opts);
  const perm = [0, 2, 1, 3];
  const y = attend(q.transpose(perm), k.transpose(perm), v.transpose(perm), maskBias(mask));
  return linear(p.out, y.transpose(perm).reshape([b, t, d]));
}

/**
 * Writes new keys or values n: [B, H, T, Dh] into the cache c: [B, H, S, Dh] at the slots
 * that writeMask: bool [T, S] marks (one-hot rows) → [B, H, S, Dh]. A select keeps the shapes
 * fixed, so one `jit` compilation serves every decode step. For one new position it is a single
 * elementwise kernel; the one-hot blend it replaces (c·keep + scatterᵀ·n) ran a K = 1 matmul
 * over the whole cache, about 3× slower (docs/performance.md). For T > 1 (prefill) the new rows
 * are placed by a one-hot matmul first. Exact either way: every output is a copy of c or of n.
 */
function writeCache(c: Array, n: Array, writeMask: Array): Array {
  const [t, s] = writeMask.shape;
  if (t === 1) return np.where(writeMask.reshape([1, 1, s, 1]), n, c);
  const written = writeMask.ref.any(0).reshape([1, 1, s, 1]);
  // [1, 1, S, T] @ [B, H, T, Dh]: the lhs is given rank 4 because jax-js 0.1.25 broadcasts a
  // rank-2 lhs against a rank-4 rhs wrongly ([S, T] @ [B, H, T, Dh] came out [S, B, H, Dh]).
  const scatter = writeMask.transpose([1, 0]).astype(n.dtype).reshape([1, 1, s, t]);
  return np.where(written, np.matmul(scatter, n), c);
}

/**
 * Attention for T new positions against a preallocated cache (prefill or one decode step).
 * x: [B, T, D], cache k/v: [B, H, S, Dh], writeMask: bool [T, S] one-hot rows placing the new
 * keys, mask: bool [T, S] (true = attend), positions: [T].
 * Returns the output and the updated cache (written by `writeCache`). Consumes all arguments.
 */
export function attentionCached(
  p: AttentionParams,
  x: Array,
  cache: KVCache,
  writeMask: Array,
  mask: Array,
  positions: Array,
  opts: AttentionOptions,
): { y: Array; cache: KVCache } {
  const d = p.qkv.w.shape[0];
  checkInput(x, opts, d);
  const [b, t] = x.shape;
  const perm = [0, 2, 1, 3];
  const [q, kNew, vNew] = project(p, x, positions, opts);
  const k = writeCache(cache.k, kNew.transpose(perm), writeMask.ref);
  const v = writeCache(cache.v, vNew.transpose(perm), writeMask);
  const y = attend(q.transpose(perm), k.ref, v.ref, maskBias(mask));
  return { y: linear(p.out, y.transpose(perm).reshape([b, t, d])), cache: { k, v } };
}
