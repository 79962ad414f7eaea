/**
 * Every quantizer of the family by name, as a tokenizer adapter (adapter.ts) on a latent grid
 * [N, h, w, D], made from a serializable spec (`{ name, options }`) so that a saved tokenizer
 * records which quantizer it uses and rebuilds it. Token ids are one row per item,
 * position-major (all tokens of position 0, then position 1, … in raster order), except the
 * multi-scale quantizer, whose row is its scales' token maps from the coarsest up.
 */
import type { Array } from "../../engine/index.ts";
import { InputError } from "../../io/errors.ts";
import type { QuantizerAdapter, AnyQuantizer } from "./adapter.ts";
import * as binary from "./binary.ts";
import * as fsq from "./fsq.ts";
import * as groupVQ from "./group-vq.ts";
import * as lfq from "./lfq.ts";
import * as multiscale from "./multiscale.ts";
import * as rvq from "./rvq.ts";
import { DEFAULT_EMA, DEFAULT_VQ, indicesToCodes as vqIndicesToCodes, initVQ, quantize as vqQuantize, toLookupSpace, type EmaOptions, type VQOptions, type VQParams } from "./vq.ts";

export type Grid = readonly [number, number];

type Required<O, K extends keyof O> = Partial<O> & Pick<O, K>;

/** A quantizer by name with its options (defaults fill the rest); JSON-serializable. */
export type QuantizerSpec =
  | { readonly name: "vq"; readonly options: Required<VQOptions, "codebookSize" | "dim">; readonly ema?: EmaOptions }
  | { readonly name: "rvq"; readonly options: Required<rvq.RVQOptions, "levels" | "codebookSize" | "dim"> }
  | { readonly name: "group-vq"; readonly options: Required<groupVQ.GroupVQOptions, "groups" | "codebookSize" | "dim"> }
  | { readonly name: "multiscale"; readonly options: Required<multiscale.MultiScaleOptions, "codebookSize" | "dim"> }
  | { readonly name: "fsq"; readonly options: Partial<fsq.FSQOptions> }
  | { readonly name: "lfq"; readonly options: Partial<lfq.LFQOptions> }
  | { readonly name: "binary"; readonly options: Partial<binary.BinaryOptions> };

export type QuantizerName = QuantizerSpec["name"];

/** Registry names, and the option keys each accepts (required ones first). */
export const QUANTIZERS: Readonly<Record<QuantizerName, { readonly required: readonly string[]; readonly optional: readonly string[]; readonly summary: string }>> = {
  vq: { required: ["codebookSize", "dim"], optional: ["beta", "distance", "lookupDim", "codebookUpdate"], summary: "vector quantization (VQ-VAE), l2 or cosine, optional factorized lookup and EMA" },
  rvq: { required: ["levels", "codebookSize", "dim"], optional: ["beta", "distance", "dropout", "minLevels"], summary: "residual VQ (SoundStream / EnCodec)" },
  "group-vq": { required: ["groups", "codebookSize", "dim"], optional: ["beta", "distance", "shared"], summary: "group / product VQ" },
  multiscale: { required: ["codebookSize", "dim"], optional: ["beta", "distance", "scales"], summary: "VAR multi-scale residual quantization" },
  fsq: { required: [], optional: ["levels", "boundEps"], summary: "finite scalar quantization" },
  lfq: { required: [], optional: ["dim", "entropyWeight", "diversityWeight", "commitmentWeight", "invTemperature"], summary: "lookup-free quantization (MAGVIT-2)" },
  binary: { required: [], optional: ["dim", "bitsPerToken", "scale", "commitmentWeight"], summary: "embedding-free binary tokens (MaskBit)" },
};

export const QUANTIZER_NAMES = Object.keys(QUANTIZERS) as QuantizerName[];

/**
 * What each option's value must look like before a quantizer sees it: counts are integers in
 * [1, 2^24] (2^24 codes is far past any codebook here, and keeps every product of counts exact),
 * numbers are finite. The quantizers check the rest (divisibility, ranges of weights, names).
 */
const OPTION_KINDS: Readonly<Record<string, "count" | "counts" | "number" | "string" | "boolean">> = {
  codebookSize: "count", dim: "count", lookupDim: "count", groups: "count", minLevels: "count", bitsPerToken: "count",
  levels: "count", scales: "counts",
  beta: "number", dropout: "number", boundEps: "number", entropyWeight: "number", diversityWeight: "number", commitmentWeight: "number", invTemperature: "number",
  distance: "string", codebookUpdate: "string", scale: "string", shared: "boolean",
};
const MAX_COUNT = 2 ** 24;
const isCount = (v: unknown) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_COUNT;
const isCounts = (v: unknown) => globalThis.Array.isArray(v) && v.length >= 1 && v.length <= 64 && v.every(isCount);
const OPTION_OK: Readonly<Record<string, [(v: unknown) => boolean, string]>> = {
  count: [isCount, `an integer in [1, ${MAX_COUNT}]`],
  counts: [isCounts, `a list of 1 to 64 integers in [1, ${MAX_COUNT}]`],
  number: [(v) => typeof v === "number" && Number.isFinite(v), "a finite number"],
  string: [(v) => typeof v === "string", "a string"],
  boolean: [(v) => typeof v === "boolean", "true or false"],
};

