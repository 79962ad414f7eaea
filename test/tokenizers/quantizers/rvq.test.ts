import { beforeAll, describe, expect, it } from "vitest";
import { grad, jit, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { hostRng, KeyStream } from "../../../src/engine/rng.ts";
import { DEFAULT_RVQ, indicesToCodes, initRVQ, quantize, sampleActiveLevels, type RVQOptions, type RVQParams } from "../../../src/tokenizers/quantizers/rvq.ts";
import { expectClose, f32, flat, ints, loadFixture, scalar } from "../../helpers/fixtures.ts";

beforeAll(startEngine);

// Fixtures from reference/quantizers_vq.py (PyTorch, float64 on float32-rounded inputs).
type Case = {
  name: string;
  options: Omit<RVQOptions, "dropout" | "minLevels">;
  activeLevels: number;
  xShape: number[];
  x: number[];
  params: { levels: { codebook: number[] }[] };
  w: number[];
  indices: number[][];
  codes: number[];
  losses: { codebook: number; commitment: number };
  grads: Record<string, number[]>;
};
const fixture = loadFixture<{ a: number; b: number; cases: Case[] }>("rvq");

const optsOf = (c: Case): RVQOptions => ({ ...DEFAULT_RVQ, ...c.options });
const paramsOf = (c: Case): RVQParams => ({ levels: c.params.levels.map((l) => ({ codebook: f32(l.codebook, [c.options.codebookSize, c.options.dim]) })) });

describe("RVQ vs the PyTorch reference", () => {
  describe.each(fixture.cases)("$name", (c) => {
    const opts = optsOf(c);

    it("ids [N, active], codes, summed losses; indicesToCodes(ids) == codes", () => {
      const p = paramsOf(c);
      const q = quantize(tree.ref(p), f32(c.x, c.xShape), opts, c.activeLevels);
      expect(q.indices.shape).toEqual([c.xShape[0], c.activeLevels]);
      expect(q.indices.ref.js()).toEqual(c.indices);
      expectClose(flat(q.codes.ref), c.codes);
      expectClose([scalar(q.losses.codebook), scalar(q.losses.commitment)], [c.losses.codebook, c.losses.commitment]);
      expectClose(flat(indicesToCodes(p, q.indices, opts)), flat(q.codes), 1e-6);
      q.stats.residual.dispose();
    });

    it("gradients of Σ w·codes + a·codebook + b·commitment w.r.t. x and every level's codebook", () => {
      const w = f32(c.w, c.xShape);
      const objective = (x: JaxArray, p: RVQParams) => {
        const r = quantize(p, x, opts, c.activeLevels);
        tree.dispose([r.indices, r.stats]);
        return r.codes.mul(w.ref).sum().add(r.losses.codebook.mul(fixture.a)).add(r.losses.commitment.mul(fixture.b));
      };
      const [gx, gp] = grad(objective, { argnums: [0, 1] })(f32(c.x, c.xShape), paramsOf(c));
      expectClose(flat(gx), c.grads.x);
      gp.levels.forEach((l, i) => expectClose(flat(l.codebook), c.grads[`levels.${i}.codebook`]));
      w.dispose();
    });
  });
});

const xs = Array.from({ length: 5 * 4 }, (_, i) => Math.cos(i * 2.3) * (1 + (i % 3)));

describe.each([
  { levels: 1, distance: "l2" as const },
  { levels: 3, distance: "l2" as const },
  { levels: 4, distance: "cosine" as const },
])("RVQ invariants, L=$levels, $distance", ({ levels, distance }) => {
  const opts: RVQOptions = { ...DEFAULT_RVQ, levels, codebookSize: 6, dim: 4, distance };
  const init = () => {
    const keys = new KeyStream(levels);
    const p = initRVQ(keys, opts);
    keys.dispose();
    return p;
  };

  it("straight-through over the sum: d(Σ w·codes)/dx = w exactly, at every number of active levels", () => {
    const p = init();
    const w = xs.map((v, i) => (i % 5) - 2 + v * 0);
    for (let n = 1; n <= levels; n++) {
      const g = grad((x: JaxArray) => quantize(tree.ref(p), x, opts, n).codes.mul(f32(w, [5, 4])).sum())(f32(xs, [5, 4]));
      expect(flat(g)).toEqual(w);
    }
    tree.dispose(p);
  });

  it("quantizer dropout: n active levels = the first n columns of the full ids; coarse decode of a prefix == codes; jit == eager", () => {
    const p = init();
    const full = quantize(tree.ref(p), f32(xs, [5, 4]), opts);
    const fullIds = full.indices.js() as number[][];
    tree.dispose([full.codes, full.losses, full.stats]);
    for (let n = 1; n <= levels; n++) {
      const q = quantize(tree.ref(p), f32(xs, [5, 4]), opts, n);
      expect(q.indices.ref.js()).toEqual(fullIds.map((row) => row.slice(0, n)));
      const prefix = ints(fullIds.flatMap((row) => row.slice(0, n)), [5, n]);
      expectClose(flat(indicesToCodes(tree.ref(p), prefix, opts)), flat(q.codes.ref), 1e-6);
      const jq = jit((p: RVQParams, x: JaxArray) => {
        const r = quantize(p, x, opts, n);
        tree.dispose([r.losses, r.stats]);
        return r.codes;
      });
      expectClose(flat(jq(tree.ref(p), f32(xs, [5, 4]))), flat(q.codes), 1e-6);
      jq.dispose();
      tree.dispose([q.indices, q.losses, q.stats]);
    }
    tree.dispose(p);
  });

  it("levels beyond activeLevels get no gradient and add no loss", () => {
    const p = init();
    const n = Math.max(1, levels - 1);
    const gp = grad((p: RVQParams) => {
      const r = quantize(p, f32(xs, [5, 4]), opts, n);
      tree.dispose([r.indices, r.stats]);
      return r.codes.sum().add(r.losses.codebook).add(r.losses.commitment);
    })(tree.ref(p));
    gp.levels.forEach((l, i) => {
      const g = flat(l.codebook);
      if (i >= n) expect(g.every((v) => v === 0)).toBe(true);
      else expect(g.some((v) => v !== 0)).toBe(true);
    });
    tree.dispose(p);
  });
});

describe("RVQ codes", () => {
  it("are exactly the sum of the chosen codes, even for inputs far from them", () => {
    // x + sg(Σ e − x) rounds in float32 (1000 + (0.35 − 1000) ≠ 0.35).
    const opts: RVQOptions = { ...DEFAULT_RVQ, levels: 2, codebookSize: 1, dim: 1 };
    const p: RVQParams = { levels: [{ codebook: f32([0.3], [1, 1]) }, { codebook: f32([0.05], [1, 1]) }] };
    const q = quantize(tree.ref(p), f32([1000, -1000], [2, 1]), opts);
    const sum = Math.fround(Math.fround(0.3) + Math.fround(0.05));
    expect(flat(q.codes)).toEqual([sum, sum]);
    expect(flat(indicesToCodes(p, q.indices, opts))).toEqual([sum, sum]);
    tree.dispose([q.losses, q.stats]);
  });
});

describe("RVQ refinement", () => {
  it("with a zero code in every level, the error left ‖x − codes‖² never grows as levels are added", () => {
    const opts: RVQOptions = { ...DEFAULT_RVQ, levels: 4, codebookSize: 8, dim: 4 };
    const keys = new KeyStream(9);
    const p = initRVQ(keys, opts);
    keys.dispose();
    // Replace code 0 of each level by the zero vector: a level can then always keep the residual.
    p.levels = p.levels.map(({ codebook }) => {
      const v = flat(codebook);
      v.fill(0, 0, 4);
      return { codebook: f32(v, [8, 4]) };
    });
    const errors: number[] = [];
    for (let n = 1; n <= 4; n++) {
      const q = quantize(tree.ref(p), f32(xs, [5, 4]), opts, n);
      const e = flat(q.codes).reduce((s, c, i) => s + (xs[i] - c) ** 2, 0) / xs.length;
      expectClose([scalar(q.stats.residual)], [e], 1e-5);
      errors.push(e);
      tree.dispose([q.indices, q.losses]);
    }
    for (let i = 1; i < errors.length; i++) expect(errors[i]).toBeLessThanOrEqual(errors[i - 1] + 1e-6);
    expect(errors[3]).toBeLessThan(errors[0]);
    tree.dispose(p);
  });

  it("sampleActiveLevels: off → always L; dropout 1 → uniform over [minLevels, L]", () => {
    const rng = hostRng(3);
    const base = { levels: 5, minLevels: 2 };
    expect(new Set(Array.from({ length: 50 }, () => sampleActiveLevels({ ...base, dropout: 0 }, rng)))).toEqual(new Set([5]));
    const seen = Array.from({ length: 400 }, () => sampleActiveLevels({ ...base, dropout: 1 }, rng));
    expect(new Set(seen)).toEqual(new Set([2, 3, 4, 5]));
    for (const v of [2, 3, 4, 5]) expect(seen.filter((s) => s === v).length).toBeGreaterThan(60);
    expect(() => sampleActiveLevels({ ...base, dropout: 1.5 }, rng)).toThrow("rvq dropout must be a probability in [0, 1], got 1.5");
    expect(() => sampleActiveLevels({ ...base, minLevels: 6, dropout: 1 }, rng)).toThrow("activeLevels must be an integer in [1, 5], got 6");
  });
});

describe("RVQ bad input", () => {
  const opts: RVQOptions = { ...DEFAULT_RVQ, levels: 3, codebookSize: 4, dim: 2 };
  const p = () => {
    const keys = new KeyStream(0);
    const params = initRVQ(keys, opts);
    keys.dispose();
    return params;
  };

  it("names the wrong last dim, NaN, activeLevels, ids and level counts", () => {
    expect(() => quantize(p(), f32([1, 2, 3], [1, 3]), opts)).toThrow("rvq.quantize: expected input [..., 2] (rank ≥ 1), got [1, 3]");
    expect(() => quantize(p(), f32([Infinity, 2], [1, 2]), opts)).toThrow("rvq.quantize: input [1, 2] holds 1 NaN/Inf value(s)");
    expect(() => quantize(p(), f32([1, 2], [1, 2]), opts, 0)).toThrow("rvq.quantize: activeLevels must be an integer in [1, 3], got 0");
    expect(() => quantize(p(), f32([1, 2], [1, 2]), opts, 4)).toThrow("rvq.quantize: activeLevels must be an integer in [1, 3], got 4");
    expect(() => quantize(p(), f32([1, 2], [1, 2]), opts, 1.5)).toThrow("got 1.5");
    expect(() => quantize(p(), f32([1, 2], [1, 2]), { ...opts, levels: 2 })).toThrow("rvq.quantize: options say 2 levels, params have 3");
    expect(() => indicesToCodes(p(), ints([0, 1, 2, 3], [1, 4]), opts)).toThrow("rvq.indicesToCodes: expected indices [..., L'] with 1 ≤ L' ≤ 3 levels, got [1, 4]");
    expect(() => indicesToCodes(p(), ints([0, 4], [1, 2]), opts)).toThrow("rvq.indicesToCodes: id 4 at position 1 out of range [0, 3]");
    expect(() => initRVQ(new KeyStream(0), { ...opts, levels: 0 })).toThrow("rvq levels must be a positive integer, got 0");
  });
});
