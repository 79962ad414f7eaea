import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, np, random, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { hostRng, KeyStream } from "../../../src/engine/rng.ts";
import { checkRegressionHeadConfig, initRegressionHead, regress, regressionErrors, regressionLoss, type RegressionHeadParams, type RegressionLossKind } from "../../../src/backbone/heads/regression.ts";
import { DEFAULT_ADAMW } from "../../../src/train/optim.ts";
import { Trainer } from "../../../src/train/step.ts";
import { gradCheck, toF64 } from "../../helpers/gradcheck.ts";
import { expectClose, f32, f64, flat, scalar } from "../../helpers/fixtures.ts";

beforeAll(startEngine);

const input = (shape: number[], seed: number): JaxArray => random.normal(random.key(seed), shape).astype(np.float64);

describe("regression losses", () => {
  const pred = [1, 2, 2, 0, -1, 3];
  const target = [0, 2, 4, 0, 2, 3];

  it("mse: the per-token mean of squared errors; cosine: 1 − cos", () => {
    expectClose(flat(regressionErrors(f64(pred, [2, 3]), f64(target, [2, 3]), "mse")), [(1 + 0 + 4) / 3, (0 + 9 + 0) / 3], 1e-12);
    const cos = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0) / Math.hypot(...a) / Math.hypot(...b);
    const got = flat(regressionErrors(f64(pred, [2, 3]), f64(target, [2, 3]), "cosine"));
    expect(got[0]).toBeCloseTo(1 - cos(pred.slice(0, 3), target.slice(0, 3)), 12);
    expect(got[1]).toBeCloseTo(1 - cos(pred.slice(3), target.slice(3)), 12);
  });

  it("weights average over tokens; cosine ignores the prediction's scale and is 0 when aligned", () => {
    expect(scalar(regressionLoss(f64(pred, [2, 3]), f64(target, [2, 3]), "mse", f64([1, 3], [2])))).toBeCloseTo((5 / 3 + 3 * 3) / 4, 8); // Σ w + 1e-9
    expect(scalar(regressionLoss(f64(pred, [2, 3]), f64(target, [2, 3]), "mse", f64([0, 1], [2])))).toBeCloseTo(3, 8);
    const a = scalar(regressionLoss(f64(pred, [2, 3]), f64(target, [2, 3]), "cosine"));
    expect(scalar(regressionLoss(f64(pred.map((v) => 7 * v), [2, 3]), f64(target, [2, 3]), "cosine"))).toBeCloseTo(a, 12);
    expect(scalar(regressionLoss(f64(target.map((v) => 0.5 * v), [2, 3]), f64(target, [2, 3]), "cosine"))).toBeCloseTo(0, 12);
  });

  it("checks shapes and kinds", () => {
    expect(() => regressionErrors(f32([1, 2], [1, 2]), f32([1, 2, 3], [1, 3]), "mse")).toThrow("regression loss: prediction [1, 2] and target [1, 3] differ in shape");
    expect(() => regressionErrors(f32([1], [1, 1]), f32([1], [1, 1]), "l1" as never)).toThrow('regression loss: expected one of mse, cosine, got "l1"');
    expect(() => regressionLoss(f32([1, 2], [2, 1]), f32([1, 2], [2, 1]), "mse", f32([1], [1]))).toThrow("expected weights [2] (one per token), got [1]");
  });
});

describe("the regression head (Emu)", () => {
  it.each([0, 8])("gradients of both losses match central differences (hidden %i, float64)", (hidden) => {
    const p = toF64(initRegressionHead(new KeyStream(2), { hiddenDim: 5, targetDim: 3, hidden }));
    for (const kind of ["mse", "cosine"] as RegressionLossKind[]) {
      const f = (p: unknown, h: unknown, y: unknown) => regressionLoss(regress(p as RegressionHeadParams, h as JaxArray), y as JaxArray, kind);
      const worst = gradCheck(f as never, [tree.ref(p) as never, input([2, 4, 5], 3), input([2, 4, 3], 4)], { perLeaf: 5, eps: 1e-4 });
      expect(worst, `${kind}, hidden ${hidden}`).toBeLessThan(1e-3);
    }
  });

  it("linear or 2-layer, on any leading dims", () => {
    const lin = initRegressionHead(new KeyStream(0), { hiddenDim: 6, targetDim: 2 });
    expect(lin.fc2).toBeUndefined();
    const mlp = initRegressionHead(new KeyStream(0), { hiddenDim: 6, targetDim: 2, hidden: 12 });
    expect(mlp.fc1.w.shape).toEqual([6, 12]);
    expect(regress(mlp, f32(new Array(36).fill(0.1), [2, 3, 6])).shape).toEqual([2, 3, 2]);
    expect(() => regress(lin, f32([1, 2], [1, 2]))).toThrow("regress: expected input [..., 6]");
  });

  it("fits a linear map with the Trainer (mse) and a direction with the cosine loss", async () => {
    const rng = hostRng(3);
    const a = Float32Array.from({ length: 8 * 3 }, () => rng() * 2 - 1); // y = h·A
    const batch = () => {
      const h = Float32Array.from({ length: 64 * 8 }, () => rng() * 2 - 1);
      const y = new Float32Array(64 * 3);
      for (let i = 0; i < 64; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 8; k++) y[i * 3 + j] += h[i * 8 + k]! * a[k * 3 + j]!;
      return { h: fromHost(h, [64, 8]), y: fromHost(y, [64, 3]) };
    };
    for (const kind of ["mse", "cosine"] as RegressionLossKind[]) {
      const trainer = new Trainer(initRegressionHead(new KeyStream(1), { hiddenDim: 8, targetDim: 3 }), (p, b) => [regressionLoss(regress(p as RegressionHeadParams, (b as { h: JaxArray }).h), (b as { y: JaxArray }).y, kind), {}], { ...DEFAULT_ADAMW, weightDecay: 0 });
      let first = 0;
      let last = 0;
      for (let step = 0; step < 150; step++) {
        const r = await trainer.step(batch() as never, 3e-2 * (1 - step / 150));
        if (step === 0) first = r.loss;
        last = r.loss;
      }
      console.log(`regression (${kind}): loss ${first.toFixed(4)} → ${last.toExponential(2)}`);
      expect(last).toBeLessThan(0.01 * first);
      trainer.dispose();
    }
  });

  it("bad configs give clear errors", () => {
    expect(() => checkRegressionHeadConfig({ hiddenDim: 0, targetDim: 2 })).toThrow("regression head config.hiddenDim: expected an integer in [1, 65536], got 0");
    expect(() => checkRegressionHeadConfig({ hiddenDim: 4, targetDim: 2, hidden: -1 })).toThrow("regression head config.hidden: expected an integer in [0, 65536] (0 = linear), got -1");
    expect(() => checkRegressionHeadConfig({ hiddenDim: 4, target: 2 })).toThrow('unknown field "target" (valid: hiddenDim, targetDim, hidden)');
    expect(() => initRegressionHead(new KeyStream(0), { hiddenDim: 4 } as never)).toThrow("regression head config.targetDim");
  });
});