/** Throws an InputError, naming the field, when `spec` (e.g. from a JSON file) is not a known quantizer with known option keys and well-formed values. */
export function checkQuantizerSpec(spec: unknown, where = "quantizer"): asserts spec is QuantizerSpec {
  const s = spec as { name?: unknown; options?: unknown; ema?: unknown } | null;
  if (typeof s !== "object" || s === null) throw new InputError(`${where}: expected { name, options }, got ${JSON.stringify(spec)}`);
  if (typeof s.name !== "string" || !Object.hasOwn(QUANTIZERS, s.name)) throw new InputError(`${where}.name: unknown quantizer ${JSON.stringify(s.name)}; expected one of ${QUANTIZER_NAMES.join(", ")}`);
  const known = QUANTIZERS[s.name as QuantizerName];
  if (typeof s.options !== "object" || s.options === null || globalThis.Array.isArray(s.options)) throw new InputError(`${where}.options: expected an object, got ${JSON.stringify(s.options)}`);
  const keys = Object.keys(s.options);
  for (const k of keys) if (!known.required.includes(k) && !known.optional.includes(k)) throw new InputError(`${where}.options.${k}: not an option of "${s.name}"; valid: ${[...known.required, ...known.optional].join(", ")}`);
  for (const k of known.required) if (!keys.includes(k)) throw new InputError(`${where}.options.${k}: required by "${s.name}" (options ${known.required.join(", ")} are required)`);
  for (const [k, v] of Object.entries(s.options)) {
    const kind = k === "levels" && s.name === "fsq" ? "counts" : (OPTION_KINDS[k] ?? "number"); // FSQ's levels are one count per channel
    const [ok, expected] = OPTION_OK[kind]!;
    if (!ok(v)) throw new InputError(`${where}.options.${k}: expected ${expected}, got ${JSON.stringify(v)}`, { field: `options.${k}`, value: v, expected });
  }
  if (s.ema !== undefined) {
    const e = s.ema as Record<string, unknown> | null;
    if (s.name !== "vq" || typeof e !== "object" || e === null || globalThis.Array.isArray(e)) throw new InputError(`${where}.ema: expected { decay, eps } on a "vq" quantizer, got ${JSON.stringify(s.ema)}`);
    for (const k of ["decay", "eps"]) if (!Object.hasOwn(e, k)) throw new InputError(`${where}.ema.${k}: required (give both decay and eps)`);
    for (const [k, v] of Object.entries(e)) {
      if (k !== "decay" && k !== "eps") throw new InputError(`${where}.ema.${k}: not an EMA option; valid: decay, eps`);
      if (typeof v !== "number" || !Number.isFinite(v)) throw new InputError(`${where}.ema.${k}: expected a finite number, got ${JSON.stringify(v)}`);
    }
  }
}

/** The adapter of `spec` on a latent grid [h, w]. */
export function makeQuantizer(spec: QuantizerSpec, grid: Grid): AnyQuantizer {
  checkQuantizerSpec(spec);
  const q = build(spec, grid);
  return q as unknown as AnyQuantizer;
}

function build(spec: QuantizerSpec, grid: Grid): QuantizerAdapter<never> {
  switch (spec.name) {
    case "vq":
      return vqAdapter({ ...DEFAULT_VQ, ...spec.options }, grid, spec.ema) as never;
    case "rvq":
      return residualVQ(spec.options, grid) as never;
    case "group-vq":
      return groupedVQ(spec.options, grid) as never;
    case "multiscale":
      return multiScale(spec.options, grid) as never;
    case "fsq":
      return finiteScalar(spec.options, grid) as never;
    case "lfq":
      return lookupFree(spec.options, grid) as never;
    case "binary":
      return bits(spec.options, grid) as never;
  }
}

/** Several tokens per position, each from its own codebook of K: health counts L·K stored codes. */
function perLevelCodes(levels: number, k: number) {
  return { count: levels * k, fromIds: (ids: Int32Array) => Int32Array.from(ids, (id, i) => id + k * (i % levels)) };
}

/** [N, h, w, m] ids ↔ [N, h·w·m] rows. */
const flatten = (ids: Array, t: number) => ids.reshape([-1, t]);

/**
 * VQ (vq.ts): ids [N, h·w] in raster order. Its codebook is open to k-means init, dead-code
 * restart and, with `codebookUpdate: "ema"`, EMA updates (`ema` options).
 */
