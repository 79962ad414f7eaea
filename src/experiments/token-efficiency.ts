/**
 * `mmntp experiment token-efficiency` (survey §2.2): the same MNIST tokenizer trained at several
 * token grids and codebook sizes, each for the same number of steps, and measured on the same
 * held-out digits: PSNR, SSIM and rFID against tokens per image and bits per image. Each
 * setting is a tokenizer run folder (pipelines/tokenizer-run.ts) under the experiment's folder:
 * a finished one is read back, an unfinished one resumed, so a killed experiment loses at most
 * one checkpoint interval.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeAtomic } from "../io/checkpoint.ts";
import { stepProgress } from "../io/progress.ts";
import { InputError } from "../io/errors.ts";
import { writeGrayGrid } from "../io/png.ts";
import { xyChartSvg } from "../io/svg.ts";
import { finishTokenizerRun, loadImageTokenizer, type TokenizerMetrics } from "../pipelines/tokenizer-run.ts";
import { tokenizerData, tokenizerPreset, type TokenizerRunConfig } from "../pipelines/tokenizer-config.ts";
import { trainJudge } from "../pipelines/judge.ts";
import type { Judge } from "../eval/judge.ts";

export type TokenEfficiencyConfig = {
  /** Token grid sides (rows = columns) on 28×28 digits. */
  readonly grids: readonly number[];
  readonly codebookSizes: readonly number[];
  /** Training steps of every setting. */
  readonly steps: number;
  readonly seed: number;
};

export const DEFAULT_TOKEN_EFFICIENCY: TokenEfficiencyConfig = { grids: [4, 7, 14], codebookSizes: [64, 256, 1024], steps: 800, seed: 0 };

export function checkTokenEfficiencyConfig(cfg: TokenEfficiencyConfig): void {
  for (const g of cfg.grids) if (![4, 7, 14].includes(g)) throw new InputError(`token-efficiency: grid ${g} is not one of 4, 7, 14 (what stride-2 stages make of 28×28)`, { field: "grids", value: g });
  for (const k of cfg.codebookSizes) if (!Number.isInteger(k) || k < 2 || k > 65_536) throw new InputError(`token-efficiency: codebook size ${k} is not an integer in [2, 65536]`, { field: "codebookSizes", value: k });
  if (!Number.isInteger(cfg.steps) || cfg.steps < 1) throw new InputError(`token-efficiency: steps must be a positive integer, got ${cfg.steps}`, { field: "steps", value: cfg.steps });
}

export type TokenEfficiencyRow = TokenizerMetrics & { readonly grid: number; readonly codebookSize: number; readonly seconds: number };

/** The tokenizer run of one setting: the MNIST preset with this grid and codebook. */
export function settingConfig(cfg: TokenEfficiencyConfig, grid: number, codebookSize: number): TokenizerRunConfig {
  const base = tokenizerPreset("mnist");
  const q = base.tokenizer.quantizer as { name: "vq"; options: { codebookSize: number; dim: number } };
  return {
    ...base,
    tokenizer: { ...base.tokenizer, grid, quantizer: { ...q, options: { ...q.options, codebookSize } } },
    train: { ...base.train, steps: cfg.steps, seed: cfg.seed },
  };
}

export async function runTokenEfficiency(dir: string, cfg: TokenEfficiencyConfig = DEFAULT_TOKEN_EFFICIENCY, log: (line: string) => void = console.error): Promise<TokenEfficiencyRow[]> {
  checkTokenEfficiencyConfig(cfg);
  const rows: TokenEfficiencyRow[] = [];
  // One feature network for every setting (the same digits and seed would train the same one each time).
  let features: Judge | undefined;
  const shared = async () => {
    if (!features) {
      const base = settingConfig(cfg, cfg.grids[0]!, cfg.codebookSizes[0]!);
      const data = await tokenizerData(base);
      log(`training the feature network for rFID (${base.featureSteps} steps), shared by every setting`);
      features = await trainJudge(data.train, data.info, base.featureSteps, base.train.seed);
    }
    return features;
  };
  try {
    await trainSettings(dir, cfg, rows, shared, log);
  } finally {
    features?.dispose();
  }
  await writeReport(dir, cfg, rows);
  return rows;
}

