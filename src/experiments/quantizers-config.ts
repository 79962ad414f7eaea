/**
 * The quantizer experiment's settings, kept free of the engine so the CLI can check arguments
 * and print help without loading jax-js. The quantizers themselves are set up in quantizers.ts.
 */
import { InputError } from "../io/errors.ts";

/** Quantizers compared, in table order. */
export const QUANTIZER_NAMES = ["vq", "vq-kmeans", "vq-ema", "vq-factorized", "rvq", "group-vq", "var", "fsq", "lfq", "binary"] as const;
export type QuantizerName = (typeof QUANTIZER_NAMES)[number];

export type QuantizerExperimentConfig = {
  /** Training steps per quantizer. */
  readonly steps: number;
  readonly batchSize: number;
  /** Peak learning rate (warm-up + cosine), the same for every quantizer. */
  readonly lr: number;
  /** Seeds the initial weights, the batch order and the codebook remedies' draws. */
  readonly seed: number;
  /** Held-out images: the first `testSize` of splitTrainTest's shuffle with `splitSeed` (the demo's split). */
  readonly testSize: number;
  readonly splitSeed: number;
  /** Codebook health is measured over windows of this many training steps. */
  readonly healthEvery: number;
  /** Test images shown per row of the reconstruction grid. */
  readonly gridImages: number;
  /** Which quantizers to run; empty = all. */
  readonly only: readonly QuantizerName[];
};

/** Sized for ≤ 20 minutes on 2 shared CPU cores (measured: see docs/experiments/quantizers.md). */
export const DEFAULT_QUANTIZER_EXPERIMENT: QuantizerExperimentConfig = {
  steps: 120,
  batchSize: 64,
  lr: 2e-3,
  seed: 0,
  testSize: 1500,
  splitSeed: 0,
  healthEvery: 10,
  gridImages: 12,
  only: [],
};

/** "vq,fsq" → ["vq", "fsq"]; throws on unknown or repeated names, listing the valid ones. */
export function parseQuantizerList(list: string): QuantizerName[] {
  const names = list.split(",").map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new InputError(`--only expects a comma-separated list of quantizers, e.g. vq,fsq; valid: ${QUANTIZER_NAMES.join(", ")}`);
  for (const [i, n] of names.entries()) {
    if (!(QUANTIZER_NAMES as readonly string[]).includes(n)) throw new InputError(`unknown quantizer "${n}" in --only; valid: ${QUANTIZER_NAMES.join(", ")}`);
    if (names.indexOf(n) !== i) throw new InputError(`quantizer "${n}" is listed twice in --only`);
  }
  return names as QuantizerName[];
}

/** Check the numbers of a config (e.g. after CLI overrides). */
export function checkExperimentConfig(cfg: QuantizerExperimentConfig): void {
  for (const key of ["seed", "splitSeed"] as const) {
    if (!Number.isInteger(cfg[key])) throw new InputError(`quantizer experiment: ${key} must be an integer, got ${cfg[key]}`);
  }
  for (const key of ["steps", "batchSize", "testSize", "healthEvery", "gridImages"] as const) {
    if (!Number.isInteger(cfg[key]) || cfg[key] < 1) throw new InputError(`quantizer experiment: ${key} must be a positive integer, got ${cfg[key]}`);
  }
  if (!(cfg.lr > 0)) throw new InputError(`quantizer experiment: lr must be > 0, got ${cfg.lr}`);
  if (cfg.gridImages > cfg.testSize) throw new InputError(`quantizer experiment: gridImages (${cfg.gridImages}) must not exceed testSize (${cfg.testSize})`);
}

/** One quantizer's row of the results. */
export type QuantizerResult = {
  name: QuantizerName;
  description: string;
  tokensPerImage: number;
  /** Ids one token can take. */
  codebookSize: number;
  bitsPerToken: number;
  /** tokensPerImage · bitsPerToken. */
  bitsPerImage: number;
  /** Reconstruction PSNR on the held-out images, dB (pixels in [0, 1]). */
  psnr: number;
  /** Codebook health of the held-out ids over `codes` stored codes (L·K for RVQ / group VQ). */
  codes: number;
  usage: number;
  perplexity: number;
  dead: number;
  /** Distinct per-position codes (tuples of the position's tokens) seen on held-out images, of `positionCodes` possible. */
  positionCodesUsed?: number;
  positionCodes?: number;
  trainSeconds: number;
  evalSeconds: number;
  /** Per training step: PSNR of the batch reconstruction. Per health window (NaN between): usage and perplexity of the window's ids. */
  curves: { psnr: number[]; usage: number[]; perplexity: number[] };
};

export type QuantizerExperiment = {
  config: QuantizerExperimentConfig;
  results: QuantizerResult[];
  /** Held-out ids per quantizer, [testSize · tokensPerImage] (not written to disk). */
  testIds: Partial<Record<QuantizerName, Int32Array>>;
  seconds: number;
};
