import { writeAtomic } from "../io/checkpoint.ts";
import { cpus } from "node:os";
import { join } from "node:path";
import { lineChart, writeChart } from "../io/plot.ts";
import { writeGrayGrid } from "../io/png.ts";
import type { QuantizerExperiment, QuantizerResult } from "./quantizers-config.ts";

/** The quantizer experiment's files: results.json, results.md, curves.png, usage-curves.png, recon-grid.png. */

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const fixed = (v: number, digits: number) => (Number.isInteger(v) ? String(v) : v.toFixed(digits));

/** The markdown table, one row per quantizer. */
export function resultsTable(results: readonly QuantizerResult[]): string {
  const head = ["quantizer", "setup", "tokens/image", "ids/token (K)", "bits/token", "bits/image", "PSNR (dB)", "codebook usage", "perplexity", "dead codes", "position codes used", "train (s)"];
  const rows = results.map((r) => [
    `\`${r.name}\``,
    r.description,
    String(r.tokensPerImage),
    String(r.codebookSize),
    fixed(r.bitsPerToken, 2),
    fixed(r.bitsPerImage, 1),
    r.psnr.toFixed(2),
    `${pct(r.usage)} of ${r.codes}`,
    r.perplexity.toFixed(1),
    String(r.dead),
    r.positionCodes === undefined ? "—" : `${r.positionCodesUsed} of ${r.positionCodes}`,
    r.trainSeconds.toFixed(0),
  ]);
  return [head, head.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

/** results.json (everything, curves included) and results.md (setup + table). */
export function writeResults(dir: string, exp: QuantizerExperiment): void {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`;
  const when = new Date().toISOString();
  writeAtomic(join(dir, "results.json"), JSON.stringify({ date: when, machine, seconds: exp.seconds, config: exp.config, results: exp.results }, null, 2));
  const c = exp.config;
  const md = [
    "# Quantizer comparison (MNIST conv auto-encoder, 28×28 → 7×7 latents)",
    "",
    `Run ${when} on ${machine}; ${exp.seconds.toFixed(0)} s in all.`,
    `Each quantizer: ${c.steps} AdamW steps of batch ${c.batchSize}, peak lr ${c.lr}, seed ${c.seed}; ` +
      `PSNR and codebook health on the ${c.testSize} held-out images of splitTrainTest(seed ${c.splitSeed}).`,
    "",
    resultsTable(exp.results),
    "",
    "- codebook usage / perplexity / dead codes: over the held-out ids, counted per stored code (RVQ and group VQ: L·K codes of their L codebooks).",
    "- position codes used: distinct tuples of one latent position's tokens (K^tokens-per-position possible); — for the multi-scale quantizer.",
    "- bits/image = tokens/image × bits/token, bits/token = log₂ K. VAR's multi-scale tokens (Σ s² = 140 for scales 1..7) carry more bits per image.",
    "- train (s): wall time of training, jit compilation included, on a CPU shared with other work.",
    "",
    "Files: `codebook-usage-<quantizer>.png`, `curves.png` (training PSNR), `usage-curves.png` (codebook usage during training), " +
      `\`recon-grid.png\` (rows: held-out originals, then ${exp.results.map((r) => r.name).join(", ")}).`,
    "",
  ].join("\n");
  writeAtomic(join(dir, "results.md"), md);
}

/** Mean of each value and up to `n − 1` before it. */
function trailingMean(values: readonly number[], n: number): number[] {
  return values.map((_, i) => {
    const w = values.slice(Math.max(0, i - n + 1), i + 1);
    return w.reduce((a, b) => a + b, 0) / w.length;
  });
}

/** curves.png: training PSNR per quantizer; usage-curves.png: codebook usage per health window. */
export function writeCurves(dir: string, results: readonly QuantizerResult[]): void {
  const smooth = 10;
  writeChart(
    join(dir, "curves.png"),
    lineChart(
      results.map((r) => ({ name: r.name, values: trailingMean(r.curves.psnr, smooth) })),
      { title: `Training PSNR (batch recon, mean of ${smooth} steps)`, xLabel: "step", yLabel: "PSNR (dB)", width: 800, height: 440 },
    ),
  );
  writeChart(
    join(dir, "usage-curves.png"),
    lineChart(
      results.map((r) => ({ name: r.name, values: r.curves.usage.map((u) => 100 * u) })),
      { title: "Codebook usage during training (% of codes per window)", xLabel: "step", yLabel: "usage (%)", width: 800, height: 440 },
    ),
  );
}

/** recon-grid.png: `cols` held-out originals, then one row of their reconstructions per quantizer. */
export function writeReconstructionGrid(dir: string, originals: Float32Array, recons: readonly Float32Array[], cols: number): void {
  const px = 28 * 28;
  const rows = [originals, ...recons];
  const all = new Float32Array(rows.length * cols * px);
  rows.forEach((r, i) => all.set(r.subarray(0, cols * px), i * cols * px));
  writeGrayGrid(join(dir, "recon-grid.png"), all, { height: 28, width: 28, count: rows.length * cols, cols });
}
