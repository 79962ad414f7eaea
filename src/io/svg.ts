/**
 * Line charts as SVG: the vector twin of plot.ts's PNG `lineChart`, for documents and papers
 * (it scales without blurring, and its numbers stay searchable text). Same series and options;
 * written atomically like every output.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { writeAtomic } from "./checkpoint.ts";
import { formatTick, PALETTE, type ChartOptions, type Series } from "./plot.ts";

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const rgb = ([r, g, b]: readonly number[]) => `rgb(${r},${g},${b})`;

/** Round-number ticks covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about `count` of them. */
function ticks(lo: number, hi: number, count = 5): number[] {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** The page, title, axis labels and plot frame both charts share; returns [parts, plot box]. */
function svgFrame(opts: Pick<ChartOptions, "title" | "xLabel" | "yLabel"> & { width: number; height: number }): { parts: string[]; left: number; right: number; top: number; bottom: number; close: () => void } {
  const { width, height } = opts;
  const [left, right, top, bottom] = [64, width - 16, opts.title ? 34 : 14, height - (opts.xLabel ? 44 : 28)];
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  if (opts.title) parts.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="13">${escape(opts.title)}</text>`);
  const close = () => {
    parts.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="black"/>`);
    if (opts.xLabel) parts.push(`<text x="${(left + right) / 2}" y="${height - 10}" text-anchor="middle">${escape(opts.xLabel)}</text>`);
    if (opts.yLabel) parts.push(`<text transform="translate(14 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${escape(opts.yLabel)}</text>`);
  };
  return { parts, left, right, top, bottom, close };
}

/** A legend entry for series k at row `row`, top right. */
const legend = (parts: string[], right: number, top: number, row: number, color: string, name: string) => {
  const ly = top + 14 + row * 15;
  parts.push(`<line x1="${right - 130}" x2="${right - 116}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
  parts.push(`<text x="${right - 112}" y="${ly}">${escape(name)}</text>`);
};

/**
 * One polyline per series over points i = 0 … n−1 at x = xStart + i·xStep; NaN points are
 * skipped (their neighbours joined). `yScale` "log" plots log₁₀ of positive values.
 */
export function lineChartSvg(series: readonly Series[], opts: ChartOptions = {}): string {
  const { width = 640, height = 360, xStart = 0, xStep = 1 } = opts;
  const log = opts.yScale === "log";
  const n = Math.max(0, ...series.map((s) => s.values.length));
  if (n === 0) throw new Error("lineChartSvg: no values to plot");
  const f = (v: number) => (log ? Math.log10(v) : v);
  const finite = series.flatMap((s) => Array.from(s.values).filter((v) => Number.isFinite(v) && (!log || v > 0)).map(f));
  if (finite.length === 0) throw new Error("lineChartSvg: every value is NaN, infinite or (on a log scale) not positive");
  let [lo, hi] = [Math.min(...finite), Math.max(...finite)];
  if (hi === lo) [lo, hi] = [lo - 1, hi + 1];
  const pad = (hi - lo) * 0.05;
  [lo, hi] = [lo - pad, hi + pad];
  const { parts, left, right, top, bottom, close } = svgFrame({ ...opts, width, height });
  const x = (i: number) => left + (n === 1 ? (right - left) / 2 : (i * (right - left)) / (n - 1));
  const y = (v: number) => bottom - ((f(v) - lo) / (hi - lo)) * (bottom - top);
  const yTicks = log ? ticks(lo, hi).filter((t) => Number.isInteger(t)) : ticks(lo, hi);
  for (const t of yTicks) {
    const py = bottom - ((t - lo) / (hi - lo)) * (bottom - top);
    parts.push(`<line x1="${left}" x2="${right}" y1="${py.toFixed(1)}" y2="${py.toFixed(1)}" stroke="#e1e1e1"/>`);
    parts.push(`<text x="${left - 4}" y="${(py + 4).toFixed(1)}" text-anchor="end">${escape(formatTick(log ? 10 ** t : t))}</text>`);
  }
  const xLast = xStart + (n - 1) * xStep;
  for (const t of ticks(xStart, xLast)) {
    const px = n === 1 ? x(0) : left + ((t - xStart) / (xLast - xStart)) * (right - left);
    parts.push(`<text x="${px.toFixed(1)}" y="${bottom + 14}" text-anchor="middle">${escape(formatTick(t))}</text>`);
  }
  close();
  series.forEach((s, k) => {
    const color = rgb(s.color ?? PALETTE[k % PALETTE.length]!);
    const points: string[] = [];
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i]!;
      if (Number.isFinite(v) && (!log || v > 0)) points.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    }
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${points.join(" ")}"><title>${escape(s.name ?? `series ${k}`)}</title></polyline>`);
  });
  series.filter((s) => s.name).forEach((s, row) => legend(parts, right, top, row, rgb(s.color ?? PALETTE[series.indexOf(s) % PALETTE.length]!), s.name!));
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

