import { beforeAll, describe, expect, it } from "vitest";
import { np, random, startEngine, tree, type Array as JaxArray } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { crossAttention, initCrossAttention, type CrossAttentionParams } from "../../src/nn/cross-attention.ts";
import { gradCheck, probe, toF64 } from "../helpers/gradcheck.ts";
import { expectClose, f32, flat } from "../helpers/fixtures.ts";
import { uniformValues } from "../helpers/values.ts";

beforeAll(startEngine);

const TOL = 1e-3; // see test/nn/layers.test.ts: jax-js's exp runs at float32 precision
const input = (shape: number[], seed = 7): JaxArray => random.normal(random.key(seed), shape).astype(np.float64);

/** Host reference: row-major matrices, per head softmax(q kᵀ / √dh) v, then the output projection. */
function reference(p: Record<string, number[]>, x: number[], c: number[], [t, s, d, dc, h]: number[], visible?: (ti: number, si: number) => boolean): number[] {
  const mm = (a: number[], rows: number, k: number, w: number[], cols: number, bias: number[]) =>
    Array.from({ length: rows * cols }, (_, i) => bias[i % cols]! + Array.from({ length: k }, (_, j) => a[Math.floor(i / cols) * k + j]! * w[j * cols + (i % cols)]!).reduce((u, v) => u + v, 0));
  const q = mm(x, t, d, p.qw!, d, p.qb!);
  const kv = mm(c, s, dc, p.kvw!, 2 * d, p.kvb!);
  const dh = d / h;
  const y = new Array<number>(t * d).fill(0);
  for (let hi = 0; hi < h; hi++)
    for (let ti = 0; ti < t; ti++) {
      const scores = Array.from({ length: s }, (_, si) => {
        let dot = 0;
        for (let e = 0; e < dh; e++) dot += q[ti * d + hi * dh + e]! * kv[si * 2 * d + hi * dh + e]!;
        return visible && !visible(ti, si) ? -1e9 : dot / Math.sqrt(dh);
      });
      const m = Math.max(...scores);
      const ex = scores.map((v) => Math.exp(v - m));
      const z = ex.reduce((u, v) => u + v, 0);
      for (let e = 0; e < dh; e++) y[ti * d + hi * dh + e] = ex.reduce((u, w, si) => u + (w / z) * kv[si * 2 * d + d + hi * dh + e]!, 0);
    }
  return mm(y, t, d, p.ow!, d, p.ob!);
}

const hostParams = (p: CrossAttentionParams) => ({
  qw: flat(p.q.w.ref), qb: flat(p.q.b!.ref), kvw: flat(p.kv.w.ref), kvb: flat(p.kv.b!.ref), ow: flat(p.out.w.ref), ob: flat(p.out.b!.ref),
});

describe("crossAttention", () => {
  const [t, s, d, dc, h] = [2, 3, 4, 6, 2];
  const init = () => {
    const p = initCrossAttention(new KeyStream(5), d, dc);
    return tree.map((a: JaxArray) => a.add(f32(uniformValues(a.size, a.size), a.shape).mul(0.3)), p) as CrossAttentionParams; // non-zero biases
  };

  it("equals a per-head host computation, with a context of another width", () => {
    const p = init();
    const x = uniformValues(t * d, 1);
    const c = uniformValues(s * dc, 2);
    const want = reference(hostParams(p), Array.from(x), Array.from(c), [t, s, d, dc, h]);
    const y = crossAttention(p, f32(x, [1, t, d]), f32(c, [1, s, dc]), { heads: h });
    expect(y.shape).toEqual([1, t, d]);
    expectClose(flat(y), want, 1e-5);
  });

  it("a mask hides context positions: the output ignores them and matches the masked reference", () => {
    const p = init();
    const x = uniformValues(t * d, 3);
    const c = Array.from(uniformValues(s * dc, 4));
    const visible = (ti: number, si: number) => si !== 2 - ti; // query 0 never sees slot 2, query 1 never slot 1
    const mask = () => np.array([[true, true, false], [true, false, true]], { dtype: np.bool });
    const want = reference(hostParams(p), Array.from(x), c, [t, s, d, dc, h], visible);
    const got = flat(crossAttention(tree.ref(p), f32(x, [1, t, d]), f32(c, [1, s, dc]), { heads: h }, mask()));
    expectClose(got, want, 1e-5);
    // changing the hidden slot of query 0 leaves query 0's output as it was
    const c2 = c.map((v, i) => (Math.floor(i / dc) === 2 ? v + 5 : v));
    const moved = flat(crossAttention(p, f32(x, [1, t, d]), f32(c2, [1, s, dc]), { heads: h }, mask()));
    expectClose(moved.slice(0, d), got.slice(0, d), 1e-6);
    expect(Math.abs(moved[d]! - got[d]!)).toBeGreaterThan(1e-4);
  });

  it.each([false, true])("gradients match finite differences (float64, mask %s)", (masked) => {
    const p = toF64(init());
    const f = (p: unknown, x: unknown, c: unknown) =>
      probe(crossAttention(p as CrossAttentionParams, x as JaxArray, c as JaxArray, { heads: h }, masked ? np.array([[true, false, true]], { dtype: np.bool }) : undefined));
    const err = gradCheck(f, [p as never, input([2, t, d], 1), input([2, s, dc], 2)]);
    expect(err).toBeLessThan(TOL);
  });

  it("errors name the expected and the actual shapes", () => {
    const p = () => initCrossAttention(new KeyStream(0), d, dc);
    expect(() => crossAttention(p(), np.zeros([1, t, 5]), np.zeros([1, s, dc]), { heads: h })).toThrow("crossAttention: expected queries x [B, T, 4], got [1, 2, 5]");
    expect(() => crossAttention(p(), np.zeros([2, t, d]), np.zeros([1, s, dc]), { heads: h })).toThrow("crossAttention: expected a context [2, S, 6] for queries [2, 2, 4], got [1, 3, 6]");
    expect(() => crossAttention(p(), np.zeros([1, t, d]), np.zeros([1, s, dc]), { heads: 3 })).toThrow("crossAttention: width 4 is not divisible by heads 3");
  });
});
