import { beforeAll, describe, expect, it } from "vitest";
import { lax, np, random, startEngine, tree, type Array } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { attention, attentionCached, initAttention, writeFresh } from "../../src/nn/attention.ts";
import { conv2d, convTranspose2d, initConv2d, initConvTranspose2d } from "../../src/nn/conv.ts";
import { embed, initEmbedding } from "../../src/nn/embedding.ts";
import { initLinear, linear } from "../../src/nn/linear.ts";
import { initMlp, mlp } from "../../src/nn/mlp.ts";
import { initLayerNorm, initRMSNorm, layerNorm, rmsNorm } from "../../src/nn/norm.ts";
import { rope } from "../../src/nn/rope.ts";
import { gradCheck, probe, toF64 } from "../helpers/gradcheck.ts";

beforeAll(startEngine);

// jax-js evaluates exp/tanh/erf at float32 precision even for float64 arrays, so the
// central differences use eps = 1e-2 and agree to ~1e-4, not to float64 precision.
const TOL = 1e-3;
const input = (shape: number[], seed = 7): Array => random.normal(random.key(seed), shape).astype(np.float64);
const causal = (t: number) => np.tril(np.ones([t, t])).astype(np.bool);

describe("finite-difference gradient checks (float64)", () => {
  const keys = () => new KeyStream(3);

  it("the checker itself catches a wrong gradient", () => {
    // d/dx sum(stopGradient(x)·x) is reported as x, while the function's true slope is 2x.
    const f = (x: unknown) => lax.stopGradient((x as Array).ref).mul(x as Array).sum();
    expect(gradCheck(f, [input([4])])).toBeGreaterThan(0.1);
  });

  it("linear", () => {
    const p = toF64(initLinear(keys(), 5, 4));
    p.b = p.b!.add(0.3); // non-zero bias so its gradient is not trivially symmetric
    expect(gradCheck((p, x) => probe(linear(p as never, x as Array)), [p, input([2, 3, 5])])).toBeLessThan(TOL);
  });

  it("embedding (gradient reaches only the rows that were looked up)", () => {
    const p = toF64(initEmbedding(keys(), 6, 4, 1));
    const ids = np.array(new Int32Array([0, 3, 3, 5]), { dtype: np.int32 });
    expect(gradCheck((p) => probe(embed(p as never, ids.ref)), [p])).toBeLessThan(TOL);
  });

  it("layerNorm and rmsNorm", () => {
    const ln = toF64(initLayerNorm(6));
    ln.g = ln.g.mul(1.5);
    ln.b = ln.b.add(0.1);
    expect(gradCheck((p, x) => probe(layerNorm(p as never, x as Array)), [ln, input([3, 6])])).toBeLessThan(TOL);
    const rn = toF64(initRMSNorm(6));
    expect(gradCheck((p, x) => probe(rmsNorm(p as never, x as Array)), [rn, input([3, 6])])).toBeLessThan(TOL);
  });

  it.each(["gelu", "swiglu"] as const)("mlp (%s)", (kind) => {
    const p = toF64(initMlp(keys(), 4, 8, kind));
    expect(gradCheck((p, x) => probe(mlp(p as never, x as Array)), [p, input([2, 3, 4])])).toBeLessThan(TOL);
  });

  it.each([false, true])("attention with a causal mask (rope %s)", (useRope) => {
    const p = toF64(initAttention(keys(), 8));
    const f = (p: unknown, x: unknown) =>
      probe(attention(p as never, x as Array, causal(5), np.arange(5), { heads: 2, rope: useRope }));
    expect(gradCheck(f, [p as never, input([2, 5, 8])])).toBeLessThan(TOL);
  });

  it("rope", () => {
    expect(gradCheck((x) => probe(rope(x as Array, np.arange(3))), [input([1, 3, 2, 4])])).toBeLessThan(TOL);
  });

  it("conv2d (stride 2, padding 1)", () => {
    const p = toF64(initConv2d(keys(), 2, 3, 3));
    const f = (p: unknown, x: unknown) => probe(conv2d(p as never, x as Array, { stride: 2, padding: 1 }));
    expect(gradCheck(f, [p as never, input([2, 2, 6, 6])])).toBeLessThan(TOL);
  });

  it("convTranspose2d (stride 2, padding 1)", () => {
    const p = toF64(initConvTranspose2d(keys(), 3, 2, 4));
    const f = (p: unknown, x: unknown) => probe(convTranspose2d(p as never, x as Array, { stride: 2, padding: 1 }));
    expect(gradCheck(f, [p as never, input([1, 3, 3, 3])])).toBeLessThan(TOL);
  });
});

