import { beforeAll, describe, expect, it } from "vitest";
import { engineMemoryBytes, fromHost, np, startEngine, tree, type Array as JaxArray } from "../../../src/engine/node.ts";
import { hostRng } from "../../../src/engine/rng.ts";
import { encodeIds } from "../../../src/tokenizers/quantizers/vq-encode.ts";
import { quantize, type VQOptions, type VQParams } from "../../../src/tokenizers/quantizers/vq.ts";

beforeAll(startEngine);

type HostParams = { codebook: Float32Array; projIn?: { w: Float32Array; b: Float32Array } };

const uniform = (n: number, rng: () => number, scale = 1) => Float32Array.from({ length: n }, () => (rng() * 2 - 1) * scale);

function hostParams(opts: VQOptions, seed: number): HostParams {
  const rng = hostRng(seed);
  const c = opts.lookupDim ?? opts.dim;
  const out: HostParams = { codebook: uniform(opts.codebookSize * c, rng) };
  if (opts.lookupDim !== undefined) out.projIn = { w: uniform(opts.dim * c, rng, 1 / Math.sqrt(opts.dim)), b: uniform(c, rng, 0.1) };
  return out;
}

/** Fresh device params (encodeIds and quantize consume theirs); projOut is a dummy, unused by ids. */
function deviceParams(h: HostParams, opts: VQOptions): VQParams {
  const c = opts.lookupDim ?? opts.dim;
  const p: VQParams = { codebook: fromHost(h.codebook, [opts.codebookSize, c]) };
  if (h.projIn) {
    p.projIn = { w: fromHost(h.projIn.w, [opts.dim, c]), b: fromHost(h.projIn.b, [c]) };
    p.projOut = { w: fromHost(new Float32Array(c * opts.dim), [c, opts.dim]), b: fromHost(new Float32Array(opts.dim), [opts.dim]) };
  }
  return p;
}

/**
 * Plain-JS brute force in float64: for each vector, the nearest code (projected, normalized as
 * the options say) and the set of codes within `tol` of the best distance (near-ties, where
 * float32 rounding may pick any of them).
 */
function oracle(h: HostParams, x: Float32Array, opts: VQOptions, tol = 1e-4): { best: Int32Array; near: Set<number>[] } {
  const d = opts.dim;
  const c = opts.lookupDim ?? d;
  const k = opts.codebookSize;
  const n = x.length / d;
  const normalize = (v: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
    if (opts.distance !== "cosine") return v;
    const s = Math.sqrt(v.reduce((a, b) => a + b * b, 0) + 1e-12);
    return v.map((e) => e / s);
  };
  const codes = Array.from({ length: k }, (_, j) => normalize(Float64Array.from(h.codebook.subarray(j * c, (j + 1) * c))));
  const best = new Int32Array(n);
  const near: Set<number>[] = [];
  for (let i = 0; i < n; i++) {
    let z = new Float64Array(c);
    for (let o = 0; o < c; o++) {
      if (!h.projIn) z[o] = x[i * d + o];
      else {
        let s = h.projIn.b[o];
        for (let q = 0; q < d; q++) s += x[i * d + q] * h.projIn.w[q * c + o];
        z[o] = s;
      }
    }
    z = normalize(z);
    const dist = codes.map((e) => e.reduce((a, v, o) => a + (z[o] - v) ** 2, 0));
    const min = Math.min(...dist);
    best[i] = dist.indexOf(min);
    near.push(new Set(dist.flatMap((v, j) => (v - min <= tol * Math.max(1, min) ? [j] : []))));
  }
  return { best, near };
}

/** Ids agree with the oracle: exactly where the nearest code is clear, among the near-tied ones otherwise. */
function expectNearest(ids: ArrayLike<number>, o: { best: Int32Array; near: Set<number>[] }): { ties: number } {
  expect(ids.length).toBe(o.best.length);
  let ties = 0;
  for (let i = 0; i < ids.length; i++) {
    if (o.near[i].size > 1) {
      ties++;
      if (!o.near[i].has(ids[i])) throw new Error(`vector ${i}: id ${ids[i]} is not among the near-tied codes {${[...o.near[i]].join(", ")}}`);
    } else if (ids[i] !== o.best[i]) throw new Error(`vector ${i}: id ${ids[i]}, the nearest code is ${o.best[i]}`);
  }
  return { ties };
}

const CASES: { name: string; opts: VQOptions }[] = [
  { name: "l2", opts: { codebookSize: 96, dim: 12, beta: 0.25, distance: "l2" } },
  { name: "cosine", opts: { codebookSize: 96, dim: 12, beta: 0.25, distance: "cosine" } },
  { name: "l2, lookupDim 4", opts: { codebookSize: 40, dim: 12, beta: 0.25, distance: "l2", lookupDim: 4 } },
  { name: "cosine, lookupDim 4", opts: { codebookSize: 40, dim: 12, beta: 0.25, distance: "cosine", lookupDim: 4 } },
];

