import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromHost, np, startEngine, tree, type Array as JaxArray } from "../../src/engine/index.ts";
import { hostRng, KeyStream } from "../../src/engine/rng.ts";
import { initDiffusionHead, type DiffusionHeadConfig, type DiffusionHeadParams } from "../../src/backbone/heads/diffusion-head.ts";
import { ddimCoefficients, samplingTimesteps } from "../../src/backbone/heads/ddim.ts";
import { cosineSchedule } from "../../src/backbone/heads/diffusion-schedule.ts";
import { checkDiffusionSampling, ddimSample, sampleDiffusion, type DiffusionSampling, type NoisePredictor } from "../../src/generate/diffusion.ts";
import { diffusionLoss, type DiffusionBatch } from "../../src/train/diffusion-loss.ts";
import { DEFAULT_ADAMW } from "../../src/train/optim.ts";
import { Trainer } from "../../src/train/step.ts";

beforeAll(startEngine);

const schedule = cosineSchedule(1000);
const CFG: DiffusionHeadConfig = { tokenDim: 2, conditionDim: 3, width: 64, depth: 2, steps: 1000, frequencyDim: 32 };
/** conditions: one-hot A, one-hot B, and ∅ (the unconditional one, as MAR's class dropout trains it) */
const ONE_HOT = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
];

type Clusters = { centers: [number, number][]; std: number };

/** Standard normal pairs from a host rng (Box–Muller). */
function gaussian(rng: () => number): [number, number] {
  const r = Math.sqrt(-2 * Math.log(1 - rng()));
  const a = 2 * Math.PI * rng();
  return [r * Math.cos(a), r * Math.sin(a)];
}

/** Trains a fresh head on two 2-D Gaussian clusters, one per condition, 10% of conditions dropped to ∅. */
async function train(data: Clusters, steps: number, seed = 0): Promise<{ params: DiffusionHeadParams; first: number; last: number; seconds: number }> {
  const keys = new KeyStream(seed);
  const trainer = new Trainer(initDiffusionHead(keys, CFG), (p, b) => diffusionLoss(p as DiffusionHeadParams, b as DiffusionBatch, schedule, { multiplier: 4 }), { ...DEFAULT_ADAMW, weightDecay: 0 });
  const rng = hostRng(seed + 1);
  const n = 128;
  let first = 0;
  let last = 0;
  const started = performance.now();
  for (let step = 0; step < steps; step++) {
    const x = new Float32Array(n * 2);
    const z = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      const c = i % 2;
      const [a, b] = gaussian(rng);
      x[2 * i] = data.centers[c]![0] + data.std * a;
      x[2 * i + 1] = data.centers[c]![1] + data.std * b;
      z.set(ONE_HOT[rng() < 0.1 ? 2 : c]!, 3 * i);
    }
    const lr = 3e-3 * Math.min(1, (steps - step) / (0.3 * steps)); // linear decay over the last 30%
    const r = await trainer.step({ x: fromHost(x, [n, 2]), z: fromHost(z, [n, 3]), key: keys.next() } as never, lr);
    if (step === 0) first = r.loss;
    last = 0.9 * last + 0.1 * r.loss;
  }
  const params = trainer.params as DiffusionHeadParams;
  trainer.params = {};
  trainer.dispose();
  keys.dispose();
  return { params, first, last, seconds: (performance.now() - started) / 1000 };
}

/** n samples for condition c (0 = A, 1 = B) → [x, y] pairs. */
function sample(p: DiffusionHeadParams, c: number, n: number, opts: DiffusionSampling, seed: number): [number, number][] {
  const keys = new KeyStream(seed);
  const z = fromHost(Float32Array.from({ length: n * 3 }, (_, i) => ONE_HOT[c]![i % 3]!), [n, 3]);
  const uncond = fromHost(Float32Array.from(ONE_HOT[2]!), [1, 3]);
  const { x } = sampleDiffusion(p, z, schedule, keys, opts, uncond);
  keys.dispose();
  const v = x.dataSync() as Float32Array;
  return Array.from({ length: n }, (_, i) => [v[2 * i]!, v[2 * i + 1]!]);
}

