/**
 * The DDIM update (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", eq. 12) over a
 * sub-sequence τ of the T training timesteps (§4.2), with the noise model ε̂ = ε_θ(x_t, t):
 *
 *   x̂_0      = (x_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t                                   "predicted x_0"
 *   σ_t(η)   = η·√((1 − ᾱ_prev)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_prev)                  eq. 16
 *   x_prev   = √ᾱ_prev·x̂_0 + √(1 − ᾱ_prev − σ_t²)·ε̂ + σ_t·z,  z ~ N(0, I)
 *
 * η = 0 is the deterministic DDIM sampler; η = 1 is DDPM's ancestral sampler on the respaced
 * schedule (σ² is then the posterior variance β̃ of the sub-sequence, what MAR samples with).
 * The coefficients are float64 on the host (one timestep pair per step, shared by every row);
 * diffusers' `DDIMScheduler.step` computes the same (test/fixtures/diffusion.json).
 *
 * Timestep spacing: "leading", the DDIM paper's own uniform sub-sequence (ermongroup/ddim:
 * `range(0, T, T // S)`) and diffusers' default: S steps i·⌊T/S⌋, i = S−1 … 0, then to ᾱ = 1, so
 * t_prev = t − ⌊T/S⌋ as diffusers' `step` assumes. Not "linspace" / "trailing" (improved-diffusion's
 * respacing, which MAR uses; Lin et al. 2024), which start at T−1. The pitfall there: the cosine
 * schedule's clipped last β leaves ᾱ_{T−1} ≈ 2.4e-9, so x̂_0 at T−1 is ε̂'s error times
 * 1/√ᾱ ≈ 2·10⁴, and a head that is not nearly exact at that one timestep throws its samples to
 * ~10³ in the first step. "leading" starts at T − ⌊T/S⌋ (1/√ᾱ ≈ 13 at S = 20) from x ~ N(0, I),
 * ignoring the √ᾱ·x_0 ≈ 0.08·x_0 still in x_t there. Its own price: few steps start low (S = 2 at
 * t = 500, S = 1 at t = 0, i.e. no denoising), so use S ≥ ~10.
 */
import { np, type Array, type DType } from "../../engine/index.ts";
import { fmt } from "../../nn/shapes.ts";
import { alphaBar, type DiffusionSchedule } from "./diffusion-schedule.ts";

/** The S timesteps a sampler visits, noisiest first: "leading" spacing, i·⌊T/S⌋ for i = S−1 … 0. */
export function samplingTimesteps(schedule: DiffusionSchedule, steps: number): number[] {
  const t = schedule.steps;
  if (!Number.isInteger(steps) || steps < 1 || steps > t) throw new Error(`sampling steps: expected an integer in [1, ${t}] (the schedule's T), got ${JSON.stringify(steps)}`);
  const ratio = Math.floor(t / steps);
  return globalThis.Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio);
}

/** The scalars of one DDIM step t → t_prev (host float64). */
export type DdimCoefficients = {
  readonly alphaBar: number;
  readonly alphaBarPrev: number;
  /** σ_t(η) */
  readonly sigma: number;
  /** √(1 − ᾱ_prev − σ_t²), the weight of ε̂ in the "direction pointing to x_t" */
  readonly direction: number;
};

/** DDIM's coefficients for t → tPrev (tPrev = −1: to x_0, ᾱ = 1) at η ∈ [0, 1]. */
export function ddimCoefficients(schedule: DiffusionSchedule, t: number, tPrev: number, eta: number): DdimCoefficients {
  if (!(eta >= 0 && eta <= 1)) throw new Error(`ddim: eta must be in [0, 1] (0 = deterministic DDIM, 1 = DDPM), got ${JSON.stringify(eta)}`);
  if (!(t >= 0 && tPrev < t)) throw new Error(`ddim: expected −1 ≤ tPrev < t, t ≥ 0 (a step toward x_0), got t = ${t}, tPrev = ${tPrev}`);
  const a = alphaBar(schedule, t);
  const ap = alphaBar(schedule, tPrev);
  const sigma = eta * Math.sqrt(((1 - ap) / (1 - a)) * (1 - a / ap));
  // 1 − ᾱ_prev − σ² ≥ 0 in exact arithmetic (σ² ≤ 1 − ᾱ_prev); clamp the rounding
  return { alphaBar: a, alphaBarPrev: ap, sigma, direction: Math.sqrt(Math.max(0, 1 - ap - sigma * sigma)) };
}

