import { beforeAll, describe, expect, it } from "vitest";
import { grad, jit, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { KeyStream } from "../../../src/engine/rng.ts";
import { DEFAULT_GROUP_VQ, indicesToCodes, initGroupVQ, quantize, type GroupVQOptions, type GroupVQParams } from "../../../src/tokenizers/quantizers/group-vq.ts";
import * as vq from "../../../src/tokenizers/quantizers/vq.ts";
import { expectClose, f32, flat, ints, loadFixture, scalar } from "../../helpers/fixtures.ts";

beforeAll(startEngine);

// Fixtures from reference/quantizers_vq.py (PyTorch, float64 on float32-rounded inputs).
type Case = {
  name: string;
  options: GroupVQOptions;
  xShape: number[];
  x: number[];
  params: { codebooks: number[] };
  codebooksShape: number[];
  w: number[];
  indices: number[][];
  codes: number[];
  losses: { codebook: number; commitment: number };
  grads: { x: number[]; codebooks: number[] };
};
const fixture = loadFixture<{ a: number; b: number; cases: Case[] }>("group-vq");

const paramsOf = (c: Case): GroupVQParams => ({ codebooks: f32(c.params.codebooks, c.codebooksShape) });

describe("group VQ vs the PyTorch reference", () => {
  describe.each(fixture.cases)("$name", (c) => {
    it("ids [N, G], codes, losses; indicesToCodes(ids) == codes", () => {
      const p = paramsOf(c);
      const q = quantize(tree.ref(p), f32(c.x, c.xShape), c.options);
      expect(q.indices.ref.js()).toEqual(c.indices);
      expectClose(flat(q.codes.ref), c.codes);
      expectClose([scalar(q.losses.codebook), scalar(q.losses.commitment)], [c.losses.codebook, c.losses.commitment]);
      expectClose(flat(indicesToCodes(p, q.indices, c.options)), flat(q.codes), 1e-6);
    });

    it("gradients of Σ w·codes + a·codebook + b·commitment w.r.t. x and the codebooks", () => {
      const w = f32(c.w, c.xShape);
      const objective = (x: JaxArray, p: GroupVQParams) => {
        const r = quantize(p, x, c.options);
        tree.dispose([r.indices, r.stats]);
        return r.codes.mul(w.ref).sum().add(r.losses.codebook.mul(fixture.a)).add(r.losses.commitment.mul(fixture.b));
      };
      const [gx, gp] = grad(objective, { argnums: [0, 1] })(f32(c.x, c.xShape), paramsOf(c));
      expectClose(flat(gx), c.grads.x);
      expectClose(flat(gp.codebooks), c.grads.codebooks);
      w.dispose();
    });
  });
});

const D = 8;
const xs = Array.from({ length: 2 * 3 * D }, (_, i) => Math.sin(i * 0.9 + 0.3) * 2);

describe.each([
  { groups: 1, shared: false, distance: "l2" as const },
  { groups: 2, shared: false, distance: "cosine" as const },
  { groups: 4, shared: false, distance: "l2" as const },
  { groups: 4, shared: true, distance: "l2" as const },
  { groups: 8, shared: true, distance: "cosine" as const },
])("group VQ invariants, G=$groups, shared $shared, $distance", ({ groups, shared, distance }) => {
  const opts: GroupVQOptions = { ...DEFAULT_GROUP_VQ, groups, shared, distance, codebookSize: 6, dim: D };
  const init = () => {
    const keys = new KeyStream(groups);
    const p = initGroupVQ(keys, opts);
    keys.dispose();
    return p;
  };

  it("each group is plain VQ on its slice with its own (or the shared) codebook; jit == eager", () => {
    const p = init();
    expect(p.codebooks.shape).toEqual([shared ? 1 : groups, 6, D / groups]);
    const q = quantize(tree.ref(p), f32(xs, [2, 3, D]), opts);
    expect(q.indices.shape).toEqual([2, 3, groups]);
    const got = (q.indices.ref.js() as number[][][]).flat();
    const codes = flat(q.codes.ref);
    const dg = D / groups;
    const books = flat(p.codebooks.ref);
    for (let g = 0; g < groups; g++) {
      const slice = Array.from({ length: 6 }, (_, n) => xs.slice(n * D + g * dg, n * D + (g + 1) * dg)).flat();
      const book = shared ? books : books.slice(g * 6 * dg, (g + 1) * 6 * dg);
      const r = vq.quantize({ codebook: f32(book, [6, dg]) }, f32(slice, [6, dg]), { codebookSize: 6, dim: dg, beta: 0.25, distance });
      expect(got.map((row) => row[g])).toEqual(r.indices.js());
      const want = flat(r.codes);
      expectClose(Array.from({ length: 6 }, (_, n) => codes.slice(n * D + g * dg, n * D + (g + 1) * dg)).flat(), want, 1e-6);
      tree.dispose(r.losses);
    }
    const jq = jit((p: GroupVQParams, x: JaxArray) => {
      const r = quantize(p, x, opts);
      tree.dispose([r.losses, r.stats]);
      return [r.codes, r.indices];
    });
    const [jc, ji] = jq(tree.ref(p), f32(xs, [2, 3, D]));
    expect(ji.js()).toEqual(q.indices.ref.js());
    expectClose(flat(jc), codes, 1e-6);
    jq.dispose();
    expectClose(flat(indicesToCodes(p, q.indices, opts)), codes, 1e-6);
    tree.dispose([q.codes, q.losses]);
  });

  it.skipIf(distance !== "l2")("l2: d(Σ w·codes)/dx = w exactly (straight-through per group)", () => {
    const p = init();
    const w = xs.map((_, i) => (i % 7) - 3);
    const g = grad((x: JaxArray) => quantize(tree.ref(p), x, opts).codes.mul(f32(w, [2, 3, D])).sum())(f32(xs, [2, 3, D]));
    expect(flat(g)).toEqual(w);
    tree.dispose(p);
  });
});

describe("group VQ codes", () => {
  it("are exactly the chosen codebook rows, even for inputs far from them", () => {
    // z + sg(e − z) rounds in float32: 1000 + (0.3 − 1000) gave 0.2999878.
    const opts: GroupVQOptions = { ...DEFAULT_GROUP_VQ, groups: 2, codebookSize: 1, dim: 2 };
    const p: GroupVQParams = { codebooks: f32([0.3, -0.7], [2, 1, 1]) };
    const q = quantize(tree.ref(p), f32([1000, -1000], [1, 2]), opts);
    const want = [0.3, -0.7].map(Math.fround);
    expect(flat(q.codes)).toEqual(want);
    expect(flat(indicesToCodes(p, q.indices, opts))).toEqual(want);
    tree.dispose(q.losses);
  });
});

describe("group VQ bad input", () => {
  const opts: GroupVQOptions = { ...DEFAULT_GROUP_VQ, groups: 2, codebookSize: 3, dim: 4 };
  const p = () => ({ codebooks: f32(Array.from({ length: 2 * 3 * 2 }, (_, i) => i / 10), [2, 3, 2]) });

  it("names G not dividing D, the wrong last dim, NaN, ids and shapes", () => {
    expect(() => initGroupVQ(new KeyStream(0), { ...opts, groups: 3 })).toThrow("initGroupVQ: groups G = 3 must divide dim D = 4");
    expect(() => quantize(p(), f32([1, 2, 3, 4], [1, 4]), { ...opts, groups: 3 })).toThrow("groupVQ.quantize: groups G = 3 must divide dim D = 4");
    expect(() => quantize(p(), f32([1, 2, 3, 4], [1, 4]), { ...opts, groups: 0 })).toThrow("groupVQ.quantize: groups must be a positive integer, got 0");
    expect(() => quantize(p(), f32([1, 2, 3], [1, 3]), opts)).toThrow("groupVQ.quantize: expected input [..., 4] (rank ≥ 1), got [1, 3]");
    expect(() => quantize(p(), f32([1, 2, NaN, 4], [1, 4]), opts)).toThrow("groupVQ.quantize: input [1, 4] holds 1 NaN/Inf value(s)");
    expect(() => quantize(p(), f32([1, 2, 3, 4], [1, 4]), { ...opts, shared: true })).toThrow("groupVQ.quantize: expected codebooks [1, 3, 2] (1 shared, codebookSize, dim / groups), got [2, 3, 2]");
    expect(() => indicesToCodes(p(), ints([0, 1, 2], [1, 3]), opts)).toThrow("groupVQ.indicesToCodes: expected indices [..., 2] (one id per group), got [1, 3]");
    expect(() => indicesToCodes(p(), ints([0, 3], [1, 2]), opts)).toThrow("groupVQ.indicesToCodes: id 3 at position 1 out of range [0, 2]");
  });
});
