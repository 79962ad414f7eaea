/**
 * The faster formulations (docs/performance.md, "Changes") against the straightforward ones they
 * replaced: rope as one fused expression, the KV cache written in place after each step (with
 * attention over the cache and the new block as one two-part softmax), gathered embeddings in the
 * cached forward, the cross-entropy pick before the log-sum-exp. Most are exact by construction,
 * so most checks ask for identical numbers, not just close ones.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { copyRunsInPlace, fromHost, jit, nn, np, random, startEngine, tree, valueAndGrad, type Array } from "../../src/engine/index.ts";
import { KeyStream } from "../../src/engine/rng.ts";
import { causalMask } from "../../src/backbone/masks.ts";
import { forward, forwardCached, initCaches, initTransformer, type TransformerConfig, type TransformerParams } from "../../src/backbone/transformer.ts";
import { weightedCrossEntropy } from "../../src/train/losses.ts";
import { attention, attentionCached, initAttention, writeFresh, type KVCache } from "../../src/nn/attention.ts";
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

  it.each([false, true])("prefill of 3, then 1-token steps, equals full causal attention (rope %s)", async (useRope) => {
    const [b, t, d, s] = [2, 6, 8, 7];
    const p = initAttention(new KeyStream(4), d);
    const x = random.normal(random.key(5), [b, t, d]);
    const full = flat(attention(tree.ref(p), x.ref, causalMask(t), np.arange(t).astype(np.int32), opts(useRope)));
    // caches start from noise: slots not yet written are masked, so noise must not leak
    const start: KVCache = { k: random.normal(random.key(6), [b, s, 2, d / 2]), v: random.normal(random.key(7), [b, s, 2, d / 2]) };
    const cache: KVCache = { k: start.k.ref.add(0), v: start.v.ref.add(0) }; // own buffers: written in place
    const steps: [number, number][] = [[0, 3], [3, 4], [4, 5], [5, 6]];
    const step = jit((pp: typeof p, xs: Array, c: KVCache, pos: Array) => {
      const n = xs.shape[1];
      return attentionCached(pp, xs, c, slots(s).less(pos.ref.slice(0)), causalMask(n), pos, opts(useRope));
    });
    for (const [from, to] of steps) {
      const out = step(tree.ref(p), x.ref.slice([], [from, to]), tree.ref(cache), np.arange(from, to).astype(np.int32));
      const got = out.y.dataSync() as Float32Array;
      await writeFresh(cache, out.fresh, from);
      for (let bi = 0; bi < b; bi++) {
        for (let i = 0; i < (to - from) * d; i++) expect(got[bi * (to - from) * d + i]).toBeCloseTo(full[bi * t * d + from * d + i], 5);
      }
    }
    // slots past the last position keep what the cache held
    expect(maxAbsDiff(flat(cache.k.ref.slice([], [t, s])), flat(start.k.ref.slice([], [t, s])))).toBe(0);
    expect(maxAbsDiff(flat(cache.v.ref.slice([], [t, s])), flat(start.v.ref.slice([], [t, s])))).toBe(0);
    tree.dispose([cache, start]);
    step.dispose();
    x.dispose();
  });

  it.each([1, 3])("writeFresh puts each sequence's T new keys and values into slots start.., and nothing else (T = %i)", async (t) => {
    const [b, h, dh, s, at] = [2, 3, 4, 9, 4];
    const d = h * dh;
    const before = random.normal(random.key(8), [b, s, h, dh]);
    const cache: KVCache = { k: before.ref.add(0), v: before.ref.add(1) };
    const qkv = random.normal(random.key(3), [b, t, 3 * d]);
    await writeFresh(cache, { k: qkv.ref, v: qkv.ref }, at);
    // the oracle: the same rows placed by slicing and concatenating, on the host's copy
    const place = (old: Array, cols: [number, number]) =>
      np.concatenate([old.ref.slice([], [0, at]), qkv.ref.slice([], [], cols).reshape([b, t, h, dh]), old.slice([], [at + t, s])], 1);
    expect(maxAbsDiff(flat(cache.k), flat(place(before.ref.add(0), [d, 2 * d])))).toBe(0);
    expect(maxAbsDiff(flat(cache.v), flat(place(before.add(1), [2 * d, 3 * d])))).toBe(0);
    const late = s - t + 1; // the last position would be slot s, one past the end
    await expect(writeFresh(cache, { k: qkv.ref, v: qkv.ref }, late)).rejects.toThrow(`writeFresh: positions ${late}..${s} outside the cache's ${s} slots`);
    expect(qkv.refCount).toBe(1); // the failed write still consumed its fresh rows
    qkv.dispose();
  });

  it("copyRunsInPlace refuses shared buffers and out-of-range runs, naming them", async () => {
    const dst = np.zeros([4, 3]);
    await copyRunsInPlace(dst, fromHost(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]).transpose([1, 0]), [6, 0, 6]);
    expect(flat(dst.ref)).toEqual([0, 0, 0, 0, 0, 0, 1, 4, 2, 5, 3, 6]);
    const view = dst.ref.reshape([12]); // a second array on the (now realized) buffer
    await expect(copyRunsInPlace(dst, np.ones([2, 3]), [0, 0, 3])).rejects.toThrow("the destination buffer has 2 holders (arrays or pending kernels); an in-place write needs exactly 1");
    view.dispose();
    await expect(copyRunsInPlace(dst, np.ones([2, 3]), [10, 0, 3])).rejects.toThrow("run 0 (dstStart 10, srcStart 0, length 3) is outside the destination (12 elements) or the source (6)");
    await expect(copyRunsInPlace(dst, np.ones([2, 3]), [0, 0])).rejects.toThrow("runs must hold (dstStart, srcStart, length) triples, got 2 numbers");
    expect(flat(dst)).toEqual([0, 0, 0, 0, 0, 0, 1, 4, 2, 5, 3, 6]); // failed writes leave it as it was
  });

  it.each(["learned", "rope"] as const)("forwardCached (gathered embeddings) equals forward, %s positions", async (positions) => {
    const cfg: TransformerConfig = { vocabSize: 11, contextLength: 10, dim: 16, layers: 2, heads: 2, mlp: "gelu", mlpRatio: 2, positions };
    const p = initTransformer(new KeyStream(2), cfg);
    const seq = [3, 1, 4, 1, 5, 9, 2, 6];
    const full = forward(tree.ref(p), fromHost(Int32Array.from(seq), [1, seq.length]), causalMask(seq.length), cfg);
    const want = full.dataSync() as Float32Array; // [1, T, V]
    const step = jit((pp: TransformerParams, tokens: Array, caches: KVCache[], start: Array) => forwardCached(pp, tokens, caches, start, cfg));
    const caches = initCaches(cfg, 1);
    const run = async (tokens: number[], at: number) => {
      const r = step(tree.ref(p), fromHost(Int32Array.from(tokens), [1, tokens.length]), tree.ref(caches), np.array(at, { dtype: np.int32 }));
      const got = (await r.logits.data()) as Float32Array;
      for (let i = 0; i < caches.length; i++) await writeFresh(caches[i], r.fresh[i], at);
      const last = at + tokens.length - 1;
      for (let i = 0; i < cfg.vocabSize; i++) expect(got[i]).toBeCloseTo(want[last * cfg.vocabSize + i], 4);
    };
    await run(seq.slice(0, 4), 0);
    for (let t = 4; t < seq.length; t++) await run([seq[t]], t);
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
