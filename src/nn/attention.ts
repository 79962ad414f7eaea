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
  const qkv = linear(p.qkv, x).reshape([b, t, 3, opts.heads, dh]);
  let q = qkv.ref.slice([], [], 0);
  let k = qkv.ref.slice([], [], 1);
  const v = qkv.slice([], [], 2);
  if (opts.rope) {
    q = rope(q, positions.ref);
    k = rope(k, positions);
  } else {
    positions.dispose();
  }
  return [q, k, v];
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
 * Attention for T new positions against a preallocated cache (prefill or one decode step).
 * x: [B, T, D], cache k/v: [B, H, S, Dh], writeMask: [T, S] one-hot rows placing the new keys,
 * mask: bool [T, S] (true = attend), positions: [T].
 * Returns the output and the updated cache. The cache is written with a one-hot blend rather
 * than a dynamic slice update, so the step keeps fixed shapes and is compiled once by `jit`.
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
  // keep[s] = 1 where no new key is written; new keys land at their one-hot slots.
  const w = writeMask.astype(x.dtype); // [T, S]
  const keep = np.subtract(1, w.ref.sum(0)).reshape([1, 1, -1, 1]); // [1, 1, S, 1]
  // [1, 1, S, T] @ [B, H, T, Dh]: the lhs is given rank 4 because jax-js 0.1.25 broadcasts a
  // rank-2 lhs against a rank-4 rhs wrongly ([S, T] @ [B, H, T, Dh] came out [S, B, H, Dh]).
  const scatter = w.ref.transpose([1, 0]).reshape([1, 1, -1, t]);
  const place = (c: Array, n: Array) => c.mul(keep.ref).add(np.matmul(scatter.ref, n.transpose(perm))); // [B, H, S, Dh]
  const k = place(cache.k, kNew);
  const v = place(cache.v, vNew);
  keep.dispose();
  scatter.dispose();
  w.dispose();
  const y = attend(q.transpose(perm), k.ref, v.ref, maskBias(mask));
  return { y: linear(p.out, y.transpose(perm).reshape([b, t, d])), cache: { k, v } };
}
