import { beforeAll, describe, expect, it } from "vitest";
import { grad, jit, np, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { codebookHealth } from "../../../src/tokenizers/quantizers/health.ts";
import { codebookSize, DEFAULT_LFQ, indicesToCodes, quantize, type LFQOptions } from "../../../src/tokenizers/quantizers/lfq.ts";
import { expectClose, f32, f64, flat, ints, loadFixture, scalar, type ImplicitCase } from "../../helpers/fixtures.ts";

/** Written by reference/quantizers_implicit.py (PyTorch, float64, vector-quantize-pytorch's LFQ math). */
const fixture = loadFixture<{ cases: ImplicitCase<LFQOptions>[] }>("lfq");

beforeAll(startEngine);

/** Host oracle for the id of one vector: channel 0 is the most significant bit. */
function hostId(v: number[]): number {
  return v.reduce((id, x) => id * 2 + (x > 0 ? 1 : 0), 0);
}

describe.each(fixture.cases)("LFQ matches the PyTorch reference ($name)", (c) => {
  const opts = c.options;

  it.each(["float32", "float64"] as const)("codes, ids, losses and stats (%s input)", (dtype) => {
    const q = quantize({}, (dtype === "float32" ? f32 : f64)(c.x, c.shape), opts);
    expect(q.codes.shape).toEqual(c.shape);
    expect(q.indices.shape).toEqual(c.shape.slice(0, -1));
    expect(q.indices.dtype).toBe(np.int32);
    expectClose(flat(q.codes), c.codes);
    expect(flat(q.indices)).toEqual(c.indices);
    expect(Object.keys(q.losses).sort()).toEqual(Object.keys(c.losses).sort());
    for (const [k, v] of Object.entries(c.losses)) expectClose([scalar(q.losses[k])], [v]);
    expect(Object.keys(q.stats).sort()).toEqual(Object.keys(c.stats).sort());
    for (const [k, v] of Object.entries(c.stats)) expectClose([scalar(q.stats[k])], [v]);
  });

  it("input gradient of Σ w·codes + Σ c_k·loss_k", () => {
    const w = f64(c.weights.codes, c.shape);
    const g = grad((x: JaxArray) => {
      const q = quantize({}, x, opts);
      q.indices.dispose();
      tree.dispose(q.stats);
      let total = q.codes.mul(w.ref).sum();
      for (const [k, coeff] of Object.entries(c.weights.losses)) total = total.add(q.losses[k].mul(coeff));
      return total;
    })(f64(c.x, c.shape));
    w.dispose();
    expectClose(flat(g), c.grad);
  });

  it("indicesToCodes(reference ids) == reference codes, and the implicit codebook", () => {
    expect(flat(indicesToCodes({}, ints(c.indices, c.shape.slice(0, -1)), opts))).toEqual(c.codes);
    if (c.codebook) {
      const k = 2 ** opts.dim;
      expect(flat(indicesToCodes({}, ints([...Array(k).keys()], [k]), opts))).toEqual(c.codebook);
    }
  });
});

describe.each([1, 3, 5, 10])("LFQ with d = %i", (d) => {
  const opts: LFQOptions = { ...DEFAULT_LFQ, dim: d };
  const n = 24;
  const xs = Array.from({ length: n * d }, (_, i) => Math.sin(i * 12.9898 + d) * 0.7);

  it("codes are sign(x), ids are the bits (channel 0 = MSB), and indicesToCodes inverts them", () => {
    const q = quantize({}, f32(xs, [4, n / 4, d]), opts);
    expect(q.indices.shape).toEqual([4, n / 4]);
    expect(codebookSize(opts)).toBe(2 ** d);
    const codes = flat(q.codes.ref);
    expect(codes).toEqual(xs.map((x) => (x > 0 ? 1 : -1)));
    const expectedIds = Array.from({ length: n }, (_, t) => hostId(xs.slice(t * d, (t + 1) * d)));
    expect(flat(q.indices.ref)).toEqual(expectedIds);
    expect(flat(indicesToCodes({}, q.indices, opts))).toEqual(codes);
    tree.dispose([q.codes, q.losses, q.stats]);
  });

  it("straight-through: with no losses, d(Σ w·codes)/dx = w", () => {
    const ws = xs.map((_, i) => (i % 5) - 2);
    const w = f32(ws, [n, d]);
    const g = grad((x: JaxArray) => {
      const q = quantize({}, x, { ...opts, entropyWeight: 0, commitmentWeight: 0 });
      tree.dispose([q.indices, q.losses]);
      return q.codes.mul(w.ref).sum();
    })(f32(xs, [n, d]));
    w.dispose();
    expect(flat(g)).toEqual(ws);
  });

  it("entropies: uniform at x = 0 (both = d·ln 2); confident codes have per-sample ≈ 0 and batch = empirical entropy", () => {
    const zero = quantize({}, f32(new Array(n * d).fill(0), [n, d]), opts);
    expectClose([scalar(zero.stats.perSampleEntropy)], [d * Math.LN2], 1e-5);
    expectClose([scalar(zero.stats.codebookEntropy)], [d * Math.LN2], 1e-5);
    tree.dispose([zero.codes, zero.indices, zero.losses]);
    // Large |x|·invT: each softmax is one-hot, so the batch distribution is the id histogram.
    const big = quantize({}, f32(xs.map((x) => Math.sign(x) * 2), [n, d]), opts);
    const health = codebookHealth(flat(big.indices), 2 ** d);
    expect(scalar(big.stats.perSampleEntropy)).toBeLessThan(1e-4);
    expectClose([scalar(big.stats.codebookEntropy)], [Math.log(health.perplexity)], 1e-4);
    tree.dispose([big.codes, big.losses]);
  });

  it("gives the same codes, ids and losses under jit", () => {
    const eager = quantize({}, f32(xs, [n, d]), opts);
    const out = jit((x: JaxArray) => {
      const q = quantize({}, x, opts);
      tree.dispose(q.stats);
      return [q.codes, q.indices, q.losses.entropy, q.losses.commitment];
    })(f32(xs, [n, d])) as JaxArray[];
    tree.dispose(eager.stats);
    expect(flat(out[0])).toEqual(flat(eager.codes));
    expect(flat(out[1])).toEqual(flat(eager.indices));
    expectClose([scalar(out[2])], [scalar(eager.losses.entropy)], 1e-6);
    expectClose([scalar(out[3])], [scalar(eager.losses.commitment)], 1e-6);
  });
});

describe("LFQ entropy of confident codes", () => {
  // Host oracle in float64 (Math.log): q(c|x) = softmax_c(2·invT·x·c) over the 2^d codes, then
  // H = −Σ q·log max(q, 1e-5), as vq-pytorch.
  const hostEntropy = (x: number[], opts: LFQOptions) => {
    const logits = Array.from({ length: 2 ** opts.dim }, (_, j) => 2 * opts.invTemperature * x.reduce((s, v, i) => s + ((j >> (opts.dim - 1 - i)) & 1 ? v : -v), 0));
    const top = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - top));
    const z = e.reduce((s, v) => s + v, 0);
    return -e.reduce((s, v) => s + (v / z) * Math.log(Math.max(v / z, 1e-5)), 0);
  };

  // x = ±0.04 alternating, d = 10: the best code holds q ≈ 1 − 1.1e-6 and the entropy is 1.41e-5
  // (PyTorch, float32 and float64); jax-js's own log, off by 1.2e-5 near 1, gave 2.65e-5. In
  // float32, q's own rounding (1 ulp = 6e-8 of the 1.1e-6) leaves ~0.5%.
  it.each([
    { dtype: "float32", make: f32, round: Math.fround, rel: 1e-2 },
    { dtype: "float64", make: f64, round: (v: number) => v, rel: 1e-5 },
  ] as const)("per-sample and codebook entropy match the float64 host oracle ($dtype)", ({ make, round, rel }) => {
    const row = Array.from({ length: DEFAULT_LFQ.dim }, (_, i) => round(i % 2 ? -0.04 : 0.04));
    const want = hostEntropy(row, DEFAULT_LFQ);
    expect(want).toBeCloseTo(1.41e-5, 7);
    const q = quantize({}, make([...row, ...row, ...row, ...row], [4, DEFAULT_LFQ.dim]), DEFAULT_LFQ);
    for (const key of ["perSampleEntropy", "codebookEntropy"]) {
      const got = scalar(q.stats[key]!);
      if (!(Math.abs(got - want) <= rel * want)) expect.fail(`${key}: got ${got}, expected ${want}`);
    }
    tree.dispose([q.codes, q.indices, q.losses]);
  });
});

