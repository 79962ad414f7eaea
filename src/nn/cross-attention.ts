import { nn, np, tree, type Array } from "../engine/index.ts";
import type { KeyStream } from "../engine/rng.ts";
import { initLinear, linear, type LinearParams } from "./linear.ts";
import { fmt } from "./shapes.ts";

/**
 * Multi-head cross-attention (Vaswani et al. 2017, §3.2.3, "encoder-decoder attention"): queries
 * from one sequence x [B, T, D], keys and values from another, the context c [B, S, Dc], through
 * separate projections (q: D → D, kv: Dc → 2D), so the context may have its own width. The
 * attention of a Perceiver Resampler (Flamingo, Alayrac et al. 2022, §2.1) and of a Q-Former
 * (BLIP-2, Li et al. 2023). No positions: the context's order, where it matters, is in its values.
 */
export type CrossAttentionParams = { q: LinearParams; kv: LinearParams; out: LinearParams };
export type CrossAttentionOptions = { readonly heads: number };

/** q: [D, D], kv: [Dc, 2D], out: [D, D] (`residStd` scales out, as `initAttention`'s). */
export function initCrossAttention(keys: KeyStream, dim: number, contextDim = dim, residStd?: number): CrossAttentionParams {
  return {
    q: initLinear(keys, dim, dim),
    kv: initLinear(keys, contextDim, 2 * dim),
    out: initLinear(keys, dim, dim, residStd === undefined ? {} : { std: residStd / Math.sqrt(dim) }),
  };
}

function checkInputs(p: CrossAttentionParams, x: Array, context: Array, opts: CrossAttentionOptions): string | undefined {
  const d = p.q.w.shape[0];
  const dc = p.kv.w.shape[0];
  if (x.ndim !== 3 || x.shape[2] !== d) return `crossAttention: expected queries x [B, T, ${d}], got ${fmt(x.shape)}`;
  if (context.ndim !== 3 || context.shape[0] !== x.shape[0] || context.shape[2] !== dc) {
    return `crossAttention: expected a context [${x.shape[0]}, S, ${dc}] for queries ${fmt(x.shape)}, got ${fmt(context.shape)}`;
  }
  if (!Number.isInteger(opts.heads) || opts.heads < 1 || d % opts.heads !== 0) return `crossAttention: width ${d} is not divisible by heads ${opts.heads}`;
  return undefined;
}

/**
 * x: [B, T, D] (queries), context: [B, S, Dc] (keys and values) → [B, T, D]:
 *   out(softmax(Q Kᵀ / √Dh + bias) V), Q = x W_q, [K V] = c W_kv, per head of width Dh = D / H.
 * mask: bool broadcastable to [B, H, T, S] (true = may attend), default all true. Consumes p, x,
 * context and mask.
 */
export function crossAttention(p: CrossAttentionParams, x: Array, context: Array, opts: CrossAttentionOptions, mask?: Array): Array {
  const problem = checkInputs(p, x, context, opts);
  if (problem) {
    tree.dispose([p, x, context, ...(mask ? [mask] : [])]);
    throw new Error(problem);
  }
  const [b, t, d] = x.shape;
  const s = context.shape[1];
  const h = opts.heads;
  const dh = d / h;
  const q = linear(p.q, x).reshape([b, t, h, dh]).transpose([0, 2, 1, 3]); // [B, H, T, Dh]
  const kv = linear(p.kv, context); // [B, S, 2D]
  const k = kv.ref.slice([], [], [0, d]).reshape([b, s, h, dh]).transpose([0, 2, 3, 1]); // [B, H, Dh, S]
  const v = kv.slice([], [], [d, 2 * d]).reshape([b, s, h, dh]).transpose([0, 2, 1, 3]); // [B, H, S, Dh]
  let scores = np.matmul(q, k).mul(1 / Math.sqrt(dh)); // [B, H, T, S]
  if (mask) scores = scores.add(np.where(mask, 0, -1e9));
  const y = np.matmul(nn.softmax(scores, -1), v); // [B, H, T, Dh]
  return linear(p.out, y.transpose([0, 2, 1, 3]).reshape([b, t, d]));
}
