import { ConcreteArray, np, type Array } from "../../engine/index.ts";
import { expectLastDim, fmt } from "../../nn/shapes.ts";

/**
 * Input checks shared by every quantizer. Shape checks work inside `jit` (shapes are static);
 * the finiteness check reads values, so it runs only on concrete arrays (eager calls), and is
 * skipped for tracers, where the values do not exist yet.
 */
export function checkQuantizerInput(x: Array, dim: number, what: string): void {
  expectLastDim(x, dim, what);
  if (!(x instanceof ConcreteArray)) return;
  const bad = np.logicalNot(np.isfinite(x.ref)).astype(np.int32).sum().js() as number;
  if (bad > 0) throw new Error(`${what}: input ${fmt(x.shape)} holds ${bad} NaN/Inf value(s); expected finite numbers`);
}

/** Throw unless every id in a host list is an integer in [0, size). */
export function checkIds(ids: ArrayLike<number>, size: number, what: string): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= size) throw new Error(`${what}: id ${id} at position ${i} out of range [0, ${size - 1}]`);
  }
}

/** Ids on the device: checked when concrete (eager), skipped for tracers. */
export function checkDeviceIds(indices: Array, size: number, what: string): void {
  if (!(indices instanceof ConcreteArray)) return;
  checkIds(indices.ref.dataSync() as Int32Array, size, what);
}