/**
 * The step's scalars as one array k = [1/√ᾱ_t, √(1 − ᾱ_t), √ᾱ_prev, √(1 − ᾱ_prev − σ_t²), λ·σ_t] [5]
 * in `dtype`, computed in float64; λ scales the injected noise (a sampler's temperature). As an
 * array argument it lets one `jit` of a sampler step serve every timestep.
 */
export function ddimScalars(c: DdimCoefficients, dtype: DType = np.float32, noiseScale = 1): Array {
  const k = [1 / Math.sqrt(c.alphaBar), Math.sqrt(1 - c.alphaBar), Math.sqrt(c.alphaBarPrev), c.direction, noiseScale * c.sigma];
  return dtype === np.float64 ? np.array(Float64Array.from(k), { dtype }) : np.array(Float32Array.from(k)).astype(dtype);
}

/**
 * One DDIM step (eq. 12) from the scalars k [5] (`ddimScalars`); traceable. xt, epsHat, noise:
 * [..., D] alike (noise is multiplied by λ·σ_t: zeros, or absent, when σ_t = 0). Returns x_prev and
 * x̂_0. Consumes all.
 *
 * `clip` c: x̂_0 is clipped to [−c, c] and ε̂ recomputed from it, ε̂ = (x_t − √ᾱ_t·x̂_0)/√(1 − ᾱ_t)
 * (diffusers' `clip_sample`). Data known to lie in [−1, 1], as pixels do, then cannot leave it: at
 * the noisiest steps 1/√ᾱ_t multiplies ε̂'s error (and guidance's extrapolation) many times over,
 * and without the clip a whole-image denoiser saturates its samples to black and white.
 */
export function ddimUpdate(xt: Array, epsHat: Array, k: Array, noise?: Array, clip?: number): { prev: Array; x0: Array } {
  const at = (i: number) => k.ref.slice(i);
  let x0 = xt.ref.sub(epsHat.ref.mul(at(1))).mul(at(0)); // x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t
  if (clip !== undefined) {
    x0 = np.clip(x0, -clip, clip);
    epsHat.dispose();
    epsHat = xt.sub(x0.ref.div(at(0))).div(at(1));
  } else xt.dispose();
  let prev = x0.ref.mul(at(2)).add(epsHat.mul(at(3)));
  if (noise) prev = prev.add(noise.mul(at(4)));
  k.dispose();
  return { prev, x0 };
}

/**
 * One DDIM step with host coefficients. xt, epsHat: [..., D] alike; noise: z of the same shape,
 * required when σ_t > 0. Returns x_prev and x̂_0. Consumes xt, epsHat and noise.
 */
export function ddimStep(xt: Array, epsHat: Array, c: DdimCoefficients, noise?: Array, clip?: number): { prev: Array; x0: Array } {
  if (fmt(xt.shape) !== fmt(epsHat.shape)) throw new Error(`ddimStep: x_t ${fmt(xt.shape)} and ε̂ ${fmt(epsHat.shape)} differ in shape`);
  if (noise && fmt(noise.shape) !== fmt(xt.shape)) throw new Error(`ddimStep: noise ${fmt(noise.shape)} must match x_t ${fmt(xt.shape)}`);
  if (c.sigma > 0 && !noise) throw new Error(`ddimStep: σ_t = ${c.sigma} > 0 (η > 0) needs noise`);
  return ddimUpdate(xt, epsHat, ddimScalars(c, xt.dtype), noise, clip);
}
