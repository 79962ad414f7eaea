import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startEngine } from "../engine/index.ts";
import { loadMnist } from "../data/mnist.ts";
import { splitTrainTest } from "../data/shuffle.ts";
import type { ImageSet } from "../data/types.ts";
import { Progress, formatDuration } from "../io/progress.ts";
import { AutoencoderTokenizer, latentGrid, type ConvAEConfig } from "../tokenizers/image/autoencoder.ts";
import { bitsPerToken, type AnyQuantizer } from "../tokenizers/quantizers/adapter.ts";
import { makeQuantizer, type QuantizerSpec } from "../tokenizers/quantizers/registry.ts";
import { trainAutoencoder } from "../train/autoencoder.ts";
import { codebookHealth, type CodebookHealth } from "../tokenizers/quantizers/health.ts";
import { plotCodebookUsage } from "../tokenizers/quantizers/health-plot.ts";
import { checkExperimentConfig, DEFAULT_QUANTIZER_EXPERIMENT, QUANTIZER_NAMES, type QuantizerExperiment, type QuantizerExperimentConfig, type QuantizerName, type QuantizerResult } from "./quantizers-config.ts";

export type { QuantizerExperiment, QuantizerResult } from "./quantizers-config.ts";
import { writeCurves, writeReconstructionGrid, writeResults } from "./quantizers-report.ts";

/**
 * The quantizer experiment: the same small MNIST conv auto-encoder (the VQ-VAE's encoder and
 * decoder, 28×28 → 7×7 latents) trained with each quantizer at about 8–10 bits per latent
 * position, then scored on held-out digits: reconstruction PSNR, codebook health (usage,
 * perplexity, dead codes) and bits per image. It tests the survey claim that vanilla VQ tends to
 * collapse while k-means init / dead-code restart / FSQ / LFQ keep most codes alive.
 */

/**
 * The VQ-VAE's auto-encoder (DEFAULT_VQVAE without its quantizer), with the linear output head:
 * under the sigmoid head 4 of 20 runs died (docs/experiments/quantizers.md, "Dead runs").
 */
export const AE: ConvAEConfig = { height: 28, width: 28, channels: [32, 64], output: "linear" };

type Grid = readonly [number, number];
export type AnyAdapter = AnyQuantizer;

type Setup = {
  /** One line for the table: the quantizer and its options. */
  readonly description: string;
  /** The quantizer, as a tokenizer config records it. */
  readonly quantizer: QuantizerSpec;
  readonly adapter: (grid: Grid) => AnyAdapter;
  readonly kmeansInit?: boolean;
  /** Dead-code restart period in steps; 0 / absent = never. */
  readonly restartEvery?: number;
};

/** Latent width of the codebook quantizers: the VQ-VAE's D = 16. */
const D = 16;

/** A setup's adapter comes from its spec, as a saved tokenizer's does. */
const setup = (description: string, quantizer: QuantizerSpec, remedies: { kmeansInit?: boolean; restartEvery?: number } = {}): Setup => ({
  description,
  quantizer,
  adapter: (g) => makeQuantizer(quantizer, g),
  ...remedies,
});

