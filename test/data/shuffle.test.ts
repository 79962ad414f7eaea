import { describe, expect, it } from "vitest";
import { hostRng } from "../../src/engine/rng.ts";
import { batches, mulberry32, seededPermutation, splitTrainTest, subset } from "../../src/data/shuffle.ts";
import type { ImageSet } from "../../src/data/types.ts";

/** n 2×2 images whose every pixel holds the row's index, so any copy can be traced back. */
function tagged(n: number): ImageSet {
  const images = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) images.fill(i, 4 * i, 4 * i + 4);
  return { images, labels: Int32Array.from({ length: n }, (_, i) => i % 10), n, height: 2, width: 2 };
}
const rowIds = (s: ImageSet) => Array.from({ length: s.n }, (_, r) => s.images[4 * r]!);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("mulberry32 / seededPermutation", () => {
  it("matches the reference mulberry32 stream and the engine's hostRng", () => {
    const r = mulberry32(42);
    expect([r(), r(), r()]).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
    const a = mulberry32(123);
    const b = hostRng(123);
    for (let i = 0; i < 100; i++) expect(a()).toBe(b());
  });

  it("is a permutation, pinned for seed 0, and seed-dependent", () => {
    expect(Array.from(seededPermutation(10, 0))).toEqual([3, 8, 6, 4, 5, 9, 7, 1, 0, 2]);
    const p = Array.from(seededPermutation(1000, 5));
    expect([...p].sort((x, y) => x - y)).toEqual(range(1000));
    expect(Array.from(seededPermutation(1000, 5))).toEqual(p);
    expect(Array.from(seededPermutation(1000, 6))).not.toEqual(p);
    expect(seededPermutation(0, 0).length).toBe(0);
  });

  it("rejects bad n and seed", () => {
    expect(() => seededPermutation(-1, 0)).toThrow("n must be a non-negative integer, got -1");
    expect(() => seededPermutation(3, 0.5)).toThrow("seed must be an integer, got 0.5");
  });
});

describe("subset / splitTrainTest / batches", () => {
  it("subset copies the chosen rows in order and checks indices", () => {
    const s = subset(tagged(10), [7, 2, 2]);
    expect(rowIds(s)).toEqual([7, 2, 2]);
    expect(Array.from(s.labels)).toEqual([7, 2, 2]);
    expect(() => subset(tagged(10), [3, 10])).toThrow("index 10 at position 1 is out of range, expected an integer in [0, 10)");
  });

  it("split is disjoint, covers every row, and depends only on the seed", () => {
    const set = tagged(500);
    const { train, test } = splitTrainTest(set, { testSize: 120, seed: 3 });
    expect([test.n, train.n]).toEqual([120, 380]);
    const ids = [...rowIds(test), ...rowIds(train)];
    expect(new Set(rowIds(test)).size).toBe(120);
    expect([...ids].sort((x, y) => x - y)).toEqual(range(500));
    expect(rowIds(splitTrainTest(set, { testSize: 120, seed: 3 }).test)).toEqual(rowIds(test));
    expect(rowIds(splitTrainTest(set, { testSize: 120, seed: 4 }).test)).not.toEqual(rowIds(test));
    expect(() => splitTrainTest(set, { testSize: 501 })).toThrow("testSize must be an integer in [0, 500] (the set's size), got 501");
  });

  it("batches visit every row once per epoch; the tail is short unless dropLast", () => {
    const set = tagged(23);
    const epoch = [...batches(set, 5, 1)];
    expect(epoch.map((b) => b.n)).toEqual([5, 5, 5, 5, 3]);
    expect(epoch.flatMap(rowIds).sort((x, y) => x - y)).toEqual(range(23));
    expect(epoch.flatMap(rowIds)).toEqual(Array.from(seededPermutation(23, 1)));
    expect([...batches(set, 5, 1, { dropLast: true })].map((b) => b.n)).toEqual([5, 5, 5, 5]);
    expect([...batches(set, 5, 2)].flatMap(rowIds)).not.toEqual(epoch.flatMap(rowIds));
    expect(() => batches(set, 0, 1).next()).toThrow("batchSize must be a positive integer, got 0");
  });
});
