/**
 * The faster formulations (docs/performance.md, "Changes") against the straightforward ones they
 * replaced: rope as one fused expression, the KV-cache write as a select, gathered embeddings in
 * the cached forward, the cross-entropy pick before the log-sum-exp. Each is exact by
 * construction, so most checks ask for identical numbers, not just close ones.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, jit, nn, np, random, startEngine, tree, valueAndGrad, type Array } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { causalMask } from "../../src/backbone/masks.ts";
import { forward, forwardCached, initCaches, initTransformer, weightedCrossEntropy, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { attention, attentionCached, initAttention, type KVCache } from "../../src/nn/attention.ts";
import { rope } from "../../src/nn/rope.ts";

beforeAll(startEngine);

const flat = (a: Array): number[] => globalThis.Array.from(a.dataSync() as Float32Array);
const maxAbsDiff = (a: number[], b: number[]): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/** The rotate-half rope as first written: x₁cos − x₂sin and x₁sin + x₂cos, concatenated. x: [B, T, H, Dh]. */
function ropeHalves(x: Array, positions: Array, base = 10000): Array {
  const dh = x.shape[3];
  const half = dh / 2;
  const invFreq = np.exp(np.arange(half).astype(x.dtype).mul(-Math.log(base) / half));
  const angles = positions.astype(x.dtype).reshape([-1, 1, 1]).mul(invFreq);
  const cos = np.cos(angles.ref);
  const sin = np.sin(angles);
  const x1 = x.ref.slice([], [], [], [0, half]);
  const x2 = x.slice([], [], [], [half, dh]);
  return np.concatenate([x1.ref.mul(cos.ref).sub(x2.ref.mul(sin.ref)), x1.mul(sin).add(x2.mul(cos))], -1);
}

/** The cache write as first written: c·keep + scatterᵀ·n with a one-hot [T, S] writeMask. */
function blendWrite(c: Array, n: Array, writeMask: Array): Array {
  const [t, s] = writeMask.shape;
  const w = writeMask.astype(c.dtype);
  const keep = np.subtract(1, w.ref.sum(0)).reshape([1, 1, s, 1]);
  return c.mul(keep).add(np.matmul(w.transpose([1, 0]).reshape([1, 1, s, t]), n));
}

describe("rope", () => {
  it("the fused form equals the two half rotations bit for bit, eagerly and under jit", () => {
    const x = random.normal(random.key(1), [2, 7, 3, 8]);
    const pos = np.arange(7).add(5);
    expect(maxAbsDiff(flat(rope(x.ref, pos.ref)), flat(ropeHalves(x.ref, pos.ref)))).toBe(0);
    const fused = jit((a: Array, p: Array) => rope(a, p))(x.ref, pos.ref);
    const halves = jit((a: Array, p: Array) => ropeHalves(a, p))(x, pos);
    expect(maxAbsDiff(flat(fused), flat(halves))).toBe(0);
  });

  it("rotates extra axes between T and Dh alike (q and k stacked as [B, T, 2, H, Dh])", () => {
    const x = random.normal(random.key(2), [1, 4, 2, 3, 6]);
    const both = rope(x.ref, np.arange(4));
    for (const i of [0, 1]) {
      const one = rope(x.ref.slice([], [], i), np.arange(4));
      expect(maxAbsDiff(flat(both.ref.slice([], [], i)), flat(one))).toBe(0);
    }
    both.dispose();
    x.dispose();
  });

  it("names the shapes it expected", () => {
    expect(() => rope(np.zeros([1, 3, 2, 4]), np.arange(5))).toThrow("rope: expected x [B, T, ..., Dh] and positions [T], got x [1, 3, 2, 4] and positions [5]");
    expect(() => rope(np.zeros([1, 3, 2, 5]), np.arange(3))).toThrow("rope: head dim must be even, got 5");
  });
});

