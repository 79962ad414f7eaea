/**
 * Rotary embeddings: 2-D axial rope (`rope2d`) against a float64 transcription of its formula,
 * the relative-position property it exists for, per-example positions, its gradient, and
 * attention with rope "2d" (KV-cached steps against the full sequence).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, jit, np, random, startEngine, tree, type Array } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { causalMask } from "../../src/backbone/masks.ts";
import { attention, attentionCached, initAttention, writeFresh, type AttentionOptions, type KVCache } from "../../src/nn/attention.ts";
import { rope, rope2d } from "../../src/nn/rope.ts";
import { gradCheck, probe, toF64 } from "../helpers/gradcheck.ts";

beforeAll(startEngine);

const flat = (a: Array): number[] => globalThis.Array.from(a.dataSync() as Float32Array);
const maxAbsDiff = (a: number[], b: number[]): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const ints = (values: number[], shape: number[]): Array => fromHost(Int32Array.from(values), shape);

/**
 * The formula of src/nn/rope.ts in float64, loop by loop. x: [B, T, H, Dh] (flat), grid(b, t) →
 * (row, column): quarters x₁..x₄ of each head, (x₁, x₂) rotated by row·θ, (x₃, x₄) by column·θ,
 * θᵢ = base^(−i/(Dh/4)).
 */
