import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, np, random, startEngine, tree, type Array as JaxArray } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { initDiffusionHead, predictNoise, type DiffusionHeadConfig, type DiffusionHeadParams } from "../../src/backbone/heads/diffusion-head.ts";
import { cosineSchedule, qSample } from "../../src/backbone/heads/diffusion-schedule.ts";
import { diffusionDraws, diffusionLoss, type DiffusionBatch } from "../../src/train/diffusion-loss.ts";
import { DEFAULT_ADAMW } from "../../src/train/optim.ts";
import { Trainer } from "../../src/train/step.ts";
import { flat, scalar } from "../helpers/fixtures.ts";
import { uniformValues } from "../helpers/values.ts";

beforeAll(startEngine);

const schedule = cosineSchedule(1000);
const CFG: DiffusionHeadConfig = { tokenDim: 3, conditionDim: 4, width: 16, depth: 2, steps: 1000, frequencyDim: 16 };

/** A head with random (non-zero) modulations and output, so ε̂ depends on x_t, t and z. */
function head(seed: number): DiffusionHeadParams {
  const keys = new KeyStream(seed);
  const p = initDiffusionHead(keys, CFG);
  const jitter = (a: JaxArray) => a.add(random.normal(keys.next(), a.shape).mul(0.2));
  p.blocks = p.blocks.map((b) => ({ ...b, ada: { w: jitter(b.ada.w), b: b.ada.b } }));
  p.final = { ada: { w: jitter(p.final.ada.w), b: p.final.ada.b }, out: { w: jitter(p.final.out.w), b: jitter(p.final.out.b!) } };
  keys.dispose();
  return p;
}

const batch = (n: number, seed: number, key: number, weights?: number[]): DiffusionBatch => ({
  x: fromHost(uniformValues(n * 3, seed), [n, 3]),
  z: fromHost(uniformValues(n * 4, seed + 1), [n, 4]),
  key: random.key(key),
  ...(weights ? { weights: fromHost(Float32Array.from(weights), [n]) } : {}),
});

const loss = (p: DiffusionHeadParams, b: DiffusionBatch, multiplier = 1) => scalar(diffusionLoss(tree.ref(p), b, schedule, { multiplier })[0]);

