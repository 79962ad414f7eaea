import { beforeAll, describe, expect, it } from "vitest";
import { startEngine } from "../../../src/engine/index.ts";
import { alphaBar, checkDiffusionSteps, cosineSchedule, qSample, qSampleAt } from "../../../src/backbone/heads/diffusion-schedule.ts";
import { f32, f64, flat, ints } from "../../helpers/fixtures.ts";
import { fixture, maxRelDiff } from "./diffusion-fixture.ts";

beforeAll(startEngine);

const schedule = cosineSchedule(fixture.T);

describe("the cosine schedule (Nichol & Dhariwal 2021, §3.2) against reference/diffusion.py", () => {
  it("ᾱ_t and β_t at T = 1000 match diffusers' squaredcos_cap_v2 to float64 rounding", () => {
    const { t, alphaBar: want, beta } = fixture.schedule;
    const a = t.map((s) => alphaBar(schedule, s));
    const b = t.map((s) => schedule.betas[s]!);
    const relA = Math.max(...a.map((v, i) => Math.abs(v / want[i]! - 1)));
    const relB = Math.max(...b.map((v, i) => Math.abs(v / beta[i]! - 1)));
    console.log(`schedule: max relative difference ᾱ ${relA.toExponential(2)}, β ${relB.toExponential(2)} over t = ${t.join(", ")}`);
    expect(relA).toBeLessThan(1e-12);
    expect(relB).toBeLessThan(1e-12);
  });

  it("is the paper's ᾱ(t) = f(t)/f(0) until the clipped last step, decreasing from ≈ 1", () => {
    const f = (u: number) => Math.cos(((u + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    for (const t of [0, 1, 100, 500, 900, 998]) expect(Math.abs(schedule.alphasCumprod[t]! / (f((t + 1) / 1000) / f(0)) - 1)).toBeLessThan(1e-11);
    expect(schedule.betas[999]).toBe(0.999); // f(1) = 0 would make β = 1
    expect(schedule.betas.slice(0, 999).every((b) => b < 0.999)).toBe(true);
    expect(schedule.alphasCumprod.every((a, i) => i === 0 || a < schedule.alphasCumprod[i - 1]!)).toBe(true);
    expect(alphaBar(schedule, -1)).toBe(1);
  });

  it("bad step counts and timesteps give clear errors", () => {
    expect(() => cosineSchedule(0)).toThrow("diffusion steps: expected an integer T in [1, 1048576], got 0");
    expect(() => checkDiffusionSteps(2.5, "cfg.steps")).toThrow("cfg.steps: expected an integer T");
    expect(() => alphaBar(schedule, 1000)).toThrow("diffusion timestep: expected an integer in [-1, 999], got 1000");
    expect(() => alphaBar(schedule, -2)).toThrow("got -2");
  });
});

describe("the forward process q(x_t | x_0) against reference/diffusion.py", () => {
  it("qSample (one timestep per row, float32 tables) and qSampleAt (float64) match add_noise", () => {
    let worst32 = 0;
    let worst64 = 0;
    for (const c of fixture.qSample) {
      const [n] = c.shape;
      const xt = flat(qSample(schedule, f32(c.x0, c.shape), f32(c.eps, c.shape), ints(new Array(n).fill(c.t), [n])));
      worst32 = Math.max(worst32, maxRelDiff(xt, c.xt));
      worst64 = Math.max(worst64, maxRelDiff(flat(qSampleAt(schedule, f64(c.x0, c.shape), f64(c.eps, c.shape), c.t)), c.xt));
    }
    console.log(`q_sample: max difference ${worst32.toExponential(2)} (float32), ${worst64.toExponential(2)} (float64) over t = ${fixture.qSample.map((c) => c.t).join(", ")}`);
    expect(worst32).toBeLessThan(1e-6);
    expect(worst64).toBeLessThan(1e-12);
  });

  it("qSample reads each row's own timestep", () => {
    const cases = fixture.qSample;
    const d = cases[0]!.shape[1]!;
    // row i of the batch: row 0 of case i, at that case's t
    const rows = (key: "x0" | "eps" | "xt") => cases.flatMap((c) => c[key].slice(0, d));
    const xt = flat(qSample(schedule, f32(rows("x0"), [cases.length, d]), f32(rows("eps"), [cases.length, d]), ints(cases.map((c) => c.t), [cases.length])));
    expect(maxRelDiff(xt, rows("xt"))).toBeLessThan(1e-6);
  });

  it("checks shapes", () => {
    expect(() => qSample(schedule, f32([1, 2], [1, 2]), f32([1, 2, 3], [1, 3]), ints([0], [1]))).toThrow("qSample: expected x0 and eps [N, D] alike, got [1, 2] and [1, 3]");
    expect(() => qSample(schedule, f32([1, 2], [1, 2]), f32([1, 2], [1, 2]), ints([0, 1], [2]))).toThrow("expected t [1] (one timestep per row), got [2]");
  });
});
