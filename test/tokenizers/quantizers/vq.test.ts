import { beforeAll, describe, expect, it } from "vitest";
import { grad, jit, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { KeyStream } from "../../../src/engine/rng.ts";
import { emaUpdate, indicesToCodes, initEmaState, initVQ, quantize, toLookupSpace, type VQOptions, type VQParams } from "../../../src/tokenizers/quantizers/vq.ts";
import { expectClose, f32, flat, ints, loadFixture, scalar } from "../../helpers/fixtures.ts";

beforeAll(startEngine);

// Fixtures from reference/quantizers_vq.py (PyTorch, float64 on float32-rounded inputs).
type HostTree = { [k: string]: number[] | HostTree };
type Case = {
  name: string;
  options: VQOptions;
  xShape: number[];
  x: number[];
  params: HostTree;
  w: number[];
  indices: number[][];
  codes: number[];
  losses: Record<string, number>;
  grads: Record<string, number[]>;
};
const fixture = loadFixture<{ a: number; b: number; cases: Case[] }>("vq");
const emaFixture = loadFixture<{
  a: number;
  b: number;
  codebookSize: number;
  dim: number;
  n: number;
  decay: number;
  eps: number;
  codebook: number[];
  steps: { z: number[]; indices: number[]; clusterSize: number[]; embedSum: number[]; codebook: number[] }[];
  quantize: Case[];
}>("vq-ema");

/** Fixture params → VQParams (shapes from the options). */
function vqParams(c: Case): VQParams {
  const { codebookSize: k, dim: d, lookupDim } = c.options;
  const cd = lookupDim ?? d;
  const p = c.params as { codebook: number[]; projIn?: { w: number[]; b: number[] }; projOut?: { w: number[]; b: number[] } };
  const out: VQParams = { codebook: f32(p.codebook, [k, cd]) };
  if (p.projIn && p.projOut) {
    out.projIn = { w: f32(p.projIn.w, [d, cd]), b: f32(p.projIn.b, [cd]) };
    out.projOut = { w: f32(p.projOut.w, [cd, d]), b: f32(p.projOut.b, [d]) };
  }
  return out;
}

/** Dotted names of a params tree's leaves, matching the fixture's gradient names. */
function named(t: unknown, prefix = ""): [string, JaxArray][] {
  if (t && typeof t === "object" && !("dataSync" in t)) {
    return Object.entries(t as Record<string, unknown>).flatMap(([k, v]) => named(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, t as JaxArray]];
}

/** Checks one fixture case: ids, codes, losses, gradients of Σ w·codes + a·codebook + b·commitment, round trip. */
function checkCase(c: Case, a: number, b: number): void {
  const params = vqParams(c);
  const x = f32(c.x, c.xShape);
  const q = quantize(tree.ref(params), x.ref, c.options);
  expect(q.indices.ref.js()).toEqual(c.indices);
  expectClose(flat(q.codes.ref), c.codes);
  expect(Object.keys(q.losses).sort()).toEqual(Object.keys(c.losses).sort());
  for (const [name, v] of Object.entries(c.losses)) expectClose([scalar(q.losses[name])], [v]);
  expectClose(flat(indicesToCodes(tree.ref(params), q.indices, c.options)), flat(q.codes), 1e-6);

  const w = f32(c.w, c.xShape);
  const objective = (x: JaxArray, p: VQParams) => {
    const r = quantize(p, x, c.options);
    let f = r.codes.mul(w.ref).sum().add(r.losses.commitment.mul(b));
    if (r.losses.codebook) f = f.add(r.losses.codebook.mul(a));
    tree.dispose([r.indices, r.stats]);
    return f;
  };
  const [gx, gp] = grad(objective, { argnums: [0, 1] })(x, params);
  expectClose(flat(gx), c.grads.x);
  for (const [name, g] of named(gp)) expectClose(flat(g), c.grads[name]);
  w.dispose();
}

describe("VQ vs the PyTorch reference", () => {
  describe.each(fixture.cases)("$name", (c) => {
    it("ids, codes, losses, input/codebook/projection gradients, indicesToCodes(ids) == codes", () => checkCase(c, fixture.a, fixture.b));
  });
});

describe("VQ with EMA codebook updates", () => {
  describe.each(emaFixture.quantize)("quantize, $name", (c) => {
    it("drops the codebook loss; the codebook gets no gradient", () => {
      checkCase(c, emaFixture.a, emaFixture.b);
      expect(c.grads.codebook.every((g) => g === 0)).toBe(true);
    });
  });

  it("two emaUpdate steps match the reference (Laplace-smoothed cluster sizes, embedding sums, codebook)", () => {
    const { codebookSize: k, dim: c, n, decay, eps } = emaFixture;
    const opts: VQOptions = { codebookSize: k, dim: c, beta: 0.25, distance: "l2", codebookUpdate: "ema" };
    let params: VQParams = { codebook: f32(emaFixture.codebook, [k, c]) };
    let state = initEmaState(params.codebook.ref);
    expectClose(flat(state.clusterSize.ref), new Array(k).fill(1));
    for (const step of emaFixture.steps) {
      const x = f32(step.z, [n, c]);
      const q = quantize(tree.ref(params), x.ref, opts);
      tree.dispose([q.codes, q.losses]);
      expect(q.indices.ref.js()).toEqual(step.indices);
      const next = emaUpdate(state, toLookupSpace(tree.ref(params), x, opts), q.indices, { decay, eps });
      expectClose(flat(next.state.clusterSize.ref), step.clusterSize);
      expectClose(flat(next.state.embedSum.ref), step.embedSum);
      expectClose(flat(next.codebook.ref), step.codebook);
      tree.dispose(params);
      params = { codebook: next.codebook };
      state = next.state;
    }
    tree.dispose([params, state]);
  });

  it("toLookupSpace is the projected, normalized input: a code's own direction maps onto it", () => {
    const keys = new KeyStream(3);
    const opts: VQOptions = { codebookSize: 4, dim: 6, beta: 0.25, distance: "cosine", lookupDim: 2 };
    const p = initVQ(keys, opts);
    const z = toLookupSpace(tree.ref(p), f32([1, 2, 3, -1, 0, 2, 0.5, 0, 0, 0, 0, 1], [2, 6]), opts);
    expect(z.shape).toEqual([2, 2]);
    const v = flat(z);
    expectClose([Math.hypot(v[0], v[1]), Math.hypot(v[2], v[3])], [1, 1], 1e-6);
    tree.dispose(p);
    keys.dispose();
  });

  it("rejects bad EMA arguments naming the value", () => {
    const state = () => initEmaState(f32([0, 0, 1, 1], [2, 2]));
    expect(() => emaUpdate(state(), f32([0, 0, 1, 1, 2, 2], [3, 2]), ints([0, 1], [2]))).toThrow("vq.emaUpdate: indices [2] must match the vectors' leading shape [3]");
    expect(() => emaUpdate(state(), f32([0, 0], [1, 2]), ints([2], [1]))).toThrow("vq.emaUpdate: id 2 at position 0 out of range [0, 1]");
    expect(() => emaUpdate(state(), f32([0, 0], [1, 2]), ints([0], [1]), { decay: 1, eps: 1e-5 })).toThrow("decay must be in [0, 1), got 1");
    expect(() => emaUpdate(state(), f32([0, 0, 0], [1, 3]), ints([0], [1]))).toThrow("vq.emaUpdate: expected input [..., 2] (rank ≥ 1), got [1, 3]");
  });
});

const OPTION_SETS: { name: string; opts: VQOptions }[] = [
  { name: "l2", opts: { codebookSize: 8, dim: 4, beta: 0.25, distance: "l2" } },
  { name: "cosine", opts: { codebookSize: 8, dim: 4, beta: 0.25, distance: "cosine" } },
  { name: "l2, lookupDim 2", opts: { codebookSize: 8, dim: 4, beta: 0.25, distance: "l2", lookupDim: 2 } },
  { name: "cosine, lookupDim 2", opts: { codebookSize: 8, dim: 4, beta: 0.5, distance: "cosine", lookupDim: 2 } },
];

describe.each(OPTION_SETS)("VQ invariants, $name", ({ opts }) => {
  const xs = Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i * 1.7) * 1.5);

  it("[2, 3, D] → ids [2, 3], codes [2, 3, D]; indicesToCodes(ids) == codes; jit == eager", () => {
    const keys = new KeyStream(1);
    const p = initVQ(keys, opts);
    keys.dispose();
    const q = quantize(tree.ref(p), f32(xs, [2, 3, 4]), opts);
    expect(q.indices.shape).toEqual([2, 3]);
    expect(q.codes.shape).toEqual([2, 3, 4]);
    expect(Object.keys(q.losses).sort()).toEqual(["codebook", "commitment"]);
    const jq = jit((p: VQParams, x: JaxArray) => {
      const r = quantize(p, x, opts);
      tree.dispose([r.losses, r.stats]);
      return [r.codes, r.indices];
    });
    const [jc, ji] = jq(tree.ref(p), f32(xs, [2, 3, 4]));
    expect(ji.js()).toEqual(q.indices.ref.js());
    expectClose(flat(jc), flat(q.codes.ref), 1e-6);
    jq.dispose();
    expectClose(flat(indicesToCodes(p, q.indices, opts)), flat(q.codes), 1e-6);
    tree.dispose(q.losses);
  });

  it("the value of the commitment loss is β · mean ‖z − e‖² = β · codebook loss", () => {
    const keys = new KeyStream(2);
    const p = initVQ(keys, opts);
    keys.dispose();
    const q = quantize(p, f32(xs, [2, 3, 4]), opts);
    expectClose([scalar(q.losses.commitment)], [scalar(q.losses.codebook) * opts.beta], 1e-6);
    tree.dispose([q.codes, q.indices]);
  });
});

