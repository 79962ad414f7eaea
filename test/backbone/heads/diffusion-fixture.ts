import { readFileSync } from "node:fs";

/** A tensor as reference/diffusion.py writes it. */
export type Tensor = { shape: number[]; data: number[] };

/** test/fixtures/diffusion.json (reference/diffusion.py: numpy, float64, diffusers' formulas). */
export type DiffusionFixture = {
  T: number;
  schedule: { t: number[]; alphaBar: number[]; beta: number[] };
  qSample: { t: number; shape: number[]; x0: number[]; eps: number[]; xt: number[] }[];
  ddim: { t: number; tPrev: number; eta: number; shape: number[]; xt: number[]; epsHat: number[]; noise: number[]; prev: number[]; x0: number[]; sigma: number }[];
  timesteps: { steps: number; timesteps: number[] }[];
  head: {
    config: { tokenDim: number; conditionDim: number; width: number; depth: number; steps: number; frequencyDim: number };
    /** the head's parameter tree, every leaf a Tensor */
    params: unknown;
    x: number[];
    t: number[];
    z: number[];
    timeEmbedding: number[];
    eps: number[];
  };
};

export const fixture = JSON.parse(readFileSync(new URL("../../fixtures/diffusion.json", import.meta.url), "utf8")) as DiffusionFixture;

/** Largest |a − b| / max(1, |b|). */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return worst;
}
