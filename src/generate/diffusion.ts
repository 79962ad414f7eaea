/**
 * Sampling continuous tokens from a diffusion head (MAR, Li et al. 2024, §3.3 and `DiffLoss.sample`):
 * x ~ N(0, I), then S DDIM steps (backbone/heads/ddim.ts; "leading" timesteps T − ⌊T/S⌋, …, 0) with
 * ε̂ from the head conditioned on each token's z, ending at x̂_0.
 *
 * - η ∈ [0, 1]: 0 = deterministic DDIM (Song et al. 2021), 1 = DDPM's ancestral sampler on the
 *   respaced schedule (what MAR samples with, on its own spacing).
 * - Temperature τ (MAR §3.3, after Dhariwal & Nichol 2021): scales the noise each step injects,
 *   x_prev = √ᾱ_prev·x̂_0 + √(1 − ᾱ_prev − σ_t²)·ε̂ + τ·σ_t·z, and only that: the start x stays
 *   N(0, I) and the direction term keeps σ_t, as MAR's `p_sample` does
 *   (`out["mean"] + nonzero_mask·exp(½·log σ²)·noise·temperature`). With η = 0 nothing is
 *   injected, so τ has no effect; τ < 1 sharpens only when η > 0.
 * - Classifier-free guidance (Ho & Salimans 2022, eq. 6, on ε as MAR's `forward_with_cfg`):
 *   ε̂ = ε_u + s·(ε_c − ε_u), the conditional and the unconditional condition batched into one
 *   pass of 2N rows that share x_t; s = 1 is the conditional head, s = 0 the unconditional.
 *
 * Randomness: every draw takes the next key of a `KeyStream` (the start x first, then one per
 * step with σ_t > 0), so a seed fixes the samples.
 */
import { np, random, tree, type Array, type JsTree } from "../engine/index.ts";
import { inferenceJit } from "../engine/lean.ts";
import type { KeyStream } from "../engine/rng.ts";
import { ddimCoefficients, ddimScalars, ddimUpdate, samplingTimesteps } from "../backbone/heads/ddim.ts";
import { predictNoise, type DiffusionHeadParams } from "../backbone/heads/diffusion-head.ts";
import type { DiffusionSchedule } from "../backbone/heads/diffusion-schedule.ts";
import { fmt } from "../nn/shapes.ts";

export type DiffusionSampling = {
  /** S, the DDIM steps (MAR: 100 at evaluation) */
  readonly steps: number;
  /** η ∈ [0, 1]; default 0 (deterministic DDIM) */
  readonly eta?: number;
  /** τ > 0 scales each step's injected noise τ·σ_t·z (see the header); default 1 */
  readonly temperature?: number;
  /** s, the classifier-free guidance scale; default 1 (no guidance; needs `uncond` otherwise) */
  readonly guidance?: number;
  /** c: clip every step's x̂_0 to [−c, c] (ddimUpdate); for data in a known range, e.g. 1 for pixels in [−1, 1]; default none */
  readonly clip?: number;
};

/** Throws, naming the field, the value and what is allowed, unless `opts` is valid for `schedule`. */
export function checkDiffusionSampling(opts: DiffusionSampling, schedule: DiffusionSchedule, where = "diffusion sampling"): void {
  const T = schedule.steps;
  if (!Number.isInteger(opts.steps) || opts.steps < 1 || opts.steps > T) throw new Error(`${where}.steps: expected an integer in [1, ${T}] (the schedule's T), got ${JSON.stringify(opts.steps)}`);
  if (opts.eta !== undefined && !(opts.eta >= 0 && opts.eta <= 1)) throw new Error(`${where}.eta: expected a number in [0, 1] (0 = DDIM, 1 = DDPM), got ${JSON.stringify(opts.eta)}`);
  if (opts.temperature !== undefined && !(opts.temperature > 0 && Number.isFinite(opts.temperature))) throw new Error(`${where}.temperature: expected a finite number > 0, got ${JSON.stringify(opts.temperature)}`);
  if (opts.guidance !== undefined && !Number.isFinite(opts.guidance)) throw new Error(`${where}.guidance: expected a finite number (1 = off), got ${JSON.stringify(opts.guidance)}`);
  if (opts.clip !== undefined && !(opts.clip > 0 && Number.isFinite(opts.clip))) throw new Error(`${where}.clip: expected a finite number > 0 (x̂_0 is clipped to [−clip, clip]), got ${JSON.stringify(opts.clip)}`);
}

/** What one sampling run returns. */
export type DiffusionSample = {
  /** x̂_0, the sampled tokens: [N, Dx] */
  x: Array;
  /** the timesteps visited, noisiest first */
  timesteps: number[];
};

