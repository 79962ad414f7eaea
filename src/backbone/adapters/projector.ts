import { nn, tree, type Array } from "../../engine/index.ts";
import type { KeyStream } from "../../engine/rng.ts";
import { initLinear, linear, type LinearParams } from "../../nn/linear.ts";
import { fmt } from "../../nn/shapes.ts";

/**
 * Input projectors: continuous features [B, N, Din] (an encoder's, or raw patches) → embeddings
 * [B, N, D] in the backbone's width, which `embedInputs` places at a placeholder's N slots.
 *   "linear": W x + b, LLaVA's projector (Liu et al. 2023, §4.1 eq. 1) and Fuyu's whole encoder
 *             (raw patches, linearly projected);
 *   "mlp":    W₂ GELU(W₁ x + b₁) + b₂, LLaVA-1.5's "MLP vision-language connector" (Liu et al.
 *             2024, "Improved Baselines with Visual Instruction Tuning"; `mlp2x_gelu`, hidden width D).
 * One embedding per feature: the number of tokens is the encoder's N. To choose it, resample
 * (resampler.ts).
 */
export type ProjectorKind = "linear" | "mlp";
export const PROJECTOR_KINDS: readonly ProjectorKind[] = ["linear", "mlp"];

export type ProjectorConfig = {
  readonly kind: ProjectorKind;
  /** Din, the width of the features */
  readonly inputDim: number;
  /** D, the backbone's width (and the MLP's hidden width) */
  readonly dim: number;
};

/** fc1: [Din, D]; with "mlp" also fc2: [D, D]. */
export type ProjectorParams = { fc1: LinearParams; fc2?: LinearParams };

export function checkProjectorConfig(cfg: unknown, where = "projector config"): asserts cfg is ProjectorConfig {
  const c = cfg as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null || globalThis.Array.isArray(c)) throw new Error(`${where}: expected an object, got ${JSON.stringify(cfg)}`);
  if (!PROJECTOR_KINDS.includes(c.kind as ProjectorKind)) throw new Error(`${where}.kind: expected one of ${PROJECTOR_KINDS.join(", ")}, got ${JSON.stringify(c.kind)}`);
  for (const key of ["inputDim", "dim"]) {
    const v = c[key];
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 1 << 16) throw new Error(`${where}.${key}: expected an integer in [1, ${1 << 16}], got ${JSON.stringify(v)}`);
  }
}

export function initProjector(keys: KeyStream, cfg: ProjectorConfig): ProjectorParams {
  checkProjectorConfig(cfg);
  const fc1 = initLinear(keys, cfg.inputDim, cfg.dim);
  return cfg.kind === "mlp" ? { fc1, fc2: initLinear(keys, cfg.dim, cfg.dim) } : { fc1 };
}

/** features: [B, N, Din] → embeddings [B, N, D] (any leading axes work; [B, N, ·] is the use). Consumes p and features. */
export function projectFeatures(p: ProjectorParams, features: Array): Array {
  const din = p.fc1.w.shape[0];
  if (features.ndim < 2 || features.shape[features.ndim - 1] !== din) {
    tree.dispose([p, features]);
    throw new Error(`projector: expected features [B, N, ${din}], got ${fmt(features.shape)}`);
  }
  const h = linear(p.fc1, features);
  return p.fc2 ? linear(p.fc2, nn.gelu(h)) : h;
}
