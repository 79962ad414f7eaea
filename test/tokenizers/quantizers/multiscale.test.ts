import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, grad, jit, np, startEngine, tree, valueAndGrad, type Array as JaxArray } from "../../../src/engine/index.ts";
import { KeyStream } from "../../../src/engine/rng.ts";
import {
  areaWeights,
  bicubicWeights,
  DEFAULT_MULTISCALE,
  indicesToCodes,
  initMultiScale,
  quantize,
  resize,
  scaleOffsets,
  splitScales,
  type MultiScaleOptions,
  type MultiScaleParams,
} from "../../../src/tokenizers/quantizers/multiscale.ts";
import { f32, flat, ints, loadFixture, scalar } from "../../helpers/fixtures.ts";

beforeAll(startEngine);

type Case = {
  name: string;
  scales: number[];
  distance: "l2" | "cosine";
  beta: number;
  shape: [number, number, number, number];
  codebookSize: number;
  input: number[];
  codebook: number[];
  indices: number[];
  codes: number[];
  losses: { codebook: number; commitment: number };
  grad: { input: number[]; codebook: number[] };
};
type Fixture = { cases: Case[]; resample: { mode: "area" | "bicubic"; in: number; out: number; weights: number[] }[] };
const fixture = loadFixture<Fixture>("multiscale");

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
/** The fixture's fixed weights, w[i] = sin(0.7 i). */
const weights = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(0.7 * i));

function setup(c: Case): { p: MultiScaleParams; f: JaxArray; opts: MultiScaleOptions } {
  const d = c.shape[3];
  return {
    p: { codebook: f32(c.codebook, [c.codebookSize, d]) },
    f: f32(c.input, c.shape),
    opts: { codebookSize: c.codebookSize, dim: d, beta: c.beta, distance: c.distance, scales: c.scales },
  };
}

/** A random map and codebook for the parametrized properties. */
function randomSetup(scales: number[], distance: "l2" | "cosine", [b, d, k] = [2, 3, 12]) {
  const h = scales[scales.length - 1]!;
  const keys = new KeyStream(h * 31 + scales.length);
  const p = initMultiScale(keys, { codebookSize: k, dim: d });
  const f = f32(Array.from({ length: b * h * h * d }, (_, i) => Math.sin(i * 1.7) + 0.3 * Math.cos(i * 0.31)), [b, h, h, d]);
  keys.dispose();
  return { p, f, opts: { codebookSize: k, dim: d, beta: 0.25, distance, scales } satisfies MultiScaleOptions };
}

describe("multi-scale resampling matrices", () => {
  it.each(fixture.resample.map((r) => [`${r.mode} ${r.in}→${r.out}`, r] as const))("%s equals torch's F.interpolate", (_, r) => {
    const w = r.mode === "area" ? areaWeights(r.in, r.out) : bicubicWeights(r.in, r.out);
    expect(w.length).toBe(r.weights.length);
    expect(maxDiff(w, r.weights)).toBeLessThan(1e-6);
  });

  it("resize applies them separably to channels-last maps: bicubic of a 1×1 map is constant, area of a constant map is that constant", () => {
    const one = resize(f32([2, -1], [1, 1, 1, 2]), [4, 4], "bicubic"); // [1, 4, 4, 2]
    expect(one.shape).toEqual([1, 4, 4, 2]);
    expect(maxDiff(flat(one), Array.from({ length: 32 }, (_, i) => (i % 2 ? -1 : 2)))).toBeLessThan(1e-6);
    const down = resize(fromHost(new Float32Array(2 * 5 * 5).fill(3), [2, 5, 5, 1]), [3, 3], "area");
    expect(maxDiff(flat(down), new Array(18).fill(3))).toBeLessThan(1e-6);
  });
});

