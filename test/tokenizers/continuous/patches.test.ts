import { beforeAll, describe, expect, it } from "vitest";
import { np, startEngine, tree } from "../../../src/engine/index.ts";
import { KeyStream } from "../../../src/engine/rng.ts";
import { conv2d, initConv2d } from "../../../src/nn/conv.ts";
import { linear } from "../../../src/nn/linear.ts";
import { patchGrid, patchify, unpatchify } from "../../../src/tokenizers/continuous/patches.ts";
import { expectClose, f32, flat } from "../../helpers/fixtures.ts";
import { uniformValues } from "../../helpers/values.ts";

beforeAll(startEngine);

describe("patchify / unpatchify", () => {
  it("cuts row-major patches, each flattened (c, i, j): a hand-computed case", () => {
    // one 2×4×4 image whose pixel (c, y, x) holds 16c + 4y + x
    const img = f32(Array.from({ length: 32 }, (_, i) => i), [1, 2, 4, 4]);
    const p = patchify(img, 2);
    expect(p.shape).toEqual([1, 4, 8]);
    const v = flat(p);
    const patch = (n: number) => v.slice(8 * n, 8 * n + 8);
    expect(patch(0)).toEqual([0, 1, 4, 5, 16, 17, 20, 21]);
    expect(patch(1)).toEqual([2, 3, 6, 7, 18, 19, 22, 23]); // row 0, column 1
    expect(patch(2)).toEqual([8, 9, 12, 13, 24, 25, 28, 29]); // row 1, column 0
    expect(patch(3)).toEqual([10, 11, 14, 15, 26, 27, 30, 31]);
  });

  it.each([
    [[2, 3, 6, 8], 2],
    [[1, 1, 8, 8], 4],
    [[3, 2, 5, 10], 5],
    [[1, 3, 4, 4], 1],
  ])("round-trips images %j in %i×%i patches exactly", (shape, p) => {
    const [b, c, h, w] = shape as [number, number, number, number];
    const values = uniformValues(b * c * h * w, 3);
    const patches = patchify(f32(values, shape), p);
    expect(patches.shape).toEqual([b, (h / p) * (w / p), c * p * p]);
    const back = unpatchify(patches, p, { channels: c, height: h, width: w });
    expect(back.shape).toEqual(shape);
    expect(flat(back)).toEqual(Array.from(values));
  });

  it("a linear layer on patchify is a stride-p convolution with the Conv2d weight reshaped to [C·p², D]", () => {
    const conv = initConv2d(new KeyStream(4), 3, 5, 4);
    conv.b = conv.b.add(0.25);
    const x = f32(uniformValues(2 * 3 * 8 * 12, 5), [2, 3, 8, 12]);
    const want = conv2d(tree.ref(conv), x.ref, { stride: 4 }); // [2, 5, 2, 3]
    const w = conv.w.reshape([5, 48]).transpose([1, 0]);
    const got = linear({ w, b: conv.b }, patchify(x, 4)); // [2, 6, 5]
    expectClose(flat(got), flat(want.transpose([0, 2, 3, 1]).reshape([2, 6, 5])), 1e-5);
  });

  it("refuses a patch size that does not divide the image, naming both", () => {
    expect(() => patchify(np.zeros([1, 1, 6, 8]), 4)).toThrow("patchify: patch size 4 does not divide the image size 6×8 (height and width must be multiples of 4)");
    expect(() => patchify(np.zeros([1, 6, 8]), 2)).toThrow("patchify: expected images [B, C, H, W], got [1, 6, 8]");
    expect(() => patchify(np.zeros([1, 1, 4, 4]), 0)).toThrow("patch size must be a positive integer, got 0");
    expect(() => unpatchify(np.zeros([1, 5, 4]), 2, { channels: 1, height: 4, width: 4 })).toThrow(
      "unpatchify: 1×4×4 images in 2×2 patches need patches [B, 4, 4], got [1, 5, 4]",
    );
    expect(() => unpatchify(np.zeros([1, 4, 4]), 3, { channels: 1, height: 4, width: 4 })).toThrow("unpatchify: patch size 3 does not divide the image size 4×4");
    expect(patchGrid(3, 8, 12, 4)).toEqual({ rows: 2, cols: 3, count: 6, patchDim: 48 });
  });
});