describe("VQ straight-through and factorized lookup", () => {
  it("l2 without lookupDim: d(Σ w·codes)/dx = w exactly", () => {
    const keys = new KeyStream(4);
    const opts: VQOptions = { codebookSize: 5, dim: 3, beta: 0.25, distance: "l2" };
    const p = initVQ(keys, opts);
    keys.dispose();
    const w = [0.5, -1, 2, 3, 0.25, -0.75];
    const g = grad((x: JaxArray) => quantize(tree.ref(p), x, opts).codes.mul(f32(w, [2, 3])).sum())(f32([1, 2, 3, -1, 0, 1], [2, 3]));
    expect(flat(g)).toEqual(w);
    tree.dispose(p);
  });

  it("lookupDim: codes = projOut(code), d codes/dx = W_in·W_out (straight through the low-dim lookup)", () => {
    const keys = new KeyStream(5);
    const opts: VQOptions = { codebookSize: 5, dim: 3, beta: 0.25, distance: "l2", lookupDim: 2 };
    const p = initVQ(keys, opts);
    keys.dispose();
    expect(p.codebook.shape).toEqual([5, 2]);
    expect([p.projIn!.w.shape, p.projOut!.w.shape]).toEqual([[3, 2], [2, 3]]);
    // Σ codes[j] over one row → gradient row = W_in · W_out · 1.
    const g = grad((x: JaxArray) => quantize(tree.ref(p), x, opts).codes.sum())(f32([1, 2, 3], [1, 3]));
    const win = flat(p.projIn!.w.ref);
    const wout = flat(p.projOut!.w.ref);
    const rowSums = [0, 1].map((j) => wout[3 * j] + wout[3 * j + 1] + wout[3 * j + 2]);
    expectClose(flat(g), [0, 1, 2].map((i) => win[2 * i] * rowSums[0] + win[2 * i + 1] * rowSums[1]), 1e-6);
    tree.dispose(p);
  });
});

