import { beforeAll, describe, expect, it } from "vitest";
import { fromHost, grad, startEngine, tree, type Array as JaxArray } from "../../../src/engine/index.ts";
import { KeyStream } from "../../../src/engine/rng.ts";
import { indicesToCodes, initVQ, quantize } from "../../../src/tokenizers/quantizers/vq.ts";
import { codebookHealth } from "../../../src/tokenizers/quantizers/health.ts";
import { kmeans } from "../../../src/tokenizers/quantizers/codebook-init.ts";
import { hostRng } from "../../../src/engine/rng.ts";

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
