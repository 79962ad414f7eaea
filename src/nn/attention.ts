import { copyRunsInPlace, nn, np, type Array } from "../engine/index.ts";
import type { KeyStream } from "../engine/rng.ts";
import { initLinear, linear, type LinearParams } from "./linear.ts";
import { softmax } from "./lean.ts";
import { rope, rope2d } from "./rope.ts";
import { expectLastDim, fmt } from "./shapes.ts";

export type AttentionParams = { qkv: LinearParams; out: LinearParams };
/**
 * rope: none (false, the default), 1-D rope over positions [T] or [B, T] ("1d"; true means the
 * same), or 2-D axial rope over (row, column) ids, positions then being a grid [T, 2] or
 * [B, T, 2] ("2d"; `rope2d`, text tokens carrying (t, t)).
 */
export type AttentionOptions = { heads: number; rope?: boolean | "1d" | "2d" };
/**
 * Per-layer KV cache, preallocated to the full context: k, v: [B, S, H, Dh]. One position's keys
 * (values) for every head are one contiguous row of D floats, which `writeFresh` overwrites in
 * place after each step.
 */
export type KVCache = { k: Array; v: Array };

/**
 * The keys and values of a cached step's T new positions, as rows of arrays the step has
 * materialized anyway, so a jitted step returns them without copy kernels: k: [B, T, W] holds
 * the keys in columns D..2D−1 (the qkv projection, W = 3D, or rope's q and k, W = 2D); v: [B, T, 3D]
 * holds the values in its last D columns (the qkv projection).
 */
export type FreshKV = { k: Array; v: Array };

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

/**
 * q: [B, H, T, Dh], k, v: [B, H, S, Dh], bias: → [B, T, H, Dh]. Scaled dot-product (Vaswani et
 * al. 2017). The output comes out with the heads next to each other, so the output projection
 * reads [B, T, H·Dh] as a plain reshape: from [B, H, T, Dh], the transpose and reshape make a
 * two-view array, which no GEMM (native or jax-js's fast matmul) can read, and where nothing else
 * made jax-js materialize it (a forward pass without gradients), the projection ran as a generic
 * indexed kernel at ~1 GFLOP/s (1.6 s of a 2.2 s block at d 512). Rows t of each (b, h) are
 * p[b, h, t, :] against v[b, h] broadcast over t: the same GEMMs, written into the strided rows.
 */
function attend(q: Array, k: Array, v: Array, bias: Array): Array {
  const [b, h, t, dh] = q.shape;
  const s = k.shape[2]!;
  const scale = 1 / Math.sqrt(dh!);
  const scores = np.matmul(q, k.transpose([0, 1, 3, 2])).mul(scale).add(bias); // [B, H, T, S]
  const probs = softmax(scores, -1).transpose([0, 2, 1, 3]).reshape([b!, t!, h!, 1, s]);
  return np.matmul(probs, v.reshape([b!, 1, h!, s, dh!])).reshape([b!, t!, h!, dh!]);
}

/**
 * x: [B, T, D] → q, k, v each [B, T, H, Dh] (rope applied to q and k when asked), and where the
 * keys and values are rows of materialized arrays (for a KV cache; otherwise dispose them).
 */
function project(p: AttentionParams, x: Array, positions: Array, opts: AttentionOptions): { q: Array; k: Array; v: Array; fresh: FreshKV } {
  const [b, t, d] = x.shape;
  const dh = d / opts.heads;
  // Sliced on the last axis of [B, T, 3D]: a [B, T, 3, H, Dh] reshape, or one view shared by q
  // and k, is a view that feeds several kernels, which jax-js materializes (a copy per layer).
  const qkv = linear(p.qkv, x);
  const heads = (from: number, to: number) => qkv.ref.slice([], [], [from * d, to * d]).reshape([b, t, ...(to - from > 1 ? [to - from] : []), opts.heads, dh]);
  const v = heads(2, 3);
  if (!opts.rope) {
    positions.dispose();
    const [q, k] = [heads(0, 1), heads(1, 2)];
    return { q, k, v, fresh: { k: qkv.ref, v: qkv } };
  }
  const qk = (opts.rope === "2d" ? rope2d : rope)(heads(0, 2), positions); // [B, T, 2, H, Dh]: q and k in one kernel, sharing the angles
  const fresh = { k: qk.ref.reshape([b, t, 2 * d]), v: qkv };
  return { q: qk.ref.slice([], [], 0), k: qk.slice([], [], 1), v, fresh };
}