export const SETUPS: Record<QuantizerName, Setup> = {
  vq: setup("VQ, K=1024, D=16, random init; no k-means, no restart (vanilla)", { name: "vq", options: { codebookSize: 1024, dim: D } }),
  "vq-kmeans": setup("VQ, K=1024, D=16, k-means init + dead-code restart every 20 steps", { name: "vq", options: { codebookSize: 1024, dim: D } }, { kmeansInit: true, restartEvery: 20 }),
  "vq-ema": setup("VQ, K=1024, D=16, EMA codebook updates (decay 0.99)", { name: "vq", options: { codebookSize: 1024, dim: D, codebookUpdate: "ema" } }),
  "vq-factorized": setup("VQ, K=1024, factorized lookup 16→8, l2-normalized (ViT-VQGAN)", { name: "vq", options: { codebookSize: 1024, dim: D, lookupDim: 8, distance: "cosine" } }),
  rvq: setup("residual VQ, 2 levels × K=32, D=16", { name: "rvq", options: { levels: 2, codebookSize: 32, dim: D } }),
  "group-vq": setup("group VQ, 2 groups of 8 channels × K=32", { name: "group-vq", options: { groups: 2, codebookSize: 32, dim: D } }),
  var: setup("VAR multi-scale RQ, shared K=1024, D=16, scales 1..7", { name: "multiscale", options: { codebookSize: 1024, dim: D } }),
  fsq: setup("FSQ, levels [8,5,5,5] (K=1000), D=4", { name: "fsq", options: { levels: [8, 5, 5, 5] } }),
  lfq: setup("LFQ, d=10 (K=1024), entropy loss 0.1", { name: "lfq", options: { dim: 10 } }),
  binary: setup("MaskBit bits, D=10 as 2 tokens × 5 bits", { name: "binary", options: { dim: 10, bitsPerToken: 5 } }),
};

const psnrOfMse = (mse: number) => 10 * Math.log10(1 / mse);