/** Write `lineChartSvg(series, opts)` to `path` atomically (creating its folder). */
export function writeLineChartSvg(path: string, series: readonly Series[], opts: ChartOptions = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  writeAtomic(path, lineChartSvg(series, opts));
}

/** A series drawn through points (x, y), e.g. one codebook size's grids. */
export type XYSeries = { readonly name?: string; readonly xs: readonly number[]; readonly ys: readonly number[] };

/**
 * Series through arbitrary (x, y) points, dots joined in the order given; `xLog` puts x on a
 * log₂ axis (tokens and bits per image span orders of magnitude).
 */
export function xyChartSvg(series: readonly XYSeries[], opts: Pick<ChartOptions, "title" | "xLabel" | "yLabel" | "width" | "height"> & { readonly xLog?: boolean } = {}): string {
  const { width = 640, height = 360 } = opts;
  const fx = (v: number) => (opts.xLog ? Math.log2(v) : v);
  const pts = series.flatMap((s) => s.xs.map((x, i) => [fx(x), s.ys[i]!] as const)).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length === 0) throw new Error("xyChartSvg: no finite points to plot");
  const span = (vs: number[]) => {
    let [lo, hi] = [Math.min(...vs), Math.max(...vs)];
    if (hi === lo) [lo, hi] = [lo - 1, hi + 1];
    const pad = (hi - lo) * 0.06;
    return [lo - pad, hi + pad] as const;
  };
  const [x0, x1] = span(pts.map((p) => p[0]));
  const [y0, y1] = span(pts.map((p) => p[1]));
  const { parts, left, right, top, bottom, close } = svgFrame({ ...opts, width, height });
  const px = (x: number) => left + ((fx(x) - x0) / (x1 - x0)) * (right - left);
  const py = (y: number) => bottom - ((y - y0) / (y1 - y0)) * (bottom - top);
  for (const t of ticks(y0, y1)) {
    parts.push(`<line x1="${left}" x2="${right}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" stroke="#e1e1e1"/>`);
    parts.push(`<text x="${left - 4}" y="${(py(t) + 4).toFixed(1)}" text-anchor="end">${escape(formatTick(t))}</text>`);
  }
  const xTicks = opts.xLog ? ticks(x0, x1).filter(Number.isInteger).map((e) => 2 ** e) : ticks(x0, x1);
  for (const t of xTicks) parts.push(`<text x="${px(t).toFixed(1)}" y="${bottom + 14}" text-anchor="middle">${escape(formatTick(t))}</text>`);
  close();
  series.forEach((s, k) => {
    const color = rgb(PALETTE[k % PALETTE.length]!);
    const xy = s.xs.map((x, i) => [x, s.ys[i]!] as const).filter(([x, y]) => Number.isFinite(fx(x)) && Number.isFinite(y));
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${xy.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ")}"/>`);
    for (const [x, y] of xy) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"><title>${escape(`${s.name ?? `series ${k}`}: (${formatTick(x)}, ${formatTick(y)})`)}</title></circle>`);
    if (s.name) legend(parts, right, top, k, color, s.name);
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
