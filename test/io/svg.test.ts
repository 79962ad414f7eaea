import { describe, expect, it } from "vitest";
import { lineChartSvg, xyChartSvg } from "../../src/io/svg.ts";

const polylines = (svg: string) => [...svg.matchAll(/points="([^"]*)"/g)].map((m) => m[1]!.split(" ").map((p) => p.split(",").map(Number) as [number, number]));

describe("SVG line charts", () => {
  it("draws one polyline per series, a point per finite value, higher values higher up", () => {
    const svg = lineChartSvg([{ name: "up", values: [1, 2, NaN, 4] }, { name: "down <&>", values: [4, 3, 2, 1] }], { title: "t", xLabel: "step", yLabel: "dB" });
    expect(svg.startsWith("<svg")).toBe(true);
    const [up, down] = polylines(svg);
    expect(up!.length).toBe(3);
    expect(down!.length).toBe(4);
    for (let i = 1; i < down!.length; i++) {
      expect(down![i]![0]).toBeGreaterThan(down![i - 1]![0]);
      expect(down![i]![1]).toBeGreaterThan(down![i - 1]![1]); // SVG y grows downward
    }
    expect(up![2]![1]).toBeCloseTo(down![0]![1], 6); // 4 in both series: the same height
    expect(svg).toContain("down &lt;&amp;&gt;");
    expect(svg).not.toContain("<&>");
  });

  it("on a log scale, equal ratios are equal distances; non-positive values are skipped", () => {
    const [line] = polylines(lineChartSvg([{ values: [1, 10, 100, 0] }], { yScale: "log" }));
    expect(line!.length).toBe(3);
    expect(line![0]![1] - line![1]![1]).toBeCloseTo(line![1]![1] - line![2]![1], 6);
    expect(() => lineChartSvg([{ values: [NaN] }])).toThrow(/every value is NaN/);
  });
});

describe("SVG x–y charts", () => {
  it("puts each point at its own x (log₂ when asked): equal ratios are equal distances", () => {
    const svg = xyChartSvg([{ name: "a", xs: [16, 64, 256], ys: [1, 2, 3] }, { name: "b", xs: [32], ys: [5] }], { xLog: true, title: "t" });
    const dots = [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
    expect(dots.length).toBe(4);
    expect(dots[1]![0] - dots[0]![0]).toBeCloseTo(dots[2]![0] - dots[1]![0], 1);
    expect(dots[3]![0]).toBeCloseTo((dots[0]![0] + dots[1]![0]) / 2, 1); // 32 is halfway between 16 and 64 on log₂
    expect(dots[3]![1]).toBeLessThan(dots[2]![1]); // y = 5 above y = 3
    expect(() => xyChartSvg([{ xs: [NaN], ys: [1] }])).toThrow(/no finite points/);
  });
});
