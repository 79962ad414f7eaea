import { np, type Array } from "../engine/index.ts";
import { ones, zeros } from "./init.ts";
import { expectLastDim } from "./shapes.ts";

export type LayerNormParams = { g: Array; b: Array };
export type RMSNormParams = { g: Array };

export const initLayerNorm = (dim: number): LayerNormParams => ({ g: ones([dim]), b: zeros([dim]) });
export const initRMSNorm = (dim: number): RMSNormParams => ({ g: ones([dim]) });

/** LayerNorm (Ba et al. 2016) over the last axis. x: [..., D] → [..., D]. */
export function layerNorm(p: LayerNormParams, x: Array, eps = 1e-5): Array {
  expectLastDim(x, p.g.shape[0], "layerNorm");
  const centered = x.ref.sub(x.mean(-1, { keepdims: true }));
  const variance = np.square(centered.ref).mean(-1, { keepdims: true });
  return centered.mul(np.reciprocal(np.sqrt(variance.add(eps)))).mul(p.g).add(p.b);
}

/** RMSNorm (Zhang & Sennrich 2019): no centering, no bias. x: [..., D] → [..., D]. */
export function rmsNorm(p: RMSNormParams, x: Array, eps = 1e-6): Array {
  expectLastDim(x, p.g.shape[0], "rmsNorm");
  const ms = np.square(x.ref).mean(-1, { keepdims: true });
  return x.mul(np.reciprocal(np.sqrt(ms.add(eps)))).mul(p.g);
}