/**
 * x: [B, T, D] → q, k, v each [B, T, H, Dh] for a whole sequence (no cache), as separate matmuls
 * against column blocks of W_qkv (q and k together under rope, which rotates them in one kernel).
 * The gradient of a slice of one [B, T, 3D] product is that slice padded back to [B, T, 3D], and
 * the three padded gradients (one of them transposed, from PV) were summed in one indexed kernel
 * per layer: ~10 ms of a ~200 ms step of the demo's model, 1 thread. Sliced weights move the pad
 * to dW ([D, 3D], tiny) and hand each gradient to its own GEMM.
 */
function projectSequence(p: AttentionParams, x: Array, positions: Array, opts: AttentionOptions): { q: Array; k: Array; v: Array } {
  const [b, t, d] = x.shape;
  const dh = d / opts.heads;
  const { w, b: bias } = p.qkv;
  const columns = (from: number, to: number, last: boolean): Array => {
    const part = { w: (last ? w : w.ref).slice([], [from * d, to * d]), ...(bias && { b: (last ? bias : bias.ref).slice([from * d, to * d]) }) };
    return linear(part, last ? x : x.ref).reshape([b, t, ...(to - from > 1 ? [to - from] : []), opts.heads, dh]);
  };
  if (!opts.rope) {
    positions.dispose();
    return { q: columns(0, 1, false), k: columns(1, 2, false), v: columns(2, 3, true) };
  }
  const qk = (opts.rope === "2d" ? rope2d : rope)(columns(0, 2, false), positions); // [B, T, 2, H, Dh]
  return { q: qk.ref.slice([], [], 0), k: qk.slice([], [], 1), v: columns(2, 3, true) };
}

function checkInput(x: Array, positions: Array, opts: AttentionOptions, dim: number): void {
  expectLastDim(x, dim, "attention", 3);
  if (x.ndim !== 3) throw new Error(`attention: expected x [B, T, D], got ${fmt(x.shape)}`);
  if (dim % opts.heads !== 0) throw new Error(`attention: width ${dim} is not divisible by heads ${opts.heads}`);
  if (!opts.rope) return;
  const [b, t] = x.shape;
  const p = positions.shape;
  const grid = opts.rope === "2d";
  const ok = grid
    ? (p.length === 2 && p[0] === t && p[1] === 2) || (p.length === 3 && p[0] === b && p[1] === t && p[2] === 2)
    : (p.length === 1 && p[0] === t) || (p.length === 2 && p[0] === b && p[1] === t);
  if (!ok) {
    const want = grid ? `a grid [T, 2] = ${fmt([t, 2])} or [B, T, 2] = ${fmt([b, t, 2])}` : `positions [T] = ${fmt([t])} or [B, T] = ${fmt([b, t])}`;
    throw new Error(`attention: rope "${grid ? "2d" : "1d"}" expects ${want} for x ${fmt(x.shape)}, got ${fmt(p)}`);
  }
}

/**
 * Multi-head self-attention over a whole sequence with an explicit mask.
 * x: [B, T, D], mask: bool broadcastable to [B, H, T, T] (true = attend), positions: [T] or
 * [B, T], or with rope "2d" a grid [T, 2] or [B, T, 2] of (row, column) ids (`AttentionOptions`).
 * Consumes all arguments.
 */
export function attention(p: AttentionParams, x: Array, mask: Array, positions: Array, opts: AttentionOptions): Array {
  const d = p.qkv.w.shape[0];
  checkInput(x, positions, opts, d);
  const [b, t] = x.shape;
  const { q, k, v } = projectSequence(p, x, positions, opts);
  const perm = [0, 2, 1, 3];
  const y = attend(q.transpose(perm), k.transpose(perm), v.transpose(perm), maskBias(mask)); // [B, T, H, Dh]
  return linear(p.out, y.reshape([b, t, d]));
}

/**
 * Attention of T new positions over the cache and over each other: q, k, v: [B, H, T, Dh] (new),
 * kc, vc: [B, H, S, Dh] (cache views), cacheBias broadcastable to [B, H, T, S], newBias to
 * [B, H, T, T] (0 / −1e9). One softmax over the S + T scores, computed in two blocks, so the new
 * keys need not be in the cache yet: the cache is written afterwards, in place (`writeFresh`),
 * instead of a select that rewrote all S slots of both caches every step (37 µs of a ~1 ms
 * decoded token per layer and cache; docs/performance.md).
 */
