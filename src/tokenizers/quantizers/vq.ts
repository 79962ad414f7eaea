import { lax, np, tree, type Array } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { normal } from "../../nn/init.ts";
import { initLinear, linear, type LinearParams } from "../../nn/linear.ts";
import { expectLastDim, fmt } from "../../nn/shapes.ts";
import { checkDeviceIds, checkQuantizerInput } from "./checks.ts";
import type { QuantizeResult } from "./types.ts";
import { oneHot } from "../../nn/embedding.ts";

/**
 * Vector quantization of VQ-VAE (van den Oord et al. 2017): each input vector is replaced by its
 * nearest codebook entry. Options add the cosine distance and the factorized low-dimensional
 * lookup of ViT-VQGAN (Yu et al. 2022), and EMA codebook updates (van den Oord et al. 2017,
 * appendix A.1; Razavi et al. 2019). The lookup helpers here are shared by rvq.ts and group-vq.ts.
 */
export type Distance = "l2" | "cosine";

export type VQOptions = {
  /** Number of codes K. */
  readonly codebookSize: number;
  /** Input and code dimension D. */
  readonly dim: number;
  /** β, the commitment-loss weight (paper: 0.25). */
  readonly beta: number;
  /** "l2" nearest code, or "cosine": l2-normalized inputs and codes (ViT-VQGAN, Yu et al. 2022). */
  readonly distance: Distance;
  /**
   * Factorized lookup (ViT-VQGAN §3.2): project D → lookupDim (a linear layer in the params),
   * look up there, project the code back to D. Codebook [K, lookupDim]. Absent = off.
   */
  readonly lookupDim?: number;
  /**
   * How the codebook learns. "loss" (default): by gradient of losses.codebook. "ema": by
   * `emaUpdate` between steps; quantize then returns no codebook loss (the codebook gets no
   * gradient at all, so keep it out of the optimizer).
   */
  readonly codebookUpdate?: "loss" | "ema";
};

export const DEFAULT_VQ: Omit<VQOptions, "codebookSize" | "dim"> = { beta: 0.25, distance: "l2", codebookUpdate: "loss" };

/** codebook: [K, C] with C = lookupDim ?? D; projIn: D → C and projOut: C → D only with lookupDim. */
export type VQParams = { codebook: Array; projIn?: LinearParams; projOut?: LinearParams };

export function initVQ(keys: KeyStream, { codebookSize, dim, lookupDim }: Pick<VQOptions, "codebookSize" | "dim" | "lookupDim">): VQParams {
  if (lookupDim === undefined) return { codebook: normal(keys, [codebookSize, dim], 1 / Math.sqrt(dim)) };
  checkPositiveInt(lookupDim, "vq lookupDim");
  return {
    codebook: normal(keys, [codebookSize, lookupDim], 1 / Math.sqrt(lookupDim)),
    projIn: initLinear(keys, dim, lookupDim),
    projOut: initLinear(keys, lookupDim, dim),
  };
}