describe("multi-scale residual quantizer (VAR)", () => {
  it.each(fixture.cases.map((c) => [c.name, c] as const))("matches the PyTorch reference: %s", (_, c) => {
    const { p, f, opts } = setup(c);
    const q = quantize(tree.ref(p), f.ref, opts);
    expect(q.indices.shape).toEqual([c.shape[0], scaleOffsets(c.scales).at(-1)]);
    expect(flat(q.indices)).toEqual(c.indices);
    expect(maxDiff(flat(q.codes), c.codes)).toBeLessThan(1e-5);
    expect(Math.abs(scalar(q.losses.codebook!) - c.losses.codebook)).toBeLessThan(1e-5);
    expect(Math.abs(scalar(q.losses.commitment!) - c.losses.commitment)).toBeLessThan(1e-5);
    tree.dispose(q.stats);

    // d/d(f, codebook) of Σ w·codes + codebook + commitment: straight-through, the commitment's
    // pull on f, and the codebook loss back through the bicubic up-sampling and the lookup.
    const w = fromHost(weights(f.size), c.shape);
    const objective = (pp: MultiScaleParams, x: JaxArray) => {
      const r = quantize(pp, x, opts);
      tree.dispose([r.indices, r.stats]);
      return r.codes.mul(w.ref).sum().add(r.losses.codebook!).add(r.losses.commitment!);
    };
    const [gp, gf] = grad(objective, { argnums: [0, 1] })(p, f) as unknown as [MultiScaleParams, JaxArray];
    expect(maxDiff(flat(gf), c.grad.input)).toBeLessThan(1e-5);
    expect(maxDiff(flat(gp.codebook), c.grad.codebook)).toBeLessThan(1e-5);
    w.dispose();
  });

  it("works under jit (shape checks only) with the same values and gradients", () => {
    const c = fixture.cases[0]!;
    const { p, f, opts } = setup(c);
    const step = jit((pp: MultiScaleParams, x: JaxArray) =>
      valueAndGrad((pq: MultiScaleParams, xq: JaxArray) => {
        const r = quantize(pq, xq, opts);
        tree.dispose([r.codes, r.indices, r.stats]);
        return r.losses.codebook!.add(r.losses.commitment!);
      })(pp, x),
    );
    const [loss, g] = step(tree.ref(p), f.ref) as unknown as [JaxArray, MultiScaleParams];
    expect(Math.abs(scalar(loss) - c.losses.codebook - c.losses.commitment)).toBeLessThan(1e-5);
    // The codebook loss alone carries the codebook's gradient; compare with the eager one.
    const eager = grad((pq: MultiScaleParams) => {
      const r = quantize(pq, f.ref, opts);
      tree.dispose([r.codes, r.indices, r.stats]);
      return r.losses.codebook!.add(r.losses.commitment!);
    })(p) as MultiScaleParams;
    expect(maxDiff(flat(g.codebook), flat(eager.codebook))).toBeLessThan(1e-6);
    step.dispose();
    f.dispose();
  });

  const scaleLists = [[1, 2, 3, 4, 5, 6, 7], [1, 3, 5, 7], [2, 5], [4]];
  const cases = scaleLists.flatMap((scales) => (["l2", "cosine"] as const).map((distance) => [`${distance} ${JSON.stringify(scales)}`, scales, distance] as const));

  it.each(cases)("%s: round-trip indicesToCodes(indices) == codes; splitScales gives [B, s, s] maps", (_, scales, distance) => {
    const { p, f, opts } = randomSetup(scales, distance);
    const q = quantize(tree.ref(p), f, opts);
    const b = 2;
    const h = scales.at(-1)!;
    expect(q.indices.shape).toEqual([b, scaleOffsets(scales).at(-1)]);
    const ids = Array.from(q.indices.ref.dataSync() as Int32Array);
    expect(ids.every((id) => id >= 0 && id < 12)).toBe(true);
    const maps = splitScales(q.indices.ref, scales);
    expect(maps.map((m) => m.shape)).toEqual(scales.map((s) => [b, s, s]));
    // Concatenating the flattened maps back gives the indices.
    expect(Array.from(np.concatenate(maps.map((m, i) => m.reshape([b, scales[i]! ** 2])), 1).dataSync() as Int32Array)).toEqual(ids);
    const decoded = indicesToCodes(p, q.indices, opts);
    expect(decoded.shape).toEqual([b, h, h, 3]);
    expect(maxDiff(flat(decoded), flat(q.codes))).toBeLessThan(1e-5);
    const residual = scalar(q.stats.residual!);
    expect(Number.isFinite(residual)).toBe(true);
    tree.dispose(q.losses);
  });

  it.each(cases)("%s: straight-through, d(Σ w·codes)/df = w exactly", (_, scales, distance) => {
    const { p, f, opts } = randomSetup(scales, distance);
    const w = weights(f.size);
    const g = grad((x: JaxArray) => {
      const r = quantize(tree.ref(p), x, opts);
      tree.dispose([r.indices, r.losses, r.stats]);
      return r.codes.mul(fromHost(w, x.shape)).sum();
    })(f);
    expect(flat(g)).toEqual(Array.from(w));
    tree.dispose(p);
  });

  it("prefix decode: f̂ of the first n scales is the running sum of their up-sampled code maps", () => {
    const scales = [1, 2, 4, 5];
    const { p, f, opts } = randomSetup(scales, "l2");
    const q = quantize(tree.ref(p), f, opts);
    tree.dispose([q.losses, q.stats]);
    const offsets = scaleOffsets(scales);
    const prefix = (n: number) => indicesToCodes(tree.ref(p), q.indices.ref.slice([], [0, offsets[n]!]), opts);
    // One 1×1 scale: bicubic up-sampling of a single code is that code everywhere.
    const first = flat(prefix(1)); // [2, 5, 5, 3]
    const ids0 = q.indices.ref.slice([], 0).dataSync() as Int32Array; // scale 1's token per item
    const cb = flat(p.codebook.ref);
    const expected = Array.from({ length: 2 * 25 * 3 }, (_, i) => cb[ids0[Math.floor(i / 75)]! * 3 + (i % 3)]!);
    expect(maxDiff(first, expected)).toBeLessThan(1e-6);
    // Adding scale n adds bicubic(codebook[r_n]) — the same as resizing the looked-up map.
    for (let n = 2; n <= scales.length; n++) {
      const s = scales[n - 1]!;
      const diff = prefix(n).sub(prefix(n - 1));
      const map = indicesToCodes(tree.ref(p), q.indices.ref.slice([], [offsets[n - 1]!, offsets[n]!]), { scales: [s] }); // [2, s, s, 3]
      const up = s === 5 ? map : resize(map, [5, 5], "bicubic");
      expect(maxDiff(flat(diff), flat(up))).toBeLessThan(1e-5);
    }
    expect(maxDiff(flat(prefix(4)), flat(q.codes))).toBeLessThan(1e-5);
    q.indices.dispose();
    tree.dispose(p);
  });

  it("codes are exactly f̂ (the summed code maps), even for inputs far from it", () => {
    // f + sg(f̂ − f) rounds in float32: 1000 + (0.3 − 1000) gave 0.2999878.
    const p = { codebook: f32([0.3, -0.2], [2, 1]) };
    const one = { codebookSize: 2, dim: 1, beta: 0.25, distance: "l2" as const, scales: [1] };
    const q1 = quantize(tree.ref(p), f32([1000], [1, 1, 1, 1]), one);
    expect(flat(q1.codes)).toEqual([Math.fround(0.3)]);
    tree.dispose([q1.indices, q1.losses, q1.stats]);
    const two = { ...one, scales: [1, 2] };
    const q2 = quantize(tree.ref(p), f32([1000, 1001, 999, 1000.5], [1, 2, 2, 1]), two);
    expect(flat(q2.codes)).toEqual(flat(indicesToCodes(p, q2.indices, two)));
    tree.dispose([q2.losses, q2.stats]);
  });

  it("defaults to VAR-style scales 1..7 for the 7×7 VQ-VAE grid", () => {
    expect(DEFAULT_MULTISCALE.scales).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(scaleOffsets(DEFAULT_MULTISCALE.scales)).toEqual([0, 1, 5, 14, 30, 55, 91, 140]);
  });

  it("rejects bad inputs with errors naming the values", () => {
    const { p, f, opts } = randomSetup([1, 2, 3], "l2");
    const q = (x: JaxArray, o: Partial<MultiScaleOptions> = {}) => () => quantize(tree.ref(p), x, { ...opts, ...o });
    expect(q(f.ref, { scales: [1, 3, 2] })).toThrow("scales must be strictly increasing, got [1, 3, 2] (3 then 2 at position 2)");
    expect(q(f.ref, { scales: [1, 1, 3] })).toThrow("strictly increasing, got [1, 1, 3]");
    expect(q(f.ref, { scales: [0, 3] })).toThrow("scales must be positive integers, got 0 at position 0 of [0, 3]");
    expect(q(f.ref, { scales: [1, 2] })).toThrow("the last scale must equal the feature map's side, got last scale 2 for a 3×3 map");
    expect(q(f.ref, { scales: [] })).toThrow("scales must list at least one side, got []");
    expect(q(fromHost(new Float32Array(2 * 3 * 3 * 4), [2, 3, 3, 4]))).toThrow("multiscale.quantize: expected input [..., 3] (rank ≥ 1), got [2, 3, 3, 4]");
    expect(q(fromHost(new Float32Array(9 * 3), [9, 3]))).toThrow("expected a feature map [B, H, W, 3] (channels last), got [9, 3]");
    expect(q(fromHost(new Float32Array(2 * 3 * 4 * 3), [2, 3, 4, 3]))).toThrow("got last scale 3 for a 3×4 map");
    const nan = new Float32Array(2 * 3 * 3 * 3);
    nan[5] = Number.NaN;
    expect(q(fromHost(nan, [2, 3, 3, 3]))).toThrow("input [2, 3, 3, 3] holds 1 NaN/Inf value(s)");
    const ids = (v: number[], shape: number[]) => () => indicesToCodes(tree.ref(p), ints(v, shape), opts);
    expect(ids([0, 12, 0, 0, 0], [1, 5])).toThrow("multiscale.indicesToCodes: id 12 at position 1 out of range [0, 11]");
    expect(ids([0, -1, 0, 0, 0], [1, 5])).toThrow("id -1 at position 1 out of range [0, 11]");
    expect(ids([0, 0, 0], [1, 3])).toThrow("expected indices [B, L] with L the token count of the first n scales of [1, 2, 3], one of [1, 5, 14], got [1, 3]");
    expect(() => splitScales(fromHost(new Int32Array(6), [6]), [1, 2])).toThrow("multiscale.splitScales: expected indices [B, L]");
    f.dispose();
    tree.dispose(p);
  });
});
