/**
 * Memory-lean GELU and softmax (src/nn/lean.ts): the same forward values as jax-js's (a −0 may
 * come out +0); gradients equal to float32 rounding (jitted, on random inputs with a random cotangent);
 * and a whole transformer's loss and gradients with the engine switch on against it off. What it
 * saves is measured by `npm run bench:memory` (against `-- --no-lean`).
 */
import { afterEach, describe, expect, it } from "vitest";
import { fromHost, grad, jit, nn, startEngine, tree, valueAndGrad, type Array as Tensor } from "../../src/engine/node.ts";
import { inferenceJit, leanActivations, setLeanActivations } from "../../src/engine/lean.ts";
import { hostRng, KeyStream } from "../../src/engine/rng.ts";
import { gelu, leanGelu, leanSoftmax, softmax } from "../../src/nn/lean.ts";
import { relativeError, uniformValues } from "../helpers/values.ts";
import { initTransformer, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { nextTokenLoss, type NextTokenBatch } from "../../src/train/losses.ts";

afterEach(() => setLeanActivations(true)); // the default

describe("lean activations", () => {
  it.each([
    ["GELU", leanGelu, (x: Tensor) => nn.gelu(x)],
    ["softmax", (x: Tensor) => leanSoftmax(x, -1), (x: Tensor) => nn.softmax(x, -1)],
  ] as const)("%s: forward values equal to jax-js's, gradients equal to float32 rounding", async (_, lean, plain) => {
    await startEngine();
    const x = fromHost(uniformValues(6 * 40, 1).map((v) => 6 * v), [6, 40]);
    const w = fromHost(uniformValues(6 * 40, 2), [6, 40]);
    const f = (act: (x: Tensor) => Tensor) => jit((x: Tensor, w: Tensor) => act(x).mul(w).sum());
    const g = (act: (x: Tensor) => Tensor) => jit(grad((x: Tensor, w: Tensor) => act(x).mul(w).sum()));
    const y = (act: (x: Tensor) => Tensor) => jit((x: Tensor) => act(x));
    const [yl, yp] = [await y(lean)(x.ref).data(), await y(plain)(x.ref).data()];
    // equal as numbers (=== treats −0 and +0 alike: y + 0·d turns a −0 into +0)
    expect(Array.from(yl as Float32Array).every((v, i) => v === (yp as Float32Array)[i])).toBe(true);
    expect((await f(lean)(x.ref, w.ref).data())[0]).toBe((await f(plain)(x.ref, w.ref).data())[0]);
    const [gl, gp] = [(await g(lean)(x.ref, w.ref).data()) as Float32Array, (await g(plain)(x.ref, w.ref).data()) as Float32Array];
    expect(relativeError(gl, gp)).toBeLessThan(1e-5);
    expect(Math.max(...gp.map(Math.abs))).toBeGreaterThan(0.05); // the gradient is not ~0 everywhere
    x.dispose();
    w.dispose();
  });

  const cfg: TransformerConfig = { vocabSize: 40, contextLength: 32, dim: 32, layers: 2, heads: 4, mlp: "gelu", mlpRatio: 4, positions: "learned" };
  const batch = (): NextTokenBatch => {
    const rng = hostRng(3);
    const ids = () => Int32Array.from({ length: 4 * 32 }, () => Math.floor(rng() * 40));
    return { inputs: fromHost(ids(), [4, 32]), targets: fromHost(ids(), [4, 32]), weights: fromHost(new Float32Array(4 * 32).fill(1), [4, 32]) };
  };
  async function lossAndGrads(lean: boolean): Promise<{ loss: number; grads: Float32Array }> {
    setLeanActivations(lean);
    const keys = new KeyStream(7);
    const params = initTransformer(keys, cfg);
    keys.dispose();
    const step = jit(valueAndGrad((p: TransformerParams, b: NextTokenBatch) => nextTokenLoss(p, b, cfg)[0]));
    const [loss, grads] = step(params, batch()) as unknown as [Tensor, TransformerParams];
    const flat = await Promise.all(tree.leaves(grads).map(async (a) => Array.from((await a.data()) as Float32Array)));
    const out = { loss: (await loss.data())[0]!, grads: Float32Array.from(flat.flat()) };
    step.dispose();
    return out;
  }

  it("a transformer's loss is bit-identical and its gradients equal to float32 rounding with the switch on", async () => {
    await startEngine();
    const plain = await lossAndGrads(false);
    const lean = await lossAndGrads(true);
    expect(lean.loss).toBe(plain.loss);
    expect(relativeError(lean.grads, plain.grads)).toBeLessThan(1e-4);
  });

  it("inferenceJit traces with the switch off (jax-js's own forms), gives the lean forms' values, and restores the switch", async () => {
    await startEngine();
    const x = fromHost(uniformValues(5 * 24, 4).map((v) => 6 * v - 3), [5, 24]);
    const seen: boolean[] = [];
    const f = (x: Tensor) => {
      seen.push(leanActivations());
      return softmax(gelu(x), -1);
    };
    const lean = jit(f);
    const inference = inferenceJit(f);
    const [a, b] = [(await lean(x.ref).data()) as Float32Array, (await inference(x.ref).data()) as Float32Array];
    expect(seen).toEqual([true, false]); // each traced once, the second without the lean forms
    expect(leanActivations()).toBe(true);
    expect(Array.from(b).every((v, i) => v === a[i])).toBe(true);
    expect(Math.max(...b) - Math.min(...b)).toBeGreaterThan(0.1); // not a constant
    lean.dispose();
    inference.dispose();
    x.dispose();
  });
});
