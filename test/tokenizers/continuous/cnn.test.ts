import { beforeAll, describe, expect, it } from "vitest";
import { nn, np, random, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { KeyStream } from "../../../src/engine/rng.ts";
import { initProjector, projectFeatures, type ProjectorParams } from "../../../src/backbone/adapters/projector.ts";
import { conv2d } from "../../../src/nn/conv.ts";
import { checkCNNEncoderConfig, cnnEncode, cnnGrid, initCNNEncoder, type CNNEncoderConfig, type CNNEncoderParams } from "../../../src/tokenizers/continuous/cnn.ts";
import { meanPool } from "../../../src/tokenizers/continuous/vit.ts";
import { gradCheck, probe, toF64 } from "../../helpers/gradcheck.ts";
import { overfitLabels } from "../../helpers/overfit.ts";
import { expectClose, f32, flat } from "../../helpers/fixtures.ts";
import { uniformValues } from "../../helpers/values.ts";

beforeAll(startEngine);

const cfg: CNNEncoderConfig = { height: 16, width: 8, channels: 3, widths: [8, 12], kernel: 4, activation: "relu" };

describe("CNN encoder", () => {
  it("images [B, C, H, W] → features [B, h·w, D]: the last conv's grid, row-major, activations between the convs only", () => {
    const p = initCNNEncoder(new KeyStream(0), cfg);
    const x = f32(uniformValues(2 * 3 * 16 * 8, 1), [2, 3, 16, 8]);
    const y = cnnEncode(tree.ref(p), x.ref, cfg);
    expect(y.shape).toEqual([2, 8, 12]);
    expect(cnnGrid(cfg)).toEqual({ rows: 4, cols: 2, count: 8, dim: 12 });
    // by hand: conv, ReLU, conv; token n = (n / 2, n % 2) of the [2, 12, 4, 2] grid
    const grid = flat(conv2d(p.convs[1]!, nn.relu(conv2d(p.convs[0]!, x, { stride: 2, padding: 1 })), { stride: 2, padding: 1 }));
    const v = flat(y);
    const want = v.map((_, i) => {
      const [b, n, d] = [Math.floor(i / 96), Math.floor(i / 12) % 8, i % 12];
      return grid[((b * 12 + d) * 4 + Math.floor(n / 2)) * 2 + (n % 2)]!;
    });
    expectClose(v, want, 1e-6);
    expect(v.some((u) => u < 0)).toBe(true); // no activation after the last conv
  });

  it.each([3, 4] as const)("gradients match finite differences (float64, kernel %i, GELU)", (kernel) => {
    const c: CNNEncoderConfig = { height: 8, width: 8, channels: 2, widths: [4, 6], kernel, activation: "gelu" };
    const p = toF64(initCNNEncoder(new KeyStream(2), c));
    const images = random.normal(random.key(3), [2, 2, 8, 8]).astype(np.float64);
    const err = gradCheck((p, x) => probe(cnnEncode(p as CNNEncoderParams, x as JaxArray, c)), [p as never, images]);
    expect(err).toBeLessThan(1e-3);
  });

  it("config errors name the field and the value", () => {
    expect(() => checkCNNEncoderConfig({ ...cfg, height: 12, widths: [4, 4, 4] })).toThrow("cnn encoder config: image size 12×8 is not divisible by 2^3 = 8 (3 stride-2 stages)");
    expect(() => checkCNNEncoderConfig({ ...cfg, kernel: 5 })).toThrow("cnn encoder config.kernel: expected 3 or 4, got 5");
    expect(() => checkCNNEncoderConfig({ ...cfg, widths: [] })).toThrow("cnn encoder config.widths: expected 1 to 8 integers");
    expect(() => checkCNNEncoderConfig({ ...cfg, activation: "tanh" })).toThrow('cnn encoder config.activation: expected one of gelu, relu, got "tanh"');
    const p = initCNNEncoder(new KeyStream(0), cfg);
    expect(() => cnnEncode(p, np.zeros([1, 3, 8, 8]), cfg)).toThrow("cnnEncode: expected images [B, 3, 16, 8], got [1, 3, 8, 8]");
  });

  it("CNN + linear projector learns 16 random images' 4 labels with Trainer (100% train accuracy)", async () => {
    const c: CNNEncoderConfig = { height: 8, width: 8, channels: 1, widths: [16, 32], kernel: 4, activation: "gelu" };
    const n = 16;
    const images = f32(uniformValues(n * 64, 12), [n, 1, 8, 8]);
    const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
    type P = { cnn: CNNEncoderParams; proj: ProjectorParams };
    const keys = new KeyStream(5);
    const params: P = { cnn: initCNNEncoder(keys, c), proj: initProjector(keys, { kind: "linear", inputDim: 32, dim: 4 }) };
    keys.dispose();
    const logitsOf = (p: P, x: JaxArray) => projectFeatures(p.proj, meanPool(cnnEncode(p.cnn, x, c)));
    const { acc, steps, first, last } = await overfitLabels(params, logitsOf, images, labels, 4);
    expect(acc, `accuracy ${acc} after ${steps} steps, loss ${first.toFixed(3)} → ${last.toFixed(3)}`).toBe(1);
    expect(last).toBeLessThan(first / 4);
  });
});