const dist = (a: readonly number[], b: readonly number[]) => Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!);
/** Share of samples nearer center `own` than the other one. */
const nearerOwn = (xs: [number, number][], data: Clusters, own: number) => xs.filter((x) => dist(x, data.centers[own]!) < dist(x, data.centers[1 - own]!)).length / xs.length;

/** Mean and per-axis standard deviation (pooled over both axes) of 2-D points. */
function stats(xs: [number, number][]): { mean: [number, number]; std: number } {
  const mean: [number, number] = [xs.reduce((s, x) => s + x[0], 0) / xs.length, xs.reduce((s, x) => s + x[1], 0) / xs.length];
  return { mean, std: Math.sqrt(xs.reduce((s, x) => s + dist(x, mean) ** 2, 0) / xs.length / 2) };
}

describe("the sampling loop with the exact noise predictor of a Gaussian", () => {
  // data N(μ, s²I): x_t ~ N(√ᾱ·μ, ᾱs² + 1 − ᾱ), so E[ε | x_t] = √(1 − ᾱ)·(x_t − √ᾱ·μ)/(ᾱs² + 1 − ᾱ)
  const mu = [1, -0.5];
  const sd = 0.3;
  const exact: NoisePredictor<{ mu: JaxArray }> = ({ mu }, x, t) => {
    const table = fromHost(Float32Array.from(schedule.alphasCumprod), [schedule.steps]);
    const a = np.take(table, t.astype(np.int32), 0); // ᾱ_t, a scalar
    const variance = a.ref.mul(sd * sd).add(np.subtract(1, a.ref));
    return x.sub(mu.mul(np.sqrt(a.ref))).mul(np.sqrt(np.subtract(1, a))).div(variance);
  };
  const draw = (opts: DiffusionSampling, seed = 1, n = 4000) => {
    const keys = new KeyStream(seed);
    const ctx = { mu: fromHost(Float32Array.from(mu), [1, 2]) };
    const { x } = ddimSample(exact, ctx, [n, 2], schedule, keys, opts);
    tree.dispose(ctx);
    keys.dispose();
    const v = x.dataSync() as Float32Array;
    return Array.from({ length: n }, (_, i): [number, number] => [v[2 * i]!, v[2 * i + 1]!]);
  };

  /**
   * The oracle: with this ε̂ every step is affine in x plus independent noise, so the output's
   * mean and variance per coordinate follow exactly from x ~ N(0, 1), in float64 on the host.
   */
  function implied(opts: { steps: number; eta: number }): { mean: number[]; std: number } {
    const ts = samplingTimesteps(schedule, opts.steps);
    let gain = 1; // x = gain·x_start + offset·μ + noise of variance `extra`
    let offset = 0;
    let extra = 0;
    ts.forEach((t, i) => {
      const c = ddimCoefficients(schedule, t, ts[i + 1] ?? -1, opts.eta);
      const a = c.alphaBar;
      const k = Math.sqrt(1 - a) / (a * sd * sd + 1 - a); // ε̂ = k·(x − √ᾱ·μ)
      // x̂_0 = (x − √(1 − ᾱ)·ε̂)/√ᾱ; x_prev = √ᾱ_prev·x̂_0 + direction·ε̂ + σ·z
      const onX = (Math.sqrt(c.alphaBarPrev) * (1 - Math.sqrt(1 - a) * k)) / Math.sqrt(a) + c.direction * k;
      const onMu = Math.sqrt(c.alphaBarPrev) * Math.sqrt(1 - a) * k - c.direction * k * Math.sqrt(a);
      gain *= onX;
      offset = offset * onX + onMu;
      extra = extra * onX * onX + c.sigma * c.sigma;
    });
    return { mean: mu.map((m) => offset * m), std: Math.sqrt(gain * gain + extra) };
  }

  it.each([
    [20, 0],
    [20, 1],
    [50, 0],
    [50, 1],
  ])("draws the distribution its steps imply (%i steps, η = %i)", (steps, eta) => {
    const opts = { steps, eta };
    const { mean, std } = stats(draw(opts));
    const want = implied(opts);
    console.log(`exact ε, ${opts.steps} steps, η = ${opts.eta}: mean (${mean.map((v) => v.toFixed(3)).join(", ")}), std ${std.toFixed(4)}; implied (${want.mean.map((v) => v.toFixed(3)).join(", ")}), ${want.std.toFixed(4)}; data (1, -0.5), 0.3`);
    expect(dist(mean, want.mean)).toBeLessThan(0.02);
    expect(Math.abs(std / want.std - 1)).toBeLessThan(0.03);
  });

  it("converges to the data with many steps", () => {
    const { mean, std } = stats(draw({ steps: 250 }));
    console.log(`exact ε, 250 steps, η = 0: mean (${mean.map((v) => v.toFixed(3)).join(", ")}), std ${std.toFixed(4)}; implied ${implied({ steps: 250, eta: 0 }).std.toFixed(4)}`);
    expect(dist(mean, mu)).toBeLessThan(0.02);
    expect(Math.abs(std / sd - 1)).toBeLessThan(0.03);
  });
});

