import { blockUntilReady, jit, np, tree, valueAndGrad, type Array, type JsTree, type OwnedFunction } from "../engine/index.ts";
import { engineMemoryError, formatCount } from "../engine/out-of-memory.ts";
import { adamwUpdate, DEFAULT_ADAMW, initAdamW, type AdamWConfig, type AdamWState, type Params } from "./optim.ts";

/**
 * A loss: consumes params and batch, returns the scalar loss and named auxiliary outputs
 * (scalars become `metrics`; larger arrays, such as token ids, come back as `outputs`).
 */
export type LossFn<B extends JsTree<Array>> = (params: Params, batch: B) => [Array, Record<string, Array>];

export type StepResult = {
  loss: number;
  gradNorm: number;
  metrics: Record<string, number>;
  outputs: Record<string, Float32Array | Int32Array>;
};

/**
 * Owns params and optimizer state and runs jitted AdamW steps of `lossFn`. The whole step
 * (forward, backward, clipping, update) is one `jit` so jax-js fuses it, compiled once per
 * batch shape. The model stays a pure function; this class knows nothing of its insides.
 */
export class Trainer<B extends JsTree<Array>> {
  params: Params;
  opt: AdamWState;
  readonly #step: OwnedFunction<(p: Params, o: AdamWState, b: B, lr: Array) => JsTree<Array>>;

  /** What is trained, for errors: e.g. "speech transformer (dim 128, 4 layers, …)". */
  readonly label: string;
  readonly #parameters: number;

  constructor(params: Params, lossFn: LossFn<B>, cfg: AdamWConfig = DEFAULT_ADAMW, { label = "a model" }: { label?: string } = {}) {
    this.params = params;
    this.label = label;
    this.#parameters = countLeaves(params);
    this.opt = initAdamW(params);
    const step = (p: Params, o: AdamWState, b: B, lr: Array) => {
      const [[loss, metrics], grads] = valueAndGrad(lossFn, { hasAux: true })(tree.ref(p), b as never) as unknown as [
        [Array, Record<string, Array>],
        Params,
      ];
      // valueAndGrad consumed the extra reference; `p` itself goes on to the update.
      return [adamwUpdate(p, grads, o, lr, cfg) as unknown as JsTree<Array>, loss, metrics];
    };
    this.#step = jit(step as never) as never;
  }

  /**
   * One optimizer step at learning rate `lr`; consumes `batch`. Reads back loss and metrics,
   * and resolves only once the new params and optimizer state are computed too: with the
   * worker pool (MMNTP_THREADS > 1) the update kernels may still be queued after the loss is
   * read, and a synchronous read (`js()`, `dataSync()`) of anything made from them would throw
   * jax-js's "cannot dispatch synchronously with pending async work".
   */
  step(batch: B, lr: number): Promise<StepResult> {
    return namedOutOfMemory(this.label, this.#parameters, batch, async () => {
      const [update, loss, metrics] = this.#step(this.params, this.opt, batch, np.array(lr)) as unknown as [
        { params: Params; state: AdamWState; gradNorm: Array },
        Array,
        Record<string, Array>,
      ];
      this.params = update.params;
      this.opt = update.state;
      return readStep(loss, update.gradNorm, metrics, [this.params, this.opt as unknown as JsTree<Array>]);
    });
  }

  /** Ends training: frees the optimizer state and the compiled step, and hands the parameters to the caller. */
  release(): Params {
    const params = this.params;
    this.params = {};
    this.dispose();
    return params;
  }

  dispose(): void {
    this.#step.dispose();
    tree.dispose([this.params, this.opt as unknown as JsTree<Array>]);
  }
}

/** Elements in all of `params`' arrays. Borrows it. */
export const countLeaves = (params: Params): number => tree.leaves(params).reduce((n, a) => n + a.size, 0);

/**
 * `run()`, with the engine running out of memory turned into an EngineMemoryError naming what
 * was trained (`label`, `parameters`) and the batch's shapes (read before `run` consumes it).
 */
export async function namedOutOfMemory<T>(label: string, parameters: number, batch: JsTree<Array>, run: () => Promise<T>): Promise<T> {
  const shapes = tree.leaves(batch).map((a) => a.shape.join("×"));
  try {
    return await run();
  } catch (e) {
    throw engineMemoryError(e, () => `a training step of ${label}, with ${formatCount(parameters)} parameters and a batch of ${[...new Set(shapes)].join(", ")}`);
  }
}

/**
 * A step's results read back: loss, gradient norm, scalar metrics and array outputs (consumed);
 * resolves once `state` (the new params and optimizer state) is computed too, see `Trainer.step`.
 */
export async function readStep(loss: Array, gradNorm: Array, metrics: Record<string, Array>, state: JsTree<Array>): Promise<StepResult> {
  const names = Object.keys(metrics);
  const values = await Promise.all([loss, gradNorm, ...names.map((n) => metrics[n]!)].map((a) => a.data()));
  await blockUntilReady(state);
  const result: StepResult = { loss: values[0]![0]!, gradNorm: values[1]![0]!, metrics: {}, outputs: {} };
  names.forEach((n, i) => {
    const v = values[i + 2] as Float32Array | Int32Array;
    if (v.length === 1) result.metrics[n] = v[0]!;
    else result.outputs[n] = v;
  });
  return result;
}