function concat(parts: Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

/** The ids' codes as health sees them: stored codes of every codebook. */
export function healthCodes(q: AnyAdapter): { count: number; fromIds(ids: Int32Array): Int32Array } {
  return q.codes ?? { count: q.codebookSize, fromIds: (ids) => ids };
}

/** Distinct tuples of the m = tokensPerPosition tokens of each position. ids: [N·T] position-major. */
function positionCodes(q: AnyAdapter, ids: Int32Array): { used: number; possible: number } | undefined {
  const m = q.tokensPerPosition;
  if (m === undefined) return undefined;
  const seen = new Set<number>();
  for (let i = 0; i < ids.length; i += m) {
    let code = 0;
    for (let j = m - 1; j >= 0; j--) code = code * q.codebookSize + ids[i + j]!;
    seen.add(code);
  }
  return { used: seen.size, possible: q.codebookSize ** m };
}

/** Held-out ids and reconstructions, 500 images at a time. */
async function evaluate(tok: AutoencoderTokenizer, test: ImageSet): Promise<{ ids: Int32Array; recon: Float32Array }> {
  const px = tok.imageSize;
  const t = tok.tokensPerImage;
  const ids = new Int32Array(test.n * t);
  const recon = new Float32Array(test.n * px);
  for (let i = 0; i < test.n; i += 500) {
    const m = Math.min(500, test.n - i);
    const chunk = await tok.encodeImages(test.images.subarray(i * px, (i + m) * px), m);
    ids.set(chunk, i * t);
    recon.set(await tok.decodeImages(chunk, m), i * px);
  }
  return { ids, recon };
}

type Run = { result: QuantizerResult; ids: Int32Array; recon: Float32Array; health: CodebookHealth };

async function runOne(name: QuantizerName, train: ImageSet, test: ImageSet, cfg: QuantizerExperimentConfig, label: string): Promise<Run> {
  const setup = SETUPS[name];
  const q = setup.adapter(latentGrid(AE));
  const codes = healthCodes(q);
  const curves: QuantizerResult["curves"] = { psnr: [], usage: [], perplexity: [] };
  let window: Int32Array[] = [];
  const progress = new Progress({ label, total: cfg.steps });
  const started = performance.now();
  const params = await trainAutoencoder(
    train,
    AE,
    q,
    { steps: cfg.steps, batchSize: cfg.batchSize, lr: cfg.lr, seed: cfg.seed, kmeansInit: setup.kmeansInit ?? false, restartEvery: setup.restartEvery ?? 0 },
    (step, fields, ids) => {
      curves.psnr.push(psnrOfMse(fields.recon!));
      window.push(codes.fromIds(ids));
      let [usage, perplexity] = [NaN, NaN];
      if ((step + 1) % cfg.healthEvery === 0 || step + 1 === cfg.steps) {
        ({ usage, perplexity } = codebookHealth(concat(window), codes.count));
        window = [];
        progress.tick(1, { psnr: curves.psnr.at(-1)!, usage, ppl: perplexity });
      } else {
        progress.tick(1, { psnr: curves.psnr.at(-1)! });
      }
      curves.usage.push(usage);
      curves.perplexity.push(perplexity);
    },
  );
  const trainSeconds = (performance.now() - started) / 1000;
  progress.done();

  const evalStart = performance.now();
  const tok = new AutoencoderTokenizer(params, { ...AE, quantizer: setup.quantizer });
  const { ids, recon } = await evaluate(tok, test);
  tok.dispose();
  let se = 0;
  for (let i = 0; i < recon.length; i++) se += (recon[i]! - test.images[i]!) ** 2;
  const health = codebookHealth(codes.fromIds(ids), codes.count);
  const pos = positionCodes(q, ids);
  const bits = bitsPerToken(q);
  const result: QuantizerResult = {
    name,
    description: setup.description,
    tokensPerImage: q.tokensPerImage,
    codebookSize: q.codebookSize,
    bitsPerToken: bits,
    bitsPerImage: q.tokensPerImage * bits,
    psnr: psnrOfMse(se / recon.length),
    codes: codes.count,
    usage: health.usage,
    perplexity: health.perplexity,
    dead: health.dead,
    ...(pos ? { positionCodesUsed: pos.used, positionCodes: pos.possible } : {}),
    trainSeconds,
    evalSeconds: (performance.now() - evalStart) / 1000,
    curves,
  };
  return { result, ids, recon, health };
}

/**
 * Run the experiment and write to `dir`: results.md, results.json, codebook-usage-<name>.png per
 * quantizer, curves.png (training PSNR), usage-curves.png (codebook usage during training) and
 * recon-grid.png (held-out originals, then one row per quantizer). Results are rewritten after
 * every quantizer, so an interrupted run keeps what finished.
 */
export async function runQuantizerExperiment(
  dir: string,
  cfg: QuantizerExperimentConfig = DEFAULT_QUANTIZER_EXPERIMENT,
  log: (line: string) => void = (s) => console.error(s),
): Promise<QuantizerExperiment> {
  checkExperimentConfig(cfg);
  await startEngine();
  mkdirSync(dir, { recursive: true });
  const names = cfg.only.length > 0 ? cfg.only : QUANTIZER_NAMES;
  const { train, test } = splitTrainTest(loadMnist(), { testSize: cfg.testSize, seed: cfg.splitSeed });
  const started = performance.now();
  const out: QuantizerExperiment = { config: cfg, results: [], testIds: {}, seconds: 0 };
  const recons: Float32Array[] = [];
  for (const [i, name] of names.entries()) {
    const { result, ids, recon, health } = await runOne(name, train, test, cfg, `[${i + 1}/${names.length}] ${name}`);
    out.results.push(result);
    out.testIds[name] = ids;
    recons.push(recon.subarray(0, cfg.gridImages * test.height * test.width));
    plotCodebookUsage(join(dir, `codebook-usage-${name}.png`), health, {
      title: `${name}: ${result.codes - result.dead}/${result.codes} codes used, perplexity ${result.perplexity.toFixed(1)}`,
    });
    out.seconds = (performance.now() - started) / 1000;
    writeResults(dir, out);
    const eta = (out.seconds / (i + 1)) * (names.length - i - 1);
    log(`${name}: PSNR ${result.psnr.toFixed(2)} dB, usage ${(100 * result.usage).toFixed(1)}%, perplexity ${result.perplexity.toFixed(1)}; elapsed ${formatDuration(out.seconds)}, ETA ${formatDuration(eta)}`);
  }
  writeCurves(dir, out.results);
  writeReconstructionGrid(dir, test.images.subarray(0, cfg.gridImages * test.height * test.width), recons, cfg.gridImages);
  return out;
}
