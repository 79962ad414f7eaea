/**
 * Tiny raster plots for humans: bar charts (codebook usage) and line charts (loss curves) as
 * RGB PNGs written with pngjs, with a title, axis ticks and tick labels drawn in a built-in
 * 5×7 pixel font (upper case; lower case is drawn as upper case).
 *
 * y scales: "linear"; "log" = log₁₀ v (every value must be > 0, for losses); "log1p" =
 * log₁₀(1 + v), a log-ish scale that keeps zeros (for counts: dead codes sit on the axis).
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { PNG } from "pngjs";
import { writeAtomic } from "./checkpoint.ts";

export type RGB = readonly [number, number, number];
export type YScale = "linear" | "log" | "log1p";

export type ChartOptions = {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Default "linear". */
  yScale?: YScale;
  /** Image size in pixels; default 640 × 360. */
  width?: number;
  height?: number;
  /** x value of point (or bar) i is xStart + i·xStep; default 0 and 1 (e.g. 10 for every 10th step). */
  xStart?: number;
  xStep?: number;
};

export type Series = { name?: string; values: ArrayLike<number>; color?: RGB };

/**
 * Where things landed: the plot area spans pixel columns [left, right) and rows [top, bottom);
 * y maps a data value to its pixel row (bottom = yMin, top = yMax).
 */
export type ChartLayout = {
  width: number;
  height: number;
  left: number;
  top: number;
  right: number;
  bottom: number;
  yMin: number;
  yMax: number;
  yScale: YScale;
  y: (v: number) => number;
};

export type Chart = { png: Buffer; layout: ChartLayout };

export const BAR_COLOR: RGB = [70, 130, 180];
/** Matplotlib's tab10, for line series in order. */
export const PALETTE: readonly RGB[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];
const BLACK: RGB = [0, 0, 0];
const GRID: RGB = [225, 225, 225];

// ---------------------------------------------------------------- 5×7 font

// Each glyph: its character, then 7 rows of 5 pixels as base-32 digits (bit 4 = leftmost).
const FONT_DATA =
  "0ehjlphe14c4444e2eh1248v3v2421he426aiv225vgu11he668guhhe7v124888" +
  "8ehhehhe9ehhf12cAehhvhhhBuhhuhhuCehgggheDsihhhisEvgguggvFvgguggg" +
  "GehgnhhfHhhhvhhhIe44444eJ72222icKhikokihLggggggvMhrllhhhNhhpljhh" +
  "OehhhhhePuhhugggQehhhlidRuhhukihSfgge11uTv444444UhhhhhheVhhhhha4" +
  "WhhhlllaXhha4ahhYhha4444Zv1248gv 0000000.00000cc,0000c48:0cc0cc0" +
  "-000v000+044v440(2488842)8422248[e88888e]e22222e/01248g0%op248j3" +
  "=00v0v00_000000v'4480000!4444404?eh12404<248g842>8421248#aavavaa" +
  "*04lel40|4444444";
const FONT = new Map<string, number[]>();
for (let i = 0; i < FONT_DATA.length; i += 8) {
  FONT.set(FONT_DATA[i]!, Array.from(FONT_DATA.slice(i + 1, i + 8), (c) => parseInt(c, 32)));
}
const GLYPH_W = 6; // 5 pixels + 1 space
const GLYPH_H = 7;

// ---------------------------------------------------------------- canvas