function rope2dReference(x: number[], [b, t, h, dh]: number[], grid: (bi: number, ti: number) => [number, number], base = 10000): number[] {
  const q = dh / 4;
  const out = new globalThis.Array<number>(x.length);
  for (let bi = 0; bi < b; bi++) {
    for (let ti = 0; ti < t; ti++) {
      const [r, c] = grid(bi, ti);
      for (let hi = 0; hi < h; hi++) {
        const o = ((bi * t + ti) * h + hi) * dh;
        for (const [at, pos] of [[0, r], [2 * q, c]]) {
          for (let i = 0; i < q; i++) {
            const a = pos * Math.pow(base, -i / q);
            const [x1, x2] = [x[o + at + i], x[o + at + q + i]];
            out[o + at + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
            out[o + at + q + i] = x1 * Math.sin(a) + x2 * Math.cos(a);
          }
        }
      }
    }
  }
  return out;
}

/** Deterministic (row, column) ids in [−3, 12], different per example and token. */
const gridValues = (b: number, t: number): number[] => globalThis.Array.from({ length: b * t * 2 }, (_, i) => ((i * 7 + 3) % 16) - 3);

describe("rope2d", () => {
  it.each([
    { form: "[T, 2]", dh: 8 },
    { form: "[B, T, 2]", dh: 8 },
    { form: "[B, T, 2]", dh: 12 },
  ])("equals the float64 formula, grid $form, Dh $dh", ({ form, dh }) => {
    const [b, t, h] = [2, 5, 3];
    const shared = form === "[T, 2]";
    const g = gridValues(shared ? 1 : b, t);
    const grid = ints(g, shared ? [t, 2] : [b, t, 2]);
    const x = random.normal(random.key(11), [b, t, h, dh]);
    const xs = flat(x.ref);
    const want = rope2dReference(xs, [b, t, h, dh], (bi, ti) => {
      const at = ((shared ? 0 : bi) * t + ti) * 2;
      return [g[at], g[at + 1]];
    });
    expect(maxAbsDiff(flat(rope2d(x.ref, grid.ref)), want)).toBeLessThan(2e-6);
    const f = jit((a: Array, gg: Array) => rope2d(a, gg));
    expect(maxAbsDiff(flat(f(x, grid)), want)).toBeLessThan(2e-6);
    f.dispose();
  });

  it("each half is `rope` of Dh/2 channels at the row (first half) or column (second half), bit for bit", () => {
    const [b, t, dh] = [2, 4, 8];
    const grid = ints(gridValues(b, t), [b, t, 2]);
    const x = random.normal(random.key(12), [b, t, 2, 3, dh]); // an extra axis, as attention's stacked q and k
    const both = flat(rope2d(x.ref, grid.ref));
    const halves = np.concatenate(
      [rope(x.ref.slice([], [], [], [], [0, dh / 2]), grid.ref.slice([], [], 0)), rope(x.ref.slice([], [], [], [], [dh / 2, dh]), grid.ref.slice([], [], 1))],
      -1,
    );
    expect(maxAbsDiff(both, flat(halves))).toBe(0);
    tree.dispose([x, grid]);
  });

  describe("relative positions", () => {
    const dh = 16;
    const q = random.normal(random.key(13), [dh]);
    const k = random.normal(random.key(14), [dh]);
    /** ⟨rope2d(q, gq[i]), rope2d(k, gk[i])⟩ for each pair i. */
    const dots = (gq: [number, number][], gk: [number, number][]): number[] => {
      const n = gq.length;
      const at = (v: Array, g: [number, number][]) => rope2d(np.broadcastTo(v.ref, [1, n, 1, dh]), ints(g.flat(), [n, 2]));
      return flat(at(q, gq).mul(at(k, gk)).sum([0, 2, 3]));
    };
    const pairs: [[number, number], [number, number]][] = [
      [[0, 0], [0, 0]],
      [[3, 1], [0, 0]],
      [[2, 5], [4, 1]],
      [[7, 7], [7, 2]],
      [[1, 6], [6, 1]],
    ];
    const shifts: [number, number][] = [[1, 0], [0, 1], [5, -3], [20, 31]];

    it("the dot product of rotated q and k depends only on g_q − g_k", () => {
      const base = dots(pairs.map(([a]) => a), pairs.map(([, b]) => b));
      for (const [dr, dc] of shifts) {
        const move = (g: [number, number]): [number, number] => [g[0] + dr, g[1] + dc];
        const shifted = dots(pairs.map(([a]) => move(a)), pairs.map(([, b]) => move(b)));
        expect(maxAbsDiff(shifted, base)).toBeLessThan(1e-4);
      }
    });

    it("changes when only the row offset, or only the column offset, changes", () => {
      const base = dots(pairs.map(([a]) => a), pairs.map(([, b]) => b));
      for (const axis of [0, 1]) {
        const moved = dots(pairs.map(([a]) => (axis === 0 ? [a[0] + 1, a[1]] : [a[0], a[1] + 1])), pairs.map(([, b]) => b));
        expect(maxAbsDiff(moved, base)).toBeGreaterThan(0.1); // against the 1e-4 of the shifts above
      }
    });
  });

  it("gradient by central differences (float64), both grid forms", () => {
    const shared = ints(gridValues(1, 3), [3, 2]);
    const perExample = ints(gridValues(2, 3), [2, 3, 2]);
    for (const grid of [shared, perExample]) {
      const x = random.normal(random.key(15), [2, 3, 2, 8]).astype(np.float64);
      expect(gradCheck((a) => probe(rope2d(a as Array, grid.ref)), [x])).toBeLessThan(1e-3);
      tree.dispose([x, grid]);
    }
  });

  it("names the shapes it expected", () => {
    expect(() => rope2d(np.zeros([1, 3, 2, 6]), ints([0, 0, 1, 1, 2, 2], [3, 2]))).toThrow("rope2d: head dim must be divisible by 4, got 6 (x [1, 3, 2, 6])");
    expect(() => rope2d(np.zeros([1, 3, 2, 8]), ints([0, 1, 2, 3, 4, 5, 6, 7], [4, 2]))).toThrow("rope2d: expected x [B, T, ..., Dh] and grid [T, 2], got x [1, 3, 2, 8] and grid [4, 2]");
    expect(() => rope2d(np.zeros([1, 3, 2, 8]), ints([0, 1, 2], [3]))).toThrow("rope2d: expected x [B, T, ..., Dh] and grid [T, 2] or [B, T, 2], got x [1, 3, 2, 8] and grid [3]");
    expect(() => rope2d(np.zeros([1, 3, 2, 8]), ints(gridValues(2, 3), [2, 3, 2]))).toThrow("rope2d: expected x [B, T, ..., Dh] and grid [B, T, 2], got x [1, 3, 2, 8] and grid [2, 3, 2]");
    expect(() => rope2d(np.zeros([1, 3, 2, 8]), ints(gridValues(1, 3).concat([0, 0, 0]), [3, 3]))).toThrow("and grid [3, 3]");
  });
});

describe("rope with per-example positions [B, T]", () => {
  it("equals rope of each example with its own positions [T], bit for bit, eagerly and under jit", () => {
    const [b, t] = [3, 6];
    const pos = globalThis.Array.from({ length: b * t }, (_, i) => (i % t) + 4 * Math.floor(i / t) - 2);
    const x = random.normal(random.key(16), [b, t, 2, 8]);
    const eager = flat(rope(x.ref, ints(pos, [b, t])));
    const f = jit((a: Array, p: Array) => rope(a, p));
    const jitted = flat(f(x.ref, ints(pos, [b, t])));
    f.dispose();
    for (let bi = 0; bi < b; bi++) {
      const one = flat(rope(x.ref.slice([bi, bi + 1]), ints(pos.slice(bi * t, (bi + 1) * t), [t])));
      const n = one.length;
      expect(maxAbsDiff(eager.slice(bi * n, (bi + 1) * n), one)).toBe(0);
      expect(maxAbsDiff(jitted.slice(bi * n, (bi + 1) * n), one)).toBe(0);
    }
    // equal rows give what the shared [T] form gives
    const shared = flat(rope(x.ref, np.arange(t).astype(np.int32)));
    expect(maxAbsDiff(flat(rope(x, np.broadcastTo(np.arange(t).astype(np.int32), [b, t]))), shared)).toBe(0);
  });

  it("names the shapes it expected", () => {
    expect(() => rope(np.zeros([1, 3, 2, 4]), np.zeros([2, 3]))).toThrow("rope: expected x [B, T, ..., Dh] and positions [B, T], got x [1, 3, 2, 4] and positions [2, 3]");
    expect(() => rope(np.zeros([1, 3, 2, 4]), np.zeros([1, 3, 1]))).toThrow("rope: expected x [B, T, ..., Dh] and positions [T] or [B, T], got x [1, 3, 2, 4] and positions [1, 3, 1]");
  });
});

describe("attention with rope \"2d\"", () => {
  const opts: AttentionOptions = { heads: 2, rope: "2d" };
  // Qwen2-VL-style layout: text (t, t), a 2×2 image block at rows and columns 2..3, then text
  // resuming after the block's largest id.
  const layout = [[0, 0], [1, 1], [2, 2], [2, 3], [3, 2], [3, 3], [4, 4]].flat();
  const grids = {
    "[T, 2]": () => ints(layout, [7, 2]),
    "[B, T, 2]": () => ints(layout.concat(gridValues(1, 7)), [2, 7, 2]),
  };
  const slots = (s: number) => np.arange(s).astype(np.int32).reshape([1, s]);

  it.each(Object.keys(grids) as (keyof typeof grids)[])("a prefill of 3, then 1-token steps, equals full causal attention (grid %s)", async (form) => {
    const [b, t, d, s] = [2, 7, 16, 8];
    const p = initAttention(new KeyStream(4), d);
    const x = random.normal(random.key(5), [b, t, d]);
    const grid = grids[form]();
    const full = flat(attention(tree.ref(p), x.ref, causalMask(t), grid.ref, opts));
    // without rope, or with the grid's rows and columns swapped, the output differs: the grid is used
    const noRope = flat(attention(tree.ref(p), x.ref, causalMask(t), grid.ref, { heads: 2 }));
    expect(maxAbsDiff(full, noRope)).toBeGreaterThan(1e-3);
    const swapped = flat(attention(tree.ref(p), x.ref, causalMask(t), np.flip(grid.ref, -1), opts));
    expect(maxAbsDiff(full, swapped)).toBeGreaterThan(1e-3);
    const cache: KVCache = { k: random.normal(random.key(6), [b, s, 2, d / 2]), v: random.normal(random.key(7), [b, s, 2, d / 2]) };
    const step = jit((pp: typeof p, xs: Array, c: KVCache, g: Array, start: Array) =>
      attentionCached(pp, xs, c, slots(s).less(start), causalMask(xs.shape[1]), g, opts),
    );
    for (const [from, to] of [[0, 3], [3, 4], [4, 5], [5, 6], [6, 7]]) {
      const g = form === "[T, 2]" ? grid.ref.slice([from, to]) : grid.ref.slice([], [from, to]);
      const out = step(tree.ref(p), x.ref.slice([], [from, to]), tree.ref(cache), g, np.array(from, { dtype: np.int32 }));
      const got = out.y.dataSync() as Float32Array;
      await writeFresh(cache, out.fresh, from);
      for (let bi = 0; bi < b; bi++) {
        for (let i = 0; i < (to - from) * d; i++) expect(got[bi * (to - from) * d + i]).toBeCloseTo(full[bi * t * d + from * d + i], 5);
      }
    }
    tree.dispose([cache, p, x, grid]);
    step.dispose();
  });

  it("gradient by central differences (float64)", () => {
    const p = toF64(initAttention(new KeyStream(3), 8));
    const f = (pp: unknown, xs: unknown) => probe(attention(pp as never, xs as Array, causalMask(7), ints(layout, [7, 2]), opts));
    expect(gradCheck(f, [p as never, random.normal(random.key(7), [2, 7, 8]).astype(np.float64)])).toBeLessThan(1e-3);
  });

  it("rope true and \"1d\" are the same 1-D rope, with positions [T] or [B, T]", () => {
    const p = initAttention(new KeyStream(4), 8);
    const x = random.normal(random.key(5), [2, 5, 8]);
    const run = (rp: AttentionOptions["rope"], pos: Array) => flat(attention(tree.ref(p), x.ref, causalMask(5), pos, { heads: 2, rope: rp }));
    const want = run(true, np.arange(5).astype(np.int32));
    expect(maxAbsDiff(run("1d", np.arange(5).astype(np.int32)), want)).toBe(0);
    expect(maxAbsDiff(run("1d", np.broadcastTo(np.arange(5).astype(np.int32), [2, 5])), want)).toBe(0);
    tree.dispose([p, x]);
  });

  it("names the positions it expected for each rope", () => {
    const p = initAttention(new KeyStream(0), 8);
    const x = () => np.zeros([2, 5, 8]);
    expect(() => attention(p, x(), causalMask(5), np.arange(5), opts)).toThrow('attention: rope "2d" expects a grid [T, 2] = [5, 2] or [B, T, 2] = [2, 5, 2] for x [2, 5, 8], got [5]');
    expect(() => attention(p, x(), causalMask(5), np.zeros([1, 5, 2]), opts)).toThrow("or [B, T, 2] = [2, 5, 2] for x [2, 5, 8], got [1, 5, 2]");
    expect(() => attention(p, x(), causalMask(5), np.zeros([5, 2]), { heads: 2, rope: "1d" })).toThrow('attention: rope "1d" expects positions [T] = [5] or [B, T] = [2, 5] for x [2, 5, 8], got [5, 2]');
    expect(() => attention(p, x(), causalMask(5), np.arange(4), { heads: 2, rope: true })).toThrow('attention: rope "1d" expects positions [T] = [5] or [B, T] = [2, 5] for x [2, 5, 8], got [4]');
    const cache: KVCache = { k: np.zeros([2, 8, 2, 4]), v: np.zeros([2, 8, 2, 4]) };
    expect(() => attentionCached(p, np.zeros([2, 1, 8]), cache, slots(8).less(3), causalMask(1), np.arange(1), opts)).toThrow("got [1]");
    tree.dispose([p, cache]);
  });
});
