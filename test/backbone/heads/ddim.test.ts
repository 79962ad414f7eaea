import { beforeAll, describe, expect, it } from "vitest";
import { startEngine } from "../../../src/engine/index.ts";
import { ddimCoefficients, ddimStep, samplingTimesteps } from "../../../src/backbone/heads/ddim.ts";
import { cosineSchedule, qSampleAt } from "../../../src/backbone/heads/diffusion-schedule.ts";
import { f32, f64, flat } from "../../helpers/fixtures.ts";
import { fixture, maxRelDiff } from "./diffusion-fixture.ts";

beforeAll(startEngine);

const schedule = cosineSchedule(fixture.T);

describe("DDIM (Song et al. 2021, eq. 12) against diffusers' DDIMScheduler.step (reference/diffusion.py)", () => {
  it("the 'leading' sub-sequences equal set_timesteps'", () => {
    for (const c of fixture.timesteps) expect(samplingTimesteps(schedule, c.steps)).toEqual(c.timesteps);
    expect(() => samplingTimesteps(schedule, 0)).toThrow("sampling steps: expected an integer in [1, 1000]");
  });

  it("σ_t(η), x̂_0 and x_prev match for η = 0, 0.5, 1 (float64 and float32)", () => {
    const worst = { sigma: 0, f64: 0, f32: 0 };
    for (const c of fixture.ddim) {
      const k = ddimCoefficients(schedule, c.t, c.tPrev, c.eta);
      worst.sigma = Math.max(worst.sigma, Math.abs(k.sigma - c.sigma));
      const noise = c.eta > 0 ? c.noise : undefined;
      const d = ddimStep(f64(c.xt, c.shape), f64(c.epsHat, c.shape), k, noise && f64(noise, c.shape));
      worst.f64 = Math.max(worst.f64, maxRelDiff(flat(d.prev), c.prev), maxRelDiff(flat(d.x0), c.x0));
      const s = ddimStep(f32(c.xt, c.shape), f32(c.epsHat, c.shape), k, noise && f32(noise, c.shape));
      worst.f32 = Math.max(worst.f32, maxRelDiff(flat(s.prev), c.prev), maxRelDiff(flat(s.x0), c.x0));
    }
    console.log(`ddim (${fixture.ddim.length} cases): max |Δσ| ${worst.sigma.toExponential(2)}, max relative difference ${worst.f64.toExponential(2)} (float64), ${worst.f32.toExponential(2)} (float32)`);
    expect(worst.sigma).toBeLessThan(1e-13);
    expect(worst.f64).toBeLessThan(1e-9);
    expect(worst.f32).toBeLessThan(1e-4);
  });

  it("η = 0 with the true ε moves x_t exactly to q(x_prev | x_0) with the same ε", () => {
    const x0 = [0.3, -1.2, 2];
    const eps = [1.1, 0.4, -0.7];
    for (const [t, tPrev] of [[950, 900], [500, 450], [50, 0], [0, -1]] as const) {
      const xt = flat(qSampleAt(schedule, f64(x0, [1, 3]), f64(eps, [1, 3]), t));
      const { prev, x0: x0Hat } = ddimStep(f64(xt, [1, 3]), f64(eps, [1, 3]), ddimCoefficients(schedule, t, tPrev, 0));
      expect(maxRelDiff(flat(x0Hat), x0)).toBeLessThan(1e-9);
      const want = tPrev < 0 ? x0 : flat(qSampleAt(schedule, f64(x0, [1, 3]), f64(eps, [1, 3]), tPrev));
      expect(maxRelDiff(flat(prev), want)).toBeLessThan(1e-9);
    }
  });

  it("clip: x̂_0 clipped to [−c, c] and ε̂ recomputed from it (diffusers' clip_sample), the rest untouched", () => {
    const xt = [2.5, -0.2, 0.9, -3];
    const eps = [-1.4, 0.3, 0.1, 1.6];
    for (const [t, tPrev, eta] of [[900, 850, 0], [400, 300, 1]] as const) {
      const c = ddimCoefficients(schedule, t, tPrev, eta);
      const noise = [0.5, -0.25, 1, 0];
      const { prev, x0 } = ddimStep(f64(xt, [1, 4]), f64(eps, [1, 4]), c, f64(noise, [1, 4]), 1);
      // the oracle, on the host in float64
      const [sa, s1a] = [Math.sqrt(c.alphaBar), Math.sqrt(1 - c.alphaBar)];
      const x0c = xt.map((x, i) => Math.min(1, Math.max(-1, (x - s1a * eps[i]!) / sa)));
      const e2 = xt.map((x, i) => (x - sa * x0c[i]!) / s1a);
      const want = x0c.map((v, i) => Math.sqrt(c.alphaBarPrev) * v + c.direction * e2[i]! + c.sigma * noise[i]!);
      const got = flat(x0);
      expect(maxRelDiff(got, x0c)).toBeLessThan(1e-9);
      expect(maxRelDiff(flat(prev), want)).toBeLessThan(1e-9);
      expect(Math.max(...got.map(Math.abs))).toBeLessThanOrEqual(1);
      expect(x0c.some((v) => Math.abs(v) === 1)).toBe(true); // the case does clip
      // an x̂_0 already inside [−c, c] is not changed by the clip
      const inside = flat(qSampleAt(schedule, f64([0.3, -0.5, 0.9, 0], [1, 4]), f64(eps, [1, 4]), t));
      const a = ddimStep(f64(inside, [1, 4]), f64(eps, [1, 4]), c, f64(noise, [1, 4]), 1);
      const b = ddimStep(f64(inside, [1, 4]), f64(eps, [1, 4]), c, f64(noise, [1, 4]));
      expect(maxRelDiff(flat(a.prev), flat(b.prev))).toBeLessThan(1e-9);
    }
  });

  it("bad steps give clear errors", () => {
    expect(() => ddimCoefficients(schedule, 10, 20, 0)).toThrow("ddim: expected −1 ≤ tPrev < t, t ≥ 0 (a step toward x_0), got t = 10, tPrev = 20");
    expect(() => ddimCoefficients(schedule, 10, 5, 1.5)).toThrow("ddim: eta must be in [0, 1] (0 = deterministic DDIM, 1 = DDPM), got 1.5");
    expect(() => ddimCoefficients(schedule, 1000, 5, 0)).toThrow("diffusion timestep: expected an integer in [-1, 999], got 1000");
    expect(() => ddimStep(f32([1], [1, 1]), f32([1], [1, 1]), ddimCoefficients(schedule, 10, 5, 1))).toThrow("needs noise");
    expect(() => ddimStep(f32([1, 2], [1, 2]), f32([1], [1, 1]), ddimCoefficients(schedule, 10, 5, 0))).toThrow("ddimStep: x_t [1, 2] and ε̂ [1, 1] differ in shape");
  });
});
