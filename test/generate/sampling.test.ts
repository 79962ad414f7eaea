import { describe, expect, it } from "vitest";
import { hostRng } from "../../src/engine/rng.ts";
import { checkSampling, GREEDY, sampleToken, tokenProbability } from "../../src/generate/sampling.ts";
import { guidanceScale } from "../../src/generate/guidance.ts";
import { maskedAfter } from "../../src/generate/maskgit.ts";

/** `count` rows of V random logits (seeded), some ids forbidden by a constraint. */
function rows(count: number, v: number, seed: number): { logits: Float32Array; allowed: Float32Array }[] {
  const rng = hostRng(seed);
  return Array.from({ length: count }, () => ({
    logits: Float32Array.from({ length: v }, () => 4 * rng() - 2),
    allowed: Float32Array.from({ length: v }, () => (rng() < 0.2 ? -Infinity : 0)),
  }));
}

/** Every row sampled with one rng stream. */
function drawAll(rs: ReturnType<typeof rows>, opts: Parameters<typeof sampleToken>[2], seed: number): number[] {
  const rng = hostRng(seed);
  return rs.map((r) => sampleToken(Float32Array.from(r.logits), r.allowed, opts, rng));
}

describe("top-p (nucleus) sampling", () => {
  const rs = rows(400, 30, 1);

  it.each([0.5, 1, 2])("p = 1 equals plain sampling draw for draw (temperature %s, with and without top-k)", (temperature) => {
    for (const topK of [0, 7]) {
      const plain = drawAll(rs, { temperature, topK }, 5);
      expect(drawAll(rs, { temperature, topK, topP: 1 }, 5)).toEqual(plain);
      expect(new Set(plain).size).toBeGreaterThan(topK === 0 ? 15 : 6);
    }
  });

  it("a tiny p equals greedy", () => {
    const greedy = drawAll(rs, GREEDY, 5);
    for (const temperature of [0.3, 1, 5]) expect(drawAll(rs, { temperature, topK: 0, topP: 1e-9 }, 5)).toEqual(greedy);
  });

  it("keeps the smallest set of most likely tokens whose probability reaches p, in their renormalized proportions", () => {
    // probabilities 0.5, 0.3, 0.15, 0.05: p = 0.75 keeps the first two (0.8 ≥ 0.75), p = 0.85 the first three
    const logits = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
    const counts = (topP: number) => {
      const rng = hostRng(3);
      const c = [0, 0, 0, 0];
      for (let i = 0; i < 20_000; i++) c[sampleToken(Float32Array.from(logits), undefined, { temperature: 1, topK: 0, topP }, rng)]!++;
      return c.map((x) => x / 20_000);
    };
    const two = counts(0.75);
    expect(two[2]).toBe(0);
    expect(two[3]).toBe(0);
    expect(two[0]).toBeCloseTo(0.5 / 0.8, 1);
    const three = counts(0.85);
    expect(three[3]).toBe(0);
    expect(three[2]).toBeCloseTo(0.15 / 0.95, 1);
  });

  it("tokenProbability is the softmax at temperature 1 (forbidden ids have probability 0)", () => {
    const l = Float32Array.from([1, 2, -Infinity, 0]);
    const z = Math.E + Math.E ** 2 + 1;
    expect(tokenProbability(l, 1)).toBeCloseTo(Math.E ** 2 / z, 6);
    expect(tokenProbability(l, 2)).toBe(0);
  });

  it("bad options name the field, the value and what is allowed", () => {
    expect(() => checkSampling({ temperature: -1, topK: 0 })).toThrow("sampling.temperature: expected a finite number ≥ 0 (0 = greedy), got -1");
    expect(() => checkSampling({ temperature: 1, topK: 1.5 })).toThrow("sampling.topK: expected an integer ≥ 0 (0 = all tokens), got 1.5");
    expect(() => checkSampling({ temperature: 1, topK: 0, topP: 1.5 })).toThrow("sampling.topP: expected a number in (0, 1] (1 = all tokens), got 1.5");
  });
});

describe("schedules", () => {
  it("guidance: constant, or linear from 1 at the first step to s at the last", () => {
    expect([0, 1, 2, 3, 4].map((k) => guidanceScale(3, "linear", k, 5))).toEqual([1, 1.5, 2, 2.5, 3]);
    expect(guidanceScale(3, "linear", 0, 1)).toBe(3);
    expect(guidanceScale(3, "constant", 0, 5)).toBe(3);
  });

  it("MaskGIT's mask schedule: K = N linear reveals one token per step; cosine reaches 0 at the last step only", () => {
    let unknown = 49;
    for (let k = 0; k < 49; k++) {
      const after = maskedAfter(k, 49, 49, unknown, "linear");
      expect(unknown - after).toBe(1);
      unknown = after;
    }
    const cos = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => maskedAfter(k, 8, 49, 49, "cosine"));
    expect(cos).toEqual([48, 45, 40, 34, 27, 18, 9, 0]); // ⌊49·cos(π/2·(k+1)/8)⌋
    expect(maskedAfter(0, 8, 49, 3, "cosine")).toBe(2); // never more than unknown − 1
    expect(maskedAfter(6, 8, 49, 1, "cosine")).toBe(1); // nor fewer than 1 before the last step
  });
});
