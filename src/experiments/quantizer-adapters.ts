import type { Array } from "../engine/index.ts";
import type { QuantizerAdapter } from "../tokenizers/image/autoencoder.ts";
import { vqAdapter } from "../tokenizers/image/vqvae.ts";
import * as binary from "../tokenizers/quantizers/binary.ts";
import * as fsq from "../tokenizers/quantizers/fsq.ts";
import * as groupVQ from "../tokenizers/quantizers/group-vq.ts";
import * as lfq from "../tokenizers/quantizers/lfq.ts";
import * as multiscale from "../tokenizers/quantizers/multiscale.ts";
import * as rvq from "../tokenizers/quantizers/rvq.ts";
import { DEFAULT_VQ, type VQOptions, type VQParams } from "../tokenizers/quantizers/vq.ts";

/**
 * Every quantizer of `quantizers/*` as an auto-encoder adapter (autoencoder.ts) on a latent grid
 * [N, h, w, D]: token ids become one row per image, position-major (all tokens of position 0,
 * then position 1, … in raster order), except the multi-scale quantizer, whose row is its scales'
 * token maps from the coarsest up.
 */
type Grid = readonly [number, number];

/** Several tokens per position, each from its own codebook of K: health counts L·K stored codes. */
function perLevelCodes(levels: number, k: number) {
  return { count: levels * k, fromIds: (ids: Int32Array) => Int32Array.from(ids, (id, i) => id + k * (i % levels)) };
}

/** [N, h, w, m] ids ↔ [N, h·w·m] rows. */
const flatten = (ids: Array, t: number) => ids.reshape([-1, t]);

/** VQ (vq.ts), DEFAULT_VQ filling the options not given. */
export function vq(opts: Partial<VQOptions> & Pick<VQOptions, "codebookSize" | "dim">, grid: Grid): QuantizerAdapter<VQParams> {
  return vqAdapter({ ...DEFAULT_VQ, ...opts }, grid);
}

/** Residual VQ (SoundStream): L tokens per position, level-major within a position. */
export function residualVQ(opts: Omit<rvq.RVQOptions, "beta" | "distance" | "dropout" | "minLevels"> & Partial<rvq.RVQOptions>, [h, w]: Grid): QuantizerAdapter<rvq.RVQParams> {
  const o: rvq.RVQOptions = { ...rvq.DEFAULT_RVQ, ...opts };
  const t = h * w * o.levels;
  return {
    name: "rvq",
    latentDim: o.dim,
    codebookSize: o.codebookSize,
    tokensPerImage: t,
    tokensPerPosition: o.levels,
    codes: perLevelCodes(o.levels, o.codebookSize),
    init: (keys) => rvq.initRVQ(keys, o),
    quantize: (p, z) => {
      const r = rvq.quantize(p, z, o);
      return { ...r, indices: flatten(r.indices, t) };
    },
    indicesToCodes: (p, ids) => rvq.indicesToCodes(p, ids.reshape([-1, h, w, o.levels]), o),
  };
}

/** Group / product VQ: G tokens per position, one per channel group. */
export function groupedVQ(opts: Omit<groupVQ.GroupVQOptions, "beta" | "distance" | "shared"> & Partial<groupVQ.GroupVQOptions>, [h, w]: Grid): QuantizerAdapter<groupVQ.GroupVQParams> {
  const o: groupVQ.GroupVQOptions = { ...groupVQ.DEFAULT_GROUP_VQ, ...opts };
  const t = h * w * o.groups;
  return {
    name: "group-vq",
    latentDim: o.dim,
    codebookSize: o.codebookSize,
    tokensPerImage: t,
    tokensPerPosition: o.groups,
    ...(o.shared ? {} : { codes: perLevelCodes(o.groups, o.codebookSize) }),
    init: (keys) => groupVQ.initGroupVQ(keys, o),
    quantize: (p, z) => {
      const r = groupVQ.quantize(p, z, o);
      return { ...r, indices: flatten(r.indices, t) };
    },
    indicesToCodes: (p, ids) => groupVQ.indicesToCodes(p, ids.reshape([-1, h, w, o.groups]), o),
  };
}

