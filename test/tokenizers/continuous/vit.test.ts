import { beforeAll, describe, expect, it } from "vitest";
import { np, random, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { KeyStream } from "../../../src/engine/rng.ts";
import { initProjector, projectFeatures, type ProjectorParams } from "../../../src/backbone/adapters/projector.ts";
import { checkViTConfig, initViT, meanPool, vitEncode, vitTokens, type ViTConfig, type ViTParams } from "../../../src/tokenizers/continuous/vit.ts";
import { gradCheck, probe, toF64 } from "../../helpers/gradcheck.ts";
import { overfitLabels } from "../../helpers/overfit.ts";
import { expectClose, f32, flat } from "../../helpers/fixtures.ts";
import { uniformValues } from "../../helpers/values.ts";

beforeAll(startEngine);

const cfg: ViTConfig = { height: 8, width: 8, channels: 1, patch: 4, dim: 16, layers: 2, heads: 2, mlpRatio: 2 };

describe("ViT encoder", () => {
  it("images [B, C, H, W] → features [B, N, D], and one vector per image by mean-pooling", () => {
    const p = initViT(new KeyStream(0), { ...cfg, channels: 3, width: 12 });
    const y = vitEncode(p, f32(uniformValues(2 * 3 * 8 * 12, 1), [2, 3, 8, 12]), { ...cfg, channels: 3, width: 12 });
    expect(y.shape).toEqual([2, 6, 16]);
    expect(vitTokens({ ...cfg, channels: 3, width: 12 })).toBe(6);
    const pooled = meanPool(y.ref);
    expect(pooled.shape).toEqual([2, 16]);
    const v = flat(y);
    const want = Array.from({ length: 32 }, (_, i) => {
      const [b, e] = [Math.floor(i / 16), i % 16];
      return Array.from({ length: 6 }, (_, n) => v[b * 96 + n * 16 + e]!).reduce((a, u) => a + u, 0) / 6;
    });
    expectClose(flat(pooled), want, 1e-5);
  });

  it("attends bidirectionally: the first patch's features change with the last patch", () => {
    const p = initViT(new KeyStream(1), cfg);
    const img = Array.from(uniformValues(64, 2));
    const moved = img.map((v, i) => (Math.floor(i / 8) >= 4 && i % 8 >= 4 ? v + 1 : v)); // patch 3 (bottom right)
    const run = (x: number[]) => flat(vitEncode(tree.ref(p), f32(x, [1, 1, 8, 8]), cfg)).slice(0, 16);
    const [a, b] = [run(img), run(moved)];
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeGreaterThan(1e-3);
    tree.dispose(p);
  });

  it("gradients match finite differences (float64), images and every parameter", () => {
    const small: ViTConfig = { ...cfg, layers: 1, dim: 8 };
    const p = toF64(initViT(new KeyStream(2), small));
    const images = random.normal(random.key(3), [2, 1, 8, 8]).astype(np.float64);
    const err = gradCheck((p, x) => probe(vitEncode(p as ViTParams, x as JaxArray, small)), [p as never, images], { perLeaf: 4 });
    expect(err).toBeLessThan(1e-3);
  });

  it("config errors name the field: a patch that does not divide the image, dim not divisible by heads", () => {
    expect(() => checkViTConfig({ ...cfg, patch: 3 })).toThrow("vit config.patch: patch size 3 does not divide the image size 8×8");
    expect(() => checkViTConfig({ ...cfg, dim: 10, heads: 4 })).toThrow("vit config.dim: 10 is not divisible by heads (4)");
    expect(() => checkViTConfig({ ...cfg, layers: 0 })).toThrow("vit config.layers: expected an integer in [1, 256], got 0");
    expect(() => checkViTConfig(null)).toThrow("vit config: expected an object, got null");
    expect(() => initViT(new KeyStream(0), { ...cfg, width: 10 })).toThrow("patch size 4 does not divide the image size 8×10");
    const p = initViT(new KeyStream(0), cfg);
    expect(() => vitEncode(p, np.zeros([2, 3, 8, 8]), cfg)).toThrow("vitEncode: expected images [B, 1, 8, 8], got [2, 3, 8, 8]");
    const q = initViT(new KeyStream(0), cfg);
    expect(() => vitEncode(q, np.zeros([2, 1, 8, 8]), { ...cfg, patch: 2 })).toThrow("vitEncode: params have position embeddings [4, 16], the config needs [16, 16]");
  });

  it("ViT + MLP projector learns 16 random images' 4 labels with Trainer (100% train accuracy)", async () => {
    const n = 16;
    const images = f32(uniformValues(n * 64, 11), [n, 1, 8, 8]);
    const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
    type P = { vit: ViTParams; proj: ProjectorParams };
    const keys = new KeyStream(4);
    const params: P = { vit: initViT(keys, cfg), proj: initProjector(keys, { kind: "mlp", inputDim: 16, dim: 4 }) };
    keys.dispose();
    const logitsOf = (p: P, x: JaxArray) => projectFeatures(p.proj, meanPool(vitEncode(p.vit, x, cfg))); // [B, 4]
    const { acc, steps, first, last } = await overfitLabels(params, logitsOf, images, labels, 4);
    expect(acc, `accuracy ${acc} after ${steps} steps, loss ${first.toFixed(3)} → ${last.toFixed(3)}`).toBe(1);
    expect(last).toBeLessThan(first / 4);
  });
});