describe("a head trained on two separated clusters (std 0.15), one per condition", () => {
  const data: Clusters = { centers: [[1.5, 0.5], [-1, -1]], std: 0.15 };
  let params: DiffusionHeadParams;
  beforeAll(async () => {
    const run = await train(data, 300);
    params = run.params;
    console.log(`separated clusters: 300 steps in ${run.seconds.toFixed(1)} s, loss ${run.first.toFixed(3)} → ${run.last.toFixed(4)}`);
    expect(run.first).toBeGreaterThan(0.8); // ε̂ ≡ 0 at init: E‖ε‖²/D = 1
    expect(run.last).toBeLessThan(0.35);
  });
  afterAll(() => tree.dispose(params));

  it.each([0, 1])("DDIM (20 steps, η = %i) puts ≥ 95% of each condition's samples nearer its own cluster", (eta) => {
    for (const c of [0, 1]) {
      const xs = sample(params, c, 200, { steps: 20, eta }, 7);
      const { mean, std } = stats(xs);
      console.log(`η = ${eta}, condition ${"AB"[c]}: ${(100 * nearerOwn(xs, data, c)).toFixed(1)}% nearer own, mean (${mean.map((v) => v.toFixed(3)).join(", ")}), std ${std.toFixed(3)}`);
      expect(nearerOwn(xs, data, c)).toBeGreaterThanOrEqual(0.95);
      expect(dist(mean, data.centers[c]!)).toBeLessThan(0.1);
      // DDPM-like sampling (η = 1) recovers the cluster's spread; 20 deterministic steps of a
      // briefly trained head widen it
      if (eta === 1) expect(std).toBeGreaterThan(0.1), expect(std).toBeLessThan(0.2);
      else expect(std).toBeLessThan(0.5);
    }
  });

  it("temperature scales only the injected noise: no effect at η = 0, τ < 1 narrows the samples at η = 1", () => {
    expect(sample(params, 0, 100, { steps: 20, temperature: 0.3 }, 3)).toEqual(sample(params, 0, 100, { steps: 20 }, 3));
    const wide = stats(sample(params, 0, 200, { steps: 20, eta: 1 }, 3)).std;
    const narrow = stats(sample(params, 0, 200, { steps: 20, eta: 1, temperature: 0.5 }, 3)).std;
    console.log(`η = 1: std ${wide.toFixed(3)} at τ = 1, ${narrow.toFixed(3)} at τ = 0.5`);
    expect(narrow).toBeLessThan(0.9 * wide);
  });

  it("is deterministic for a seed, and the seed matters", () => {
    const opts = { steps: 10, eta: 1 };
    const a = sample(params, 1, 50, opts, 11);
    expect(sample(params, 1, 50, opts, 11)).toEqual(a);
    expect(sample(params, 1, 50, opts, 12)).not.toEqual(a);
  });
});

