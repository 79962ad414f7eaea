/**
 * The diffusion loss of a continuous-token head (MAR, Li et al. 2024, §3.2, eq. 2):
 *
 *   L(z, x) = E_{ε, t} ‖ε − ε_θ(x_t | t, z)‖²,   x_t = √ᾱ_t·x + √(1 − ᾱ_t)·ε,
 *
 * DDPM's "simple" ε-objective (Ho et al. 2020, eq. 14) per token, t uniform on {0, …, T−1} under
 * the cosine schedule, ε ~ N(0, I). The squared error is averaged over the token's channels (MAR's
 * `mean_flat`), then weighted over tokens (MAR's mask): Σ w·ℓ / Σ w. MAR draws several (t, ε) per
 * token, the "diffusion batch multiplier" (4 in its experiments, §5.1): the backbone runs once and
 * the cheap head sees each (z, x) k times, which lowers the loss's variance at little cost.
 *
 * Randomness comes from a PRNG key in the batch (split here into one key for t, one for ε), so a
 * training run is deterministic for its seed and the whole step stays inside the Trainer's `jit`.
 */
import { np, random, type Array, type DType } from "../engine/index.ts";
import { predictNoise, type DiffusionHeadParams } from "../backbone/heads/diffusion-head.ts";
import { qSample, type DiffusionSchedule } from "../backbone/heads/diffusion-schedule.ts";
import { fmt } from "../nn/shapes.ts";

/** One batch of tokens for the diffusion loss. */
export type DiffusionBatch = {
  /** x_0, the clean continuous tokens: [N, Dx] */
  x: Array;
  /** z, the conditions (the backbone's hidden states at those tokens): [N, Dz] */
  z: Array;
  /** a PRNG key (`KeyStream.next()`), consumed */
  key: Array;
  /** per-token loss weights [N] (0 = no loss); default all 1 */
  weights?: Array;
};

export type DiffusionLossOptions = {
  /** k ≥ 1 draws of (t, ε) per token (MAR's `diffusion_batch_mul`); default 1 */
  readonly multiplier?: number;
};

/** Throws unless `k` is a valid diffusion batch multiplier. */
export function checkDiffusionMultiplier(k: unknown, where = "diffusion loss multiplier"): asserts k is number {
  if (!Number.isInteger(k) || (k as number) < 1 || (k as number) > 1024) throw new Error(`${where}: expected an integer in [1, 1024] (draws of (t, ε) per token), got ${JSON.stringify(k)}`);
}

/**
 * Σ_{rows} w·mean_D (ε̂ − ε)² / Σ w over the k·N rows [x; x; …] (tiled as MAR's `repeat(k, 1)`).
 * t and ε come from `diffusionDraws(batch.key, k·N, …)`. Returns the loss and no metrics.
 * Consumes params and batch.
 */
export function diffusionLoss(p: DiffusionHeadParams, batch: DiffusionBatch, schedule: DiffusionSchedule, { multiplier = 1 }: DiffusionLossOptions = {}): [Array, Record<string, Array>] {
  checkDiffusionMultiplier(multiplier);
  const { x, z, key, weights } = batch;
  const [n, dx] = x.shape;
  if (x.ndim !== 2) throw new Error(`diffusionLoss: expected x [N, Dx], got ${fmt(x.shape)}`);
  if (z.ndim !== 2 || z.shape[0] !== n) throw new Error(`diffusionLoss: expected z [${n}, Dz] (one condition per token), got ${fmt(z.shape)}`);
  if (weights && fmt(weights.shape) !== fmt([n])) throw new Error(`diffusionLoss: expected weights [${n}], got ${fmt(weights.shape)}`);
  const { t, eps } = diffusionDraws(key, multiplier * n, dx, schedule.steps, x.dtype);
  const x0 = multiplier === 1 ? x : np.tile(x, [multiplier, 1]);
  const zk = multiplier === 1 ? z : np.tile(z, [multiplier, 1]);
  const xt = qSample(schedule, x0, eps.ref, t.ref);
  const perToken = np.square(predictNoise(p, xt, t, zk).sub(eps)).mean(-1); // [kN]
  if (!weights) return [perToken.mean(), {}];
  const w = (multiplier === 1 ? weights : np.tile(weights, [multiplier])).astype(perToken.dtype);
  return [perToken.mul(w.ref).sum().div(w.sum().add(1e-9)), {}];
}

/**
 * The loss's random draws for `rows` tokens: t ~ U{0, …, T−1} [rows] int32 and ε ~ N(0, I)
 * [rows, D] in `dtype`, from two keys split off `key`. Consumes key.
 */
export function diffusionDraws(key: Array, rows: number, dim: number, steps: number, dtype: DType = np.float32): { t: Array; eps: Array } {
  const keys = random.split(key, 2); // [2, 2] uint32
  const t = random.randint(keys.ref.slice(0), { minval: 0, maxval: steps, shape: [rows], dtype: np.int32 });
  return { t, eps: random.normal(keys.slice(1), [rows, dim]).astype(dtype) };
}