class Canvas {
  readonly data: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Uint8Array(width * height * 4).fill(255); // white, opaque RGBA
  }

  set(x: number, y: number, [r, g, b]: RGB): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = 4 * (Math.floor(y) * this.width + Math.floor(x));
    this.data[i] = r;
    this.data[i + 1] = g;
    this.data[i + 2] = b;
  }

  /** Fill columns [x0, x1) × rows [y0, y1). */
  rect(x0: number, y0: number, x1: number, y1: number, c: RGB): void {
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) this.set(x, y, c);
  }

  /** Bresenham line, both ends included. */
  line(x0: number, y0: number, x1: number, y1: number, c: RGB): void {
    [x0, y0, x1, y1] = [x0, y0, x1, y1].map(Math.round) as [number, number, number, number];
    const dx = Math.abs(x1 - x0);
    const dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1;
    const sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    for (;;) {
      this.set(x0, y0, c);
      if (x0 === x1 && y0 === y1) return;
      const e2 = 2 * err;
      if (e2 >= dy) [err, x0] = [err + dy, x0 + sx];
      if (e2 <= dx) [err, y0] = [err + dx, y0 + sy];
    }
  }

  /** Text with its top-left corner at (x, y), each font pixel drawn as scale × scale. */
  text(x: number, y: number, s: string, c: RGB, scale = 1): void {
    [...s.toUpperCase()].forEach((ch, k) => {
      const rows = FONT.get(ch) ?? FONT.get("?")!;
      rows.forEach((bits, r) => {
        for (let col = 0; col < 5; col++) {
          if (bits & (16 >> col)) this.rect(x + (k * GLYPH_W + col) * scale, y + r * scale, x + (k * GLYPH_W + col + 1) * scale, y + (r + 1) * scale, c);
        }
      });
    });
  }

  png(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    png.data = Buffer.from(this.data.buffer);
    return PNG.sync.write(png, { colorType: 2 });
  }
}

/** Width in pixels of `s` drawn at `scale`. */
export function textWidth(s: string, scale = 1): number {
  return s.length === 0 ? 0 : (s.length * GLYPH_W - 1) * scale;
}

// ---------------------------------------------------------------- axes

/** Compact tick label: 1500 → "1.5K", 0.00012 → "1.2E-4". */
export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return "0";
  const trim = (s: string) => (s.includes(".") ? s.replace(/\.?0+$/, "") : s);
  if (a >= 1e9) return `${trim((v / 1e9).toPrecision(3))}G`;
  if (a >= 1e6) return `${trim((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${trim((v / 1e3).toPrecision(3))}K`;
  if (a < 1e-3) return v.toExponential(1).replace(/\.0e/, "e").toUpperCase();
  return trim(v.toPrecision(3).includes("e") ? v.toFixed(0) : v.toPrecision(3));
}

/** 1, 2 or 5 × 10^k: about `target` steps over `span`. */
function niceStep(span: number, target = 5): number {
  const raw = span / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].find((m) => m * p >= raw) ?? 10) * p;
}

type Axis = { min: number; max: number; ticks: number[]; t: (v: number) => number };

/** The y axis over data in [lo, hi]: range, tick values and the transform t (scale → linear). */
function yAxis(lo: number, hi: number, scale: YScale, zeroBased: boolean): Axis {
  if (scale === "linear") {
    if (zeroBased) lo = Math.min(0, lo);
    if (hi === lo) hi = lo + (lo === 0 ? 1 : Math.abs(lo));
    const step = niceStep(hi - lo);
    const min = Math.floor(lo / step) * step;
    const max = Math.ceil(hi / step) * step;
    const ticks = Array.from({ length: Math.round((max - min) / step) + 1 }, (_, i) => +(min + i * step).toPrecision(12));
    return { min, max, ticks, t: (v) => v };
  }
  if (scale === "log1p") {
    const top = Math.max(1, Math.ceil(Math.log10(Math.max(hi, 1))));
    const ticks = [0, ...Array.from({ length: top + 1 }, (_, k) => 10 ** k)];
    return { min: 0, max: 10 ** top, ticks, t: (v) => Math.log10(1 + v) };
  }
  const a = Math.floor(Math.log10(lo));
  const b = Math.max(a + 1, Math.ceil(Math.log10(hi)));
  const every = Math.ceil((b - a) / 8);
  const ticks = Array.from({ length: b - a + 1 }, (_, k) => a + k).filter((e) => (e - a) % every === 0).map((e) => 10 ** e);
  return { min: 10 ** a, max: 10 ** b, ticks, t: Math.log10 };
}