describe("the diffusion loss (MAR, eq. 2)", () => {
  it("is mean_D (ε̂ − ε)² at x_t = q(x_t | x_0) with the drawn t and ε", () => {
    const p = head(1);
    const b = batch(6, 3, 9);
    const [x, z] = [b.x.ref, b.z.ref];
    const got = loss(p, b);
    const { t, eps } = diffusionDraws(random.key(9), 6, 3, 1000);
    const xt = qSample(schedule, x, eps.ref, t.ref);
    const want = scalar(np.square(predictNoise(tree.ref(p), xt, t, z).sub(eps)).mean());
    expect(Math.abs(got - want)).toBeLessThan(1e-6);
    tree.dispose(p);
  });

  it("draws t uniformly on {0, …, T − 1} and ε ~ N(0, I)", () => {
    const { t, eps } = diffusionDraws(random.key(4), 20_000, 2, 1000);
    const ts = flat(t);
    const e = flat(eps);
    const mean = ts.reduce((a, b) => a + b, 0) / ts.length;
    expect(Math.min(...ts)).toBe(0);
    expect(Math.max(...ts)).toBe(999);
    expect(ts.every(Number.isInteger)).toBe(true);
    expect(Math.abs(mean - 499.5)).toBeLessThan(8); // σ of the mean: 289/√20000 ≈ 2
    const quarter = ts.filter((v) => v < 250).length / ts.length;
    expect(Math.abs(quarter - 0.25)).toBeLessThan(0.015);
    const m = e.reduce((a, b) => a + b, 0) / e.length;
    const v = e.reduce((a, b) => a + (b - m) ** 2, 0) / e.length;
    expect(Math.abs(m)).toBeLessThan(0.02);
    expect(Math.abs(v - 1)).toBeLessThan(0.03);
  });

  it("at MAR's initialisation (ε̂ ≡ 0) is E ε² = 1, and with a constant ε̂ = c it is 1 + mean c²", () => {
    const keys = new KeyStream(0);
    const p = initDiffusionHead(keys, CFG);
    keys.dispose();
    expect(Math.abs(loss(p, batch(2000, 1, 2)) - 1)).toBeLessThan(0.05);
    p.final.out.b = fromHost(Float32Array.of(0.5, -1, 0), [3]);
    expect(Math.abs(loss(p, batch(2000, 1, 2)) - (1 + (0.25 + 1) / 3))).toBeLessThan(0.05);
    tree.dispose(p);
  });

  it("is deterministic for a key, and the key matters", () => {
    const p = head(2);
    const a = loss(p, batch(8, 5, 1));
    expect(loss(p, batch(8, 5, 1))).toBe(a);
    expect(loss(p, batch(8, 5, 2))).not.toBe(a);
    tree.dispose(p);
  });

  it("the batch multiplier k tiles the tokens k times (MAR's repeat) with their own (t, ε), lowering the loss's variance", () => {
    const p = head(3);
    // k copies of N tokens are exactly the loss of the k·N tiled tokens with the same key
    const b = batch(5, 7, 3);
    const tiled: DiffusionBatch = { x: np.tile(b.x.ref, [4, 1]), z: np.tile(b.z.ref, [4, 1]), key: random.key(3) };
    expect(Math.abs(loss(p, b, 4) - loss(p, tiled))).toBeLessThan(1e-6);
    // independent draws per copy: the spread of the loss over keys shrinks like 1/√k
    const spread = (k: number) => {
      const ls = Array.from({ length: 40 }, (_, i) => loss(p, batch(8, 7, 100 + i), k));
      const m = ls.reduce((a, v) => a + v, 0) / ls.length;
      return Math.sqrt(ls.reduce((a, v) => a + (v - m) ** 2, 0) / ls.length);
    };
    const [one, four] = [spread(1), spread(4)];
    console.log(`loss spread over 40 keys: ${one.toFixed(4)} (k = 1), ${four.toFixed(4)} (k = 4)`);
    expect(four).toBeLessThan(0.7 * one);
    tree.dispose(p);
  });

  it("weights: tokens of weight 0 do not count, the rest are averaged by weight", () => {
    const p = head(4);
    const w = [1, 0, 2, 0];
    const a = loss(p, batch(4, 11, 5, w));
    // the same draws (same key, same shapes), other values at the weight-0 tokens
    const b = batch(4, 11, 5, w);
    const x = flat(b.x);
    x[3] = 9;
    x[4] = -9;
    expect(loss(p, { ...b, x: fromHost(Float32Array.from(x), [4, 3]) })).toBeCloseTo(a, 6);
    // Σ w·ℓ / Σ w: equal to the weighted mean of the per-token losses at weights 1
    const per = [0, 1, 2, 3].map((i) => loss(p, batch(4, 11, 5, [0, 1, 2, 3].map((j) => (j === i ? 1 : 0)))));
    expect(a).toBeCloseTo((per[0]! + 2 * per[2]!) / 3, 5);
    tree.dispose(p);
  });

  it("trains in the Trainer's jit, deterministically for a seed", async () => {
    const run = async () => {
      const keys = new KeyStream(7);
      const trainer = new Trainer(initDiffusionHead(keys, CFG), (p, b) => diffusionLoss(p as DiffusionHeadParams, b as DiffusionBatch, schedule, { multiplier: 2 }), { ...DEFAULT_ADAMW, weightDecay: 0 });
      const losses: number[] = [];
      for (let i = 0; i < 5; i++) losses.push((await trainer.step({ ...batch(16, 1, 0), key: keys.next() } as never, 1e-2)).loss);
      trainer.dispose();
      keys.dispose();
      return losses;
    };
    const a = await run();
    expect(await run()).toEqual(a);
    expect(new Set(a).size).toBe(5);
  });

  it("bad inputs give clear errors", () => {
    const p = head(5);
    expect(() => loss(p, batch(4, 1, 1), 0)).toThrow("diffusion loss multiplier: expected an integer in [1, 1024] (draws of (t, ε) per token), got 0");
    expect(() => loss(p, { ...batch(4, 1, 1), z: np.zeros([3, 4]) })).toThrow("diffusionLoss: expected z [4, Dz] (one condition per token), got [3, 4]");
    expect(() => loss(p, { ...batch(4, 1, 1), x: np.zeros([4, 3, 1]) })).toThrow("diffusionLoss: expected x [N, Dx], got [4, 3, 1]");
    expect(() => loss(p, { ...batch(4, 1, 1), weights: np.ones([4, 1]) })).toThrow("diffusionLoss: expected weights [4], got [4, 1]");
    tree.dispose(p);
  });
});
