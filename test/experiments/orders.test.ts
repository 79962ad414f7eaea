import { describe, expect, it } from "vitest";
import { diversity, passesOf, variantName } from "../../src/experiments/orders.ts";
import { checkOrdersExperimentConfig, DEFAULT_ORDERS_EXPERIMENT, parseOrderList } from "../../src/experiments/orders-config.ts";

describe("decoding-orders experiment: its measures and settings", () => {
  it("diversity is the mean pairwise L2 distance within each class, averaged over classes", () => {
    // class 0: three images at 0, (3,4) and (6,8) → distances 5, 10, 5; class 1: two equal images → 0
    const px = 2;
    const images = Float32Array.from([0, 0, 3, 4, 6, 8, 1, 1, 1, 1, 1, 1]);
    expect(diversity(images, 3, 2, px)).toBeCloseTo((20 / 3 + 0) / 2, 6);
  });

  it("passes per image: one per token for raster and random order, one per step for MaskGIT, one per scale for next-scale", () => {
    expect(passesOf({ name: "raster" }, 49)).toBe(49);
    expect(passesOf({ name: "random", order: "random" }, 49)).toBe(49);
    expect(passesOf({ name: "maskgit", steps: 8 }, 49)).toBe(8);
    expect(passesOf({ name: "next-scale" }, 88, { name: "next-scale", scales: [1, 2, 3, 5, 7] })).toBe(5);
    expect([{ name: "maskgit", steps: 8 } as const, { name: "random", order: "raster" } as const, { name: "random", order: "random" } as const].map(variantName)).toEqual(["maskgit-8", "random-raster", "random"]);
  });

  it("settings are checked before any work, naming the value", () => {
    expect(parseOrderList("raster, next-scale")).toEqual(["raster", "next-scale"]);
    expect(() => parseOrderList("raster,zigzag")).toThrow('unknown order "zigzag"');
    expect(() => checkOrdersExperimentConfig({ ...DEFAULT_ORDERS_EXPERIMENT, maskgitSteps: [0] })).toThrow("orders experiment: maskgitSteps must be an integer in [1, 49], got 0");
    expect(() => checkOrdersExperimentConfig({ ...DEFAULT_ORDERS_EXPERIMENT, guidance: [0.5] })).toThrow("orders experiment: guidance 0.5 must be in [1, 100] (1 = off)");
  });
});