describe("KV cache", () => {
  const opts = (useRope: boolean) => ({ heads: 2, rope: useRope });
  const slots = (s: number) => np.arange(s).astype(np.int32).reshape([1, s]);

  it.each([false, true])("prefill of 3, then 1-token steps, equals full causal attention (rope %s)", (useRope) => {
    const [b, t, d, s] = [2, 6, 8, 7];
    const p = initAttention(new KeyStream(4), d);
    const x = random.normal(random.key(5), [b, t, d]);
    const full = flat(attention(tree.ref(p), x.ref, causalMask(t), np.arange(t).astype(np.int32), opts(useRope)));
    // caches start from noise, so a wrong write or a leak from an unwritten slot shows
    const start = { k: random.normal(random.key(6), [b, 2, s, d / 2]), v: random.normal(random.key(7), [b, 2, s, d / 2]) };
    let cache: KVCache = tree.ref(start);
    const steps: [number, number][] = [[0, 3], [3, 4], [4, 5], [5, 6]];
    const step = jit((pp: typeof p, xs: Array, c: KVCache, pos: Array) => {
      const n = xs.shape[1];
      const col = pos.ref.reshape([n, 1]);
      return attentionCached(pp, xs, c, slots(s).equal(col.ref), slots(s).lessEqual(col), pos, opts(useRope));
    });
    for (const [from, to] of steps) {
      const out = step(tree.ref(p), x.ref.slice([], [from, to]), cache, np.arange(from, to).astype(np.int32));
      cache = out.cache;
      const got = out.y.dataSync() as Float32Array;
      for (let bi = 0; bi < b; bi++) {
        for (let i = 0; i < (to - from) * d; i++) expect(got[bi * (to - from) * d + i]).toBeCloseTo(full[bi * t * d + from * d + i], 5);
      }
    }
    // slots past the last position keep what the cache held
    expect(maxAbsDiff(flat(cache.k.ref.slice([], [], [t, s])), flat(start.k.ref.slice([], [], [t, s])))).toBe(0);
    expect(maxAbsDiff(flat(cache.v.ref.slice([], [], [t, s])), flat(start.v.ref.slice([], [], [t, s])))).toBe(0);
    tree.dispose([cache, start]);
    step.dispose();
    x.dispose();
  });

  it.each([1, 3])("the select write equals the one-hot blend bit for bit (T = %i)", (t) => {
    const [b, h, dh, s] = [2, 3, 4, 9];
    const d = h * dh;
    const c = random.normal(random.key(8), [b, h, s, dh]);
    const writeMask = slots(s).equal(np.arange(t).astype(np.int32).add(4).reshape([t, 1]));
    // zero weights and a bias-only projection: every new key and value is `row`
    const row = random.normal(random.key(3), [d]);
    const p = initAttention(new KeyStream(1), d);
    const qkv = { w: np.zeros([d, 3 * d]), b: np.concatenate([np.zeros([d]), row.ref, row.ref]) };
    const out = attentionCached({ qkv, out: p.out }, np.zeros([b, t, d]), { k: c.ref, v: c.ref }, writeMask.ref, slots(s).lessEqual(8), np.arange(t).astype(np.int32), { heads: h });
    const rows = row.reshape([1, 1, h, dh]).transpose([0, 2, 1, 3]).mul(np.ones([b, 1, t, 1])); // [B, H, T, Dh]
    const want = flat(blendWrite(c, rows, writeMask));
    expect(maxAbsDiff(flat(out.cache.k), want)).toBe(0);
    expect(maxAbsDiff(flat(out.cache.v), want)).toBe(0);
    out.y.dispose();
    p.qkv.w.dispose();
    p.qkv.b?.dispose();
  });

  it.each(["learned", "rope"] as const)("forwardCached (gathered embeddings) equals forward, %s positions", async (positions) => {
    const cfg: TransformerConfig = { vocabSize: 11, contextLength: 10, dim: 16, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions };
    const p = initTransformer(new KeyStream(2), cfg);
    const seq = [3, 1, 4, 1, 5, 9, 2, 6];
    const full = forward(tree.ref(p), fromHost(Int32Array.from(seq), [1, seq.length]), causalMask(seq.length), cfg);
    const want = full.dataSync() as Float32Array; // [1, T, V]
    const step = jit((pp: TransformerParams, tokens: Array, caches: KVCache[], start: Array) => forwardCached(pp, tokens, caches, start, cfg));
    let caches = initCaches(cfg, 1);
    const check = async (logits: Array, at: number) => {
      const got = (await logits.data()) as Float32Array;
      for (let i = 0; i < cfg.vocabSize; i++) expect(got[i]).toBeCloseTo(want[at * cfg.vocabSize + i], 4);
    };
    let r = step(tree.ref(p), fromHost(Int32Array.from(seq.slice(0, 4)), [1, 4]), caches, np.array(0, { dtype: np.int32 }));
    caches = r.caches;
    await check(r.logits, 3);
    for (let t = 4; t < seq.length; t++) {
      r = step(tree.ref(p), fromHost(Int32Array.of(seq[t]), [1, 1]), caches, np.array(t, { dtype: np.int32 }));
      caches = r.caches;
      await check(r.logits, t);
    }
    tree.dispose([caches, p]);
    step.dispose();
  });
});

describe("cross-entropy", () => {
  /** The formula first written: log-softmax, then a one-hot (gathered from an identity) pick. */
  const reference = (logits: Array, targets: Array, weights: Array): Array => {
    const logp = nn.logSoftmax(logits, -1);
    const picked = logp.mul(nn.oneHot(targets, logits.shape[2]).astype(logp.dtype)).sum(-1);
    return picked.mul(weights.ref).sum().mul(-1).div(weights.sum().add(1e-9));
  };

  it("weightedCrossEntropy equals log-softmax + one-hot pick bit for bit, values and gradients, under jit", () => {
    const logits = random.normal(random.key(4), [3, 5, 17]).mul(3);
    const targets = fromHost(Int32Array.from({ length: 15 }, (_, i) => (i * 7) % 17), [3, 5]);
    const weights = fromHost(Float32Array.from({ length: 15 }, (_, i) => (i % 4) / 3), [3, 5]);
    const run = (f: typeof reference) => jit((l: Array, t: Array, w: Array) => valueAndGrad((ll: Array) => f(ll, t, w))(l))(logits.ref, targets.ref, weights.ref) as unknown as [Array, Array];
    const [ours, oursGrad] = run(weightedCrossEntropy);
    const [ref, refGrad] = run(reference);
    expect(flat(ours)).toEqual(flat(ref));
    expect(maxAbsDiff(flat(oursGrad), flat(refGrad))).toBe(0);
    tree.dispose([logits, targets, weights]);
  });
});
