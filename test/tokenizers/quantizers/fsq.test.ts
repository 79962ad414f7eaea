import { beforeAll, describe, expect, it } from "vitest";
import { grad, jit, np, startEngine, type Array as JaxArray } from "../../../src/engine/index.ts";
import { codebookSize, codesToIndices, DEFAULT_FSQ, indicesToCodes, quantize, type FSQOptions } from "../../../src/tokenizers/quantizers/fsq.ts";
import { expectClose, f32, f64, flat, ints, loadFixture, type ImplicitCase } from "../../helpers/fixtures.ts";

/** Written by reference/quantizers_implicit.py (PyTorch, float64). */
const fixture = loadFixture<{ cases: ImplicitCase<FSQOptions>[] }>("fsq");

beforeAll(startEngine);

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

describe.each(fixture.cases)("FSQ matches the PyTorch reference ($name)", (c) => {
  const opts = c.options;
  const d = opts.levels.length;

  it.each(["float32", "float64"] as const)("codes and ids (%s input)", (dtype) => {
    const q = quantize({}, (dtype === "float32" ? f32 : f64)(c.x, c.shape), opts);
    expect(q.codes.shape).toEqual(c.shape);
    expect(q.indices.shape).toEqual(c.shape.slice(0, -1));
    expect(q.indices.dtype).toBe(np.int32);
    expect(Object.keys(q.losses)).toEqual([]);
    expectClose(flat(q.codes), c.codes);
    expect(flat(q.indices)).toEqual(c.indices);
  });

  it("input gradient of Σ w·codes (straight-through round, tanh bound)", () => {
    const w = f64(c.weights.codes, c.shape);
    const g = grad((x: JaxArray) => {
      const q = quantize({}, x, opts);
      q.indices.dispose();
      return q.codes.mul(w.ref).sum();
    })(f64(c.x, c.shape));
    w.dispose();
    expectClose(flat(g), c.grad);
  });

  it("indicesToCodes(reference ids) == reference codes, and the implicit codebook", () => {
    expectClose(flat(indicesToCodes({}, ints(c.indices, c.shape.slice(0, -1)), opts)), c.codes, 1e-6);
    if (c.codebook) {
      const k = prod(opts.levels);
      const all = ints([...Array(k).keys()], [k]);
      expectClose(flat(indicesToCodes({}, all, opts)), c.codebook, 1e-6);
    }
    expect(codebookSize(opts)).toBe(prod(opts.levels));
    expect(d).toBe(c.shape[c.shape.length - 1]);
  });
});

describe.each([[[8, 5, 5, 5]], [[3, 3]], [[4, 4, 4]], [[8, 6, 5]], [[7, 5, 5, 5, 5]], [[2, 9]]])("FSQ with levels %j", (levels) => {
  const opts: FSQOptions = { ...DEFAULT_FSQ, levels };
  const d = levels.length;
  const k = prod(levels);

  it("ids ↔ codes is a bijection on [0, K) and channel i takes exactly L_i values in [−1, 1]", () => {
    const codes = indicesToCodes({}, ints([...Array(k).keys()], [k]), opts);
    const host = flat(codes.ref);
    expect(flat(codesToIndices(codes, opts))).toEqual([...Array(k).keys()]);
    for (let i = 0; i < d; i++) {
      const values = new Set(host.filter((_, j) => j % d === i));
      expect(values.size).toBe(levels[i]);
      for (const v of values) expect(Math.abs(v)).toBeLessThanOrEqual(1);
    }
  });

  it("round trip: indicesToCodes(quantize(x).indices) == quantize(x).codes", () => {
    const n = 40;
    const x = f32(Array.from({ length: n * d }, (_, i) => 3 * Math.sin(i * 1.7 + 0.3)), [2, n / 2, d]);
    const q = quantize({}, x, opts);
    expect(flat(indicesToCodes({}, q.indices, opts))).toEqual(flat(q.codes));
  });

  it("gradient is w·bound'(x)/⌊L/2⌋ (rounding passes straight through)", () => {
    const xs = Array.from({ length: 3 * d }, (_, i) => Math.cos(i * 2.3) * 1.2);
    const ws = Array.from({ length: 3 * d }, (_, i) => 1 + (i % 4));
    const w = f64(ws, [3, d]);
    const g = grad((x: JaxArray) => {
      const q = quantize({}, x, opts);
      q.indices.dispose();
      return q.codes.mul(w.ref).sum();
    })(f64(xs, [3, d]));
    w.dispose();
    // Analytic oracle from the paper's bound: tanh(x + s)·h − o, h = (L−1)(1+ε)/2, s = atanh(o/h).
    const expected = xs.map((x, j) => {
      const l = levels[j % d];
      const h = ((l - 1) * (1 + opts.boundEps)) / 2;
      const s = Math.atanh((l % 2 === 0 ? 0.5 : 0) / h);
      return (ws[j] * h * (1 - Math.tanh(x + s) ** 2)) / Math.floor(l / 2);
    });
    expectClose(flat(g), expected, 1e-5);
  });

  it("gives the same codes and ids under jit", () => {
    const xs = Array.from({ length: 6 * d }, (_, i) => Math.sin(i * 0.9) * 2);
    const eager = quantize({}, f32(xs, [6, d]), opts);
    const jitted = jit((x: JaxArray) => {
      const q = quantize({}, x, opts);
      return [q.codes, q.indices];
    })(f32(xs, [6, d])) as JaxArray[];
    expect(flat(jitted[0])).toEqual(flat(eager.codes));
    expect(flat(jitted[1])).toEqual(flat(eager.indices));
  });
});

describe("FSQ rejects bad input", () => {
  it("wrong last dim and NaN input", () => {
    expect(() => quantize({}, f32([0, 0, 0], [1, 3]), DEFAULT_FSQ)).toThrow("fsq.quantize: expected input [..., 4] (rank ≥ 1), got [1, 3]");
    expect(() => quantize({}, f32([0, NaN, 0, 0], [1, 4]), DEFAULT_FSQ)).toThrow("fsq.quantize: input [1, 4] holds 1 NaN/Inf value(s)");
  });

  it.each([[[8, 1]], [[8, 2.5]], [[]], [[5, -3]]])("levels %j", (levels) => {
    expect(() => quantize({}, f32([0, 0], [1, 2]), { ...DEFAULT_FSQ, levels })).toThrow(
      `fsq.quantize: levels must be a non-empty list of integers ≥ 2, got [${levels.join(", ")}]`,
    );
  });

  it("a codebook too large for int32 ids, and a bad boundEps", () => {
    expect(() => codebookSize({ levels: [65536, 65536] })).toThrow("codebook size ∏ levels = 4294967296 does not fit int32 ids");
    expect(() => quantize({}, f32([0, 0, 0, 0], [1, 4]), { ...DEFAULT_FSQ, boundEps: -1 })).toThrow("boundEps must be a finite number ≥ 0, got -1");
  });

  it("ids out of range, and non-int32 ids", () => {
    expect(() => indicesToCodes({}, ints([0, 1000], [2]), DEFAULT_FSQ)).toThrow("fsq.indicesToCodes: id 1000 at position 1 out of range [0, 999]");
    expect(() => indicesToCodes({}, ints([-1], [1]), DEFAULT_FSQ)).toThrow("id -1 at position 0 out of range [0, 999]");
    expect(() => indicesToCodes({}, f32([1], [1]), DEFAULT_FSQ)).toThrow("fsq.indicesToCodes: expected int32 ids, got float32");
  });
});
