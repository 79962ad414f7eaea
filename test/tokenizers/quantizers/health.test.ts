import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { afterAll, describe, expect, it } from "vitest";
import { BAR_COLOR } from "../../../src/io/plot.ts";
import { codebookHealth, usageHistogram } from "../../../src/tokenizers/quantizers/health.ts";
import { plotCodebookUsage } from "../../../src/tokenizers/quantizers/health-plot.ts";

const dir = mkdtempSync(join(tmpdir(), "mmntp-health-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("codebook health", () => {
  it("keeps its fields: usage, perplexity, dead, counts", () => {
    const h = codebookHealth([2, 2, 2, 0], 4);
    expect(h.usage).toBe(0.5);
    expect(h.dead).toBe(2);
    expect(Array.from(h.counts)).toEqual([1, 0, 3, 0]);
    expect(h.perplexity).toBeCloseTo(Math.exp(-(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75))), 10);
  });

  it("usage histogram: codes sorted by count (ties by id), shares, and how few codes cover 50% / 90%", () => {
    const h = codebookHealth([3, 3, 3, 3, 3, 1, 1, 1, 0, 4], 5);
    const hist = usageHistogram(h);
    expect(Array.from(hist.order)).toEqual([3, 1, 0, 4, 2]);
    expect(Array.from(hist.counts)).toEqual([5, 3, 1, 1, 0]);
    expect(Array.from(hist.share)).toEqual([0.5, 0.3, 0.1, 0.1, 0]);
    expect(hist.total).toBe(10);
    expect([hist.codesFor50, hist.codesFor90]).toEqual([1, 3]);
    // Raw counts work too; an empty histogram has zero shares and covers nothing.
    expect(usageHistogram([0, 0, 0])).toMatchObject({ total: 0, codesFor50: 0, codesFor90: 0 });
    expect(Array.from(usageHistogram(Int32Array.from([1, 4])).order)).toEqual([1, 0]);
    expect(() => usageHistogram([1, -1])).toThrow("usageHistogram: count of code 1 must be a non-negative integer, got -1");
    expect(() => usageHistogram([1.5])).toThrow("count of code 0 must be a non-negative integer, got 1.5");
  });

  it("plotCodebookUsage writes codebook-usage.png: sorted bars proportional to counts (linear)", () => {
    const counts = [0, 10, 40, 0, 20, 30, 5, 0];
    const { file, layout } = plotCodebookUsage(dir, counts, { yScale: "linear", width: 400, height: 220 });
    expect(file).toBe(join(dir, "codebook-usage.png"));
    const png = PNG.sync.read(readFileSync(file));
    expect([png.width, png.height]).toEqual([400, 220]);
    const blue = (x: number, y: number) => [0, 1, 2].every((k) => png.data[4 * (y * png.width + x) + k] === BAR_COLOR[k]);
    const heights = counts.map((_, i) => {
      const x = Math.round(layout.left + ((i + 0.5) * (layout.right - layout.left)) / counts.length);
      let h = 0;
      for (let y = layout.top; y < layout.bottom; y++) h += blue(x, y) ? 1 : 0;
      return h;
    });
    const sorted = [...counts].sort((a, b) => b - a);
    const unit = (layout.bottom - layout.top) / layout.yMax;
    heights.forEach((h, i) => expect(Math.abs(h - sorted[i]! * unit)).toBeLessThanOrEqual(1));
    expect(heights.slice(5)).toEqual([0, 0, 0]); // the three dead codes
  });

  it("defaults to a log1p scale and a .png path is used as is", () => {
    const h = codebookHealth(Array.from({ length: 1000 }, (_, i) => (i < 900 ? 0 : 1 + (i % 7))), 16);
    const path = join(dir, "usage", "custom.png");
    const { file, layout } = plotCodebookUsage(path, h);
    expect(file).toBe(path);
    expect(layout.yScale).toBe("log1p");
    expect(layout.yMax).toBe(1000);
    expect(PNG.sync.read(readFileSync(file)).width).toBe(720);
  });
});