describe("layer semantics", () => {
  it("conv shapes follow PyTorch's formulas", () => {
    const keys = new KeyStream(0);
    const y = conv2d(initConv2d(keys, 1, 4, 4), np.zeros([2, 1, 28, 28]), { stride: 2, padding: 1 });
    expect(y.shape).toEqual([2, 4, 14, 14]);
    const z = convTranspose2d(initConvTranspose2d(keys, 4, 1, 4), y, { stride: 2, padding: 1 });
    expect(z.shape).toEqual([2, 1, 28, 28]);
    z.dispose();
  });

  it.each([
    [1, 0, 3],
    [2, 1, 4],
    [2, 1, 3],
    [3, 2, 5],
  ])("im2col conv2d equals lax.convGeneralDilated (stride %i, padding %i, kernel %i)", (stride, padding, k) => {
    const p = initConv2d(new KeyStream(2), 3, 4, k);
    const x = random.normal(random.key(9), [2, 3, 9, 8]);
    const ours = conv2d(tree.ref(p), x.ref, { stride, padding });
    const ref = lax.convGeneralDilated(x, p.w, [stride, stride], [[padding, padding], [padding, padding]]).add(p.b.reshape([1, -1, 1, 1]));
    expect(ours.shape).toEqual(ref.shape);
    expect(np.allclose(ours, ref, { atol: 1e-4 })).toBe(true);
  });

  it.each([
    [2, 1, 4],
    [2, 1, 3],
    [2, 0, 5],
    [1, 1, 3],
    [3, 0, 3],
    [3, 2, 4],
  ])("convTranspose2d equals lax.convTranspose (stride %i, padding %i, kernel %i)", (stride, padding, k) => {
    const p = initConvTranspose2d(new KeyStream(3), 3, 2, k);
    const x = random.normal(random.key(8), [2, 3, 4, 5]);
    const ours = convTranspose2d(tree.ref(p), x.ref, { stride, padding });
    // lax.convTranspose pads by dilation·(k − 1) − padding, i.e. takes PyTorch's padding as is.
    const ref = lax
      .convTranspose(x, p.w, [stride, stride], [[padding, padding], [padding, padding]], { transposeKernel: true })
      .add(p.b.reshape([1, -1, 1, 1]));
    expect(ours.shape).toEqual([2, 2, (4 - 1) * stride - 2 * padding + k, (5 - 1) * stride - 2 * padding + k]);
    expect(np.allclose(ours, ref, { atol: 1e-4 })).toBe(true);
  });

  it("causal attention ignores the future", () => {
    const p = initAttention(new KeyStream(1), 8);
    const x = random.normal(random.key(2), [1, 4, 8]);
    const changed = np.concatenate([x.ref.slice([], [0, 3]), np.ones([1, 1, 8])], 1);
    const run = (xs: Array) => attention(tree.ref(p), xs, causal(4), np.arange(4), { heads: 2 }).slice([], [0, 3]);
    expect(np.allclose(run(x), run(changed), { atol: 1e-6 })).toBe(true);
  });

  it("cached attention, one position at a time, equals full causal attention", async () => {
    const p = initAttention(new KeyStream(4), 8);
    const x = random.normal(random.key(5), [2, 5, 8]);
    const opts = { heads: 2, rope: true };
    const full = attention(tree.ref(p), x.ref, causal(5), np.arange(5), opts).js() as number[][][];
    const cache = { k: np.zeros([2, 5, 2, 4]), v: np.zeros([2, 5, 2, 4]) };
    for (let t = 0; t < 5; t++) {
      const before = np.arange(5).reshape([1, 5]).less(t);
      const out = attentionCached(tree.ref(p), x.ref.slice([], [t, t + 1]), cache, before, causal(1), np.array([t]), opts);
      const step = out.y.js() as number[][][];
      await writeFresh(cache, out.fresh, t);
      for (let b = 0; b < 2; b++) for (let i = 0; i < 8; i++) expect(step[b][0][i]).toBeCloseTo(full[b][t][i], 5);
    }
    tree.dispose(cache);
  });

  it("shape errors name the expected and actual shape", () => {
    const p = initLinear(new KeyStream(0), 5, 3);
    expect(() => linear(p, np.zeros([2, 4]))).toThrow("linear: expected input [..., 5] (rank ≥ 1), got [2, 4]");
    const c = initConv2d(new KeyStream(0), 1, 2, 3);
    expect(() => conv2d(c, np.zeros([2, 3, 8, 8]))).toThrow("conv2d: expected input [N, 1, H, W], got [2, 3, 8, 8]");
    const a = initAttention(new KeyStream(0), 8);
    expect(() => attention(a, np.zeros([4, 8]), causal(4), np.arange(4), { heads: 2 })).toThrow("got [4, 8]");
  });
});