/** VAR's multi-scale residual quantizer: Σ s² tokens per image, one shared codebook. */
export function multiScale(opts: Pick<multiscale.MultiScaleOptions, "codebookSize" | "dim"> & Partial<multiscale.MultiScaleOptions>, [h, w]: Grid): QuantizerAdapter<multiscale.MultiScaleParams> {
  const o: multiscale.MultiScaleOptions = { ...multiscale.DEFAULT_MULTISCALE, ...opts };
  if (h !== w || o.scales[o.scales.length - 1] !== h) throw new Error(`multiScale adapter: the last scale must be the latent side ${h}, got scales [${o.scales.join(", ")}] for a ${h}×${w} grid`);
  return {
    name: "var",
    latentDim: o.dim,
    codebookSize: o.codebookSize,
    tokensPerImage: multiscale.scaleOffsets(o.scales).at(-1)!,
    init: (keys) => multiscale.initMultiScale(keys, o),
    quantize: (p, z) => multiscale.quantize(p, z, o),
    indicesToCodes: (p, ids) => multiscale.indicesToCodes(p, ids, o),
  };
}

/** FSQ: one token per position from the implicit grid of ∏ L_i codes; D = levels.length. */
export function finiteScalar(opts: Partial<fsq.FSQOptions>, [h, w]: Grid): QuantizerAdapter<fsq.FSQParams> {
  const o: fsq.FSQOptions = { ...fsq.DEFAULT_FSQ, ...opts };
  return {
    name: "fsq",
    latentDim: o.levels.length,
    codebookSize: fsq.codebookSize(o),
    tokensPerImage: h * w,
    tokensPerPosition: 1,
    init: () => ({}),
    quantize: (p, z) => {
      const r = fsq.quantize(p, z, o);
      return { ...r, indices: flatten(r.indices, h * w) };
    },
    indicesToCodes: (p, ids) => fsq.indicesToCodes(p, ids.reshape([-1, h, w]), o),
  };
}

/** LFQ (MAGVIT-2): one token of d bits per position; D = d. */
export function lookupFree(opts: Partial<lfq.LFQOptions>, [h, w]: Grid): QuantizerAdapter<lfq.LFQParams> {
  const o: lfq.LFQOptions = { ...lfq.DEFAULT_LFQ, ...opts };
  return {
    name: "lfq",
    latentDim: o.dim,
    codebookSize: lfq.codebookSize(o),
    tokensPerImage: h * w,
    tokensPerPosition: 1,
    init: () => ({}),
    quantize: (p, z) => {
      const r = lfq.quantize(p, z, o);
      return { ...r, indices: flatten(r.indices, h * w) };
    },
    indicesToCodes: (p, ids) => lfq.indicesToCodes(p, ids.reshape([-1, h, w]), o),
  };
}

/** MaskBit-style bits: D sign bits per position cut into D/b tokens of b bits (one shared vocabulary of 2^b). */
export function bits(opts: Partial<binary.BinaryOptions>, [h, w]: Grid): QuantizerAdapter<binary.BinaryParams> {
  const o: binary.BinaryOptions = { ...binary.DEFAULT_BINARY, ...opts };
  const g = binary.tokensPerVector(o);
  const t = h * w * g;
  return {
    name: "binary",
    latentDim: o.dim,
    codebookSize: binary.codebookSize(o),
    tokensPerImage: t,
    tokensPerPosition: g,
    init: () => ({}),
    quantize: (p, z) => {
      const r = binary.quantize(p, z, o);
      return { ...r, indices: flatten(r.indices, t) };
    },
    indicesToCodes: (p, ids) => binary.indicesToCodes(p, ids.reshape([-1, h, w, g]), o),
  };
}
