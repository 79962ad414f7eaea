/**
 * The benchmark model: reference/torch_gpt_bench.py's tiny GPT (vocab 1024, d 256, 4 layers,
 * 4 heads, context 256, batch 16, GELU MLP ×4, learned positions, LayerNorm, AdamW), built
 * from mmntp's own transformer, loss and trainer, plus its FLOP model.
 */
import { fromHost, tree, type Array } from "../../src/engine/index.ts";
import { hostRng, KeyStream } from "../../src/engine/rng.ts";
import { initTransformer, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { nextTokenLoss, type NextTokenBatch } from "../../src/train/losses.ts";
import type { AdamWConfig } from "../../src/train/optim.ts";
import { Trainer } from "../../src/train/step.ts";

export const GPT: TransformerConfig = {
  vocabSize: 1024,
  contextLength: 256,
  dim: 256,
  layers: 4,
  heads: 4,
  mlp: "gelu",
  mlpRatio: 4,
  positions: "learned",
};
export const BATCH = 16;

/**
 * bench:scale's model (issue #26): 7× the benchmark GPT's parameters, d 512 / 8 heads / 8
 * layers, same vocab, context and batch: 26.4M parameters, reference/torch_gpt_bench.py
 * `--d 512 --layers 8 --heads 8`.
 */
export const SCALE_GPT: TransformerConfig = { ...GPT, dim: 512, layers: 8, heads: 8 };

/** The benches' named models, for `--model`. */
export const BENCH_MODELS = { bench: GPT, scale: SCALE_GPT } as const satisfies Record<string, TransformerConfig>;
export type BenchModelName = keyof typeof BENCH_MODELS;

/** `BENCH_MODELS[name]`, or an error naming the bad name and the known ones. */
export function benchModel(name: string): TransformerConfig {
  if (!Object.hasOwn(BENCH_MODELS, name)) throw new Error(`--model must be one of ${Object.keys(BENCH_MODELS).join(", ")}, got "${name}"`);
  return BENCH_MODELS[name as BenchModelName];
}
export const LR = 3e-4;
/** torch.optim.AdamW's defaults, which the reference uses; it clips no gradients. */
export const TORCH_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, clipNorm: 0 };

/**
 * Nominal fp32 peak of the 2-core AVX-512 benchmark machine, GFLOP/s: 2 cores × 2.0 GHz ×
 * 64 FLOP/cycle (two 16-lane FMA units). Not measured (JS cannot reach native SIMD), so
 * override it with `--peak-gflops` or MMNTP_PEAK_GFLOPS on other machines. jax-js's wasm
 * kernels use 128-bit SIMD (4 lanes), so by the same count they can reach at most 1/4 of it.
 */
export const DEFAULT_PEAK_GFLOPS = 256;

/**
 * Random training tokens, like the reference's `torch.randint(0, vocab, (B, T + 1))`:
 * inputs = x[:, :-1], targets = x[:, 1:]. Host arrays, so each step can upload fresh copies.
 */
export function syntheticTokens(cfg: TransformerConfig = GPT, batch = BATCH, seed = 0): { inputs: Int32Array; targets: Int32Array } {
  const t = cfg.contextLength;
  const rng = hostRng(seed);
  const x = Int32Array.from({ length: batch * (t + 1) }, () => Math.floor(rng() * cfg.vocabSize));
  const inputs = new Int32Array(batch * t);
  const targets = new Int32Array(batch * t);
  for (let b = 0; b < batch; b++) {
    inputs.set(x.subarray(b * (t + 1), b * (t + 1) + t), b * t);
    targets.set(x.subarray(b * (t + 1) + 1, (b + 1) * (t + 1)), b * t);
  }
  return { inputs, targets };
}

/** Device batch for `nextTokenLoss`: every target weighted 1, i.e. plain mean cross-entropy. */
export function deviceBatch(host: { inputs: Int32Array; targets: Int32Array }, cfg: TransformerConfig = GPT, batch = BATCH): NextTokenBatch {
  const shape = [batch, cfg.contextLength];
  return { inputs: fromHost(host.inputs, shape), targets: fromHost(host.targets, shape), weights: fromHost(new Float32Array(batch * cfg.contextLength).fill(1), shape) };
}

export type ParamCounts = { total: number; embeddings: number; nonEmbedding: number };

/** Parameter counts; `embeddings` = token + position tables (lookups, not matmuls, in the FLOP model). Borrows `params`. */
export function countParams(params: TransformerParams): ParamCounts {
  const size = (a: Array) => a.shape.reduce((x, y) => x * y, 1);
  const total = tree.leaves(params).reduce((n, a) => n + size(a), 0);
  const embeddings = size(params.tok.table) + (params.pos ? size(params.pos.table) : 0);
  return { total, embeddings, nonEmbedding: total - embeddings };
}

/**
 * Model FLOPs per token (PaLM, Chowdhery et al. 2022, app. B; nanoGPT's `estimate_mfu`):
 * training = 6·N + 12·L·D·T (forward + backward of every weight, plus QKᵀ and PV over the
 * full T×T), decoding = 2·N; N excludes the embedding tables, which are lookups. mmntp
 * computes embeddings as one-hot matmuls (2·V·D more per token and its gradient), which
 * count as overhead here, not as model FLOPs.
 */
export function flopsPerToken(counts: ParamCounts, cfg: TransformerConfig = GPT): { train: number; decode: number } {
  return {
    train: 6 * counts.nonEmbedding + 12 * cfg.layers * cfg.dim * cfg.contextLength,
    decode: 2 * counts.nonEmbedding,
  };
}

/** `--peak-gflops` if given, else MMNTP_PEAK_GFLOPS, else the documented default. */
export function peakGflops(fromCli: number | undefined): { gflops: number; source: string } {
  if (fromCli !== undefined) return { gflops: fromCli, source: "--peak-gflops" };
  const env = process.env.MMNTP_PEAK_GFLOPS;
  if (env !== undefined && env !== "") {
    const v = Number(env);
    if (!(v > 0)) throw new Error(`MMNTP_PEAK_GFLOPS must be a positive number, got "${env}"`);
    return { gflops: v, source: "MMNTP_PEAK_GFLOPS" };
  }
  return { gflops: DEFAULT_PEAK_GFLOPS, source: "default: nominal 2 cores × 2.0 GHz × 64 FLOP/cycle (AVX-512 FMA), not measured" };
}

/** The benchmark GPT (or `cfg`) initialized with seed 0, and its parameter counts. */
export function benchParams(cfg: TransformerConfig = GPT): { params: TransformerParams; counts: ParamCounts } {
  const keys = new KeyStream(0);
  const params = initTransformer(keys, cfg);
  keys.dispose();
  return { params, counts: countParams(params) };
}

/** `benchParams(cfg)` under a Trainer with torch's AdamW defaults, and its parameter counts. */
export function benchTrainer(cfg: TransformerConfig = GPT, label?: string): { trainer: Trainer<NextTokenBatch>; counts: ParamCounts } {
  const { params, counts } = benchParams(cfg);
  return { trainer: new Trainer<NextTokenBatch>(params, (p, b) => nextTokenLoss(p as TransformerParams, b, cfg), TORCH_ADAMW, { label }), counts };
}
