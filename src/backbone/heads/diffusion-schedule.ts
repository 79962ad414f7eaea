/**
 * The diffusion process of a continuous-token head (DDPM, Ho et al. 2020, "Denoising Diffusion
 * Probabilistic Models"): a fixed noise schedule and the forward process q(x_t | x_0), shared by
 * the training loss (train/diffusion-loss.ts) and the sampler (generate/diffusion.ts).
 *
 * Cosine schedule (Nichol & Dhariwal 2021, "Improved Denoising Diffusion Probabilistic Models",
 * §3.2, eq. 17): ᾱ(u) = f(u)/f(0), f(u) = cos²((u + s)/(1 + s) · π/2), s = 0.008, and
 * β_t = 1 − ᾱ(t/T)/ᾱ((t−1)/T) clipped at 0.999, which only the last step reaches (f(1) = 0 would
 * make β_T = 1 and x_T carry nothing of x_0, but also divide by zero in x̂_0). ᾱ_t is then the
 * product of the clipped (1 − β); this is what MAR (via improved-diffusion) and diffusers'
 * "squaredcos_cap_v2" compute.
 *
 * Indexing: timesteps are 0-based, t ∈ {0, …, T−1}, as in diffusers, improved-diffusion and MAR;
 * index t is the paper's step t + 1, so ᾱ[0] = f(1/T)/f(0) < 1 and "t = −1" means x_0 itself
 * (ᾱ = 1). The tables are float64 on the host: β_t near t = 0 is ~4e-5, below float32's resolution
 * of 1 − β, and ᾱ[T−1] ≈ 2.4e-9.
 */
import { fromHost, np, type Array } from "../../engine/index.ts";
import { fmt } from "../../nn/shapes.ts";

/** s of the cosine schedule: keeps β_1 from being vanishingly small (Nichol & Dhariwal, §3.2). */
const COSINE_OFFSET = 0.008;
/** The clip on β_t (Nichol & Dhariwal, §3.2: "to prevent singularities at the end"). */
const MAX_BETA = 0.999;
/** Bound on T before any table is allocated. */
const MAX_STEPS = 1 << 20;

export type DiffusionSchedule = {
  /** T, the number of diffusion steps (timesteps 0..T−1). */
  readonly steps: number;
  /** β_t, t = 0..T−1. */
  readonly betas: Float64Array;
  /** ᾱ_t = Π_{s ≤ t} (1 − β_s), t = 0..T−1. */
  readonly alphasCumprod: Float64Array;
};

/** Throws, naming the value, unless `steps` is a valid T. */
export function checkDiffusionSteps(steps: unknown, where = "diffusion steps"): asserts steps is number {
  if (!Number.isInteger(steps) || (steps as number) < 1 || (steps as number) > MAX_STEPS) throw new Error(`${where}: expected an integer T in [1, ${MAX_STEPS}], got ${JSON.stringify(steps)}`);
}

/** The cosine schedule of T steps (Nichol & Dhariwal 2021, eq. 17, β clipped at 0.999). */
export function cosineSchedule(steps: number): DiffusionSchedule {
  checkDiffusionSteps(steps);
  const f = (u: number) => Math.cos(((u + COSINE_OFFSET) / (1 + COSINE_OFFSET)) * (Math.PI / 2)) ** 2;
  const betas = new Float64Array(steps);
  const alphasCumprod = new Float64Array(steps);
  let product = 1;
  for (let t = 0; t < steps; t++) {
    betas[t] = Math.min(1 - f((t + 1) / steps) / f(t / steps), MAX_BETA);
    product *= 1 - betas[t]!;
    alphasCumprod[t] = product;
  }
  return { steps, betas, alphasCumprod };
}

/** ᾱ_t, with ᾱ_{−1} = 1 (x_0 itself: diffusers' `set_alpha_to_one`). Throws on a timestep outside [−1, T). */
export function alphaBar(schedule: DiffusionSchedule, t: number): number {
  if (!Number.isInteger(t) || t < -1 || t >= schedule.steps) throw new Error(`diffusion timestep: expected an integer in [-1, ${schedule.steps - 1}], got ${JSON.stringify(t)}`);
  return t < 0 ? 1 : schedule.alphasCumprod[t]!;
}

/**
 * The forward process (Ho et al. 2020, eq. 4): x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε.
 * x0, eps: [N, D]; t: [N] int32 timesteps in [0, T) (one per row; not checked on the device).
 * Returns x_t [N, D]. Consumes x0, eps and t. Differentiable in x0 and eps; meant for `jit`
 * (the tables enter as float32 constants of T entries).
 */
export function qSample(schedule: DiffusionSchedule, x0: Array, eps: Array, t: Array): Array {
  const [n, d] = x0.shape;
  if (x0.ndim !== 2 || eps.ndim !== 2 || eps.shape[0] !== n || eps.shape[1] !== d) throw new Error(`qSample: expected x0 and eps [N, D] alike, got ${fmt(x0.shape)} and ${fmt(eps.shape)}`);
  if (t.ndim !== 1 || t.shape[0] !== n) throw new Error(`qSample: expected t [${n}] (one timestep per row), got ${fmt(t.shape)}`);
  const signal = fromHost(Float32Array.from(schedule.alphasCumprod, Math.sqrt), [schedule.steps]);
  const noise = fromHost(Float32Array.from(schedule.alphasCumprod, (a) => Math.sqrt(1 - a)), [schedule.steps]);
  const idx = t.astype(np.int32);
  const a = np.take(signal, idx.ref, 0).reshape([n, 1]);
  const s = np.take(noise, idx, 0).reshape([n, 1]);
  return x0.mul(a.astype(x0.dtype)).add(eps.mul(s.astype(eps.dtype)));
}

/** q(x_t | x_0) at one timestep for every row, on any shape: √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε. Consumes x0 and eps. */
export function qSampleAt(schedule: DiffusionSchedule, x0: Array, eps: Array, t: number): Array {
  if (fmt(x0.shape) !== fmt(eps.shape)) throw new Error(`qSampleAt: x0 ${fmt(x0.shape)} and eps ${fmt(eps.shape)} differ in shape`);
  const a = alphaBar(schedule, t);
  return x0.mul(Math.sqrt(a)).add(eps.mul(Math.sqrt(1 - a)));
}

/**
 * The noise an x̂_0 implies at timestep t: ε̂ = (x_t − √ᾱ_t·x̂_0)/√(1 − ᾱ_t), so a model that
 * predicts x_0 drives an ε sampler (DDIM then recovers the same x̂_0). xt, x0: alike; t: a scalar
 * timestep in [0, T) (float or int, as a sampler's loop passes it). Consumes xt, x0 and t.
 */
export function epsilonFromX0(schedule: DiffusionSchedule, xt: Array, x0: Array, t: Array): Array {
  if (fmt(xt.shape) !== fmt(x0.shape)) throw new Error(`epsilonFromX0: x_t ${fmt(xt.shape)} and x̂_0 ${fmt(x0.shape)} differ in shape`);
  const idx = t.astype(np.int32);
  const signal = np.take(fromHost(Float32Array.from(schedule.alphasCumprod, Math.sqrt), [schedule.steps]), idx.ref, 0);
  const noise = np.take(fromHost(Float32Array.from(schedule.alphasCumprod, (a) => Math.sqrt(1 - a)), [schedule.steps]), idx, 0);
  return xt.sub(x0.mul(signal)).div(noise);
}
