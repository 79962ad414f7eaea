import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, grad, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { KeyStream } from "../../../src/engine/rng.ts";
import { indicesToCodes, initVQ, l2normalize, quantize } from "../../../src/tokenizers/quantizers/vq.ts";
import { codebookHealth } from "../../../src/tokenizers/quantizers/health.ts";
import { kmeans } from "../../../src/tokenizers/quantizers/codebook-init.ts";
import { hostRng } from "../../../src/engine/rng.ts";
import { expectClose, f32, flat, scalar } from "../../helpers/fixtures.ts";

beforeAll(startEngine);

describe("vector quantizer", () => {
  it("picks the nearest code, and indicesToCodes(indices) == codes", () => {
    const p = { codebook: fromHost(Float32Array.from([0, 0, 1, 1, -1, 2]), [3, 2]) };
    const x = fromHost(Float32Array.from([0.9, 1.2, -0.1, 0.1, -2, 3]), [3, 2]);
    const opts = { codebookSize: 3, dim: 2, beta: 0.25, distance: "l2" as const };
    const q = quantize(tree.ref(p), x, opts);
    const ids = q.indices.ref.js();
    expect(ids).toEqual([1, 0, 2]);
    expect(indicesToCodes(p, q.indices, opts).js()).toEqual(q.codes.js());
    // codebook loss = mean squared distance to the chosen codes
    expect(q.losses.codebook.js()).toBeCloseTo((0.01 + 0.04 + 0.01 + 0.01 + 1 + 1) / 6, 5);
    expect(q.losses.commitment.js()).toBeCloseTo((0.25 * (0.01 + 0.04 + 0.01 + 0.01 + 1 + 1)) / 6, 5);
  });

  it("straight-through: d(codes)/dx is the identity", () => {
    const p = initVQ(new KeyStream(0), { codebookSize: 4, dim: 3 });
    const x = fromHost(Float32Array.from([0.3, -0.2, 0.5, 1, 0.1, -0.7]), [2, 3]);
    const w = [1, 2, 3, -1, -2, -3];
    const opts = { codebookSize: 4, dim: 3, beta: 0.25, distance: "l2" as const };
    // d/dx Σ w·codes = w exactly when the quantizer passes gradients straight through.
    const g = grad((x: JaxArray) => quantize(tree.ref(p), x, opts).codes.mul(fromHost(Float32Array.from(w), [2, 3])).sum())(x);
    expect(g.js()).toEqual([w.slice(0, 3), w.slice(3)]);
  });

  it("codebook health counts usage, perplexity and dead codes; k-means finds separated clusters", () => {
    const h = codebookHealth([0, 0, 1, 1], 4);
    expect(h).toMatchObject({ usage: 0.5, dead: 2 });
    expect(h.perplexity).toBeCloseTo(2, 6);
    expect(() => codebookHealth([4], 4)).toThrow("codebookHealth: id 4 at position 0 out of range [0, 3]");
    const pts = Float32Array.from([0, 0, 0.1, 0, 10, 10, 10.1, 10, -10, 5, -10.1, 5]);
    const codes = kmeans(pts, 2, 3, { iters: 5, rng: hostRng(1) });
    const centers = [0, 1, 2].map((c) => [codes[2 * c], codes[2 * c + 1]].map((v) => Math.round(v))).sort();
    expect(centers).toEqual([[-10, 5], [0, 0], [10, 10]].sort());
  });
});

describe("vector quantizer numerics", () => {
  it("codes are exactly the codebook row, even for inputs far from it", () => {
    // z + sg(e − z) rounds in float32: this gave 0.2999878.
    const opts = { codebookSize: 1, dim: 1, beta: 0.25, distance: "l2" as const };
    const p = { codebook: f32([0.3], [1, 1]) };
    const q = quantize(tree.ref(p), f32([1000], [1, 1]), opts);
    expect(flat(q.codes)).toEqual([Math.fround(0.3)]);
    expect(flat(indicesToCodes(p, q.indices, opts))).toEqual([Math.fround(0.3)]);
    tree.dispose(q.losses);
  });

  const cosine = { codebookSize: 2, dim: 4, beta: 0.25, distance: "cosine" as const };
  const book = () => ({ codebook: f32([1, 0, 0, 0, 0, 1, 0, 0], [2, 4]) });

  it("cosine: inputs of norm 2e-7 become unit vectors, as F.normalize (max(‖x‖, 1e-12)); commitment 0.0625 as PyTorch", () => {
    // An ε = 1e-12 added to ‖x‖² (an effective 1e-6 on ‖x‖) gave 0.0526.
    const q = quantize(book(), f32([1e-7, 1e-7, 1e-7, 1e-7], [1, 4]), cosine);
    expectClose([scalar(q.losses.commitment)], [0.0625], 1e-6);
    tree.dispose([q.codes, q.indices, q.losses.codebook]);
  });

  it("cosine: the input gradient of the commitment loss through the normalization, at norm ~2.6e-7", () => {
    const xs = [2e-7, 1e-7, 1e-7, 1e-7].map(Math.fround);
    // Host oracle: z = x/‖x‖, nearest code e = [1, 0, 0, 0], dL/dz = 2β(z − e)/4, dL/dx = (I − zzᵀ)·dL/dz / ‖x‖.
    const norm = Math.hypot(...xs);
    const z = xs.map((v) => v / norm);
    const gz = z.map((v, i) => (2 * cosine.beta * (v - (i === 0 ? 1 : 0))) / 4);
    const zg = z.reduce((s, v, i) => s + v * gz[i]!, 0);
    const want = gz.map((g, i) => (g - z[i]! * zg) / norm);
    const g = grad((x: JaxArray) => {
      const q = quantize(book(), x, cosine);
      tree.dispose([q.codes, q.indices, q.losses.codebook]);
      return q.losses.commitment;
    })(f32(xs, [1, 4]));
    expectClose(flat(g).map((v) => v / 1e5), want.map((v) => v / 1e5), 1e-5); // |dL/dx| ~ 4e5
  });

  it("l2normalize(0) = 0 with the finite gradient of x / 1e-12, as F.normalize", () => {
    const w = f32([1, -2, 3], [3]);
    expect(flat(l2normalize(f32([0, 0, 0], [1, 3])))).toEqual([0, 0, 0]);
    const g = grad((x: JaxArray) => l2normalize(x).mul(w.ref).sum())(f32([0, 0, 0], [1, 3]));
    expectClose(flat(g).map((v) => v / 1e12), [1, -2, 3], 1e-6);
    w.dispose();
  });
});
