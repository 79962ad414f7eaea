/** The codebook-usage picture (a PNG bar chart; Node: it writes a file). The statistics are in health.ts. */
import { join } from "node:path";
import { barChart, writeChart, type ChartLayout, type ChartOptions } from "../../io/plot.ts";
import { usageHistogram, type CodebookHealth } from "./health.ts";

export type UsagePlotOptions = Pick<ChartOptions, "title" | "width" | "height"> & {
  /** "log1p" (default): log₁₀(1 + count), so rare codes stay visible and dead ones sit on the axis; or "linear". */
  yScale?: "linear" | "log1p";
};

/**
 * Bar chart of per-code usage, most used code first, as a PNG: `path` is a .png file, or a
 * directory that gets `codebook-usage.png`. The default title states usage and perplexity.
 * Returns the file written and the chart's layout.
 */
export function plotCodebookUsage(path: string, healthOrCounts: CodebookHealth | ArrayLike<number>, opts: UsagePlotOptions = {}): { file: string; layout: ChartLayout } {
  const hist = usageHistogram(healthOrCounts);
  const k = hist.counts.length;
  const used = hist.counts.reduce((a, c) => a + (c > 0 ? 1 : 0), 0);
  const entropy = hist.share.reduce((a, p) => (p > 0 ? a - p * Math.log(p) : a), 0);
  const title = opts.title ?? `Codebook usage: ${used}/${k} codes used, perplexity ${Math.exp(entropy).toFixed(1)}`;
  const yScale = opts.yScale ?? "log1p";
  const chart = barChart(hist.counts, {
    title,
    width: opts.width ?? 720,
    height: opts.height ?? 360,
    yScale,
    xLabel: "code rank (most used first)",
    yLabel: yScale === "log1p" ? "tokens (log scale)" : "tokens",
  });
  const file = path.endsWith(".png") ? path : join(path, "codebook-usage.png");
  writeChart(file, chart);
  return { file, layout: chart.layout };
}
