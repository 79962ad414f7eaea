import { np, type Array } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { normal } from "../../nn/init.ts";
import { fmt } from "../../nn/shapes.ts";
import { checkDeviceIds, checkQuantizerInput } from "./checks.ts";
import type { QuantizeResult } from "./types.ts";
import { checkPositiveInt, l2normalize, nearestCode, straightThrough, vqLosses, type Distance } from "./vq.ts";
import { oneHot } from "../../nn/embedding.ts";

/**
 * Product / group vector quantization (product quantization, Jégou et al. 2011; grouped VQ as in
 * wav2vec 2.0, Baevski et al. 2020, and vector-quantize-pytorch's `heads`): the D channels are
 * split into G contiguous groups of D/G, and each group is quantized on its own, so G ids of K
 * codes each address K^G combinations with only G·K stored codes.
 */
export type GroupVQOptions = {
  /** Number of groups G; must divide dim. */
  readonly groups: number;
  /** Codes per codebook K. */
  readonly codebookSize: number;
  /** Input and code dimension D. */
  readonly dim: number;
  /** β, the commitment-loss weight. */
  readonly beta: number;
  /** "l2", or "cosine" (each group's sub-vector and codes l2-normalized). */
  readonly distance: Distance;
  /** One codebook [K, D/G] shared by every group instead of G of them. */
  readonly shared: boolean;
};

export const DEFAULT_GROUP_VQ: Omit<GroupVQOptions, "groups" | "codebookSize" | "dim"> = { beta: 0.25, distance: "l2", shared: false };

/** codebooks: [G, K, D/G], or [1, K, D/G] when shared. */
export type GroupVQParams = { codebooks: Array };

function groupDim(opts: Pick<GroupVQOptions, "groups" | "dim">, what: string): number {
  checkPositiveInt(opts.groups, `${what}: groups`);
  if (opts.dim % opts.groups !== 0) throw new Error(`${what}: groups G = ${opts.groups} must divide dim D = ${opts.dim}`);
  return opts.dim / opts.groups;
}

export function initGroupVQ(keys: KeyStream, opts: Pick<GroupVQOptions, "groups" | "codebookSize" | "dim" | "shared">): GroupVQParams {
  const dg = groupDim(opts, "initGroupVQ");
  return { codebooks: normal(keys, [opts.shared ? 1 : opts.groups, opts.codebookSize, dg], 1 / Math.sqrt(dg)) };
}

function checkGroupParams(p: GroupVQParams, opts: GroupVQOptions, what: string): number {
  const dg = groupDim(opts, what);
  const want = [opts.shared ? 1 : opts.groups, opts.codebookSize, dg];
  if (fmt(p.codebooks.shape) !== fmt(want)) {
    throw new Error(`${what}: expected codebooks ${fmt(want)} (${opts.shared ? "1 shared" : "groups"}, codebookSize, dim / groups), got ${fmt(p.codebooks.shape)}`);
  }
  return dg;
}

/**
 * x: [..., D] → codes [..., D], indices [..., G] int32 (group g in column g), losses, stats {}.
 * Each group is VQ (vq.ts): codes = sg(e) + z − sg(z) per group, concatenated; losses.codebook and
 * losses.commitment are means over all N·D elements, i.e. the mean of the per-group VQ losses.
 * Consumes params and x.
 */
export function quantize(params: GroupVQParams, x: Array, opts: GroupVQOptions): QuantizeResult {
  const dg = checkGroupParams(params, opts, "groupVQ.quantize");
  checkQuantizerInput(x, opts.dim, "groupVQ.quantize");
  const g = opts.groups;
  const lead = x.shape.slice(0, -1);
  const chunks = x.reshape([-1, g, dg]); // [N, G, Dg]
  const n = chunks.shape[0];
  // Batched lookup: one batch entry per codebook; a shared codebook sees all N·G sub-vectors.
  const z = opts.shared ? chunks.reshape([1, n * g, dg]) : chunks.transpose([1, 0, 2]); // [G', N', Dg]
  const found = nearestCode(params.codebooks, z, opts.distance); // z, e: [G', N', Dg], indices [G', N']
  const losses = vqLosses(found.z.ref, found.e.ref, opts.beta);
  const st = straightThrough(found.z, found.e); // [G', N', Dg]
  const codes = opts.shared ? st : st.transpose([1, 0, 2]); // [N, G, Dg] (shared: [1, N·G, Dg], same order)
  const indices = opts.shared ? found.indices : found.indices.transpose([1, 0]); // [N, G]
  return { codes: codes.reshape([...lead, opts.dim]), indices: indices.reshape([...lead, g]), losses, stats: {} };
}

/** indices: [..., G] int32 → codes [..., D], the values `quantize` returned. Consumes params and indices. */
export function indicesToCodes(params: GroupVQParams, indices: Array, opts: Pick<GroupVQOptions, "groups" | "distance">): Array {
  const [gc, k, dg] = params.codebooks.shape;
  const g = opts.groups;
  if (indices.ndim < 1 || indices.shape[indices.ndim - 1] !== g) throw new Error(`groupVQ.indicesToCodes: expected indices [..., ${g}] (one id per group), got ${fmt(indices.shape)}`);
  if (gc !== 1 && gc !== g) throw new Error(`groupVQ.indicesToCodes: codebooks ${fmt(params.codebooks.shape)} fit neither ${g} groups nor a shared codebook`);
  checkDeviceIds(indices, k, "groupVQ.indicesToCodes");
  const lead = indices.shape.slice(0, -1);
  const codebooks = opts.distance === "cosine" ? l2normalize(params.codebooks) : params.codebooks;
  const ids = gc === 1 ? indices.reshape([1, -1]) : indices.reshape([-1, g]).transpose([1, 0]); // [G', N']
  const e = np.matmul(oneHot(ids, k, codebooks.dtype), codebooks); // [G', N', Dg]
  return (gc === 1 ? e : e.transpose([1, 0, 2])).reshape([...lead, g * dg]);
}