describe("classifier-free guidance on a head trained on two overlapping clusters (±0.5, std 0.4)", () => {
  const data: Clusters = { centers: [[0.5, 0], [-0.5, 0]], std: 0.4 };
  /** the share of a cluster's own samples nearer its center: Φ(0.5 / 0.4) */
  const bayes = 0.8944;
  let params: DiffusionHeadParams;
  beforeAll(async () => {
    const run = await train(data, 300);
    params = run.params;
    console.log(`overlapping clusters: 300 steps in ${run.seconds.toFixed(1)} s, loss ${run.first.toFixed(3)} → ${run.last.toFixed(4)}`);
  });
  afterAll(() => tree.dispose(params));

  /** Mean signed position along the axis from the other center to its own, 0 at the midpoint. */
  const along = (xs: [number, number][], c: number) => xs.reduce((s, x) => s + (c === 0 ? x[0] : -x[0]), 0) / xs.length;

  it("s = 0 is the unconditional head (the same samples for both conditions, half near each), s = 1 the conditional one, s = 3 pushes further", () => {
    const opts = (guidance: number): DiffusionSampling => ({ steps: 20, guidance });
    expect(sample(params, 0, 400, opts(0), 5)).toEqual(sample(params, 1, 400, opts(0), 5));
    for (const c of [0, 1]) {
      const [u, one, three] = [0, 1, 3].map((g) => sample(params, c, 400, opts(g), 5));
      const share = [u, one, three].map((xs) => nearerOwn(xs!, data, c));
      const pos = [u, one, three].map((xs) => along(xs!, c));
      console.log(`condition ${"AB"[c]}: nearer own ${share.map((v) => v.toFixed(3)).join(" / ")} and mean along the axis ${pos.map((v) => v.toFixed(3)).join(" / ")} at s = 0 / 1 / 3`);
      expect(Math.abs(share[0]! - 0.5)).toBeLessThan(0.15);
      expect(Math.abs(share[1]! - bayes)).toBeLessThan(0.06);
      expect(share[2]!).toBeGreaterThan(share[1]! + 0.03);
      expect(Math.abs(pos[1]! - 0.5)).toBeLessThan(0.1);
      expect(pos[2]!).toBeGreaterThan(pos[1]! + 0.2);
    }
  });
});

describe("sampling options", () => {
  it("bad options and shapes give clear errors", () => {
    const p = initDiffusionHead(new KeyStream(0), CFG);
    const z = () => fromHost(new Float32Array(6), [2, 3]);
    const run = (opts: DiffusionSampling, cond = z(), uncond?: JaxArray) => () => sampleDiffusion(p, cond, schedule, new KeyStream(0), opts, uncond);
    expect(run({ steps: 0 })).toThrow("diffusion sampling.steps: expected an integer in [1, 1000] (the schedule's T), got 0");
    expect(run({ steps: 1001 })).toThrow("[1, 1000]");
    expect(run({ steps: 10, eta: 2 })).toThrow("diffusion sampling.eta: expected a number in [0, 1]");
    expect(run({ steps: 10, temperature: 0 })).toThrow("diffusion sampling.temperature: expected a finite number > 0, got 0");
    expect(run({ steps: 10, guidance: Number.NaN })).toThrow("diffusion sampling.guidance");
    expect(run({ steps: 10, guidance: 2 })).toThrow("guidance 2 ≠ 1 needs the unconditional condition (uncond [2, 3])");
    expect(run({ steps: 10 }, fromHost(new Float32Array(4), [2, 2]))).toThrow("expected z [N, 3], got [2, 2]");
    expect(run({ steps: 10, guidance: 2 }, z(), fromHost(new Float32Array(9), [3, 3]))).toThrow("expected uncond [2, 3] or [1, 3], got [3, 3]");
    expect(() => checkDiffusionSampling({ steps: 2.5 }, schedule)).toThrow("got 2.5");
    tree.dispose(p);
  });
});