describe("LFQ without the entropy loss", () => {
  it("skips the 2^d enumeration: zero entropy loss, no entropy stats, large d allowed", () => {
    const d = 24;
    const xs = Array.from({ length: 2 * d }, (_, i) => Math.cos(i * 1.3));
    const q = quantize({}, f32(xs, [2, d]), { ...DEFAULT_LFQ, dim: d, entropyWeight: 0 });
    expect(scalar(q.losses.entropy)).toBe(0);
    expect(Object.keys(q.stats)).toEqual([]);
    expect(flat(q.indices)).toEqual([hostId(xs.slice(0, d)), hostId(xs.slice(d))]);
    const commitment = (0.25 * xs.reduce((s, x) => s + (x - (x > 0 ? 1 : -1)) ** 2, 0)) / xs.length;
    expectClose([scalar(q.losses.commitment)], [commitment], 1e-6);
    q.codes.dispose();
  });
});

describe("LFQ rejects bad input", () => {
  it("wrong last dim and NaN input", () => {
    expect(() => quantize({}, f32([0, 0, 0], [1, 3]), { ...DEFAULT_LFQ, dim: 4 })).toThrow("lfq.quantize: expected input [..., 4] (rank ≥ 1), got [1, 3]");
    expect(() => quantize({}, f32([0, Infinity, 0], [1, 3]), { ...DEFAULT_LFQ, dim: 3 })).toThrow("lfq.quantize: input [1, 3] holds 1 NaN/Inf value(s)");
  });

  it.each([0, 2.5, 31, -1])("dim %s", (dim) => {
    expect(() => quantize({}, f32([0], [1, 1]), { ...DEFAULT_LFQ, dim, entropyWeight: 0 })).toThrow(`lfq.quantize: dim must be an integer in [1, 30], got ${dim}`);
  });

  it("an entropy loss over too large a codebook, and bad weights / temperature", () => {
    expect(() => quantize({}, f32(new Array(20).fill(1), [1, 20]), { ...DEFAULT_LFQ, dim: 20 })).toThrow(
      "lfq.quantize: the entropy loss enumerates all 2^dim codes; dim = 20 is above 16",
    );
    expect(() => quantize({}, f32([1, 1], [1, 2]), { ...DEFAULT_LFQ, dim: 2, invTemperature: 0 })).toThrow("invTemperature must be > 0, got 0");
    expect(() => quantize({}, f32([1, 1], [1, 2]), { ...DEFAULT_LFQ, dim: 2, diversityWeight: NaN })).toThrow("diversityWeight must be a finite number, got NaN");
  });

  it("ids out of range, and non-int32 ids", () => {
    expect(() => indicesToCodes({}, ints([3, 16], [2]), { dim: 4 })).toThrow("lfq.indicesToCodes: id 16 at position 1 out of range [0, 15]");
    expect(() => indicesToCodes({}, ints([-2], [1]), { dim: 4 })).toThrow("id -2 at position 0 out of range [0, 15]");
    expect(() => indicesToCodes({}, f32([1], [1]), { dim: 4 })).toThrow("lfq.indicesToCodes: expected int32 ids, got float32");
  });
});