export function checkPositiveInt(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${what} must be a positive integer, got ${v}`);
}

/** Throw unless the params match the options (codebook [K, lookupDim ?? D], projections iff lookupDim). */
function checkVQParams(p: VQParams, opts: VQOptions, what: string): void {
  const c = opts.lookupDim ?? opts.dim;
  const s = p.codebook.shape;
  if (s.length !== 2 || s[0] !== opts.codebookSize || s[1] !== c) {
    throw new Error(`${what}: expected codebook [${opts.codebookSize}, ${c}] (codebookSize, ${opts.lookupDim === undefined ? "dim" : "lookupDim"}), got ${fmt(s)}`);
  }
  if ((opts.lookupDim !== undefined) !== (p.projIn !== undefined && p.projOut !== undefined)) {
    throw new Error(`${what}: lookupDim is ${opts.lookupDim ?? "off"} but the params ${p.projIn ? "have" : "lack"} projIn/projOut`);
  }
}

/**
 * x / max(‖x‖, 1e-12) over the last axis, as torch's F.normalize (used by vq-pytorch and VAR), so
 * tiny inputs (‖x‖ ~ 1e-7) still become unit vectors; an ε added under the root would shrink them.
 * The clamp sits on ‖x‖² (at 1e-24, the same value) so that x = 0 gets a finite gradient, not
 * sqrt's ∞ times 0. x: [..., C] → [..., C]. Consumes x.
 */
export function l2normalize(x: Array): Array {
  return x.ref.div(np.sqrt(np.maximum(np.square(x).sum(-1, { keepdims: true }), 1e-24)));
}

function swapLastTwo(a: Array): Array {
  const axes = a.shape.map((_, i) => i);
  [axes[axes.length - 2], axes[axes.length - 1]] = [axes[axes.length - 1], axes[axes.length - 2]];
  return a.transpose(axes);
}

/**
 * Nearest-code lookup, batched over optional leading axes (one codebook per batch entry).
 * z: [..., N, C], codebook: [..., K, C] → z (l2-normalized when cosine) [..., N, C],
 * e: the chosen (normalized) codes [..., N, C], differentiable in the codebook, indices [..., N].
 * Distances ‖z − c‖² = ‖z‖² − 2z·c + ‖c‖² without gradient; e = onehot(ids) @ codebook, because
 * gather gradients with traced indices fail inside jit. Consumes codebook and z.
 */
export function nearestCode(codebook: Array, z: Array, distance: Distance): { z: Array; e: Array; indices: Array } {
  const k = codebook.shape[codebook.ndim - 2];
  if (distance === "cosine") {
    z = l2normalize(z);
    codebook = l2normalize(codebook);
  }
  const zs = lax.stopGradient(z.ref);
  const cs = lax.stopGradient(codebook.ref);
  const zz = np.square(zs.ref).sum(-1, { keepdims: true }); // [..., N, 1]
  const cc = np.expandDims(np.square(cs.ref).sum(-1), -2); // [..., 1, K]
  const dist = zz.add(cc).sub(np.matmul(zs, swapLastTwo(cs)).mul(2)); // [..., N, K]
  const indices = np.argmin(dist, -1); // [..., N]
  const e = np.matmul(oneHot(indices.ref, k, z.dtype), codebook); // [..., N, C]
  return { z, e, indices };
}

/**
 * VQ-VAE eq. 3 without the reconstruction term: codebook = mean ‖sg(z) − e‖² (moves codes to
 * the inputs), commitment = β·mean ‖z − sg(e)‖² (keeps inputs near their codes); means over all
 * elements. codebook = false (EMA updates) drops the first. Consumes z and e.
 */
export function vqLosses(z: Array, e: Array, beta: number, codebook = true): Record<string, Array> {
  const commitment = np.square(z.ref.sub(lax.stopGradient(e.ref))).mean().mul(beta);
  if (!codebook) {
    tree.dispose([z, e]);
    return { commitment };
  }
  return { codebook: np.square(lax.stopGradient(z).sub(e)).mean(), commitment };
}

/**
 * Straight-through estimator (VQ-VAE §3.2), sg(e) + (z − sg(z)): the value is exactly e, the
 * gradient w.r.t. z the identity, and e (the codebook) gets none: it learns from the codebook loss
 * only. (z + sg(e − z) rounds in float32: e = 0.3, z = 1000 gives 0.2999878.) Consumes both.
 */
export function straightThrough(z: Array, e: Array): Array {
  return lax.stopGradient(e).add(z.ref.sub(lax.stopGradient(z)));
}

/** x: [N, D] → [N, C]: projIn when factorized. Consumes projIn and x. */
function projectIn(p: VQParams, x: Array): Array {
  return p.projIn ? linear(p.projIn, x) : x;
}

/** [N, C] → [N, D]: projOut when factorized. Consumes projOut and y. */
function projectOut(p: VQParams, y: Array): Array {
  return p.projOut ? linear(p.projOut, y) : y;
}

/**
 * x: [..., D] → codes [..., D], indices [...] int32, losses {codebook?, commitment}, stats {}.
 * Factorized: z = projIn(x) [..., C] is quantized and codes = projOut(straightThrough(z, e)), so the losses
 * live in the lookup space (as in vector-quantize-pytorch). Consumes params and x.
 */
export function quantize(params: VQParams, x: Array, opts: VQOptions): QuantizeResult {
  checkVQParams(params, opts, "vq.quantize");
  checkQuantizerInput(x, opts.dim, "vq.quantize");
  const lead = x.shape.slice(0, -1);
  const { z, e, indices } = nearestCode(params.codebook, projectIn(params, x.reshape([-1, opts.dim])), opts.distance);
  const losses = vqLosses(z.ref, e.ref, opts.beta, opts.codebookUpdate !== "ema");
  const codes = projectOut(params, straightThrough(z, e));
  return { codes: codes.reshape([...lead, opts.dim]), indices: indices.reshape(lead), losses, stats: {} };
}

/**
 * indices: [...] int32 → codes [..., D] (the values `quantize` returned, without gradient tricks).
 * Ids are range-checked when concrete. Consumes params and indices.
 */
export function indicesToCodes(params: VQParams, indices: Array, opts: Pick<VQOptions, "distance">): Array {
  const k = params.codebook.shape[0];
  checkDeviceIds(indices, k, "vq.indicesToCodes");
  const codebook = opts.distance === "cosine" ? l2normalize(params.codebook) : params.codebook;
  const lead = indices.shape;
  const e = np.matmul(oneHot(indices.reshape([-1]), k, codebook.dtype), codebook); // [N, C]
  const codes = projectOut(params, e);
  if (params.projIn) tree.dispose(params.projIn);
  return codes.reshape([...lead, codes.shape[1]]);
}

/**
 * The vectors the codebook is matched against: x: [..., D] → [..., C], projected (factorized)
 * and normalized (cosine), without gradient. These are what `emaUpdate` averages. Consumes params and x.
 */
export function toLookupSpace(params: VQParams, x: Array, opts: VQOptions): Array {
  checkVQParams(params, opts, "vq.toLookupSpace");
  checkQuantizerInput(x, opts.dim, "vq.toLookupSpace");
  const lead = x.shape.slice(0, -1);
  params.codebook.dispose();
  if (params.projOut) tree.dispose(params.projOut);
  let z = projectIn(params, x.reshape([-1, opts.dim]));
  if (opts.distance === "cosine") z = l2normalize(z);
  return lax.stopGradient(z.reshape([...lead, opts.lookupDim ?? opts.dim]));
}

// ---------------------------------------------------------------- EMA codebook updates

/**
 * Running statistics of the EMA codebook (van den Oord et al. 2017, app. A.1): N_k, the decayed
 * count of vectors assigned to code k, [K]; m_k, the decayed sum of those vectors, [K, C].
 * Kept outside VQParams: they are optimizer-like state, not trainable parameters.
 */
export type VQEmaState = { clusterSize: Array; embedSum: Array };

export type EmaOptions = {
  /** γ, the EMA decay (paper: 0.99). */
  readonly decay: number;
  /** Laplace smoothing ε added to every cluster size, so unused codes never divide by zero. */
  readonly eps: number;
};

export const DEFAULT_EMA: EmaOptions = { decay: 0.99, eps: 1e-5 };

/**
 * Start the statistics at the current codebook [K, C]: N_k = 1, m_k = e_k, so that m_k / N_k = e_k.
 * (vector-quantize-pytorch starts N_k at 0, which on the first update blows unused codes up to
 * γ·e_k / ε.) Consumes codebook.
 */
export function initEmaState(codebook: Array): VQEmaState {
  return { clusterSize: np.ones([codebook.shape[0]], { dtype: codebook.dtype }), embedSum: codebook };
}

/**
 * One EMA step (pure): with n_k = #{i : id_i = k} and s_k = Σ_{id_i = k} z_i,
 *   N_k ← γN_k + (1 − γ)n_k,   m_k ← γm_k + (1 − γ)s_k,
 *   Ñ_k = (N_k + ε) / (ΣN + Kε) · ΣN   (Laplace smoothing, as vector-quantize-pytorch),
 *   e_k = m_k / Ñ_k.
 * z: [..., C] lookup-space vectors (`toLookupSpace`), indices: [...] their code ids.
 * Returns the new codebook [K, C] and state. Consumes state, z and indices. With cosine the
 * averages are not unit vectors; lookups normalize the codebook anyway. A training step:
 *   q = quantize(p, x, {...opts, codebookUpdate: "ema"})   // gradient step on everything else
 *   ({ codebook, state } = emaUpdate(state, toLookupSpace(p, x, opts), q.indices, ema)); p.codebook = codebook
 */
export function emaUpdate(state: VQEmaState, z: Array, indices: Array, { decay, eps }: EmaOptions = DEFAULT_EMA): { codebook: Array; state: VQEmaState } {
  const [k, c] = state.embedSum.shape;
  if (!(decay >= 0 && decay < 1)) throw new Error(`vq.emaUpdate: decay must be in [0, 1), got ${decay}`);
  if (!(eps > 0)) throw new Error(`vq.emaUpdate: eps must be > 0, got ${eps}`);
  expectLastDim(z, c, "vq.emaUpdate");
  if (fmt(z.shape.slice(0, -1)) !== fmt(indices.shape)) {
    throw new Error(`vq.emaUpdate: indices ${fmt(indices.shape)} must match the vectors' leading shape ${fmt(z.shape.slice(0, -1))}`);
  }
  checkDeviceIds(indices, k, "vq.emaUpdate");
  const zf = lax.stopGradient(z.reshape([-1, c])); // [N, C]
  const onehot = oneHot(indices.reshape([-1]), k, zf.dtype); // [N, K]
  const counts = onehot.ref.sum(0); // [K]
  const sums = np.matmul(onehot.transpose([1, 0]), zf); // [K, C]
  const clusterSize = state.clusterSize.mul(decay).add(counts.mul(1 - decay));
  const embedSum = state.embedSum.mul(decay).add(sums.mul(1 - decay));
  const total = clusterSize.ref.sum();
  const smoothed = clusterSize.ref.add(eps).div(total.ref.add(k * eps)).mul(total); // [K]
  const codebook = embedSum.ref.div(smoothed.reshape([k, 1]));
  return { codebook, state: { clusterSize, embedSum } };
}
