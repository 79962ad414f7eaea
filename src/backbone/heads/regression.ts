/**
 * A regression head for continuous outputs (Emu, Sun et al. 2023, "Generative Pretraining in
 * Multimodality", §2.2): the backbone's hidden state at a visual position is mapped to the next
 * visual embedding and trained with an ℓ2 regression loss, no codebook in between. A linear map
 * (Emu's), or with `hidden` > 0 a 2-layer GELU MLP; the loss is the per-token mean squared error
 * or the cosine distance 1 − cos(ŷ, y) (scale-free: for targets whose norm carries nothing, as
 * normalized CLIP-style features).
 *
 * One regression draws the conditional mean: a multimodal target distribution is averaged to a
 * blur, which is why MAR samples with a diffusion head instead (diffusion-head.ts).
 */
import { np, nn, type Array } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { initLinear, linear, type LinearParams } from "../../nn/linear.ts";
import { expectLastDim, fmt } from "../../nn/shapes.ts";

export type RegressionHeadConfig = {
  /** Dh, the backbone's hidden width */
  readonly hiddenDim: number;
  /** Dy, the target features' width */
  readonly targetDim: number;
  /** 0 (default) = linear; > 0 = a GELU MLP with this inner width */
  readonly hidden?: number;
};

export type RegressionHeadParams = { fc1: LinearParams; fc2?: LinearParams };

export type RegressionLossKind = "mse" | "cosine";
export const REGRESSION_LOSSES: readonly RegressionLossKind[] = ["mse", "cosine"];

const MAX_DIM = 1 << 16;

/** Throws, naming the field, the value and what is allowed, unless `cfg` is a valid head config. */
export function checkRegressionHeadConfig(cfg: unknown, where = "regression head config"): asserts cfg is RegressionHeadConfig {
  const c = cfg as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null || globalThis.Array.isArray(c)) throw new Error(`${where}: expected an object, got ${JSON.stringify(cfg)}`);
  const known = ["hiddenDim", "targetDim", "hidden"];
  const unknown = Object.keys(c).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new Error(`${where}: unknown field ${unknown.map((k) => JSON.stringify(k)).join(", ")} (valid: ${known.join(", ")})`);
  for (const key of ["hiddenDim", "targetDim"]) {
    const v = c[key];
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > MAX_DIM) throw new Error(`${where}.${key}: expected an integer in [1, ${MAX_DIM}], got ${JSON.stringify(v)}`);
  }
  const h = c.hidden;
  if (h !== undefined && (!Number.isInteger(h) || (h as number) < 0 || (h as number) > MAX_DIM)) throw new Error(`${where}.hidden: expected an integer in [0, ${MAX_DIM}] (0 = linear), got ${JSON.stringify(h)}`);
}

export function initRegressionHead(keys: KeyStream, cfg: RegressionHeadConfig): RegressionHeadParams {
  checkRegressionHeadConfig(cfg);
  const h = cfg.hidden ?? 0;
  if (h === 0) return { fc1: initLinear(keys, cfg.hiddenDim, cfg.targetDim) };
  return { fc1: initLinear(keys, cfg.hiddenDim, h), fc2: initLinear(keys, h, cfg.targetDim) };
}

/** h: [..., Dh] → ŷ [..., Dy]. Consumes p and h. */
export function regress(p: RegressionHeadParams, h: Array): Array {
  expectLastDim(h, p.fc1.w.shape[0]!, "regress");
  const y = linear(p.fc1, h);
  return p.fc2 ? linear(p.fc2, nn.gelu(y)) : y;
}

/**
 * Per-token regression losses: "mse" = mean_D (ŷ − y)², "cosine" = 1 − ŷ·y / (‖ŷ‖‖y‖) (the
 * product of norms floored at 1e-8). pred, target: [..., D] alike → [...]. Consumes both.
 */
export function regressionErrors(pred: Array, target: Array, kind: RegressionLossKind): Array {
  if (fmt(pred.shape) !== fmt(target.shape)) throw new Error(`regression loss: prediction ${fmt(pred.shape)} and target ${fmt(target.shape)} differ in shape`);
  if (kind === "mse") return np.square(pred.sub(target)).mean(-1);
  if (kind !== "cosine") throw new Error(`regression loss: expected one of ${REGRESSION_LOSSES.join(", ")}, got ${JSON.stringify(kind)}`);
  const dot = pred.ref.mul(target.ref).sum(-1);
  const norms = np.sqrt(np.square(pred).sum(-1)).mul(np.sqrt(np.square(target).sum(-1)));
  return np.subtract(1, dot.div(np.maximum(norms, 1e-8)));
}

/** Σ w·ℓ / Σ w over tokens (weights [...], default all 1) of `regressionErrors`. Consumes all. */
export function regressionLoss(pred: Array, target: Array, kind: RegressionLossKind, weights?: Array): Array {
  const e = regressionErrors(pred, target, kind);
  if (!weights) return e.mean();
  if (fmt(weights.shape) !== fmt(e.shape)) throw new Error(`regression loss: expected weights ${fmt(e.shape)} (one per token), got ${fmt(weights.shape)}`);
  const w = weights.astype(e.dtype);
  return e.mul(w.ref).sum().div(w.sum().add(1e-9));
}