describe("VQ bad input", () => {
  const opts: VQOptions = { codebookSize: 3, dim: 2, beta: 0.25, distance: "l2" };
  const p = () => ({ codebook: f32([0, 0, 1, 1, -1, 2], [3, 2]) });

  it("names the wrong last dim, NaN, out-of-range ids and mismatched params", () => {
    expect(() => quantize(p(), f32([1, 2, 3], [1, 3]), opts)).toThrow("vq.quantize: expected input [..., 2] (rank ≥ 1), got [1, 3]");
    expect(() => quantize(p(), f32([1, NaN, 3, 4], [2, 2]), opts)).toThrow("vq.quantize: input [2, 2] holds 1 NaN/Inf value(s)");
    expect(() => indicesToCodes(p(), ints([0, 3], [2]), opts)).toThrow("vq.indicesToCodes: id 3 at position 1 out of range [0, 2]");
    expect(() => indicesToCodes(p(), ints([-1], [1]), opts)).toThrow("vq.indicesToCodes: id -1 at position 0 out of range [0, 2]");
    expect(() => quantize(p(), f32([1, 2], [1, 2]), { ...opts, codebookSize: 4 })).toThrow("vq.quantize: expected codebook [4, 2] (codebookSize, dim), got [3, 2]");
    expect(() => quantize(p(), f32([1, 2], [1, 2]), { ...opts, lookupDim: 2 })).toThrow("vq.quantize: lookupDim is 2 but the params lack projIn/projOut");
    expect(() => initVQ(new KeyStream(0), { ...opts, lookupDim: 0 })).toThrow("vq lookupDim must be a positive integer, got 0");
  });
});