/**
 * ε̂ = ε_θ(x_t, t) for rows x [N, Dx] at timestep t (a float32 scalar: the raw index), reading
 * `ctx` (a head's params and conditions); returns [N, Dx]. Traced once by `ddimSample`'s `jit`, so
 * it must be traceable (no host reads). Consumes all.
 */
export type NoisePredictor<C extends JsTree<Array>> = (ctx: C, x: Array, t: Array) => Array;

/**
 * The sampling loop, for any noise predictor: x ~ N(0, I) [N, Dx], then S DDIM steps. `guidance`
 * in `opts` is ignored here (it is the predictor's business: `sampleDiffusion`). Borrows ctx.
 */
export function ddimSample<C extends JsTree<Array>>(predict: NoisePredictor<C>, ctx: C, shape: readonly [number, number], schedule: DiffusionSchedule, keys: KeyStream, opts: DiffusionSampling): DiffusionSample {
  checkDiffusionSampling(opts, schedule);
  const [n, dx] = shape;
  const eta = opts.eta ?? 0;
  const tau = opts.temperature ?? 1;
  const timesteps = samplingTimesteps(schedule, opts.steps);
  // one trace serves every step: the timestep, the DDIM scalars and the noise are arguments
  const step = inferenceJit((ctx: C, x: Array, t: Array, k: Array, noise: Array): Array => {
    const { prev, x0 } = ddimUpdate(x.ref, predict(ctx, x, t), k, noise, opts.clip);
    x0.dispose();
    return prev;
  });
  let x = random.normal(keys.next(), [n, dx]); // the start, at t = T − ⌊T/S⌋
  try {
    timesteps.forEach((t, i) => {
      const c = ddimCoefficients(schedule, t, timesteps[i + 1] ?? -1, eta);
      const noise = c.sigma > 0 ? random.normal(keys.next(), [n, dx]) : np.zeros([n, dx]);
      x = step(tree.ref(ctx) as never, x, np.array(t, { dtype: np.float32 }), ddimScalars(c, np.float32, tau), noise);
    });
  } finally {
    step.dispose();
  }
  return { x, timesteps };
}

/**
 * Draws N tokens x̂_0 [N, Dx] from the head for the conditions z [N, Dz]; `uncond` [N, Dz] (or
 * [1, Dz], broadcast to every row) is the unconditional condition, required when guidance ≠ 1.
 * Borrows p; consumes z and uncond.
 */
export function sampleDiffusion(p: DiffusionHeadParams, z: Array, schedule: DiffusionSchedule, keys: KeyStream, opts: DiffusionSampling, uncond?: Array): DiffusionSample {
  checkDiffusionSampling(opts, schedule);
  const dx = p.input.w.shape[0]!;
  const dz = p.cond.w.shape[0]!;
  const n = z.shape[0]!;
  const s = opts.guidance ?? 1;
  const fail = (msg: string): never => {
    z.dispose();
    uncond?.dispose();
    throw new Error(msg);
  };
  if (z.ndim !== 2 || z.shape[1] !== dz) fail(`sampleDiffusion: expected z [N, ${dz}], got ${fmt(z.shape)}`);
  if (uncond && (uncond.ndim !== 2 || uncond.shape[1] !== dz || (uncond.shape[0] !== n && uncond.shape[0] !== 1))) fail(`sampleDiffusion: expected uncond [${n}, ${dz}] or [1, ${dz}], got ${fmt(uncond!.shape)}`);
  if (s !== 1 && !uncond) fail(`sampleDiffusion: guidance ${s} ≠ 1 needs the unconditional condition (uncond [${n}, ${dz}])`);
  const guided = s !== 1;
  // [zc; zu]: one pass of 2N rows that share x_t (MAR's forward_with_cfg)
  const cond = guided ? np.concatenate([z, np.broadcastTo(uncond!, [n, dz])], 0) : z;
  if (!guided) uncond?.dispose();
  const rows = cond.shape[0]!;
  const predict: NoisePredictor<{ p: DiffusionHeadParams; cond: Array }> = ({ p, cond }, x, t) => {
    const eps = predictNoise(p, guided ? np.concatenate([x.ref, x], 0) : x, np.broadcastTo(t, [rows]), cond); // [rows, Dx]
    if (!guided) return eps;
    const ec = eps.ref.slice([0, n]);
    const eu = eps.slice([n, 2 * n]);
    return eu.ref.add(ec.sub(eu).mul(s)); // ε_u + s·(ε_c − ε_u)
  };
  try {
    return ddimSample(predict, { p, cond }, [n, dx], schedule, keys, opts);
  } finally {
    cond.dispose();
  }
}
