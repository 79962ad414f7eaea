import { np, tree, valueAndGrad, type Array, type JsTree } from "../../src/engine/index.ts";

type Tree = JsTree<Array>;

/** Cast every leaf to float64 so finite differences are exact to ~1e-8. */
export function toF64<T extends Tree>(t: T): T {
  return tree.map((a: Array) => a.astype(np.float64), t) as T;
}

function withElement(a: Array, i: number, delta: number): Array {
  const data = Float64Array.from(a.ref.dataSync() as Float64Array);
  data[i] += delta;
  return np.array(data, { dtype: np.float64 }).reshape(a.shape);
}

/**
 * Central finite differences of scalar `f(args)` against `valueAndGrad`, on up to `perLeaf`
 * coordinates of every leaf of every argument. Returns the worst (floored) relative error.
 * `f` follows jax-js ownership (consumes its arguments); `args` stay owned by the caller.
 */
export function gradCheck(f: (...args: Tree[]) => Array, args: Tree[], { perLeaf = 6, eps = 1e-2 } = {}): number {
  const argnums = args.map((_, i) => i);
  const [, grads] = valueAndGrad(f, { argnums })(...args.map((a) => tree.ref(a))) as unknown as [Array, Tree[]];
  let worst = 0;
  args.forEach((arg, ai) => {
    const [leaves, def] = tree.flatten(arg);
    const [gLeaves] = tree.flatten(grads[ai]);
    leaves.forEach((leaf, li) => {
      const g = gLeaves[li].ref.dataSync();
      const n = leaf.size;
      for (let c = 0; c < Math.min(perLeaf, n); c++) {
        const i = Math.floor(((c + 0.5) * n) / Math.min(perLeaf, n));
        const evalAt = (delta: number) => {
          const moved = leaves.map((l, j) => (j === li ? withElement(l, i, delta) : l.ref));
          const callArgs = args.map((a, k) => (k === ai ? tree.unflatten(def, moved) : tree.ref(a)));
          return (f(...(callArgs as Tree[])).dataSync() as Float64Array)[0];
        };
        const fd = (evalAt(eps) - evalAt(-eps)) / (2 * eps);
        // Relative error with a floor of 0.1, i.e. |fd − g| ≤ tol·max(0.1, |fd| + |g|): exact zeros
        // (a key bias under softmax) compare on an absolute scale instead of dividing noise by ~0.
        const err = Math.abs(fd - g[i]) / Math.max(0.1, Math.abs(fd) + Math.abs(g[i]));
        worst = Math.max(worst, err);
      }
    });
  });
  tree.dispose(grads);
  return worst;
}

/** A fixed random projection so the checked scalar depends on every output element. */
export function probe(y: Array, seed = 1): Array {
  const n = y.size;
  const w = new Float64Array(n).map((_, i) => Math.sin(i * 12.9898 + seed) * 0.5);
  return y.mul(np.array(w, { dtype: np.float64 }).reshape(y.shape)).sum();
}