export function vqAdapter(opts: VQOptions, [h, w]: Grid, ema: EmaOptions = DEFAULT_EMA): QuantizerAdapter<VQParams> {
  return {
    name: "vq",
    latentDim: opts.dim,
    codebookSize: opts.codebookSize,
    tokensPerImage: h * w,
    tokenShape: [h, w],
    tokensPerPosition: 1,
    codebook: {
      get: (p) => p.codebook,
      with: (p, codebook) => ({ ...p, codebook }),
      without: ({ codebook: _, ...rest }) => rest,
      toLookupSpace: (p, z) => toLookupSpace(p, z, opts),
      ...(opts.codebookUpdate === "ema" ? { ema } : {}),
    },
    init: (keys) => initVQ(keys, opts),
    quantize: (p, z) => {
      const r = vqQuantize(p, z, opts);
      return { ...r, indices: r.indices.reshape([-1, h * w]) };
    },
    indicesToCodes: (p, ids) => vqIndicesToCodes(p, ids.reshape([-1, h, w]), opts),
  };
}

/** Residual VQ (SoundStream): L tokens per position, level-major within a position. */
function residualVQ(opts: Required<rvq.RVQOptions, "levels" | "codebookSize" | "dim">, [h, w]: Grid): QuantizerAdapter<rvq.RVQParams> {
  const o: rvq.RVQOptions = { ...rvq.DEFAULT_RVQ, ...opts };
  const t = h * w * o.levels;
  return {
    name: "rvq",
    latentDim: o.dim,
    codebookSize: o.codebookSize,
    tokensPerImage: t,
    tokenShape: [h, w, o.levels],
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
function groupedVQ(opts: Required<groupVQ.GroupVQOptions, "groups" | "codebookSize" | "dim">, [h, w]: Grid): QuantizerAdapter<groupVQ.GroupVQParams> {
  const o: groupVQ.GroupVQOptions = { ...groupVQ.DEFAULT_GROUP_VQ, ...opts };
  const t = h * w * o.groups;
  return {
    name: "group-vq",
    latentDim: o.dim,
    codebookSize: o.codebookSize,
    tokensPerImage: t,
    tokenShape: [h, w, o.groups],
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
function multiScale(opts: Required<multiscale.MultiScaleOptions, "codebookSize" | "dim">, [h, w]: Grid): QuantizerAdapter<multiscale.MultiScaleParams> {
  const o: multiscale.MultiScaleOptions = { ...multiscale.DEFAULT_MULTISCALE, ...opts };
  if (h !== w || o.scales[o.scales.length - 1] !== h) throw new Error(`multiscale quantizer: the last scale must be the latent side ${h}, got scales [${o.scales.join(", ")}] for a ${h}×${w} grid`);
  const t = multiscale.scaleOffsets(o.scales).at(-1)!;
  return {
    name: "multiscale",
    latentDim: o.dim,
    codebookSize: o.codebookSize,
    tokensPerImage: t,
    tokenShape: [t],
    init: (keys) => multiscale.initMultiScale(keys, o),
    quantize: (p, z) => multiscale.quantize(p, z, o),
    indicesToCodes: (p, ids) => multiscale.indicesToCodes(p, ids, o),
  };
}

/** FSQ: one token per position from the implicit grid of ∏ L_i codes; D = levels.length. */
function finiteScalar(opts: Partial<fsq.FSQOptions>, [h, w]: Grid): QuantizerAdapter<fsq.FSQParams> {
  const o: fsq.FSQOptions = { ...fsq.DEFAULT_FSQ, ...opts };
  return {
    name: "fsq",
    latentDim: o.levels.length,
    codebookSize: fsq.codebookSize(o),
    tokensPerImage: h * w,
    tokenShape: [h, w],
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
function lookupFree(opts: Partial<lfq.LFQOptions>, [h, w]: Grid): QuantizerAdapter<lfq.LFQParams> {
  const o: lfq.LFQOptions = { ...lfq.DEFAULT_LFQ, ...opts };
  return {
    name: "lfq",
    latentDim: o.dim,
    codebookSize: lfq.codebookSize(o),
    tokensPerImage: h * w,
    tokenShape: [h, w],
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
function bits(opts: Partial<binary.BinaryOptions>, [h, w]: Grid): QuantizerAdapter<binary.BinaryParams> {
  const o: binary.BinaryOptions = { ...binary.DEFAULT_BINARY, ...opts };
  const g = binary.tokensPerVector(o);
  const t = h * w * g;
  return {
    name: "binary",
    latentDim: o.dim,
    codebookSize: binary.codebookSize(o),
    tokensPerImage: t,
    tokenShape: [h, w, g],
    tokensPerPosition: g,
    init: () => ({}),
    quantize: (p, z) => {
      const r = binary.quantize(p, z, o);
      return { ...r, indices: flatten(r.indices, t) };
    },
    indicesToCodes: (p, ids) => binary.indicesToCodes(p, ids.reshape([-1, h, w, g]), o),
  };
}
