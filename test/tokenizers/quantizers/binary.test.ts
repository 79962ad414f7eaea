import { beforeAll, describe, expect, it } from "vitest";
import { grad, jit, np, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import {
  codebookSize,
  DEFAULT_BINARY,
  indicesToCodes,
  quantize,
  tokensPerVector,
  type BinaryOptions,
} from "../../../src/tokenizers/quantizers/binary.ts";
import { expectClose, f32, f64, flat, ints, loadFixture, scalar, type ImplicitCase } from "../../helpers/fixtures.ts";

/** Written by reference/quantizers_implicit.py (PyTorch, float64, MaskBit's bit order). */
const fixture = loadFixture<{ cases: ImplicitCase<BinaryOptions>[] }>("binary");

beforeAll(startEngine);

describe.each(fixture.cases)("binary quantizer matches the PyTorch reference ($name)", (c) => {
  const opts = c.options;
  const idShape = [...c.shape.slice(0, -1), opts.dim / opts.bitsPerToken];

  it.each(["float32", "float64"] as const)("codes, ids, losses and stats (%s input)", (dtype) => {
    const q = quantize({}, (dtype === "float32" ? f32 : f64)(c.x, c.shape), opts);
    expect(q.codes.shape).toEqual(c.shape);
    expect(q.indices.shape).toEqual(idShape);
    expect(q.indices.dtype).toBe(np.int32);
    expectClose(flat(q.codes), c.codes);
    expect(flat(q.indices)).toEqual(c.indices);
    expect(Object.keys(q.losses)).toEqual(Object.keys(c.losses));
    for (const [k, v] of Object.entries(c.losses)) expectClose([scalar(q.losses[k])], [v]);
    for (const [k, v] of Object.entries(c.stats)) expectClose([scalar(q.stats[k])], [v]);
  });

  it("input gradient of Σ w·codes + Σ c_k·loss_k", () => {
    const w = f64(c.weights.codes, c.shape);
    const g = grad((x: JaxArray) => {
      const q = quantize({}, x, opts);
      tree.dispose([q.indices, q.stats]);
      let total = q.codes.mul(w.ref).sum();
      for (const [k, coeff] of Object.entries(c.weights.losses)) total = total.add(q.losses[k].mul(coeff));
      return total;
    })(f64(c.x, c.shape));
    w.dispose();
    expectClose(flat(g), c.grad);
  });

  it("indicesToCodes(reference ids) == reference codes, and every id decodes as the reference does", () => {
    expectClose(flat(indicesToCodes({}, ints(c.indices, idShape), opts)), c.codes, 1e-6);
    if (c.codebook) {
      const k = 2 ** opts.bitsPerToken;
      const groups = opts.dim / opts.bitsPerToken;
      const ids = Array.from({ length: k * groups }, (_, i) => Math.floor(i / groups));
      expectClose(flat(indicesToCodes({}, ints(ids, [k, groups]), opts)), c.codebook, 1e-6);
    }
  });
});

describe.each([
  { dim: 12, bitsPerToken: 6, scale: "unit" },
  { dim: 12, bitsPerToken: 4, scale: "sphere" },
  { dim: 8, bitsPerToken: 8, scale: "unit" },
  { dim: 5, bitsPerToken: 1, scale: "sphere" },
  { dim: 30, bitsPerToken: 10, scale: "unit" },
] as const)("binary quantizer with D = $dim, $bitsPerToken bits per token, $scale codes", (shapeOpts) => {
  const opts: BinaryOptions = { ...DEFAULT_BINARY, ...shapeOpts };
  const { dim, bitsPerToken: b } = opts;
  const groups = dim / b;
  const m = opts.scale === "unit" ? 1 : 1 / Math.sqrt(dim);
  const n = 6;
  const xs = Array.from({ length: n * dim }, (_, i) => Math.sin(i * 78.233 + dim) * 1.3);

  it("ids pack each group's bits least-significant first, codes are ±m, and indicesToCodes inverts quantize", () => {
    const q = quantize({}, f32(xs, [2, n / 2, dim]), opts);
    expect(tokensPerVector(opts)).toBe(groups);
    expect(codebookSize(opts)).toBe(2 ** b);
    expect(q.indices.shape).toEqual([2, n / 2, groups]);
    const expectedIds: number[] = [];
    for (let t = 0; t < n * groups; t++) {
      let id = 0;
      for (let j = 0; j < b; j++) if (xs[t * b + j] > 0) id += 2 ** j;
      expectedIds.push(id);
    }
    expect(flat(q.indices.ref)).toEqual(expectedIds);
    const codes = flat(q.codes.ref);
    expectClose(codes, xs.map((x) => (x > 0 ? m : -m)), 1e-6);
    expect(flat(indicesToCodes({}, q.indices, opts))).toEqual(codes);
    if (opts.scale === "sphere") {
      for (let t = 0; t < n; t++) expectClose([Math.hypot(...codes.slice(t * dim, (t + 1) * dim))], [1], 1e-6);
    }
    tree.dispose([q.codes, q.losses, q.stats]);
  });

  it("straight-through: d(Σ w·codes)/dx = w, and the commitment gradient is 2β(x − q)/N", () => {
    const ws = xs.map((_, i) => (i % 3) - 1);
    const w = f32(ws, [n, dim]);
    const g = grad((x: JaxArray) => {
      const q = quantize({}, x, { ...opts, commitmentWeight: 0 });
      tree.dispose([q.indices, q.losses, q.stats]);
      return q.codes.mul(w.ref).sum();
    })(f32(xs, [n, dim]));
    w.dispose();
    expect(flat(g)).toEqual(ws);
    const beta = 0.5;
    const gc = grad((x: JaxArray) => {
      const q = quantize({}, x, { ...opts, commitmentWeight: beta });
      tree.dispose([q.indices, q.codes, q.stats]);
      return q.losses.commitment;
    })(f32(xs, [n, dim]));
    expectClose(flat(gc), xs.map((x) => (2 * beta * (x - (x > 0 ? m : -m))) / xs.length), 1e-6);
  });

  it("gives the same codes and ids under jit", () => {
    const eager = quantize({}, f32(xs, [n, dim]), opts);
    const out = jit((x: JaxArray) => {
      const q = quantize({}, x, opts);
      tree.dispose([q.losses, q.stats]);
      return [q.codes, q.indices];
    })(f32(xs, [n, dim])) as JaxArray[];
    tree.dispose([eager.losses, eager.stats]);
    expect(flat(out[0])).toEqual(flat(eager.codes));
    expect(flat(out[1])).toEqual(flat(eager.indices));
  });
});

describe("binary quantizer rejects bad input", () => {
  it("wrong last dim and NaN input", () => {
    expect(() => quantize({}, f32(new Array(8).fill(1), [1, 8]), DEFAULT_BINARY)).toThrow("binary.quantize: expected input [..., 12] (rank ≥ 1), got [1, 8]");
    const xs = new Array(12).fill(1);
    xs[5] = NaN;
    expect(() => quantize({}, f32(xs, [1, 12]), DEFAULT_BINARY)).toThrow("binary.quantize: input [1, 12] holds 1 NaN/Inf value(s)");
  });

  it("bitsPerToken that does not divide dim, or out of range; a bad scale", () => {
    const x = () => f32(new Array(12).fill(1), [1, 12]);
    expect(() => quantize({}, x(), { ...DEFAULT_BINARY, bitsPerToken: 5 })).toThrow("binary.quantize: bitsPerToken = 5 does not divide dim = 12");
    expect(() => quantize({}, x(), { ...DEFAULT_BINARY, bitsPerToken: 0 })).toThrow("bitsPerToken must be an integer in [1, 30], got 0");
    expect(() => quantize({}, x(), { ...DEFAULT_BINARY, scale: "big" as never })).toThrow('scale must be "unit" or "sphere", got big');
    expect(() => tokensPerVector({ dim: 10, bitsPerToken: 4 })).toThrow("bitsPerToken = 4 does not divide dim = 10");
  });

  it("ids out of range, the wrong number of groups, and non-int32 ids", () => {
    expect(() => indicesToCodes({}, ints([63, 64], [1, 2]), DEFAULT_BINARY)).toThrow("binary.indicesToCodes: id 64 at position 1 out of range [0, 63]");
    expect(() => indicesToCodes({}, ints([1, 2, 3], [1, 3]), DEFAULT_BINARY)).toThrow("binary.indicesToCodes: expected input [..., 2] (rank ≥ 1), got [1, 3]");
    expect(() => indicesToCodes({}, f32([1, 2], [1, 2]), DEFAULT_BINARY)).toThrow("binary.indicesToCodes: expected int32 ids, got float32");
  });
});
