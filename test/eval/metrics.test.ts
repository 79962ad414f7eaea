/**
 * PSNR and SSIM against test/fixtures/image-metrics.json (reference/image_metrics.py: numpy float64
 * PSNR, scikit-image's structural_similarity with the Wang et al. 2004 settings).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { mulberry32 as rng } from "../../src/data/shuffle.ts";
import { accuracy, inceptionScore, psnr } from "../../src/eval/metrics.ts";
import { ssim, ssimPerImage } from "../../src/eval/ssim.ts";

type ImageCase = {
  readonly name: string;
  readonly shape: readonly [number, number, number, number];
  readonly dataRange: number;
  readonly sigma: number;
  readonly a: readonly number[];
  readonly b: readonly number[];
  readonly psnr: number | null;
  readonly ssim: number;
  readonly ssimPerImage: readonly number[];
};
const fx = JSON.parse(readFileSync(new URL("../fixtures/image-metrics.json", import.meta.url), "utf8")) as { readonly images: readonly ImageCase[] };

const load = (c: ImageCase) => {
  const [n, channels, height, width] = c.shape;
  return { a: Float32Array.from(c.a), b: Float32Array.from(c.b), shape: { n, channels, height, width }, options: { dataRange: c.dataRange, sigma: c.sigma } };
};

describe("PSNR", () => {
  it.each(fx.images.map((c) => [c.name, c] as const))("matches numpy: %s", (_, c) => {
    const { a, b, options } = load(c);
    const got = psnr(a, b, { dataRange: options.dataRange });
    if (c.psnr === null) expect(got).toBe(Infinity);
    else expect(Math.abs(got - c.psnr) / Math.abs(c.psnr)).toBeLessThan(1e-9);
  });

  it("defaults to data range 1 and refuses mismatched lengths", () => {
    expect(psnr([0, 0], [0.1, 0.1])).toBeCloseTo(20, 12);
    expect(psnr([0, 0], [25.5, 25.5], { dataRange: 255 })).toBeCloseTo(20, 12);
    expect(() => psnr([0, 0], [0])).toThrow("psnr: expected two non-empty arrays of equal length, got 2 and 1");
    expect(() => psnr([0], [0], { dataRange: 0 })).toThrow("psnr: dataRange must be a positive number, got 0");
  });
});

describe("SSIM", () => {
  it.each(fx.images.map((c) => [c.name, c] as const))("matches scikit-image: %s", (_, c) => {
    const { a, b, shape, options } = load(c);
    // Both sides compute in float64 from the same float32 inputs: agreement is to rounding (~1e-13).
    expect(Math.abs(ssim(a, b, shape, options) - c.ssim)).toBeLessThan(1e-9);
    const each = ssimPerImage(a, b, shape, options);
    expect(each.length).toBe(c.ssimPerImage.length);
    each.forEach((v, i) => expect(Math.abs(v - c.ssimPerImage[i]!)).toBeLessThan(1e-9));
  });

  it("of an image with itself is exactly 1, and symmetric in its arguments", () => {
    const r = rng(3);
    const shape = { n: 2, channels: 3, height: 12, width: 15 };
    const x = Float32Array.from({ length: 2 * 3 * 12 * 15 }, () => r());
    const y = x.map((v) => Math.min(1, Math.max(0, v + 0.2 * (r() - 0.5))));
    expect(ssim(x, x, shape)).toBe(1);
    expect(Array.from(ssimPerImage(x, Float32Array.from(x), shape))).toEqual([1, 1]);
    expect(ssim(x, y, shape)).toBeLessThan(1);
    expect(ssim(x, y, shape)).toBeCloseTo(ssim(y, x, shape), 14);
  });

  it("defaults to one channel, data range 1 and σ 1.5", () => {
    const c = fx.images.find((i) => i.shape[1] === 1 && i.dataRange === 1 && i.sigma === 1.5)!;
    const { a, b, shape } = load(c);
    expect(Math.abs(ssim(a, b, { n: shape.n, height: shape.height, width: shape.width }) - c.ssim)).toBeLessThan(1e-6);
  });

  it("names the shape when the inputs do not fit it, and refuses images smaller than the window", () => {
    const shape = { n: 2, channels: 1, height: 11, width: 11 };
    const x = new Float32Array(242);
    expect(() => ssim(x, new Float32Array(241), shape)).toThrow("ssim: expected two sets of images of shape [N, C, H, W] = [2, 1, 11, 11] (242 values each), got 242 and 241 values");
    expect(() => ssim(x, x, { ...shape, channels: 0 })).toThrow("ssim: expected a shape [N, C, H, W] of positive integers, got [N, C, H, W] = [2, 0, 11, 11]");
    expect(() => ssim(new Float32Array(200), new Float32Array(200), { n: 2, height: 10, width: 10 })).toThrow("ssim: images of shape [N, C, H, W] = [2, 1, 10, 10] are 10×10, smaller than the 11×11 Gaussian window of σ 1.5; SSIM needs at least 11×11");
    expect(ssim(new Float32Array(162), new Float32Array(162), { n: 2, height: 9, width: 9 }, { sigma: 1 })).toBe(1);
    expect(() => ssim(x, x, shape, { dataRange: -1 })).toThrow("ssim: dataRange must be a positive number, got -1");
  });
});

describe("accuracy", () => {
  it("is the share of equal entries", () => {
    expect(accuracy([1, 2, null, 4], [1, 2, 3, 5])).toBe(0.5);
    expect(() => accuracy([1], [1, 2])).toThrow("accuracy: expected two non-empty arrays of equal length, got 1 and 2");
  });
});

describe("Inception Score", () => {
  it("is 1 for identical rows and K for one-hot rows spread evenly over K classes", () => {
    expect(inceptionScore([0.2, 0.3, 0.5, 0.2, 0.3, 0.5], 2, 3).mean).toBeCloseTo(1, 12);
    expect(inceptionScore([1, 0, 0, 0, 1, 0, 0, 0, 1], 3, 3).mean).toBeCloseTo(3, 12);
  });

  it("matches exp(mean KL(p(y|x) ‖ p(y))) computed by hand, and splits the set", () => {
    const p = [0.9, 0.1, 0.3, 0.7, 0.5, 0.5, 0.2, 0.8];
    const rows = [[0.9, 0.1], [0.3, 0.7], [0.5, 0.5], [0.2, 0.8]];
    const byHand = (rs: number[][]) => {
      const m = [0, 1].map((j) => rs.reduce((a, r) => a + r[j]!, 0) / rs.length);
      return Math.exp(rs.reduce((a, r) => a + r.reduce((b, v, j) => b + v * Math.log(v / m[j]!), 0), 0) / rs.length);
    };
    expect(inceptionScore(p, 4, 2).mean).toBeCloseTo(byHand(rows), 12);
    const halves = [byHand(rows.slice(0, 2)), byHand(rows.slice(2))];
    const s = inceptionScore(p, 4, 2, { splits: 2 });
    expect(s.mean).toBeCloseTo((halves[0]! + halves[1]!) / 2, 12);
    expect(s.std).toBeCloseTo(Math.abs(halves[0]! - halves[1]!) / 2, 12);
    expect(() => inceptionScore(p, 4, 3)).toThrow("expected 4×3 probabilities, got 8 values");
  });
});