describe.each(CASES)("encodeIds, $name", ({ opts }) => {
  // 2 × 1250 vectors in chunks of 512: four full chunks and a partial one of 452.
  const lead = [2, 1250];
  const n = lead[0] * lead[1];
  const h = hostParams(opts, 7);
  const x = uniform(n * opts.dim, hostRng(8), 1.5);
  const o = oracle(h, x, opts);

  it("ids [2, 1250] = the brute-force nearest code, with a partial last chunk", async () => {
    const ids = await encodeIds(deviceParams(h, opts), fromHost(x, [...lead, opts.dim]), opts, { chunk: 512 });
    expect(ids.shape).toEqual(lead);
    expect(ids.dtype).toBe("int32");
    const { ties } = expectNearest(ids.js().flat() as number[], o);
    expect(ties).toBeLessThan(n / 100); // near-ties are rare, so the check above is mostly exact
  });

  it("ids = vq.quantize's ids, for any chunk size (one chunk, 1000, 4096 > N)", async () => {
    const q = quantize(deviceParams(h, opts), fromHost(x, [...lead, opts.dim]), opts);
    tree.dispose([q.codes, q.losses]);
    const expected = q.indices.js().flat() as number[];
    expectNearest(expected, o);
    for (const chunk of [1000, 4096, n]) {
      const ids = (await encodeIds(deviceParams(h, opts), fromHost(x, [...lead, opts.dim]), opts, { chunk })).js().flat() as number[];
      const differ = ids.flatMap((id, i) => (id !== expected[i] ? [i] : []));
      // Different rounding (no ‖z‖² term) may split a near-tie the other way, nothing else.
      for (const i of differ) expect(o.near[i].size, `vector ${i}`).toBeGreaterThan(1);
    }
  });
});

describe("encodeIds edge cases", () => {
  const opts: VQOptions = { codebookSize: 8, dim: 3, beta: 0.25, distance: "l2" };
  const h = hostParams(opts, 3);

  it("fewer vectors than a chunk, a single vector, and none", async () => {
    const x = uniform(5 * 3, hostRng(4));
    expectNearest((await encodeIds(deviceParams(h, opts), fromHost(x, [5, 3]), opts)).js() as number[], oracle(h, x, opts));
    const one = await encodeIds(deviceParams(h, opts), fromHost(x.slice(0, 3), [3]), opts);
    expect(one.shape).toEqual([]);
    expect(one.js()).toBe(oracle(h, x.slice(0, 3), opts).best[0]);
    const none = await encodeIds(deviceParams(h, opts), np.zeros([0, 3]), opts);
    expect(none.shape).toEqual([0]);
    none.dispose();
  });

  it("every code is the nearest code of itself", async () => {
    const ids = await encodeIds(deviceParams(h, opts), fromHost(h.codebook, [8, 3]), opts, { chunk: 3 });
    expect(ids.js()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("the heap stays bounded: chunks are submitted as they go, not all held until the end", async () => {
    // 64 chunks of 1024 vectors against 1024 codes: 4 MiB of distances each, 256 MiB if all were held.
    const big: VQOptions = { codebookSize: 1024, dim: 8, beta: 0.25, distance: "l2" };
    const hb = hostParams(big, 5);
    const x = uniform(64 * 1024 * 8, hostRng(6));
    const before = engineMemoryBytes();
    const ids = await encodeIds(deviceParams(hb, big), fromHost(x, [64 * 1024, 8]), big, { chunk: 1024 });
    expect(engineMemoryBytes() - before).toBeLessThan(64 * 2 ** 20);
    const got = ids.js() as number[];
    const o = oracle(hb, x.subarray(0, 200 * 8), big);
    expectNearest(got.slice(0, 200), o);
  });

  it("rejects bad inputs naming the shapes", async () => {
    const bad = (x: JaxArray, o: VQOptions, chunk = 16) => expect(encodeIds(deviceParams(h, opts), x, o, { chunk })).rejects;
    await bad(fromHost(new Float32Array(8), [2, 4]), opts).toThrow("vq.encodeIds: expected input [..., 3] (rank ≥ 1), got [2, 4]");
    await bad(fromHost(new Float32Array(6), [2, 3]), { ...opts, codebookSize: 9 }).toThrow("vq.encodeIds: expected codebook [9, 3] (codebookSize, dim), got [8, 3]");
    await bad(fromHost(new Float32Array(6), [2, 3]), { ...opts, lookupDim: 3 }).toThrow("vq.encodeIds: lookupDim is 3 but the params lack projIn");
    await bad(fromHost(new Float32Array(6), [2, 3]), opts, 0).toThrow("vq.encodeIds chunk must be a positive integer, got 0");
    await bad(fromHost(Float32Array.from([0, Number.NaN, 0]), [1, 3]), opts).toThrow("vq.encodeIds: input [1, 3] holds 1 NaN/Inf value(s)");
    await bad(fromHost(Float32Array.from([0, 1, Number.POSITIVE_INFINITY, 2, 0, 0]), [2, 3]), opts).toThrow("vq.encodeIds: input [2, 3] holds 1 NaN/Inf value(s)");
  });

  it("finite values whose sum overflows pass the input check", async () => {
    const x = Float32Array.from([3e38, 3e38, 0, 0, 0, 0]);
    const ids = await encodeIds(deviceParams(h, opts), fromHost(x, [2, 3]), opts);
    expect(ids.shape).toEqual([2]);
    ids.dispose();
  });
});