type Frame = { canvas: Canvas; layout: ChartLayout };

type XAt = (i: number, layout: ChartLayout) => number;

/** Draw title, labels, grid and ticks; x ticks label points 0 … n−1, placed at column xAt(i). */
function frame(n: number, axis: Axis, opts: ChartOptions, xAt: XAt): Frame {
  const { title = "", xLabel = "", yLabel = "", yScale = "linear", width = 640, height = 360, xStart = 0, xStep = 1 } = opts;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 160 || height < 100) {
    throw new Error(`plot: width and height must be integers of at least 160×100, got ${width}×${height}`);
  }
  const labels = axis.ticks.map(formatTick);
  const left = Math.max(...labels.map((l) => textWidth(l))) + 10;
  const top = (title ? 2 * GLYPH_H + 12 : 8) + (yLabel ? GLYPH_H + 6 : 0);
  const bottom = height - (GLYPH_H + 10) - (xLabel ? GLYPH_H + 6 : 0);
  const right = width - 12;
  const [tMin, tMax] = [axis.t(axis.min), axis.t(axis.max)];
  const y = (v: number) => bottom - ((axis.t(v) - tMin) / (tMax - tMin)) * (bottom - top);
  const layout: ChartLayout = { width, height, left, top, right, bottom, yMin: axis.min, yMax: axis.max, yScale, y };
  const c = new Canvas(width, height);
  if (title) c.text(Math.max(2, Math.round((width - textWidth(title, 2)) / 2)), 6, title, BLACK, 2);
  if (yLabel) c.text(4, top - GLYPH_H - 6, yLabel, BLACK);
  if (xLabel) c.text(Math.round((left + right - textWidth(xLabel)) / 2), height - GLYPH_H - 3, xLabel, BLACK);
  axis.ticks.forEach((v, k) => {
    const py = Math.round(y(v));
    c.rect(left, py, right, py + 1, GRID);
    c.rect(left - 4, py, left, py + 1, BLACK);
    c.text(left - 6 - textWidth(labels[k]!), py - 3, labels[k]!, BLACK);
  });
  // x ticks at nice point numbers, labelled in x units.
  const step = n > 1 ? Math.max(1, niceStep(n - 1, Math.max(2, Math.floor((right - left) / 70)))) : 1;
  for (let i = 0; i < n; i += step) {
    const px = Math.round(xAt(i, layout));
    c.rect(px, bottom, px + 1, bottom + 4, BLACK);
    const label = formatTick(xStart + i * xStep);
    c.text(Math.min(width - textWidth(label) - 1, Math.max(0, px - Math.floor(textWidth(label) / 2))), bottom + 6, label, BLACK);
  }
  return { canvas: c, layout };
}

function axesOnTop({ canvas: c, layout: { left, top, right, bottom } }: Frame): void {
  c.rect(left - 1, top, left, bottom + 1, BLACK);
  c.rect(left - 1, bottom, right, bottom + 1, BLACK);
}

function checkValues(values: ArrayLike<number>, scale: YScale, what: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) continue;
    if (!Number.isFinite(v)) throw new Error(`${what}: value ${v} at index ${i} is not finite`);
    if (scale === "log" && v <= 0) throw new Error(`${what}: yScale "log" needs values > 0, got ${v} at index ${i} (use "log1p" or "linear")`);
    if (scale === "log1p" && v < 0) throw new Error(`${what}: yScale "log1p" needs values ≥ 0, got ${v} at index ${i}`);
  }
}

function range(all: ArrayLike<number>[]): [number, number] {
  let [lo, hi] = [Infinity, -Infinity];
  for (const vs of all) for (let i = 0; i < vs.length; i++) if (!Number.isNaN(vs[i]!)) [lo, hi] = [Math.min(lo, vs[i]!), Math.max(hi, vs[i]!)];
  return lo <= hi ? [lo, hi] : [0, 1];
}

