import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, np, startEngine, type Array } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { conv1d, conv1dLength, convTranspose1d, initConv1d, initConvTranspose1d } from "../../src/nn/conv1d.ts";
import { gradCheck, probe, toF64 } from "../helpers/gradcheck.ts";
import { uniformValues } from "../helpers/values.ts";

beforeAll(startEngine);

/** torch.nn.Conv1d by its definition, in float64: x [B, T, Cin] (channels last), w [Cout, Cin, k]. */
function naiveConv(x: Float32Array, [b, t, cin]: number[], w: Float32Array, bias: Float32Array, [cout, , k]: number[], s: number, p: number, d: number): Float64Array {
  const to = Math.floor((t + 2 * p - d * (k - 1) - 1) / s) + 1;
  const y = new Float64Array(b * to * cout);
  for (let n = 0; n < b; n++)
    for (let i = 0; i < to; i++)
      for (let o = 0; o < cout; o++) {
        let acc = bias[o]!;
        for (let j = 0; j < k; j++) {
          const at = s * i + d * j - p;
          if (at < 0 || at >= t) continue;
          for (let c = 0; c < cin; c++) acc += x[(n * t + at) * cin + c]! * w[(o * cin + c) * k + j]!;
        }
        y[(n * to + i) * cout + o] = acc;
      }
  return y;
}

/** torch.nn.ConvTranspose1d by its definition: input i adds x[i]·w[:, :, j] to output s·i + j − p. w [Cin, Cout, k]. */
function naiveConvT(x: Float32Array, [b, t, cin]: number[], w: Float32Array, bias: Float32Array, [, cout, k]: number[], s: number, p: number, op: number): Float64Array {
  const to = (t - 1) * s - 2 * p + k + op;
  const y = new Float64Array(b * to * cout);
  for (let n = 0; n < b; n++) for (let i = 0; i < to; i++) for (let o = 0; o < cout; o++) y[(n * to + i) * cout + o] = bias[o]!;
  for (let n = 0; n < b; n++)
    for (let i = 0; i < t; i++)
      for (let j = 0; j < k; j++) {
        const at = s * i + j - p;
        if (at < 0 || at >= to) continue;
        for (let c = 0; c < cin; c++) for (let o = 0; o < cout; o++) y[(n * to + at) * cout + o] += x[(n * t + i) * cin + c]! * w[(c * cout + o) * k + j]!;
      }
  return y;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** Input [2, t, cin], weights of `wSize` values and `cout` biases, drawn from `seed`. */
const draw = (c: { t: number; cin: number; cout: number }, wSize: number, seed: number) => ({ x: uniformValues(2 * c.t * c.cin, seed), w: uniformValues(wSize, seed + 1), bias: uniformValues(c.cout, seed + 2) });

/** y has `shape` and matches the float64 oracle to 1e-5. */
async function expectOracle(y: Array, shape: number[], want: Float64Array): Promise<void> {
  expect(y.shape).toEqual(shape);
  expect(maxDiff((await y.data()) as Float32Array, want)).toBeLessThan(1e-5);
}

describe("conv1d matches torch.nn.Conv1d's definition", () => {
  const cases = [
    { name: "k7 same padding", t: 23, cin: 1, cout: 4, k: 7, s: 1, p: 3, d: 1 },
    { name: "k3 dilation 3", t: 20, cin: 3, cout: 2, k: 3, s: 1, p: 3, d: 3 },
    { name: "k16 stride 8 (the codec's input)", t: 64, cin: 1, cout: 5, k: 16, s: 8, p: 4, d: 1 },
    { name: "k10 stride 5, odd", t: 35, cin: 3, cout: 4, k: 10, s: 5, p: 3, d: 1 },
    { name: "k4 stride 2, no padding, ragged end", t: 13, cin: 2, cout: 3, k: 4, s: 2, p: 0, d: 1 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const { x, w, bias } = draw(c, c.cout * c.cin * c.k, 1);
      const opts = { stride: c.s, padding: c.p, dilation: c.d };
      const y = conv1d({ w: fromHost(w, [c.cout, c.cin, c.k]), b: fromHost(bias, [c.cout]) }, fromHost(x, [2, c.t, c.cin]), opts);
      await expectOracle(y, [2, conv1dLength(c.t, c.k, opts), c.cout], naiveConv(x, [2, c.t, c.cin], w, bias, [c.cout, c.cin, c.k], c.s, c.p, c.d));
    });
  }

  it("refuses an input too short for the kernel, and channels first", () => {
    const p = () => initConv1d(new KeyStream(0), 2, 3, 5);
    expect(() => conv1d(p(), np.zeros([1, 3, 2]))).toThrow(/too short for kernel 5/);
    expect(() => conv1d(p(), np.zeros([1, 2, 9]))).toThrow(/expected input \[B, T, 2\] \(channels last\), got \[1, 2, 9\]/);
  });
});

describe("convTranspose1d matches torch.nn.ConvTranspose1d's definition", () => {
  const cases = [
    { name: "k16 stride 8 padding 4 (the codec's output)", t: 6, cin: 3, cout: 1, k: 16, s: 8, p: 4, op: 0 },
    { name: "k10 stride 5 padding 3, output padding 1", t: 5, cin: 2, cout: 3, k: 10, s: 5, p: 3, op: 1 },
    { name: "k3 stride 1", t: 7, cin: 2, cout: 2, k: 3, s: 1, p: 1, op: 0 },
    { name: "k3 stride 4 (taps fewer than the stride)", t: 4, cin: 2, cout: 2, k: 3, s: 4, p: 0, op: 2 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const { x, w, bias } = draw(c, c.cin * c.cout * c.k, 4);
      const y = convTranspose1d({ w: fromHost(w, [c.cin, c.cout, c.k]), b: fromHost(bias, [c.cout]) }, fromHost(x, [2, c.t, c.cin]), { stride: c.s, padding: c.p, outputPadding: c.op });
      await expectOracle(y, [2, (c.t - 1) * c.s - 2 * c.p + c.k + c.op, c.cout], naiveConvT(x, [2, c.t, c.cin], w, bias, [c.cin, c.cout, c.k], c.s, c.p, c.op));
    });
  }

  it("refuses an output padding as large as the stride", () => {
    expect(() => convTranspose1d(initConvTranspose1d(new KeyStream(0), 2, 2, 4), np.zeros([1, 3, 2]), { stride: 2, outputPadding: 2 })).toThrow(/outputPadding must be smaller than the stride \(2\), got 2/);
  });
});

describe("gradients (finite differences, float64)", () => {
  it("conv1d, stride 3 and dilation 2", () => {
    const p = toF64(initConv1d(new KeyStream(1), 2, 3, 4));
    const f = (p: unknown, x: unknown) => probe(conv1d(p as never, x as Array, { stride: 3, padding: 2, dilation: 2 }));
    expect(gradCheck(f, [p as never, toF64(fromHost(uniformValues(2 * 11 * 2, 8), [2, 11, 2]))])).toBeLessThan(1e-3);
  });

  it("convTranspose1d, stride 5 with output padding", () => {
    const p = toF64(initConvTranspose1d(new KeyStream(2), 2, 3, 10));
    const f = (p: unknown, x: unknown) => probe(convTranspose1d(p as never, x as Array, { stride: 5, padding: 3, outputPadding: 1 }));
    expect(gradCheck(f, [p as never, toF64(fromHost(uniformValues(4 * 2, 9), [1, 4, 2]))])).toBeLessThan(1e-3);
  });
});
