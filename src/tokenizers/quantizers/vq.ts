import { lax, nn, np, type Array } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { normal } from "../../nn/init.ts";
import { expectLastDim } from "../../nn/shapes.ts";
import type { QuantizeResult } from "./types.ts";

/** Vector quantization of VQ-VAE (van den Oord et al. 2017). */
export type VQOptions = {
  /** Number of codes K. */
  readonly codebookSize: number;
  /** Code dimension D. */
  readonly dim: number;
  /** β, the commitment-loss weight (paper: 0.25). */
  readonly beta: number;
  /** "l2" nearest code, or "cosine": l2-normalized inputs and codes (ViT-VQGAN, Yu et al. 2022). */
  readonly distance: "l2" | "cosine";
};

export const DEFAULT_VQ: Omit<VQOptions, "codebookSize" | "dim"> = { beta: 0.25, distance: "l2" };

/** codebook: [K, D]. */
export type VQParams = { codebook: Array };

export function initVQ(keys: KeyStream, { codebookSize, dim }: Pick<VQOptions, "codebookSize" | "dim">): VQParams {
  return { codebook: normal(keys, [codebookSize, dim], 1 / Math.sqrt(dim)) };
}

function l2normalize(x: Array): Array {
  return x.ref.mul(np.reciprocal(np.sqrt(np.square(x).sum(-1, { keepdims: true }).add(1e-12))));
}

/** Squared distances ‖x − c‖² = ‖x‖² − 2x·c + ‖c‖². x: [N, D], c: [K, D] → [N, K]. */
function distances(x: Array, c: Array): Array {
  const xx = np.square(x.ref).sum(-1, { keepdims: true });
  const cc = np.square(c.ref).sum(-1).reshape([1, -1]);
  return xx.add(cc).sub(np.matmul(x, c.transpose([1, 0])).mul(2));
}

/**
 * x: [..., D] → codes [..., D], indices [...].
 * losses.codebook = ‖sg(x) − e‖², losses.commitment = β‖x − sg(e)‖², both means;
 * codes = x + sg(e − x), the straight-through estimator. Consumes params and x.
 */
export function quantize(params: VQParams, x: Array, opts: VQOptions): QuantizeResult {
  const [k, d] = params.codebook.shape;
  expectLastDim(x, d, "vq.quantize");
  const lead = x.shape.slice(0, -1);
  let flat = x.reshape([-1, d]);
  let codebook = params.codebook;
  if (opts.distance === "cosine") {
    flat = l2normalize(flat);
    codebook = l2normalize(codebook);
  }
  const indices = np.argmin(distances(lax.stopGradient(flat.ref), lax.stopGradient(codebook.ref)), -1); // [N]
  const e = np.matmul(nn.oneHot(indices.ref, k).astype(flat.dtype), codebook); // [N, D], differentiable in the codebook
  const codebookLoss = np.square(lax.stopGradient(flat.ref).sub(e.ref)).mean();
  const commitment = np.square(flat.ref.sub(lax.stopGradient(e.ref))).mean().mul(opts.beta);
  const codes = flat.ref.add(lax.stopGradient(e.sub(flat)));
  return {
    codes: codes.reshape([...lead, d]),
    indices: indices.reshape(lead),
    losses: { codebook: codebookLoss, commitment },
    stats: {},
  };
}

/** indices: [...] int32 → codes [..., D] (the codes `quantize` returned, without gradient tricks). */
export function indicesToCodes(params: VQParams, indices: Array, opts: Pick<VQOptions, "distance">): Array {
  const [k, d] = params.codebook.shape;
  const codebook = opts.distance === "cosine" ? l2normalize(params.codebook) : params.codebook;
  const lead = indices.shape;
  return np.matmul(nn.oneHot(indices.reshape([-1]), k).astype(codebook.dtype), codebook).reshape([...lead, d]);
}