// ---------------------------------------------------------------- charts

/**
 * One bar per value, left to right, from the axis at 0 (or the bottom of a "log" axis). With
 * more bars than pixel columns, each column shows the largest value it covers. NaN: no bar.
 */
export function barChart(values: ArrayLike<number>, opts: ChartOptions = {}, color: RGB = BAR_COLOR): Chart {
  const scale = opts.yScale ?? "linear";
  if (values.length === 0) throw new Error("barChart: no values to plot");
  checkValues(values, scale, "barChart");
  const [lo, hi] = range([values]);
  const n = values.length;
  const f = frame(n, yAxis(lo, hi, scale, true), opts, (i, l) => l.left + ((i + 0.5) * (l.right - l.left)) / n);
  const { canvas: c, layout } = f;
  const [x0, plotW] = [layout.left, layout.right - layout.left];
  const base = Math.min(layout.bottom, Math.round(layout.y(scale === "log" ? layout.yMin : 0)));
  const columns = Math.min(n, plotW);
  for (let col = 0; col < columns; col++) {
    const [a, b] = [Math.floor((col * n) / columns), Math.floor(((col + 1) * n) / columns)];
    let v = NaN;
    for (let i = a; i < b; i++) if (!(values[i]! <= v)) v = values[i]!;
    if (Number.isNaN(v)) continue;
    const [px0, px1] = [x0 + Math.floor((col * plotW) / columns), x0 + Math.floor(((col + 1) * plotW) / columns)];
    const gap = px1 - px0 >= 4 ? 1 : 0;
    c.rect(px0, Math.round(layout.y(v)), px1 - gap, base, color);
  }
  axesOnTop(f);
  return { png: c.png(), layout };
}

/**
 * One polyline per series over points 0 … n−1, with a legend of named series. NaN points are
 * skipped and their neighbours joined, so a sparse series (validation every 10th step, NaN
 * between) still draws as a line.
 */
export function lineChart(series: readonly Series[], opts: ChartOptions = {}): Chart {
  const scale = opts.yScale ?? "linear";
  const n = Math.max(0, ...series.map((s) => s.values.length));
  if (n === 0) throw new Error("lineChart: no values to plot");
  series.forEach((s, k) => checkValues(s.values, scale, `lineChart: series ${s.name ?? k}`));
  const [lo, hi] = range(series.map((s) => s.values));
  const xAt: XAt = (i, l) => l.left + (n === 1 ? (l.right - l.left) / 2 : (i * (l.right - l.left - 1)) / (n - 1));
  const g = frame(n, yAxis(lo, hi, scale, false), opts, xAt);
  const { canvas: c, layout } = g;
  series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length]!;
    let prev: [number, number] | undefined;
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i]!;
      if (Number.isNaN(v)) continue;
      const p: [number, number] = [xAt(i, layout), layout.y(v)];
      if (prev) c.line(prev[0], prev[1], p[0], p[1], color);
      else c.set(p[0], p[1], color);
      prev = p;
    }
  });
  const named = series.map((s, k) => [s, k] as const).filter(([s]) => s.name);
  named.forEach(([s, k], row) => {
    const w = textWidth(s.name!);
    const [x, y] = [layout.right - w - 22, layout.top + 6 + row * (GLYPH_H + 5)];
    c.rect(x - 4, y - 3, layout.right - 2, y + GLYPH_H + 2, [255, 255, 255]);
    c.rect(x, y + 3, x + 12, y + 5, s.color ?? PALETTE[k % PALETTE.length]!);
    c.text(x + 16, y, s.name!, BLACK);
  });
  axesOnTop(g);
  return { png: c.png(), layout };
}

/** Write a chart's PNG atomically (creating its folder), so readers never see half a file. */
export function writeChart(path: string, chart: Chart): void {
  mkdirSync(dirname(path), { recursive: true });
  writeAtomic(path, chart.png);
}
