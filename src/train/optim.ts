import { np, tree, type Array, type JsTree } from "../engine/index.ts";

export type Params = JsTree<Array>;

/** AdamW (Loshchilov & Hutter 2019) with global-norm gradient clipping. */
export type AdamWConfig = {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** Decoupled weight decay, applied to tensors of rank ≥ 2 only (not to biases or norm gains). */
  readonly weightDecay: number;
  /** Clip the global gradient norm to this value; 0 turns clipping off. */
  readonly clipNorm: number;
};

export const DEFAULT_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1.0 };

export type AdamWState = { m: Params; v: Params; step: Array };

export function initAdamW(params: Params): AdamWState {
  const zeros = () => tree.map((p: Array) => np.zerosLike(p.ref), params);
  return { m: zeros(), v: zeros(), step: np.array(0) };
}

/** sqrt(Σ g²) over every leaf. Borrows `grads`. */
export function globalNorm(grads: Params): Array {
  const squares = tree.leaves(grads).map((g) => np.square(g.ref).sum());
  return np.sqrt(squares.reduce((a, b) => a.add(b)));
}

/**
 * One AdamW update; meant to run inside `jit`. `lr` is a scalar array so a changing schedule
 * does not recompile. Consumes params, grads, state and lr; returns the new params and state
 * and the pre-clipping gradient norm.
 */
export function adamwUpdate(
  params: Params,
  grads: Params,
  state: AdamWState,
  lr: Array,
  cfg: AdamWConfig = DEFAULT_ADAMW,
): { params: Params; state: AdamWState; gradNorm: Array } {
  const norm = globalNorm(grads);
  const scale = cfg.clipNorm > 0 ? np.minimum(1, np.reciprocal(norm.ref.add(1e-6)).mul(cfg.clipNorm)) : np.array(1);
  const step = state.step.add(1);
  // Bias corrections 1 − β^t, with t traced: β^t = exp(t·ln β).
  const bc1 = np.subtract(1, np.exp(step.ref.mul(Math.log(cfg.beta1))));
  const bc2 = np.subtract(1, np.exp(step.ref.mul(Math.log(cfg.beta2))));
  const stepSize = lr.ref.div(bc1);

  const [pLeaves, def] = tree.flatten(params);
  const gLeaves = tree.leaves(grads);
  const mLeaves = tree.leaves(state.m);
  const vLeaves = tree.leaves(state.v);
  const out = pLeaves.map((p, i) => {
    const g = gLeaves[i].mul(scale.ref);
    const m = mLeaves[i].mul(cfg.beta1).add(g.ref.mul(1 - cfg.beta1));
    const v = vLeaves[i].mul(cfg.beta2).add(np.square(g).mul(1 - cfg.beta2));
    const denom = np.sqrt(v.ref.div(bc2.ref)).add(cfg.eps);
    let next = p.ref.sub(m.ref.div(denom).mul(stepSize.ref));
    if (p.ndim >= 2 && cfg.weightDecay > 0) next = next.sub(p.mul(lr.ref.mul(cfg.weightDecay)));
    else p.dispose();
    return { p: next, m, v };
  });
  tree.dispose([scale, bc2, stepSize, lr]);
  return {
    params: tree.unflatten(def, out.map((o) => o.p)) as Params,
    state: {
      m: tree.unflatten(def, out.map((o) => o.m)) as Params,
      v: tree.unflatten(def, out.map((o) => o.v)) as Params,
      step,
    },
    gradNorm: norm,
  };
}

/** Linear warm-up to `peak`, then cosine decay to `peak·minRatio` at `total` steps. */
export function warmupCosine(step: number, { peak, warmup, total, minRatio = 0.1 }: { peak: number; warmup: number; total: number; minRatio?: number }): number {
  if (step < warmup) return (peak * (step + 1)) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