function attendCached(q: Array, kc: Array, vc: Array, k: Array, v: Array, cacheBias: Array, newBias: Array): Array {
  const scale = 1 / Math.sqrt(q.shape[3]);
  const sc = np.matmul(q.ref, kc.transpose([0, 1, 3, 2])).mul(scale).add(cacheBias); // [B, H, T, S]
  const mc = sc.ref.max(-1, { keepdims: true });
  if (q.shape[2] === 1) {
    // One new position (a decode step): its own score is a dot product and its block of the
    // softmax a single term, so no max/sum over a length-1 axis and no K = 1 matmul: 14 fewer
    // kernels per decoded token of the benchmark GPT.
    newBias.dispose();
    const sn = q.mul(k).sum(-1, { keepdims: true }).mul(scale); // [B, H, 1, 1]
    const m = np.maximum(mc, sn.ref);
    const ec = np.exp(sc.sub(m.ref));
    const en = np.exp(sn.sub(m));
    const denom = ec.ref.sum(-1, { keepdims: true }).add(en.ref);
    return np.matmul(ec, vc).add(en.mul(v)).div(denom);
  }
  const sn = np.matmul(q, k.transpose([0, 1, 3, 2])).mul(scale).add(newBias); // [B, H, T, T]
  const m = np.maximum(mc, sn.ref.max(-1, { keepdims: true }));
  const ec = np.exp(sc.sub(m.ref));
  const en = np.exp(sn.sub(m));
  const denom = ec.ref.sum(-1, { keepdims: true }).add(en.ref.sum(-1, { keepdims: true }));
  return np.matmul(ec, vc).add(np.matmul(en, v)).div(denom);
}

/**
 * Attention for T new positions at start..start+T−1 against a preallocated cache holding
 * positions 0..start−1 (prefill or one decode step). x: [B, T, D], cache k/v: [B, S, H, Dh] (read,
 * not consumed), cacheVisible: bool broadcastable to [T, S] (true = attend; slots ≥ start must be
 * false), newVisible: bool [T, T] (causal among the new positions), positions: [T] or [B, T]
 * (with rope "2d", a grid [T, 2] or [B, T, 2]).
 * Returns the output and where the new keys and values are (`FreshKV`), for `writeFresh`.
 * Consumes x, the masks and positions.
 */
export function attentionCached(
  p: AttentionParams,
  x: Array,
  cache: KVCache,
  cacheVisible: Array,
  newVisible: Array,
  positions: Array,
  opts: AttentionOptions,
): { y: Array; fresh: FreshKV } {
  const d = p.qkv.w.shape[0];
  checkInput(x, positions, opts, d);
  const [b, t] = x.shape;
  const perm = [0, 2, 1, 3];
  const { q, k, v, fresh } = project(p, x, positions, opts);
  const kc = cache.k.ref.transpose(perm);
  const vc = cache.v.ref.transpose(perm);
  const y = attendCached(q.transpose(perm), kc, vc, k.transpose(perm), v.transpose(perm), maskBias(cacheVisible), maskBias(newVisible));
  return { y: linear(p.out, y.transpose(perm).reshape([b, t, d])), fresh };
}

/**
 * Writes the keys and values of T new positions (`fresh`, from `attentionCached`) into the
 * cache's slots start..start+T−1, in place (`copyRunsInPlace`: one row copy per sequence, not a
 * rewrite of the cache). The cache must not be shared with other arrays, and no kernel queued
 * before this may still be waiting to read it (run the step first: read its output). Consumes fresh.
 */
export async function writeFresh(cache: KVCache, fresh: FreshKV, start: number): Promise<void> {
  const [b, s, h, dh] = cache.k.shape;
  const d = h * dh;
  const t = fresh.k.shape[1];
  if (!Number.isInteger(start) || start < 0 || start + t > s) {
    fresh.k.dispose();
    fresh.v.dispose();
    throw new Error(`writeFresh: positions ${start}..${start + t - 1} outside the cache's ${s} slots`);
  }
  // the keys are columns D..2D−1 of their rows, the values the last D columns (`FreshKV`)
  for (const [c, rows, column] of [[cache.k, fresh.k, d], [cache.v, fresh.v, fresh.v.shape[2] - d]] as const) {
    const w = rows.shape[2];
    const runs: number[] = [];
    for (let bi = 0; bi < b; bi++) for (let ti = 0; ti < t; ti++) runs.push((bi * s + start + ti) * d, (bi * t + ti) * w + column, d);
    await copyRunsInPlace(c, rows, runs);
  }
}
