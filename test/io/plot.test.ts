import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { afterAll, describe, expect, it } from "vitest";
import { BAR_COLOR, barChart, formatTick, lineChart, PALETTE, writeChart, type Chart, type RGB } from "../../src/io/plot.ts";

const dir = mkdtempSync(join(tmpdir(), "mmntp-plot-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Decode a chart's PNG; `is(x, y, c)` tests one pixel's colour. */
function pixels(chart: Chart) {
  const png = PNG.sync.read(chart.png);
  const at = (x: number, y: number): RGB => {
    const i = 4 * (y * png.width + x);
    return [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
  };
  const is = (x: number, y: number, c: RGB) => at(x, y).every((v, k) => v === c[k]);
  /** Pixels of colour c in column x between rows [y0, y1). */
  const run = (x: number, y0: number, y1: number, c: RGB) => Array.from({ length: y1 - y0 }, (_, k) => is(x, y0 + k, c)).filter(Boolean).length;
  return { png, at, is, run };
}

const BLACK: RGB = [0, 0, 0];

describe("bar chart", () => {
  it("draws bars whose heights are proportional to the values (linear)", () => {
    const values = [3, 7, 1, 0, 5];
    const chart = barChart(values, { title: "five bars", width: 320, height: 200 });
    const { png, run } = pixels(chart);
    const { left, right, top, bottom, yMax } = chart.layout;
    expect([png.width, png.height]).toEqual([320, 200]);
    expect(yMax).toBe(8); // 7 rounded up to the next tick (step 2)
    const heights = values.map((_, i) => run(Math.round(left + ((i + 0.5) * (right - left)) / values.length), top, bottom, BAR_COLOR));
    const unit = (bottom - top) / yMax; // pixels per count
    heights.forEach((h, i) => expect(Math.abs(h - values[i]! * unit)).toBeLessThanOrEqual(1));
    expect(heights[3]).toBe(0);
    expect(heights[1]! / heights[0]!).toBeCloseTo(7 / 3, 1);
  });

  it("log1p scale: heights follow log10(1 + v), zeros sit on the axis; ticks at 0, 1, 10, 100, …", () => {
    const values = [999, 99, 9, 0];
    const chart = barChart(values, { yScale: "log1p", width: 200, height: 160 });
    const { run, is } = pixels(chart);
    const { left, right, top, bottom, yMax } = chart.layout;
    expect(yMax).toBe(1000);
    const heights = values.map((_, i) => run(Math.round(left + ((i + 0.5) * (right - left)) / 4), top, bottom, BAR_COLOR));
    const decade = (bottom - top) / 3; // log10(1 + 1000) ≈ 3 decades over the plot height
    [3, 2, 1, 0].forEach((d, i) => expect(Math.abs(heights[i]! - d * decade)).toBeLessThanOrEqual(1.5));
    // Black tick marks left of the axis at every tick value.
    for (const v of [0, 1, 10, 100, 1000]) expect(is(left - 3, Math.round(chart.layout.y(v)), BLACK)).toBe(true);
  });

  it("with more bars than pixel columns, each column shows the largest value it covers", () => {
    const values = Array.from({ length: 5000 }, (_, i) => (i === 2500 ? 100 : 1));
    const chart = barChart(values, { width: 200, height: 120 });
    const { run } = pixels(chart);
    const { left, right, top, bottom } = chart.layout;
    const cols = Array.from({ length: right - left }, (_, x) => run(left + x, top, bottom, BAR_COLOR));
    expect(Math.max(...cols)).toBe(bottom - top); // the spike survives the down-sampling
    expect(cols.filter((h) => h === bottom - top)).toHaveLength(1);
  });

  it("draws the title in the top margin and tick labels left of the axis", () => {
    const chart = barChart([1, 2], { title: "title", width: 200, height: 120 });
    const { png, is } = pixels(chart);
    const inRows = (y0: number, y1: number, x0: number, x1: number) => {
      let n = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) n += is(x, y, BLACK) ? 1 : 0;
      return n;
    };
    expect(inRows(0, chart.layout.top - 2, 0, png.width)).toBeGreaterThan(40); // "TITLE" at 2×
    expect(inRows(chart.layout.top, chart.layout.bottom, 0, chart.layout.left - 5)).toBeGreaterThan(20); // y tick labels
    expect(barChart([1, 2], { width: 200, height: 120 }).layout.top).toBeLessThan(chart.layout.top); // no title, no margin
  });

  it("rejects what it cannot draw, naming the value", () => {
    expect(() => barChart([])).toThrow("barChart: no values to plot");
    expect(() => barChart([1, -2], { yScale: "log1p" })).toThrow('yScale "log1p" needs values ≥ 0, got -2 at index 1');
    expect(() => barChart([1, Infinity])).toThrow("value Infinity at index 1 is not finite");
    expect(() => barChart([1], { width: 50, height: 300 })).toThrow("width and height must be integers of at least 160×100, got 50×300");
  });
});

describe("line chart", () => {
  it("passes through every point in its series colour, joins across NaN gaps, and has a legend", () => {
    const train = Array.from({ length: 50 }, (_, i) => 4 * Math.exp(-i / 10) + 0.1);
    const val = train.map((v, i) => (i % 10 === 0 ? v * 1.5 : NaN));
    const chart = lineChart([{ name: "train", values: train }, { name: "val", values: val }], { title: "loss", yScale: "log", xStep: 10 });
    const { is } = pixels(chart);
    const { left, right } = chart.layout;
    const xAt = (i: number) => Math.round(left + (i * (right - left - 1)) / 49);
    // Points of the series away from the legend box.
    for (const i of [5, 20, 35, 49]) expect(is(xAt(i), Math.round(chart.layout.y(train[i]!)), PALETTE[0]!)).toBe(true);
    for (const i of [10, 20, 30]) expect(is(xAt(i), Math.round(chart.layout.y(val[i]!)), PALETTE[1]!)).toBe(true);
    // Between two validation points the line continues (some orange pixel in the middle column).
    const mid = xAt(25);
    const column = Array.from({ length: chart.layout.bottom - chart.layout.top }, (_, k) => is(mid, chart.layout.top + k, PALETTE[1]!));
    expect(column.some(Boolean)).toBe(true);
    // Legend swatches in the top-right corner.
    const swatch = (c: RGB) => {
      for (let y = chart.layout.top; y < chart.layout.top + 40; y++) for (let x = right - 80; x < right; x++) if (is(x, y, c)) return true;
      return false;
    };
    expect(swatch(PALETTE[0]!) && swatch(PALETTE[1]!)).toBe(true);
    expect(chart.layout.yMin).toBe(0.1);
    expect(chart.layout.yMax).toBe(10);
  });

  it("log scale needs positive values", () => {
    expect(() => lineChart([{ name: "loss", values: [1, 0.5, 0] }], { yScale: "log" })).toThrow(
      'lineChart: series loss: yScale "log" needs values > 0, got 0 at index 2 (use "log1p" or "linear")',
    );
    expect(() => lineChart([{ values: [] }])).toThrow("lineChart: no values to plot");
  });
});

describe("tick labels and files", () => {
  it.each([
    [0, "0"], [1, "1"], [100, "100"], [2500, "2500"], [10000, "10K"], [15000, "15K"], [2.5e6, "2.5M"],
    [0.5, "0.5"], [0.25, "0.25"], [1e-4, "1E-4"], [-20, "-20"],
  ])("formatTick(%s) = %s", (v, s) => expect(formatTick(v)).toBe(s));

  it("writeChart writes the PNG atomically (no temp file left behind)", () => {
    const path = join(dir, "sub", "bars.png");
    writeChart(path, barChart([1, 2, 3]));
    expect(existsSync(path)).toBe(true);
    expect(PNG.sync.read(readFileSync(path)).width).toBe(640);
    expect(readdirSync(join(dir, "sub"))).toEqual(["bars.png"]);
  });
});