async function trainSettings(dir: string, cfg: TokenEfficiencyConfig, rows: TokenEfficiencyRow[], features: () => Promise<Judge>, log: (line: string) => void): Promise<void> {
  for (const grid of cfg.grids) {
    for (const k of cfg.codebookSizes) {
      const sub = join(dir, `grid${grid}-k${k}`);
      const finished = existsSync(join(sub, "metrics.json"));
      const t0 = performance.now();
      const metrics = await finishTokenizerRun(sub, settingConfig(cfg, grid, k), { features, log, onStep: stepProgress(`tokenizer ${grid}×${grid}, ${k} codes`) });
      if (!finished) writeAtomic(join(sub, "seconds.json"), `${JSON.stringify({ seconds: (performance.now() - t0) / 1000 })}\n`);
      const seconds = existsSync(join(sub, "seconds.json")) ? (JSON.parse(readFileSync(join(sub, "seconds.json"), "utf8")) as { seconds: number }).seconds : Number.NaN;
      rows.push({ ...metrics, grid, codebookSize: k, seconds });
      log(`grid ${grid}×${grid}, ${k} codes: PSNR ${metrics.psnr.toFixed(2)} dB, rFID ${metrics.rfid.toFixed(3)}, usage ${(100 * metrics.usage).toFixed(1)}%`);
    }
  }
}

/** results.json, results.md, the plots (SVG) and a grid of one digit at every setting (PNG). */
async function writeReport(dir: string, cfg: TokenEfficiencyConfig, rows: readonly TokenEfficiencyRow[]): Promise<void> {
  writeAtomic(join(dir, "results.json"), `${JSON.stringify({ config: cfg, rows }, null, 2)}\n`);
  writeAtomic(join(dir, "results.md"), `${tokenEfficiencyTable(rows)}\n`);
  const bySize = cfg.codebookSizes.map((k) => rows.filter((r) => r.codebookSize === k).sort((a, b) => a.bitsPerImage - b.bitsPerImage));
  for (const [metric, label] of [["psnr", "PSNR (dB)"], ["rfid", "rFID (feature-network Fréchet distance)"]] as const) {
    for (const [x, xLabel] of [["bitsPerImage", "bits per image (log scale)"], ["tokensPerImage", "tokens per image (log scale)"]] as const) {
      const series = bySize.map((rs, i) => ({ name: `${cfg.codebookSizes[i]} codes`, xs: rs.map((r) => r[x]), ys: rs.map((r) => r[metric]) }));
      writeAtomic(join(dir, `${metric}-vs-${x === "bitsPerImage" ? "bits" : "tokens"}.svg`), xyChartSvg(series, { title: `${label} against ${x === "bitsPerImage" ? "bits" : "tokens"} per image, held-out MNIST`, xLabel, yLabel: label, xLog: true }));
    }
  }
  // One row per setting: the same 8 held-out digits, reconstructed.
  const first = rows[0];
  if (!first) return;
  const data = await tokenizerData(settingConfig(cfg, first.grid, first.codebookSize));
  const originals = data.test.images.subarray(0, 8 * 784);
  const images = [originals];
  for (const r of rows) {
    const tok = loadImageTokenizer(join(dir, `grid${r.grid}-k${r.codebookSize}`));
    try {
      images.push(await tok.decodeImages(await tok.encodeImages(originals, 8), 8));
    } finally {
      tok.dispose();
    }
  }
  const grid = new Float32Array(images.length * 8 * 784);
  images.forEach((im, i) => grid.set(im, i * 8 * 784));
  writeGrayGrid(join(dir, "reconstructions.png"), grid, { height: 28, width: 28, cols: 8, scale: 2 });
}

export function tokenEfficiencyTable(rows: readonly TokenEfficiencyRow[]): string {
  return [
    "| grid | codes | tokens / image | bits / image | PSNR (dB) | SSIM | rFID | usage | perplexity | train + measure (s) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) => `| ${r.grid}×${r.grid} | ${r.codebookSize} | ${r.tokensPerImage} | ${r.bitsPerImage.toFixed(0)} | ${r.psnr.toFixed(2)} | ${r.ssim.toFixed(3)} | ${r.rfid.toFixed(3)} | ${(100 * r.usage).toFixed(1)}% | ${r.perplexity.toFixed(1)} | ${r.seconds.toFixed(0)} |`),
  ].join("\n");
}
